//! The ambient scope: which [`Shutdown`] the running code belongs to.
//!
//! Looked up in this order: the context installed while a tracked task, `enter`,
//! `shield` or a close hook polls its future ([`Scoped`]);
//! the thread-local set while a tracked `spawn_blocking` closure runs; the process
//! scope that `#[graceful_main]` installs. Outside all three there is no scope.
//!
//! The last one is a view of **in-flight work**: code sundown did not start (a
//! server's connection and handler tasks, anything spawned with plain `tokio::spawn`
//! outside the attributes). Its owner drains it (axum's `with_graceful_shutdown` waits
//! for the requests in flight), so a `#[cancel_safe]` call in it is cut at the drain
//! deadline (the scope's hard token), not at step 2, and a request in flight at the
//! signal finishes. `requested()` and `is_requested()` still say so at step 2: a
//! long-lived stream (SSE, WebSocket) ends on them. A request tracked by the
//! `TrackRequests` layer is in-flight work too.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::registry::{Outcome, SlotKey, TaskOutcome};
use crate::scope::Shutdown;

use super::guard::TaskGuard;

#[derive(Clone)]
pub(crate) struct Ambient {
    pub(crate) scope: Shutdown,
    /// The registry entry of the running task, when it is a tracked task of `scope`.
    pub(crate) task: Option<SlotKey>,
    /// Inside `shield`: soft cancellation is hidden, only the hard deadline is seen.
    pub(crate) shielded: bool,
    /// In-flight work (see the module docs): `#[cancel_safe]` calls obey the hard
    /// token; `requested()` still resolves at step 2.
    pub(crate) in_flight: bool,
}

impl Ambient {
    /// Whether a `#[cancel_safe]` call here is cut only by the hard token (the drain
    /// deadline, a forced shutdown): inside `shield`, and in in-flight work.
    pub(crate) fn cut_at_deadline(&self) -> bool {
        self.shielded || self.in_flight
    }
}

/// The installed value: a tracked task's own guard (which owns its registry entry, so
/// the entry goes exactly when the task's future does), or a view of a scope set by
/// `enter`, `shield` or a close hook. A view is boxed: those are rare next to tasks, and
/// a boxed view lets the enum's tag live in the guard's spare bits, so `Local` is as
/// small as a guard.
pub(crate) enum Local {
    Owner(TaskGuard),
    View(Box<Ambient>),
}

impl Local {
    fn ambient(&self) -> Ambient {
        match self {
            Local::Owner(guard) => guard.ambient(),
            Local::View(a) => Ambient::clone(a),
        }
    }
}

thread_local! {
    /// The contexts of the futures being polled (or dropped) on this thread, innermost
    /// last. A [`Scoped`] future pushes its value for the length of one poll and takes
    /// it back after, so the innermost scope wins and the outer one is back when it
    /// returns. Every push has its pop, whatever was pushed (an entry is `None` only if
    /// a future's value was already out, which its own poll never leaves it).
    static CURRENT: RefCell<Vec<Option<Local>>> = const { RefCell::new(Vec::new()) };
    static BLOCKING_AMBIENT: RefCell<Option<Ambient>> = const { RefCell::new(None) };
}

static PROCESS_SCOPE: OnceLock<Shutdown> = OnceLock::new();

/// Installs the process scope. `#[graceful_main]` ends the process when it returns,
/// so a second one cannot run; a second call would be a no-op.
pub(crate) fn set_process_scope(scope: &Shutdown) {
    let _ = PROCESS_SCOPE.set(scope.clone());
}

/// Whether `scope` is the process scope, which is never freed.
#[inline]
pub(crate) fn is_process_scope(scope: &Shutdown) -> bool {
    PROCESS_SCOPE.get().is_some_and(|p| p.same_scope(scope))
}

/// The process scope, for a task whose guard found its scope to be it
/// ([`is_process_scope`]): installed once, never taken back, so always there by then.
/// (Were it not, a scope of its own would stand in: never reached.)
pub(crate) fn process_scope() -> &'static Shutdown {
    static NEVER: OnceLock<Shutdown> = OnceLock::new();
    PROCESS_SCOPE
        .get()
        .unwrap_or_else(|| NEVER.get_or_init(Shutdown::new))
}

/// Looks the ambient context up in its order (see the module docs): the innermost
/// installed context, else the blocking closure's, else the process scope's in-flight
/// view; each found one is turned into what the caller needs.
fn look_up<T>(
    installed: impl FnOnce(&Local) -> T,
    blocking: impl FnOnce(&Ambient) -> T,
    in_flight: impl FnOnce(&'static Shutdown) -> T,
) -> Option<T> {
    let found = CURRENT
        .try_with(|c| c.borrow().last().and_then(Option::as_ref).map(installed))
        .ok()
        .flatten();
    if found.is_some() {
        return found;
    }
    // `try_with` throughout: a value dropped as its thread exits (a runtime kept in a
    // thread-local) may look after these thread-locals are gone; it then finds none.
    let found = BLOCKING_AMBIENT
        .try_with(|b| b.borrow().as_ref().map(blocking))
        .ok()
        .flatten();
    if found.is_some() {
        return found;
    }
    // Code sundown did not start: in-flight work of the process scope.
    PROCESS_SCOPE.get().map(in_flight)
}

/// The ambient context, if there is one.
pub(crate) fn current() -> Option<Ambient> {
    look_up(Local::ambient, Ambient::clone, |scope| Ambient {
        scope: scope.clone(),
        task: None,
        shielded: false,
        in_flight: true,
    })
}

pub(crate) fn current_scope() -> Option<Shutdown> {
    current().map(|a| a.scope)
}

/// The ambient scope for a spawn: the process scope by reference (it is never freed),
/// any other scope by a handle.
pub(crate) enum SpawnScope {
    Process(&'static Shutdown),
    Other(Shutdown),
}

impl SpawnScope {
    fn of(scope: &Shutdown) -> Self {
        if is_process_scope(scope) {
            SpawnScope::Process(process_scope())
        } else {
            SpawnScope::Other(scope.clone())
        }
    }

    pub(crate) fn get(&self) -> &Shutdown {
        match self {
            SpawnScope::Process(scope) => scope,
            SpawnScope::Other(scope) => scope,
        }
    }
}

/// The ambient scope, as [`current_scope`] finds it, for a spawn: in a program under
/// `#[graceful_main]` most spawns are the process scope's, which is taken by reference
/// here, so such a spawn writes no reference count of the scope at all (its task takes
/// none either: `TaskGuard`).
pub(crate) fn spawn_scope() -> Option<SpawnScope> {
    look_up(
        |local| match local {
            Local::Owner(guard) => guard.spawn_scope(),
            Local::View(a) => SpawnScope::of(&a.scope),
        },
        |a| SpawnScope::of(&a.scope),
        SpawnScope::Process,
    )
}

impl Local {
    /// The guard whose polls are watched.
    #[inline]
    fn guard(&self) -> Option<&TaskGuard> {
        match self {
            Local::Owner(guard) => Some(guard),
            Local::View(_) => None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future polled (and dropped) with its context installed as the ambient one.
    ///
    /// This does what a tokio task-local does, with one stack shared by every scope
    /// instead of a key per future. A tracked task's future is this wrapper around the
    /// user's future, and the wrapper's size decides which of tokio's task-cell sizes
    /// the task lands in (`BENCHMARKS.md`, peak RSS): it adds the 16-byte guard and
    /// nothing else, since the guard has spare values to say the future is gone (see
    /// [`Stage`]). A view (`enter`, `shield`, a close hook) adds its box and a tag.
    ///
    /// The context is kept as the very value the stack holds (`Option<Local>`), so a
    /// poll moves it on and off the stack whole: converting between a guard and a
    /// `Local` re-tagged the value byte by byte and the copy that followed stalled on
    /// store forwarding (`BENCHMARKS.md`, "The context moved whole").
    ///
    /// The future is dropped inside its context either way: by the poll that completed
    /// it, while that poll's installation is still in place (and the context then goes
    /// with it: a tracked task's entry is removed as its output is handed to tokio), or
    /// by the wrapper's own drop when it never completed (cancelled, aborted, panicked),
    /// which installs the context again for it. A task that completes thus pays for
    /// one installation instead of two (`BENCHMARKS.md`, "A completed future dropped
    /// by its last poll").
    pub(crate) struct Scoped<F> {
        #[pin]
        stage: Stage<F>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut stage = this.project().stage;
            // Completed: the poll dropped the future and the context already.
            let StageProj::Running { local, .. } = stage.as_mut().project() else {
                return;
            };
            if local.is_none() {
                return;
            }
            // The future's own drop (a `#[cancel_safe]` call cut short, a value that
            // spawns in its `Drop`) runs inside its scope: installed for it, taken back
            // after it (also when it panics), and the context (a task's guard: its
            // entry goes after its future) dropped last.
            let mut held = local.take();
            let installed = CURRENT
                .try_with(|c| c.borrow_mut().push(held.take()))
                .is_ok();
            let _uninstall = Uninstall { installed };
            let dropped = if installed {
                drop_in_context(stage)
            } else {
                drop_without_stack(stage, held)
            };
            if let Err(payload) = dropped {
                std::panic::resume_unwind(payload);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A [`Scoped`] future and its context until the future is dropped in place (by
    /// its completing poll or by the wrapper's drop), then nothing. One enum with the
    /// context inside, so that `Done` is one of the context's spare values (a guard's
    /// ending byte has them) instead of a tag of its own: a user's future has none to
    /// lend (an `async` block's state has no spare value), and the tag would take a
    /// word.
    #[project = StageProj]
    enum Stage<F> {
        Running {
            // `None` only while it is installed.
            local: Option<Local>,
            #[pin]
            fut: F,
        },
        Done,
    }
}

/// Drops a [`Scoped`] future in place, its context installed: a panic in that drop is
/// its task's failure, as one in its poll is (the output it returned, or its being
/// cancelled, does not count then). The panic is returned, for the caller to send on
/// to tokio once the context is off the stack.
fn drop_in_context<F>(
    mut stage: std::pin::Pin<&mut Stage<F>>,
) -> Result<(), Box<dyn std::any::Any + Send>> {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stage.set(Stage::Done);
    }));
    if let Err(payload) = &dropped {
        own_guard_panicked(&**payload);
    }
    dropped
}

/// [`drop_in_context`] for a context that could not be installed (its thread is exiting
/// and the stack is gone): the future is still dropped before it, and a panic is still
/// counted on its guard, held here instead of found on the stack.
#[cold]
fn drop_without_stack<F>(
    mut stage: std::pin::Pin<&mut Stage<F>>,
    mut held: Option<Local>,
) -> Result<(), Box<dyn std::any::Any + Send>> {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stage.set(Stage::Done);
    }));
    if let (Err(payload), Some(Local::Owner(guard))) = (&dropped, &mut held) {
        guard.panicked(&**payload);
    }
    drop(held);
    dropped
}

/// Takes back what a [`Scoped`]'s drop installed (if the thread still had its stack).
struct Uninstall {
    installed: bool,
}

impl Drop for Uninstall {
    fn drop(&mut self) {
        if !self.installed {
            return;
        }
        // Popped inside the borrow, dropped after it: a guard's drop may look at the
        // context.
        let installed = CURRENT.try_with(|c| c.borrow_mut().pop());
        drop(installed);
    }
}

impl<F: std::future::Future> std::future::Future for Scoped<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let mut stage = self.project().stage;
        let StageProj::Running { local, fut } = stage.as_mut().project() else {
            // As an `async fn` does; tokio never polls a task again once it completed.
            panic!("a sundown-scoped future was polled after it completed");
        };
        let installed = Installed::push(local);
        // Caught so that every path below takes the context off the stack itself, in
        // its order.
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx)));
        match polled {
            Ok(std::task::Poll::Pending) => {
                installed.put_back(local, true);
                std::task::Poll::Pending
            }
            Ok(std::task::Poll::Ready(output)) => {
                // Dropped here, inside its context, as the wrapper's drop would have;
                // the context then goes instead of being put back (a tracked task's
                // entry goes here).
                let dropped = if installed.pushed {
                    drop_in_context(stage)
                } else {
                    let held = local.take();
                    drop_without_stack(stage, held)
                };
                drop(installed.take_off());
                if let Err(payload) = dropped {
                    std::panic::resume_unwind(payload);
                }
                std::task::Poll::Ready(output)
            }
            Err(payload) => {
                // The context goes back: the wrapper's drop drops the future in it.
                installed.put_back(local, false);
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// A context pushed on the thread's stack for one poll, until it is taken back: into
/// its wrapper ([`put_back`](Self::put_back)) or for good ([`take_off`](Self::take_off)).
/// If the thread is being torn down, nothing was pushed and the context stayed where it
/// was.
///
/// For a tracked task's own guard, the push and the taking back are also where its poll
/// is watched: the start stored in its cell on the coarse clock, a fresh await trail,
/// and at the end the chain it was left pending on (see `waits`).
struct Installed {
    pushed: bool,
    /// A tracked task's poll, watched.
    watch: Option<PollWatch>,
}

impl Installed {
    /// Moves `local` onto the stack whole (a `None` in its place).
    #[inline]
    fn push(local: &mut Option<Local>) -> Self {
        let watch = local.as_ref().and_then(Local::guard).map(PollWatch::begin);
        let pushed = CURRENT.try_with(|c| c.borrow_mut().push(local.take()));
        Installed {
            pushed: pushed.is_ok(),
            watch,
        }
    }

    /// Takes the context off the stack and back into `local` (whole, by a swap), for
    /// the next poll or the wrapper's drop: the poll returned `Pending` (`pending`: the
    /// chain it waits on is recorded) or panicked.
    #[inline]
    fn put_back(self, local: &mut Option<Local>, pending: bool) {
        if !self.pushed {
            return;
        }
        // Swapped with the top, whose `None` is then dropped in place: the value is
        // moved as a whole, never taken apart and put together again, and nothing
        // reads back what was just written in parts (a store-forwarding stall).
        let _ = CURRENT.try_with(|c| {
            let mut stack = c.borrow_mut();
            if let Some(top) = stack.last_mut() {
                std::mem::swap(top, local);
            }
            let below = stack.len().saturating_sub(1);
            stack.truncate(below);
        });
        if let (Some(guard), Some(watch)) = (local.as_ref().and_then(Local::guard), self.watch) {
            watch.end(guard, pending);
        }
    }

    /// Takes the context off the stack for good, after the poll that completed the
    /// future: the caller drops it (a tracked task's entry goes with its guard).
    #[inline]
    fn take_off(self) -> Option<Option<Local>> {
        if !self.pushed {
            return None;
        }
        let top = CURRENT.try_with(|c| c.borrow_mut().pop()).ok().flatten();
        if let (Some(Some(guard)), Some(watch)) = (
            top.as_ref().map(|t| t.as_ref().and_then(Local::guard)),
            self.watch,
        ) {
            watch.end(guard, false);
        }
        top
    }
}

/// One poll of a tracked task, watched: its start stored in the task's cell on the
/// coarse clock, a fresh await trail for it, and at its end the chain it was left
/// pending on (see `waits`); in debug mode, its length on the system clock.
pub(crate) struct PollWatch {
    /// The enclosing await trail, given back at the end.
    trail: u64,
    since: Option<std::time::Instant>,
}

impl PollWatch {
    #[inline]
    pub(crate) fn begin(guard: &TaskGuard) -> Self {
        if let Some(cell) = guard.cell() {
            cell.poll_started();
        }
        PollWatch {
            trail: crate::waits::begin_poll(),
            since: crate::waits::debug().then(std::time::Instant::now),
        }
    }

    #[inline]
    pub(crate) fn end(self, guard: &TaskGuard, pending: bool) {
        let chain = crate::waits::end_poll(self.trail);
        // A poll that did not return `Pending` ended the task (or panicked): its future
        // is dropped next, and with it the entry, so the cell is left as it is.
        if pending && let Some(cell) = guard.cell() {
            cell.poll_ended(Some(chain));
        }
        if let Some(since) = self.since {
            guard.check_poll(since.elapsed(), chain);
        }
    }
}

/// Runs `fut` with `ambient` as its context.
pub(crate) fn scope<F: std::future::Future>(ambient: Ambient, fut: F) -> Scoped<F> {
    Scoped {
        stage: Stage::Running {
            local: Some(Local::View(Box::new(ambient))),
            fut,
        },
    }
}

/// Runs a tracked task's future with its guard as the installed context.
pub(crate) fn owned<F: std::future::Future>(guard: TaskGuard, fut: F) -> Scoped<F> {
    Scoped {
        stage: Stage::Running {
            local: Some(Local::Owner(guard)),
            fut,
        },
    }
}

/// Runs `f` on the running task's own guard, if the code runs directly in a tracked
/// task (not inside `enter` or `shield` within it).
pub(crate) fn with_own_guard<T>(f: impl FnOnce(&TaskGuard) -> T) -> Option<T> {
    CURRENT
        .try_with(|c| match c.borrow().last() {
            Some(Some(Local::Owner(guard))) => Some(f(guard)),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Records on the running task's own guard how it ended (see [`with_own_guard`]). The
/// guard is written through an exclusive borrow of the stack, taken only for that
/// store; a failure's report runs before it, with no borrow of the stack at all (it
/// may run code that installs contexts: see `guard::Reporter`).
fn record_on_own_guard(outcome: Outcome) {
    let _ = CURRENT.try_with(|c| {
        if let Some(Some(Local::Owner(guard))) = c.borrow_mut().last_mut() {
            guard.record(outcome);
        }
    });
}

/// The running task's output counted on its own guard (a failure reported now).
#[inline]
pub(crate) fn finish_own_guard(outcome: TaskOutcome) {
    if let Some(settled) = super::guard::settle(outcome, || with_own_guard(TaskGuard::reporter)) {
        record_on_own_guard(settled);
    }
}

/// The running task's panic reported and counted on its own guard.
pub(crate) fn own_guard_panicked(payload: &(dyn std::any::Any + Send)) {
    if let Some(reporter) = with_own_guard(TaskGuard::reporter) {
        reporter.report_panic(payload);
        record_on_own_guard(Outcome::Failed);
    }
}

/// The tracked task being polled on this thread, if any, with its scope: the innermost
/// context that names a task (a task's own guard, or a view made inside one: main's
/// body, `shield`, a cleanup), however many `enter` views without one are above it.
pub(crate) fn running_task() -> Option<(Shutdown, SlotKey)> {
    CURRENT
        .try_with(|c| {
            c.borrow().iter().rev().find_map(|local| match local {
                Some(Local::Owner(guard)) => Some((guard.ambient().scope, guard.key())),
                Some(Local::View(a)) => a.task.map(|key| (a.scope.clone(), key)),
                None => None,
            })
        })
        .ok()
        .flatten()
}

/// Sets the thread-local context for the duration of a blocking closure.
pub(crate) struct BlockingAmbientGuard {
    previous: Option<Ambient>,
}

impl BlockingAmbientGuard {
    pub(crate) fn enter(ambient: Ambient) -> Self {
        let previous = BLOCKING_AMBIENT
            .try_with(|b| b.borrow_mut().replace(ambient))
            .ok()
            .flatten();
        BlockingAmbientGuard { previous }
    }
}

impl Drop for BlockingAmbientGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = BLOCKING_AMBIENT.try_with(|b| *b.borrow_mut() = previous);
    }
}
