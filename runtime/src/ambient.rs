//! The ambient scope: which [`Shutdown`] the running code belongs to.
//!
//! Looked up in this order: the task-local set by a tracked task, `enter` or `shield`;
//! the thread-local set while a tracked `spawn_blocking` closure runs; the process
//! scope that `#[graceful_main]` installs. Outside all three there is no scope.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::registry::SlotKey;
use crate::scope::Shutdown;
use crate::task::TaskGuard;

#[derive(Clone)]
pub(crate) struct Ambient {
    pub(crate) scope: Shutdown,
    /// The registry entry of the running task, when it is a tracked task of `scope`.
    pub(crate) task: Option<SlotKey>,
    /// Inside `shield`: soft cancellation is hidden, only the hard deadline is seen.
    pub(crate) shielded: bool,
}

/// The task-local value: a tracked task's own guard (which owns its registry entry,
/// so the entry goes exactly when the task's future does), or a view of a scope set by
/// `enter`, `shield` or a close hook.
pub(crate) enum Local {
    Owner(TaskGuard),
    View(Ambient),
}

impl Local {
    fn ambient(&self) -> &Ambient {
        match self {
            Local::Owner(guard) => guard.ambient_ref(),
            Local::View(a) => a,
        }
    }
}

tokio::task_local! {
    static AMBIENT: Local;
}

thread_local! {
    static BLOCKING_AMBIENT: RefCell<Option<Ambient>> = const { RefCell::new(None) };
}

static PROCESS_SCOPE: OnceLock<Shutdown> = OnceLock::new();

/// Installs the process scope. `#[graceful_main]` ends the process when it returns,
/// so a second one cannot run; a second call would be a no-op.
pub(crate) fn set_process_scope(scope: &Shutdown) {
    let _ = PROCESS_SCOPE.set(scope.clone());
}

/// The ambient context, if there is one.
pub(crate) fn current() -> Option<Ambient> {
    if let Ok(a) = AMBIENT.try_with(|l| l.ambient().clone()) {
        return Some(a);
    }
    if let Some(a) = BLOCKING_AMBIENT.with(|b| b.borrow().clone()) {
        return Some(a);
    }
    PROCESS_SCOPE.get().map(|scope| Ambient {
        scope: scope.clone(),
        task: None,
        shielded: false,
    })
}

pub(crate) fn current_scope() -> Option<Shutdown> {
    current().map(|a| a.scope)
}

/// Runs `fut` with `ambient` as its task-local context.
pub(crate) fn scope<F: std::future::Future>(
    ambient: Ambient,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Local, F> {
    AMBIENT.scope(Local::View(ambient), fut)
}

/// Runs a tracked task's future with its guard as the task-local value.
pub(crate) fn owned<F: std::future::Future>(
    guard: TaskGuard,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Local, F> {
    AMBIENT.scope(Local::Owner(guard), fut)
}

/// Runs `f` on the running task's own guard, if the code runs directly in a tracked
/// task (not inside `enter` or `shield` within it).
pub(crate) fn with_own_guard(f: impl FnOnce(&TaskGuard)) {
    let _ = AMBIENT.try_with(|l| {
        if let Local::Owner(guard) = l {
            f(guard);
        }
    });
}

/// Sets the thread-local context for the duration of a blocking closure.
pub(crate) struct BlockingAmbientGuard {
    previous: Option<Ambient>,
}

impl BlockingAmbientGuard {
    pub(crate) fn enter(ambient: Ambient) -> Self {
        let previous = BLOCKING_AMBIENT.with(|b| b.borrow_mut().replace(ambient));
        BlockingAmbientGuard { previous }
    }
}

impl Drop for BlockingAmbientGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        BLOCKING_AMBIENT.with(|b| *b.borrow_mut() = previous);
    }
}
