//! Where sundown's lines go: `tracing` events when a subscriber is installed, otherwise
//! short lines on stderr. Writing never panics: a closed or full stderr loses the line,
//! not the exit code.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::report::{DroppedCleanup, Failure, Report};

/// Failure lines printed as they happen before the rest are only counted (the report
/// has the total).
const FAILURE_LINES: u64 = 64;
static FAILURE_LINES_PRINTED: AtomicU64 = AtomicU64::new(0);

fn use_tracing() -> bool {
    tracing::dispatcher::has_been_set()
}

/// Writes `text` to stderr in one call, ignoring errors (EPIPE, closed descriptor).
pub(crate) fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
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

pub(crate) fn report(r: &Report) {
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
