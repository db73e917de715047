//! The task context: which scope running code belongs to ([`ambient`]), the guard and
//! wrapper every tracked task wears ([`guard`]), and spawning tracked tasks (here).
//!
//! A tracked task's registry entry lives exactly as long as its future, its scope is
//! ambient inside it, and its failures are never silent.

pub(crate) mod ambient;
pub(crate) mod guard;

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};

use tokio::task::JoinHandle;

use crate::probe::Classify;
use crate::scope::Shutdown;

use self::ambient::BlockingAmbientGuard;
pub(crate) use self::guard::{TaskGuard, catch_panic, tracked};

pub(crate) use crate::registry::TaskName;

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
    #[cfg(not(tokio_unstable))]
    let start = tokio::spawn;
    // Under `tokio_unstable`, tokio-console shows the task by its sundown name.
    #[cfg(tokio_unstable)]
    let console_name = name.shown().into_owned();
    #[cfg(tokio_unstable)]
    let start = |task| {
        tokio::task::Builder::new()
            .name(&console_name)
            .spawn(task)
            .unwrap_or_else(|e| panic!("tokio could not spawn `{console_name}`: {e}"))
    };
    spawn_with(scope, name, location, fut, classify, detached, start)
}

/// Wraps `fut` as a tracked task of `scope`, hands it to `start` (tokio's spawn, or
/// the user's own call such as `Handle::spawn`) and stores the task's abort handle:
/// the one place a tracked future is spawned.
pub(crate) fn spawn_with<F, C, S>(
    scope: &Shutdown,
    name: TaskName,
    location: &'static Location<'static>,
    fut: F,
    classify: C,
    detached: bool,
    start: S,
) -> JoinHandle<F::Output>
where
    F: Future,
    C: Classify<F::Output>,
    S: FnOnce(ambient::Scoped<guard::Tracked<F, C>>) -> JoinHandle<F::Output>,
{
    let (guard, reserved) = TaskGuard::reserve(scope, name, location, detached);
    let handle = start(tracked(guard, fut, classify));
    reserved.set_abort(handle.abort_handle());
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
    let (mut guard, reserved) = TaskGuard::reserve(scope, name, location, detached);
    let handle = tokio::task::spawn_blocking(move || {
        let _ambient = BlockingAmbientGuard::enter(guard.ambient());
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => {
                guard.finish(guard::classify_caught(&classify, &v));
                v
            }
            Err(payload) => {
                guard.panicked(&*payload);
                drop(guard);
                std::panic::resume_unwind(payload)
            }
        }
    });
    reserved.set_abort(handle.abort_handle());
    handle
}

/// The ambient scope for a spawn; outside any, `announce` (the free function's name)
/// is said in a line, and the task runs untracked so nothing is lost.
fn ambient_for_spawn(announce: Option<&str>) -> Option<ambient::SpawnScope> {
    let scope = ambient::spawn_scope();
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
        Some(scope) => spawn(scope.get(), name, location, fut, classify, detached),
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
        Some(scope) => spawn_blocking(scope.get(), name, location, f, classify, detached),
        None => tokio::task::spawn_blocking(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's future is the user's future plus its 16-byte guard, nothing more: that
    /// the future was dropped by its completing poll is one of the guard's spare values
    /// (`ambient::Scoped`), not a word of its own, although an `async` block has no
    /// spare value to lend. tokio rounds a task's cell up to 128-byte steps, so every
    /// byte here can cost 128 per task (a trivial task's future fits the first step up
    /// to 24 bytes: with a 24-byte guard it took 256), and in the cancel benchmark 8
    /// bytes more per task cost a few percent (`BENCHMARKS.md`).
    #[test]
    fn tracking_adds_only_the_guard_to_a_tasks_future() {
        let scope = Shutdown::new();
        let token = tokio_util::sync::CancellationToken::new();
        let user = async move { token.cancelled().await };
        let user_size = std::mem::size_of_val(&user);
        let guard = TaskGuard::new(&scope, TaskName::of_type::<()>(), Location::caller());
        assert_eq!(std::mem::size_of_val(&guard), 16);
        let classify = crate::__classify!(crate::probe::probe_future(&user));
        let task = tracked(guard, user, classify);
        assert!(
            std::mem::size_of_val(&task) <= user_size + 16,
            "{} bytes around a {user_size}-byte future",
            std::mem::size_of_val(&task)
        );
        let trivial = tracked(
            TaskGuard::new(&scope, TaskName::of_type::<()>(), Location::caller()),
            async {},
            crate::probe::AnyOutput,
        );
        assert!(
            std::mem::size_of_val(&trivial) <= 24,
            "a trivial task fits tokio's first cell"
        );
    }
}
