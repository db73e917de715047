//! The guard a tracked task's future carries (its registry entry, its outcome) and
//! the wrapper that reports a panic and classifies the output.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::task::Poll;

use crate::probe::Classify;
use crate::registry::{Outcome, Reserved, SlotKey, TaskCell, TaskName, TaskOutcome, TaskState};
use crate::report::{Failure, FailureKind, panic_message};
use crate::scope::Shutdown;
use crate::waits::{self, Chain};

use super::ambient::{self, Ambient};

/// Owns a registry entry; removing it (and counting how the task ended) when dropped.
/// For a tracked task it is the installed context (`ambient::Local::Owner`), beside
/// nothing else: its scope is the task's ambient scope too.
///
/// Kept to 16 bytes, since it sits in every task's future: the scope, the entry's key
/// in its 7 bytes, and one byte that says how the task ended so far. That byte is an
/// enum, not a number, so its unused values are spare: the wrapper around the task's
/// future marks a future it already dropped with one of them instead of a tag of its
/// own (`ambient::Scoped`). tokio allocates a task in 128-byte steps, and a trivial
/// task (`async {}`, or a small loop) fits in the first only if what sundown adds to its
/// future is at most 16 bytes
/// (`tracking_adds_only_the_guard_to_a_tasks_future`).
pub(crate) struct TaskGuard {
    /// The task's scope, counted; `None` for the process scope, which is never freed:
    /// its tasks (most tracked tasks of a program under `#[graceful_main]`) take no
    /// count on it, so its reference count does not pass between the spawning and the
    /// ending worker for every task (`BENCHMARKS.md`, "Tasks of the process scope").
    scope: Option<Shutdown>,
    index: std::num::NonZeroU32,
    generation: u16,
    shard: u8,
    ending: Ending,
}

/// How a task ended so far, and whether its handle was discarded where it was made (an
/// `Err` is then a failure): one byte with spare values (see [`TaskGuard`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ending {
    Cancelled,
    Completed,
    Failed,
    DetachedCancelled,
    DetachedCompleted,
    DetachedFailed,
}

impl Ending {
    fn outcome(self) -> Outcome {
        match self {
            Ending::Cancelled | Ending::DetachedCancelled => Outcome::Cancelled,
            Ending::Completed | Ending::DetachedCompleted => Outcome::Completed,
            Ending::Failed | Ending::DetachedFailed => Outcome::Failed,
        }
    }

    fn is_detached(self) -> bool {
        matches!(
            self,
            Ending::DetachedCancelled | Ending::DetachedCompleted | Ending::DetachedFailed
        )
    }

    fn of(outcome: Outcome, detached: bool) -> Ending {
        match (outcome, detached) {
            (Outcome::Cancelled, false) => Ending::Cancelled,
            (Outcome::Completed, false) => Ending::Completed,
            (Outcome::Failed, false) => Ending::Failed,
            (Outcome::Cancelled, true) => Ending::DetachedCancelled,
            (Outcome::Completed, true) => Ending::DetachedCompleted,
            (Outcome::Failed, true) => Ending::DetachedFailed,
        }
    }
}

impl TaskGuard {
    /// A guard for code that runs in place (main's body, an HTTP request): its entry
    /// has no task to abort.
    pub(crate) fn new(
        scope: &Shutdown,
        name: TaskName,
        location: &'static Location<'static>,
    ) -> Self {
        Self::reserve(scope, name, location, false).0
    }

    /// A guard for a task about to be spawned: store the task's abort handle through
    /// the returned [`Reserved`] (its slot stays reserved until then). `detached`: the
    /// task's handle is discarded where it is made (an `Err` is then a failure).
    #[inline]
    pub(crate) fn reserve<'a>(
        scope: &'a Shutdown,
        name: TaskName,
        location: &'static Location<'static>,
        detached: bool,
    ) -> (Self, Reserved<'a>) {
        let reserved = scope.registry().insert(name, location, TaskState::Running);
        let (index, generation, shard) = reserved.key().parts();
        let guard = TaskGuard {
            scope: (!ambient::is_process_scope(scope)).then(|| scope.clone()),
            index,
            generation,
            shard,
            // Until the task says otherwise, being dropped means it was cancelled.
            ending: Ending::of(Outcome::Cancelled, detached),
        };
        (guard, reserved)
    }

    /// Records how the task ended (the last word counts).
    pub(crate) fn record(&mut self, outcome: Outcome) {
        self.ending = Ending::of(outcome, self.ending.is_detached());
    }

    fn outcome(&self) -> Outcome {
        self.ending.outcome()
    }

    fn is_detached(&self) -> bool {
        self.ending.is_detached()
    }

    fn scope(&self) -> &Shutdown {
        match &self.scope {
            Some(scope) => scope,
            None => ambient::process_scope(),
        }
    }

    /// The cells the task writes about its polls without a lock.
    #[inline]
    pub(crate) fn cell(&self) -> Option<TaskCell<'_>> {
        self.scope().registry().cell(self.key())
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
            .task_info(self.key())
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
        SlotKey::from_parts(self.index, self.generation, self.shard)
    }

    /// The task's scope for a spawn made inside it (see `ambient::spawn_scope`).
    pub(crate) fn spawn_scope(&self) -> ambient::SpawnScope {
        match &self.scope {
            Some(scope) => ambient::SpawnScope::Other(scope.clone()),
            None => ambient::SpawnScope::Process(ambient::process_scope()),
        }
    }

    /// The context code inside the task sees.
    pub(crate) fn ambient(&self) -> Ambient {
        Ambient {
            scope: self.scope().clone(),
            task: Some(self.key()),
            shielded: false,
            in_flight: false,
        }
    }

    /// What reporting how the task ended needs, copied out of the guard.
    pub(crate) fn reporter(&self) -> Reporter {
        Reporter {
            scope: self.spawn_scope(),
            key: self.key(),
            detached: self.is_detached(),
        }
    }

    /// Records how the task ended; a failure is reported now.
    pub(crate) fn finish(&mut self, outcome: TaskOutcome) {
        if let Some(settled) = settle(outcome, || Some(self.reporter())) {
            self.record(settled);
        }
    }

    /// Records how main's body ended and returns the refined outcome: an `Err` counts
    /// as failed (the runner prints it as std does, so it is not a task failure line).
    pub(crate) fn finish_main(&mut self, outcome: TaskOutcome) -> TaskOutcome {
        let outcome = self.reporter().refine(outcome);
        self.record(match &outcome {
            TaskOutcome::Completed => Outcome::Completed,
            TaskOutcome::Cancelled => Outcome::Cancelled,
            TaskOutcome::Failed(_) => Outcome::Failed,
        });
        outcome
    }

    /// Counts the task as failed without a failure line (main's panic, which the runner
    /// prints itself).
    pub(crate) fn mark_failed(&mut self) {
        self.record(Outcome::Failed);
    }

    /// Reports the task's panic and records it as failed.
    pub(crate) fn panicked(&mut self, payload: &(dyn Any + Send)) {
        self.reporter().report_panic(payload);
        self.record(Outcome::Failed);
    }

    fn info(&self) -> (Cow<'static, str>, &'static Location<'static>) {
        self.reporter().info()
    }
}

/// What `outcome` counts as: a completion at once, anything else through the task's
/// reporter (`None`: there is none), which reports a failure now. The common case takes
/// no reporter, so it clones no scope.
#[inline]
pub(crate) fn settle(
    outcome: TaskOutcome,
    reporter: impl FnOnce() -> Option<Reporter>,
) -> Option<Outcome> {
    match outcome {
        TaskOutcome::Completed => Some(Outcome::Completed),
        other => reporter().map(|r| r.settle(other)),
    }
}

/// What reporting how a task ended needs of its guard (its scope, its key, whether its
/// handle was discarded), copied out of it. A report runs code that is not sundown's
/// (the output's `Debug`, a `tracing` subscriber), which may install and take back
/// contexts of its own, so an installed guard is never reported on while the context
/// stack is borrowed: its reporter is taken out first.
pub(crate) struct Reporter {
    scope: ambient::SpawnScope,
    key: SlotKey,
    detached: bool,
}

impl Reporter {
    fn scope(&self) -> &Shutdown {
        self.scope.get()
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

    /// What a task's output counts as; a failure is reported now.
    #[cold]
    pub(crate) fn settle(&self, outcome: TaskOutcome) -> Outcome {
        match self.refine(outcome) {
            TaskOutcome::Completed => Outcome::Completed,
            TaskOutcome::Cancelled => Outcome::Cancelled,
            TaskOutcome::Failed(debug) if self.detached => {
                self.fail(FailureKind::Returned(debug));
                Outcome::Failed
            }
            // A kept handle is the spawner's to await: the error is theirs to handle.
            TaskOutcome::Failed(_) => Outcome::Completed,
        }
    }

    /// Reports the task's panic (the failure line).
    pub(crate) fn report_panic(&self, payload: &(dyn Any + Send)) {
        self.fail(FailureKind::Panicked(panic_message(payload)));
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
        let registry = scope.registry();
        let key = self.key();
        if let Some(removed) = registry.remove(key, self.outcome()) {
            scope.task_finished(|| removed.few_left());
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
                // Polled inside the task's own scope: the guard is the installed context.
                ambient::finish_own_guard(classify_caught(this.classify, &v));
                Poll::Ready(v)
            }
            Err(payload) => {
                ambient::own_guard_panicked(&*payload);
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// How `output` counts, as `classify` says; an output whose `Debug` panics as an
/// error's text is taken is a failure that says so (and the output still goes to the
/// task's handle), not a panic of the task's.
#[inline]
pub(crate) fn classify_caught<T, C: Classify<T>>(classify: &C, output: &T) -> TaskOutcome {
    std::panic::catch_unwind(AssertUnwindSafe(|| classify.classify_task(output))).unwrap_or_else(
        |payload| {
            TaskOutcome::Failed(format!(
                "(an error whose `Debug` panicked: {})",
                panic_message(&*payload)
            ))
        },
    )
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
