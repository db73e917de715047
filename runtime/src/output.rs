//! Where sundown's lines go: `tracing` events when a subscriber is installed, otherwise
//! short lines on stderr. Writing never panics and never blocks the caller: lines go
//! through a bounded queue to a writer thread, so a full stderr pipe (nobody reading)
//! cannot stall the threads that keep the deadlines. A closed or full stderr loses
//! lines, never the exit code; before exiting, the queue is flushed with a bound.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::report::{DroppedCleanup, Failure, Report};

/// Failure lines printed as they happen before the rest are only counted (the report
/// has the total).
const FAILURE_LINES: u64 = 64;
static FAILURE_LINES_PRINTED: AtomicU64 = AtomicU64::new(0);

fn use_tracing() -> bool {
    tracing::dispatcher::has_been_set()
}

enum Message {
    Text(String),
    Flushed(SyncSender<()>),
}

/// Lines queued before further ones are dropped (and counted).
const QUEUE: usize = 1024;
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn writer() -> Option<&'static Mutex<SyncSender<Message>>> {
    static WRITER: OnceLock<Option<Mutex<SyncSender<Message>>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            std::thread::Builder::new()
                .name("sundown-stderr".into())
                .spawn(move || write_loop(&rx))
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

fn write_loop(rx: &Receiver<Message>) {
    for msg in rx {
        match msg {
            Message::Text(text) => {
                let mut err = std::io::stderr().lock();
                let dropped = DROPPED.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let _ = writeln!(
                        err,
                        "sundown: ({dropped} line(s) dropped: stderr was not keeping up)"
                    );
                }
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            }
            Message::Flushed(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

/// Queues `text` for stderr; never blocks. Without the writer thread (it could not be
/// started), writes directly.
pub(crate) fn stderr(text: &str) {
    let Some(tx) = writer() else {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        return;
    };
    let tx = crate::scope::lock(tx);
    match tx.try_send(Message::Text(text.to_owned())) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// Waits up to `bound` for the queued lines to be written.
pub(crate) fn flush(bound: Duration) {
    let Some(tx) = writer() else { return };
    let (ack, done) = mpsc::sync_channel(1);
    let queued = crate::scope::lock(tx)
        .try_send(Message::Flushed(ack))
        .is_ok();
    if queued {
        let _ = done.recv_timeout(bound);
    }
}

pub(crate) fn line(text: &str) {
    if use_tracing() {
        tracing::warn!(target: "sundown", "{text}");
    } else {
        stderr(&format!("sundown: {text}\n"));
    }
}

pub(crate) fn failure(f: &Failure) {
    let n = FAILURE_LINES_PRINTED.fetch_add(1, Ordering::Relaxed);
    if n >= FAILURE_LINES {
        return;
    }
    if use_tracing() {
        tracing::error!(
            target: "sundown",
            task = f.task(),
            location = %f.location(),
            failure = %f.kind(),
            "tracked task failed"
        );
    } else {
        let more = if n + 1 == FAILURE_LINES {
            " (further failures are only counted)"
        } else {
            ""
        };
        stderr(&format!("sundown: {f}{more}\n"));
    }
}

pub(crate) fn dropped_cleanup(d: &DroppedCleanup) {
    if use_tracing() {
        tracing::warn!(
            target: "sundown",
            function = d.function(),
            location = %d.location(),
            why = %d.why(),
            "cleanup did not complete"
        );
    } else {
        stderr(&format!("sundown: cleanup of {d}\n"));
    }
}

/// Emits a report: structured events with a subscriber, the summary on stderr without.
pub fn report(r: &Report) {
    if use_tracing() {
        for s in r.steps() {
            tracing::info!(
                target: "sundown",
                step = %s.step(),
                elapsed_ms = s.elapsed().as_millis() as u64,
                hit_deadline = s.hit_deadline(),
                "shutdown step"
            );
        }
        for t in r.stragglers() {
            tracing::warn!(
                target: "sundown",
                task = t.name(),
                location = %t.location(),
                age_ms = t.age().as_millis() as u64,
                state = %t.state(),
                "straggler aborted"
            );
        }
        tracing::info!(target: "sundown", exit_code = r.exit_code(), "{r}");
    } else {
        stderr(&format!("sundown: {r}\n"));
    }
}
