//! Where sundown's lines go: `tracing` events when the `tracing` feature is on and the
//! thread's dispatcher has a subscriber, otherwise short lines on stderr. Writing never
//! panics and never blocks the caller: lines go through a bounded queue to a writer
//! thread, so a full stderr pipe (nobody reading) cannot stall the threads that keep
//! the deadlines. A closed or full stderr loses lines, never the exit code; before the
//! process runner exits, and before a library `shutdown` or `join` returns, the queue is
//! flushed with a bound.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::report::{DroppedCleanup, Failure, Report};
use crate::sync::Mailbox;

/// Failure lines (and, separately, lost-cleanup lines) printed as they happen before
/// the rest are only counted (the report has the totals).
const FAILURE_LINES: u64 = 64;
static FAILURE_LINES_PRINTED: AtomicU64 = AtomicU64::new(0);
static CLEANUP_LINES_PRINTED: AtomicU64 = AtomicU64::new(0);

/// Counts one more line of a capped kind: `None` past the cap, else the suffix the
/// line carries (the last printed one says that the rest are only counted).
fn capped(printed: &AtomicU64, what: &str) -> Option<String> {
    let n = printed.fetch_add(1, Ordering::Relaxed);
    if n >= FAILURE_LINES {
        None
    } else if n + 1 == FAILURE_LINES {
        Some(format!(" (further {what} are only counted)"))
    } else {
        Some(String::new())
    }
}

/// Lines taken into the queue so far.
static TAKEN: AtomicU64 = AtomicU64::new(0);
/// Lines written so far, read without the lock (a wait with nothing to wait for costs
/// one load), and under it with the condition variable the writer signals.
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static WRITTEN_LOCK: Mutex<()> = Mutex::new(());
static WRITTEN_SIGNAL: Condvar = Condvar::new();
/// A wait for the lines ran out, and no line has been written since (stderr is a full
/// pipe nobody reads, say): later waits return at once, so a service whose child scopes
/// shut down often pays the bound once per stall, not once per shutdown.
static STALLED: AtomicBool = AtomicBool::new(false);

/// Lines queued before further ones are dropped (and counted).
const QUEUE: usize = 1024;
static DROPPED: AtomicU64 = AtomicU64::new(0);

static QUEUED: Mailbox<String> = Mailbox::new(QUEUE);

/// The queue to the writer thread, started on first use; `None` if it could not start.
fn writer() -> Option<&'static Mailbox<String>> {
    static STARTED: OnceLock<bool> = OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("sundown-stderr".into())
            .spawn(write_loop)
            .is_ok()
    });
    started.then_some(&QUEUED)
}

fn write_loop() {
    while let Some(text) = QUEUED.recv(None) {
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
        drop(err);
        let _held = crate::sync::lock(&WRITTEN_LOCK);
        WRITTEN.fetch_add(1, Ordering::AcqRel);
        STALLED.store(false, Ordering::Release);
        WRITTEN_SIGNAL.notify_all();
    }
}

/// Starts the writer thread now rather than at the first line.
pub(crate) fn start() {
    let _ = writer();
}

/// Queues `text` for stderr; never blocks. Without the writer thread (it could not be
/// started), writes directly.
pub(crate) fn stderr(text: &str) {
    let Some(tx) = writer() else {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        return;
    };
    // Counted before it is queued: counted after, a line of another thread queued just
    // ahead of it could be written first, and a wait that counted only this one would
    // take that write for its own.
    TAKEN.fetch_add(1, Ordering::AcqRel);
    if tx.try_send(text.to_owned()).is_err() {
        TAKEN.fetch_sub(1, Ordering::AcqRel);
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits up to `bound` for the lines queued so far to be written; whether they are.
/// The process runner calls it as it exits, `#[sundown::test]` before its verdict.
///
/// It blocks the calling thread, on the system clock, against the counts of lines
/// taken and written (a writer that keeps up takes microseconds; with none queued it
/// is one load). Not a tokio timer, which a paused test clock would jump to (moving the
/// test's time, and its verdict) and which a thread blocked on a shutdown, or a runtime
/// already shut down, cannot drive; and no marker on the queue, which concurrent
/// waiters would fill.
pub fn flush(bound: Duration) -> bool {
    let target = TAKEN.load(Ordering::Acquire);
    let out = || WRITTEN.load(Ordering::Acquire) >= target;
    if out() || bound.is_zero() {
        return out();
    }
    let held = crate::sync::lock(&WRITTEN_LOCK);
    let _ = WRITTEN_SIGNAL.wait_timeout_while(held, bound, |_| !out());
    out()
}

/// [`flush`] at the end of a library `shutdown` or `join`, so that a program that exits
/// right after it does not lose the failures it reported. A stalled writer costs
/// `bound` once per stall (see [`STALLED`]).
pub(crate) fn written(bound: Duration) {
    if bound.is_zero() || STALLED.load(Ordering::Acquire) {
        return;
    }
    if !flush(bound) {
        STALLED.store(true, Ordering::Release);
    }
}

pub(crate) fn line(text: &str) {
    #[cfg(feature = "tracing")]
    if events::on() {
        return events::line(text);
    }
    stderr(&format!("sundown: {text}\n"));
}

pub(crate) fn failure(f: &Failure) {
    let Some(more) = capped(&FAILURE_LINES_PRINTED, "failures") else {
        return;
    };
    #[cfg(feature = "tracing")]
    if events::on() {
        return events::failure(f);
    }
    stderr(&format!("sundown: {f}{more}\n"));
}

pub(crate) fn dropped_cleanup(d: &DroppedCleanup) {
    let Some(more) = capped(&CLEANUP_LINES_PRINTED, "lost cleanups") else {
        return;
    };
    #[cfg(feature = "tracing")]
    if events::on() {
        return events::dropped_cleanup(d);
    }
    stderr(&format!("sundown: cleanup of {d}{more}\n"));
}

/// Emits a report: structured events with a subscriber (feature `tracing`), the summary
/// on stderr without.
pub fn report(r: &Report) {
    if !report_as_events(r) {
        stderr(&format!("sundown: {r}\n"));
    }
}

/// Emits the report as structured events if a subscriber takes them (feature
/// `tracing`); false when it is for the caller to write.
pub(crate) fn report_as_events(r: &Report) -> bool {
    #[cfg(feature = "tracing")]
    if events::on() {
        events::report(r);
        return true;
    }
    let _ = r;
    false
}

/// With the `tracing` feature, on a thread whose dispatcher has a subscriber, each line
/// is a structured event with target `sundown` instead.
#[cfg(feature = "tracing")]
mod events {
    use crate::report::{DroppedCleanup, Failure, Report};

    /// Whether this thread's events reach a subscriber. Not whether one was ever set
    /// anywhere: one installed for another thread only (`with_default`, as tests do)
    /// does not hear this thread, and a line sent to it here was said nowhere.
    pub(super) fn on() -> bool {
        tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
    }

    pub(super) fn line(text: &str) {
        tracing::warn!(target: "sundown", "{text}");
    }

    pub(super) fn failure(f: &Failure) {
        tracing::error!(
            target: "sundown",
            task = f.task(),
            location = %f.location(),
            failure = %f.kind(),
            "tracked task failed"
        );
    }

    pub(super) fn dropped_cleanup(d: &DroppedCleanup) {
        tracing::warn!(
            target: "sundown",
            function = d.function(),
            location = %d.location(),
            why = %d.why(),
            "cleanup did not complete"
        );
    }

    pub(super) fn report(r: &Report) {
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
    }
}
