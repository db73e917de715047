//! Tracked tasks: a registry entry that lives exactly as long as the task's future,
//! the ambient scope inside it, and failures that are never silent.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::task::Poll;

use tokio::task::JoinHandle;

use crate::ambient::{self, Ambient, BlockingAmbientGuard};
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

/// The classifier for outputs nobody inspects.
pub(crate) fn completed<T>(_: &T) -> TaskOutcome {
    TaskOutcome::Completed
}

pub(crate) enum TaskName {
    Given(Cow<'static, str>),
    /// `std::any::type_name` of the future or closure, shortened when shown.
    OfType(&'static str),
}

impl TaskName {
    pub(crate) fn of_type<T>() -> Self {
        TaskName::OfType(std::any::type_name::<T>())
    }

    fn into_cow(self) -> Cow<'static, str> {
        match self {
            TaskName::Given(n) => n,
            TaskName::OfType(t) => Cow::Borrowed(short_type_name(t)),
        }
    }
}

/// `app::feed::poll_feed::{{closure}}` → `poll_feed`; `app::main::{{closure}}::{{closure}}`
/// → `main::{{closure}}`; generic arguments dropped.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let base = match full.find('<') {
        Some(i) => &full[..i],
        None => full,
    };
    let base = base.strip_suffix("::{{closure}}").unwrap_or(base);
    let mut start = 0;
    let bytes = base.as_bytes();
    // Keep the last segment, plus the one before it when the last is `{{closure}}`.
    let segments: Vec<usize> = (0..bytes.len().saturating_sub(1))
        .filter(|&i| bytes[i] == b':' && bytes[i + 1] == b':')
        .collect();
    if let Some(&last) = segments.last() {
        start = last + 2;
        if base[start..].starts_with("{{") && segments.len() >= 2 {
            start = segments[segments.len() - 2] + 2;
        }
    }
    &base[start..]
}

/// Owns a registry entry; removing it (and counting how the task ended) when dropped.
pub(crate) struct TaskGuard {
    scope: Shutdown,
    key: SlotKey,
    outcome: Outcome,
}

impl TaskGuard {
    pub(crate) fn new(
        scope: &Shutdown,
        name: Cow<'static, str>,
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
            outcome: Outcome::Cancelled,
        }
    }

    pub(crate) fn key(&self) -> SlotKey {
        self.key
    }

    pub(crate) fn ambient(&self) -> Ambient {
        Ambient {
            scope: self.scope.clone(),
            task: Some(self.key),
            shielded: false,
        }
    }

    /// An `Err` after one of the task's `#[cancel_safe]` calls returned its
    /// cancellation is that cancellation propagating.
    pub(crate) fn refine(&self, outcome: TaskOutcome) -> TaskOutcome {
        match outcome {
            TaskOutcome::Failed(_) if self.scope.inner.registry.is_propagating_cancel(self.key) => {
                TaskOutcome::Cancelled
            }
            other => other,
        }
    }

    /// Records how the task ended; a failure is reported now.
    pub(crate) fn finish(&mut self, outcome: TaskOutcome, detached: bool) {
        self.outcome = match self.refine(outcome) {
            TaskOutcome::Completed => Outcome::Completed,
            TaskOutcome::Cancelled => Outcome::Cancelled,
            TaskOutcome::Failed(debug) if detached => {
                self.fail(FailureKind::Returned(debug));
                Outcome::Failed
            }
            // A kept handle is the spawner's to await: the error is theirs to handle.
            TaskOutcome::Failed(_) => Outcome::Completed,
        }
    }

    pub(crate) fn panicked(&mut self, payload: &(dyn Any + Send)) {
        self.fail(FailureKind::Panicked(panic_message(payload)));
        self.outcome = Outcome::Failed;
    }

    fn fail(&self, kind: FailureKind) {
        let (name, location) = self.info();
        self.scope
            .record_failure(Failure::new(name, location, kind));
    }

    fn info(&self) -> (Cow<'static, str>, &'static Location<'static>) {
        match self.scope.inner.registry.snapshot_one(self.key) {
            Some(t) => (Cow::Owned(t.name().to_owned()), t.location()),
            None => (Cow::Borrowed("task"), Location::caller()),
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.scope.inner.registry.remove(self.key, self.outcome) {
            self.scope.inner.task_finished();
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

/// Wraps `fut` so that it runs with `guard`'s ambient scope, reports a panic (then lets
/// it reach the `JoinHandle` as usual) and counts its outcome.
pub(crate) fn tracked<F>(
    mut guard: TaskGuard,
    fut: F,
    classify: fn(&F::Output) -> TaskOutcome,
    detached: bool,
) -> impl Future<Output = F::Output>
where
    F: Future,
{
    let ambient = guard.ambient();
    ambient::scope(ambient, async move {
        match catch_panic(fut).await {
            Ok(v) => {
                guard.finish(classify(&v), detached);
                v
            }
            Err(payload) => {
                guard.panicked(&*payload);
                drop(guard);
                std::panic::resume_unwind(payload)
            }
        }
    })
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

pub(crate) fn spawn<F>(
    scope: &Shutdown,
    name: TaskName,
    location: &'static Location<'static>,
    fut: F,
    classify: fn(&F::Output) -> TaskOutcome,
    detached: bool,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let guard = TaskGuard::new(scope, name.into_cow(), location);
    let key = guard.key();
    let handle = tokio::spawn(tracked(guard, fut, classify, detached));
    scope.inner.registry.set_abort(key, handle.abort_handle());
    handle
}

pub(crate) fn spawn_blocking<F, R>(
    scope: &Shutdown,
    name: TaskName,
    location: &'static Location<'static>,
    f: F,
    classify: fn(&R) -> TaskOutcome,
    detached: bool,
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let mut guard = TaskGuard::new(scope, name.into_cow(), location);
    let key = guard.key();
    let handle = tokio::task::spawn_blocking(move || {
        let _ambient = BlockingAmbientGuard::enter(guard.ambient());
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => {
                guard.finish(classify(&v), detached);
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

/// The scope a free spawn function uses: the ambient one, else a message saying there
/// is none (the task still runs, untracked, so nothing is lost).
pub(crate) fn ambient_scope_for_spawn(what: &str) -> Option<Shutdown> {
    let scope = ambient::current_scope();
    if scope.is_none() {
        crate::output::line(&format!(
            "sundown::{what} called outside any shutdown scope: the task runs untracked \
             (use #[graceful_main], Shutdown::enter or a Shutdown's own {what})"
        ));
    }
    scope
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn type_names_shorten_to_the_function() {
        assert_eq!(
            short_type_name("app::feed::poll_feed::{{closure}}"),
            "poll_feed"
        );
        assert_eq!(
            short_type_name("app::main::{{closure}}::{{closure}}"),
            "main::{{closure}}"
        );
        assert_eq!(
            short_type_name("core::future::pending::Pending<()>"),
            "Pending"
        );
        assert_eq!(short_type_name("poll"), "poll");
    }
}
