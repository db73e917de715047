//! Feature `taskdump` (under `--cfg tokio_unstable`, on Linux): tokio's async backtrace
//! of each straggler, for the straggler report.
//!
//! `Handle::dump` pauses every worker and polls every task in tracing mode, and it never
//! finishes while a worker is blocked: it is asked once, when a shutdown has stragglers,
//! and given at most [`BOUND`], and at most half of what is left of the budget (the
//! abort and the close hooks keep the rest).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::registry::TaskInfo;

/// How long the straggler report waits for tokio's task dump.
pub(crate) const BOUND: Duration = Duration::from_millis(200);

/// Attaches tokio's backtrace to each of `stragglers` found in a task dump of the
/// current runtime; without a runtime, or when the dump does not come in time, nothing.
pub(crate) async fn attach_backtraces(stragglers: &mut [TaskInfo], deadline: Instant) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let left = deadline.saturating_duration_since(Instant::now()) / 2;
    let Ok(dump) = tokio::time::timeout(BOUND.min(left), handle.dump()).await else {
        return;
    };
    for task in dump.tasks().iter() {
        let id = task.id();
        for s in stragglers.iter_mut().filter(|s| s.tokio_id() == Some(id)) {
            s.set_backtrace(Arc::from(task.trace().to_string()));
        }
    }
}
