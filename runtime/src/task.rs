//! Tracked tasks: a registry entry that lives exactly as long as the task's future,
//! the ambient scope inside it, and failures that are never silent.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::task::Poll;

use tokio::task::JoinHandle;

use crate::ambient::{self, Ambient, BlockingAmbientGuard};
use crate::probe::Classify;
use crate::registry::{Outcome, SlotKey, TaskState};
use crate::report::{Failure, FailureKind};
use crate::scope::Shutdown;

/// How a finished task's output counts. Produced by the classifier the attributes pick
/// at the spawn site (see `__private::probe_future`).
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Finished: `Ok`, or an output that is not a `Result`.
    Completed,
    /// Returned an error that is, or carries, `Cancelled`.
    Cancelled,
    /// Returned any other error; its `{:?}`.
    Failed(String),
}

pub(crate) use crate::registry::TaskName;

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
        let key = scope
            .inner
            .registry
            .insert(name, location, TaskState::Running);
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

    pub(crate) fn key(&self) -> SlotKey {
        self.key
    }

    /// The context code inside the task sees.
    pub(crate) fn ambient(&self) -> Ambient {
        Ambient {
            scope: self.scope.clone(),
            task: Some(self.key),
            shielded: false,
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
            TaskOutcome::Failed(_)
                if self.scope().inner.registry.is_propagating_cancel(self.key) =>
            {
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
        match self.scope().inner.registry.snapshot_one(self.key) {
            Some(t) => (Cow::Owned(t.name().to_owned()), t.location()),
            None => (Cow::Borrowed("task"), Location::caller()),
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let scope = self.scope();
        if scope.inner.registry.remove(self.key, self.outcome.get()) {
            scope.inner.task_finished();
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
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
                let outcome = this.classify.classify(&v);
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

pub(crate) fn spawn<F, C>(
    scope: &Shutdown,
    name: TaskName,
    location: &'static Location<'static>,
    fut: F,
    classify: C,
    detached: bool,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: Classify<F::Output>,
{
    #[cfg(tokio_unstable)]
    let console_name = name.shown().into_owned();
    let guard = TaskGuard::new(scope, name, location).detached(detached);
    let key = guard.key();
    let task = tracked(guard, fut, classify);
    // Under `tokio_unstable`, tokio-console shows the task by its sundown name.
    #[cfg(tokio_unstable)]
    let handle = tokio::task::Builder::new()
        .name(&console_name)
        .spawn(task)
        .unwrap_or_else(|e| panic!("tokio could not spawn `{console_name}`: {e}"));
    #[cfg(not(tokio_unstable))]
    let handle = tokio::spawn(task);
    scope.inner.registry.set_abort(key, handle.abort_handle());
    handle
}

pub(crate) fn spawn_blocking<F, R>(
    scope: &Shutdown,
    name: TaskName,
    location: &'static Location<'static>,
    f: F,
    classify: impl Classify<R>,
    detached: bool,
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let guard = TaskGuard::new(scope, name, location).detached(detached);
    let key = guard.key();
    let handle = tokio::task::spawn_blocking(move || {
        let _ambient = BlockingAmbientGuard::enter(guard.ambient());
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => {
                guard.finish(classify.classify(&v));
                v
            }
            Err(payload) => {
                guard.panicked(&*payload);
                drop(guard);
                std::panic::resume_unwind(payload)
            }
        }
    });
    scope.inner.registry.set_abort(key, handle.abort_handle());
    handle
}

/// The ambient scope for a spawn; outside any, `announce` (the free function's name)
/// is said in a line, and the task runs untracked so nothing is lost.
fn ambient_for_spawn(announce: Option<&str>) -> Option<Shutdown> {
    let scope = ambient::current_scope();
    if let (None, Some(what)) = (&scope, announce) {
        crate::output::line(&format!(
            "sundown::{what} called outside any shutdown scope: the task runs untracked \
             (use #[graceful_main], Shutdown::enter or a Shutdown's own {what})"
        ));
    }
    scope
}

/// Spawns a tracked task on the ambient scope, at the caller's location.
#[track_caller]
pub(crate) fn spawn_on_ambient<F, C>(
    announce: Option<&str>,
    name: TaskName,
    fut: F,
    classify: C,
    detached: bool,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: Classify<F::Output>,
{
    let location = Location::caller();
    match ambient_for_spawn(announce) {
        Some(scope) => spawn(&scope, name, location, fut, classify, detached),
        None => tokio::spawn(fut),
    }
}

/// Runs a blocking closure as a tracked task of the ambient scope.
#[track_caller]
pub(crate) fn spawn_blocking_on_ambient<F, R>(
    announce: Option<&str>,
    name: TaskName,
    f: F,
    classify: impl Classify<R>,
    detached: bool,
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let location = Location::caller();
    match ambient_for_spawn(announce) {
        Some(scope) => spawn_blocking(&scope, name, location, f, classify, detached),
        None => tokio::task::spawn_blocking(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's future is the user's future plus its 24-byte guard: tokio rounds a
    /// task's cell up to 128-byte steps, so every byte here can cost 128 per task.
    #[test]
    fn tracking_adds_only_the_guard_to_a_tasks_future() {
        let scope = Shutdown::new();
        let token = tokio_util::sync::CancellationToken::new();
        let user = async move { token.cancelled().await };
        let user_size = std::mem::size_of_val(&user);
        let guard = TaskGuard::new(&scope, TaskName::of_type::<()>(), Location::caller());
        assert_eq!(std::mem::size_of_val(&guard), 24);
        let classify = crate::__classify!(crate::probe::probe_future(&user));
        let task = tracked(guard, user, classify);
        assert_eq!(std::mem::size_of_val(&task), user_size + 24);
    }
}
