//! The ambient scope: which [`Shutdown`] the running code belongs to.
//!
//! Looked up in this order: the task-local set by a tracked task, `enter` or `shield`;
//! the thread-local set while a tracked `spawn_blocking` closure runs; the process
//! scope that `#[graceful_main]` installs. Outside all three there is no scope.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::registry::SlotKey;
use crate::scope::Shutdown;

#[derive(Clone)]
pub(crate) struct Ambient {
    pub(crate) scope: Shutdown,
    /// The registry entry of the running task, when it is a tracked task of `scope`.
    pub(crate) task: Option<SlotKey>,
    /// Inside `shield`: soft cancellation is hidden, only the hard deadline is seen.
    pub(crate) shielded: bool,
}

tokio::task_local! {
    static AMBIENT: Ambient;
}

thread_local! {
    static BLOCKING_AMBIENT: RefCell<Option<Ambient>> = const { RefCell::new(None) };
}

static PROCESS_SCOPE: OnceLock<Shutdown> = OnceLock::new();

pub(crate) fn set_process_scope(scope: &Shutdown) -> bool {
    PROCESS_SCOPE.set(scope.clone()).is_ok()
}

/// The ambient context, if there is one.
pub(crate) fn current() -> Option<Ambient> {
    if let Ok(a) = AMBIENT.try_with(Ambient::clone) {
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
) -> tokio::task::futures::TaskLocalFuture<Ambient, F> {
    AMBIENT.scope(ambient, fut)
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
