//! The guard a tracked task's future carries (its registry entry, its outcome) and
//! the wrapper that reports a panic and classifies the output.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::task::Poll;

use crate::probe::Classify;
use crate::registry::{Outcome, SlotKey, TaskCell, TaskName, TaskOutcome, TaskState};
use crate::report::{Failure, FailureKind, panic_message};
use crate::scope::Shutdown;
use crate::waits::{self, Chain};

use super::ambient::{self, Ambient};

/// Owns a registry entry; removing it (and counting how the task ended) when dropped.
/// For a tracked task it is the installed context (`ambient::Local::Owner`), beside
/// nothing else: its scope is the task's ambient scope too. Kept to 24 bytes, since it
/// sits in every task's future.
pub(crate) struct TaskGuard {
    scope: Shutdown,
    key: SlotKey,
    outcome: Cell<Outcome>,
    /// The handle was discarded where the task was made: an `Err` is a failure.
    detached: bool,
}

impl TaskGuard {
    pub(crate) fn new(
        scope: &Shutdown,
        name: TaskName,
        location: &'static Location<'static>,
    ) -> Self {
        let key = scope.registry().insert(name, location, TaskState::Running);
        TaskGuard {
            scope: scope.clone(),
            key,
            // Until the task says otherwise, being dropped means it was cancelled.
            outcome: Cell::new(Outcome::Cancelled),
            detached: false,
        }
    }

    fn scope(&self) -> &Shutdown {
        &self.scope
    }

    /// The cells the task writes about its polls without a lock.
    #[inline]
    pub(crate) fn cell(&self) -> Option<TaskCell<'_>> {
        self.scope.registry().cell(self.key)
    }

    /// Debug mode: one poll of the task took `took`; past the slow-poll threshold the
    /// task is named on stderr (rate-limited).
    #[cold]
    pub(crate) fn check_poll(&self, took: std::time::Duration, chain: Chain) {
        if took < waits::slow_poll() {
            return;
        }
        let Some(held_back) = waits::may_warn() else {
            return;
        };
        let (name, location) = self.info();
        let waiting = self
            .scope()
            .task_info(self.key)
            .and_then(|t| t.waiting_text())
            .filter(|_| !chain.is_empty());
        let waiting = match waiting {
            Some((at, text)) => format!(", then waited at {at} {text}"),
            None => String::new(),
        };
        let held_back = if held_back > 0 {
            format!(" ({held_back} earlier slow poll(s) not shown)")
        } else {
            String::new()
        };
        crate::output::line(&format!(
            "slow poll: task `{}` ({}:{}) blocked its thread for {} in one poll{waiting}{held_back}",
            crate::report::Shown(&name),
            location.file(),
            location.line(),
            crate::duration::Human(took),
        ));
    }

    pub(crate) fn key(&self) -> SlotKey {
        self.key
    }

    /// The context code inside the task sees.
    pub(crate) fn ambient(&self) -> Ambient {
        Ambient {
            scope: self.scope.clone(),
            task: Some(self.key),
            shielded: false,
            in_flight: false,
        }
    }

    pub(crate) fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// An `Err` after one of the task's `#[cancel_safe]` calls returned its
    /// cancellation is that cancellation propagating.
    pub(crate) fn refine(&self, outcome: TaskOutcome) -> TaskOutcome {
        match outcome {
            TaskOutcome::Failed(_) if self.scope().registry().is_propagating_cancel(self.key) => {
                TaskOutcome::Cancelled
            }
            other => other,
        }
    }

    /// Records how the task ended; a failure is reported now.
    pub(crate) fn finish(&self, outcome: TaskOutcome) {
        let settled = match self.refine(outcome) {
            TaskOutcome::Completed => Outcome::Completed,
            TaskOutcome::Cancelled => Outcome::Cancelled,
            TaskOutcome::Failed(debug) if self.detached => {
                self.fail(FailureKind::Returned(debug));
                Outcome::Failed
            }
            // A kept handle is the spawner's to await: the error is theirs to handle.
            TaskOutcome::Failed(_) => Outcome::Completed,
        };
        self.outcome.set(settled);
    }

    /// Records how main's body ended and returns the refined outcome: an `Err` counts
    /// as failed (the runner prints it as std does, so it is not a task failure line).
    pub(crate) fn finish_main(&self, outcome: TaskOutcome) -> TaskOutcome {
        let outcome = self.refine(outcome);
        self.outcome.set(match &outcome {
            TaskOutcome::Completed => Outcome::Completed,
            TaskOutcome::Cancelled => Outcome::Cancelled,
            TaskOutcome::Failed(_) => Outcome::Failed,
        });
        outcome
    }

    /// Counts the task as failed without a failure line (main's panic, which the runner
    /// prints itself).
    pub(crate) fn mark_failed(&self) {
        self.outcome.set(Outcome::Failed);
    }

    pub(crate) fn panicked(&self, payload: &(dyn Any + Send)) {
        self.fail(FailureKind::Panicked(panic_message(payload)));
        self.outcome.set(Outcome::Failed);
    }

    fn fail(&self, kind: FailureKind) {
        let (name, location) = self.info();
        self.scope()
            .record_failure(Failure::new(name, location, kind));
    }

    fn info(&self) -> (Cow<'static, str>, &'static Location<'static>) {
        match self.scope().task_info(self.key) {
            Some(t) => (Cow::Owned(t.name().to_owned()), t.location()),
            None => (Cow::Borrowed("task"), Location::caller()),
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let scope = self.scope();
        if scope.registry().remove(self.key, self.outcome.get()) {
            scope.task_finished();
        }
    }
}

pin_project_lite::pin_project! {
    /// A tracked task's future: the user's future stored once, its registry entry, and
    /// how to count its output. Reports a panic (then lets it reach the `JoinHandle` as
    /// usual) and records the outcome.
    pub(crate) struct Tracked<F, C> {
        #[pin]
        inner: F,
        // Zero-sized: picked at the spawn site.
        classify: C,
    }
}

impl<F: Future, C: Classify<F::Output>> Future for Tracked<F, C> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut inner = this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                let outcome = this.classify.classify_task(&v);
                // Polled inside the task's own scope: the guard is the installed context.
                ambient::with_own_guard(|guard| guard.finish(outcome));
                Poll::Ready(v)
            }
            Err(payload) => {
                ambient::with_own_guard(|guard| guard.panicked(&*payload));
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// Runs `fut` as a tracked task body: `guard` is its installed context, so its scope
/// is ambient and its entry is removed when the future goes.
pub(crate) fn tracked<F: Future, C: Classify<F::Output>>(
    guard: TaskGuard,
    fut: F,
    classify: C,
) -> ambient::Scoped<Tracked<F, C>> {
    ambient::owned(
        guard,
        Tracked {
            inner: fut,
            classify,
        },
    )
}

/// Polls `fut`, turning a panic into `Err(payload)`.
pub(crate) async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}
