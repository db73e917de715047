//! [`Shutdown`]: one scope of cancellation, tracked tasks and close hooks.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ambient::{self, Ambient};
use crate::error::Cause;
use crate::registry::{Registry, TaskInfo, Totals};
use crate::report::{DroppedCleanup, Failure, Report};

/// Set the first time any scope is cancelled through sundown. `#[cancel_safe]` reads it
/// (one relaxed load) before running a body, so the level-triggered check costs nothing
/// while no shutdown is under way anywhere in the process.
pub(crate) static ANY_CANCELLED: AtomicBool = AtomicBool::new(false);

/// How many failures a scope keeps in full; the rest are counted.
pub(crate) const FAILURES_KEPT: usize = 64;

/// Task counts of a scope and its child scopes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.spawn(async {}).await.unwrap();
/// let stats = scope.stats();
/// assert_eq!((stats.running, stats.completed, stats.failed, stats.cancelled), (0, 1, 0, 0));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tracked tasks alive now.
    pub running: u64,
    /// Tasks that finished (a `Result` output that is `Ok`, or any other output).
    pub completed: u64,
    /// Tasks that panicked or, detached, returned `Err`.
    pub failed: u64,
    /// Tasks dropped before they finished (aborted), or that returned `Cancelled`.
    pub cancelled: u64,
}

/// What a failed tracked task does to the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum FailurePolicy {
    /// Report it, keep running, count it in the exit code.
    Log = 0,
    /// Report it and start shutdown.
    Shutdown = 1,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ClosePhase {
    Open,
    Closing,
    Closed,
}

pub(crate) struct CloseHook {
    pub(crate) name: Cow<'static, str>,
    pub(crate) run: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

pub(crate) struct Hooks {
    pub(crate) phase: ClosePhase,
    pub(crate) stack: Vec<CloseHook>,
}

#[derive(Default)]
pub(crate) struct FailureLog {
    pub(crate) kept: Vec<Failure>,
    pub(crate) total: u64,
    pub(crate) dropped_cleanups: Vec<DroppedCleanup>,
    pub(crate) dropped_cleanups_total: u64,
}

/// Something the process runner wants to hear about.
pub(crate) enum ScopeEvent {
    /// Shutdown began: readiness went false.
    Begun,
}

pub(crate) type Observer = Box<dyn Fn(ScopeEvent) + Send + Sync>;

pub(crate) struct ScopeInner {
    pub(crate) parent: Option<Arc<ScopeInner>>,
    children: Mutex<Vec<Weak<ScopeInner>>>,
    /// Cancelled when shutdown is requested: the cooperative signal.
    pub(crate) soft: CancellationToken,
    /// Cancelled at the hard deadline (stragglers aborted) or when shutdown is forced:
    /// what shielded code and cleanups still obey.
    pub(crate) hard: CancellationToken,
    requested: AtomicBool,
    begun: AtomicBool,
    cause: OnceLock<Cause>,
    pub(crate) registry: Registry,
    /// A drain is waiting: finishing tasks must wake it.
    pub(crate) draining: AtomicBool,
    pub(crate) drained: Notify,
    pub(crate) hooks: Mutex<Hooks>,
    pub(crate) failures: Mutex<FailureLog>,
    policy: AtomicU8,
    pub(crate) observer: OnceLock<Observer>,
}

/// A shutdown scope: a cancellation token, every task spawned through it, and a stack of
/// close hooks, shut down together in order and within one time budget.
///
/// `#[graceful_main]` creates the process scope; `Shutdown::new()` creates a
/// free-standing one (tests, libraries) and [`child`](Shutdown::child) a nested one.
/// Cloning is cheap and every clone is the same scope.
///
/// Cancellation is level-triggered (once requested it stays requested) and cooperative:
/// plain code is never interrupted, it is given the drain period; code that awaits
/// [`requested`](Shutdown::requested) or uses `#[cancel_safe]` stops promptly.
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let worker = scope.clone();
/// scope.spawn_named("worker", async move {
///     worker.requested().await;            // returns when shutdown is requested
/// });
/// scope.on_close("db pool", async { /* close connections */ });
///
/// let report = scope.shutdown(Duration::from_secs(9)).await;
/// assert_eq!(report.exit_code(), 0);
/// assert!(report.stragglers().is_empty());
/// # }
/// ```
#[derive(Clone)]
pub struct Shutdown {
    pub(crate) inner: Arc<ScopeInner>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested", &self.is_requested())
            .field("ready", &self.is_ready())
            .field("cause", &self.cause())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A free-standing scope, not cancelled by anything but itself.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// assert!(!scope.is_requested());
    /// assert!(scope.is_ready());
    /// ```
    pub fn new() -> Self {
        Shutdown::with_parent(None)
    }

    fn with_parent(parent: Option<Arc<ScopeInner>>) -> Self {
        let (soft, hard) = match &parent {
            Some(p) => (p.soft.child_token(), p.hard.child_token()),
            None => (CancellationToken::new(), CancellationToken::new()),
        };
        Shutdown {
            inner: Arc::new(ScopeInner {
                parent,
                children: Mutex::new(Vec::new()),
                soft,
                hard,
                requested: AtomicBool::new(false),
                begun: AtomicBool::new(false),
                cause: OnceLock::new(),
                registry: Registry::new(),
                draining: AtomicBool::new(false),
                drained: Notify::new(),
                hooks: Mutex::new(Hooks {
                    phase: ClosePhase::Open,
                    stack: Vec::new(),
                }),
                failures: Mutex::new(FailureLog::default()),
                policy: AtomicU8::new(FailurePolicy::Log as u8),
                observer: OnceLock::new(),
            }),
        }
    }

    /// The ambient scope: the one the running task was spawned through (or entered with
    /// [`enter`](Shutdown::enter)), else the process scope of `#[graceful_main]`.
    ///
    /// # Panics
    ///
    /// Outside any scope, with a message saying how to get one. Use
    /// [`try_current`](Shutdown::try_current) where that can happen.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// scope.enter(async {
    ///     let here = sundown::Shutdown::current();
    ///     assert!(!here.is_requested());
    /// }).await;
    /// # }
    /// ```
    #[track_caller]
    pub fn current() -> Shutdown {
        match ambient::current_scope() {
            Some(s) => s,
            None => panic!(
                "sundown: no shutdown scope here. `Shutdown::current()` works inside \
                 `#[graceful_main]`, inside tasks spawned through sundown, and inside \
                 `Shutdown::enter(fut)`; create one with `Shutdown::new()` or use \
                 `Shutdown::try_current()` where there may be none"
            ),
        }
    }

    /// The ambient scope, or `None` outside any.
    ///
    /// ```
    /// assert!(sundown::Shutdown::try_current().is_none());
    /// ```
    pub fn try_current() -> Option<Shutdown> {
        ambient::current_scope()
    }

    /// A nested scope: cancelled (and forced) with this one, but it can also be
    /// triggered, drained and shut down on its own. Its tasks, stats and failures also
    /// count in this scope's, and this scope's drain waits for them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let parent = sundown::Shutdown::new();
    /// let child = parent.child();
    /// child.trigger("reloading");
    /// assert!(child.is_requested());
    /// assert!(!parent.is_requested());
    /// parent.trigger("stop");
    /// assert!(parent.child().is_requested(), "children follow the parent");
    /// # }
    /// ```
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::with_parent(Some(self.inner.clone()));
        let mut children = lock(&self.inner.children);
        children.retain(|w| w.strong_count() > 0);
        children.push(Arc::downgrade(&child.inner));
        drop(children);
        child
    }

    /// Runs `fut` with this scope as the ambient one, so `Shutdown::current()`, the free
    /// functions and `#[cancel_safe]` inside it use this scope.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let n = scope.enter(async { sundown::is_ready() as u8 + 1 }).await;
    /// assert_eq!(n, 2);
    /// # }
    /// ```
    pub fn enter<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        ambient::scope(
            Ambient {
                scope: self.clone(),
                task: None,
                shielded: false,
            },
            fut,
        )
    }

    /// The scope's cancellation token, for APIs that take one. Cancelling it directly
    /// cancels the scope's tasks, but prefer [`trigger`](Shutdown::trigger), which also
    /// records the cause and clears readiness.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// let token = scope.token();
    /// scope.trigger("done");
    /// assert!(token.is_cancelled());
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.inner.soft.clone()
    }

    /// Resolves when shutdown of this scope is requested; at once if it already was.
    /// Cancel-safe, `Send` and `'static`, so it can be handed to
    /// `axum::serve(..).with_graceful_shutdown(..)` or used in `select!`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let requested = scope.requested();
    /// scope.trigger("test");
    /// requested.await;
    /// # }
    /// ```
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.soft.clone().cancelled_owned()
    }

    /// Whether shutdown of this scope has been requested (level-triggered: once true,
    /// true for good).
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// assert!(!scope.is_requested());
    /// scope.trigger("test");
    /// assert!(scope.is_requested());
    /// ```
    pub fn is_requested(&self) -> bool {
        self.inner.is_requested()
    }

    /// False from the moment shutdown begins (the first signal, before any `delay`);
    /// drive a readiness probe with it so load balancers stop routing first.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// assert!(scope.is_ready());
    /// scope.trigger("test");
    /// assert!(!scope.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        let mut s = Some(&*self.inner);
        while let Some(x) = s {
            if x.begun.load(Ordering::Acquire) {
                return false;
            }
            s = x.parent.as_deref();
        }
        true
    }

    /// What started this scope's shutdown (or its nearest ancestor's), once it began.
    ///
    /// ```
    /// use sundown::{Cause, Shutdown};
    /// let scope = Shutdown::new();
    /// assert_eq!(scope.cause(), None);
    /// scope.trigger("maintenance");
    /// assert_eq!(scope.cause(), Some(Cause::Trigger("maintenance".into())));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.inner.cause()
    }

    /// Requests shutdown now: readiness goes false, the cause is recorded (the first
    /// cause wins), and the token is cancelled for this scope and its children. It
    /// does not wait; [`shutdown`](Shutdown::shutdown) does.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// scope.trigger("disk almost full");
    /// assert!(scope.is_requested());
    /// ```
    pub fn trigger(&self, reason: impl Into<Cow<'static, str>>) {
        self.begin(Cause::Trigger(reason.into()));
        self.cancel();
    }

    /// Step 1 of the sequence: readiness false and the cause recorded, tasks untouched.
    pub(crate) fn begin(&self, cause: Cause) {
        let _ = self.inner.cause.set(cause);
        if !self.inner.begun.swap(true, Ordering::AcqRel) {
            if let Some(observer) = self.root().observer.get() {
                observer(ScopeEvent::Begun);
            }
        }
    }

    /// Step 2: cancel the token of this scope and its children.
    pub(crate) fn cancel(&self) {
        self.mark_requested();
        self.inner.soft.cancel();
    }

    /// The part of [`cancel`](Self::cancel) that wakes nobody: from now on
    /// `is_requested()` is true and `#[cancel_safe]` calls look at their token.
    pub(crate) fn mark_requested(&self) {
        ANY_CANCELLED.store(true, Ordering::Release);
        self.inner.mark_requested();
    }

    /// Cuts shielded work and cleanups: the hard deadline passed or shutdown was forced.
    pub(crate) fn cancel_hard(&self) {
        self.inner.hard.cancel();
    }

    pub(crate) fn root(&self) -> &ScopeInner {
        let mut s = &*self.inner;
        while let Some(p) = s.parent.as_deref() {
            s = p;
        }
        s
    }

    pub(crate) fn set_policy(&self, policy: FailurePolicy) {
        self.inner.policy.store(policy as u8, Ordering::Relaxed);
    }

    pub(crate) fn policy(&self) -> FailurePolicy {
        if self.root().policy.load(Ordering::Relaxed) == FailurePolicy::Shutdown as u8 {
            FailurePolicy::Shutdown
        } else {
            FailurePolicy::Log
        }
    }

    /// Registers a close hook: a future run during shutdown after every task has
    /// stopped, in reverse registration order (the last resource opened is closed
    /// first), each bounded so a hanging one cannot hold the others. A hook registered
    /// after closing began is run at once, never dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// scope.on_close("http session", async { /* session.close().await */ });
    /// let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.closes()[0].name(), "http session");
    /// # }
    /// ```
    pub fn on_close(
        &self,
        name: impl Into<Cow<'static, str>>,
        fut: impl Future<Output = ()> + Send + 'static,
    ) {
        let hook = CloseHook {
            name: name.into(),
            run: Box::pin(fut),
        };
        let mut hooks = lock(&self.inner.hooks);
        match hooks.phase {
            ClosePhase::Open | ClosePhase::Closing => hooks.stack.push(hook),
            ClosePhase::Closed => {
                drop(hooks);
                crate::sequence::run_late_hook(self, hook);
            }
        }
    }

    /// Counts of this scope's tracked tasks (children included).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(std::future::pending::<()>());
    /// assert_eq!(scope.stats().running, 1);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        let mut t = Totals::default();
        self.inner.for_each_scope(&mut |s| {
            let x = s.registry.totals();
            t.live += x.live;
            t.completed += x.completed;
            t.failed += x.failed;
            t.cancelled += x.cancelled;
        });
        Stats {
            running: t.live,
            completed: t.completed,
            failed: t.failed,
            cancelled: t.cancelled,
        }
    }

    /// The live tracked tasks (children's included), oldest first: name, spawn location,
    /// age and state. Consistent under concurrent spawning and finishing: a task alive
    /// for the whole call is always listed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn_named("ticker", std::future::pending::<()>());
    /// assert_eq!(scope.tasks()[0].name(), "ticker");
    /// # }
    /// ```
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let mut out = Vec::new();
        self.inner
            .for_each_scope(&mut |s| s.registry.snapshot_into(&mut out));
        out.sort_by_key(TaskInfo::started);
        out
    }

    /// Runs the shutdown sequence and returns its report: requests shutdown if nobody
    /// has (cause [`Cause::ShutdownCalled`]), waits for the tasks to drain, aborts those
    /// still running at the drain deadline (and reports those that do not stop even
    /// then as blocking their thread), then runs the close hooks in reverse order, each
    /// bounded — all inside `budget`.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// scope.spawn_named("stuck", std::future::pending::<()>()); // ignores cancellation
    /// let report = scope.shutdown(Duration::from_secs(2)).await;
    /// assert_eq!(report.stragglers()[0].name(), "stuck");
    /// assert_eq!(report.exit_code(), 124);
    /// # }
    /// ```
    pub async fn shutdown(&self, budget: Duration) -> Report {
        let deadline = tokio::time::Instant::now() + budget;
        crate::sequence::run(self, deadline).await
    }

    pub(crate) fn record_failure(&self, failure: Failure) {
        crate::output::failure(&failure);
        let name = failure.task_name_owned();
        {
            let mut log = lock(&self.inner.failures);
            log.total += 1;
            if log.kept.len() < FAILURES_KEPT {
                log.kept.push(failure);
            }
        }
        if self.policy() == FailurePolicy::Shutdown && !self.is_requested() {
            let root = self.root_scope();
            root.begin(Cause::TaskFailed(name));
            root.cancel();
        }
    }

    pub(crate) fn record_dropped_cleanup(&self, dropped: DroppedCleanup) {
        crate::output::dropped_cleanup(&dropped);
        let mut log = lock(&self.inner.failures);
        log.dropped_cleanups_total += 1;
        if log.dropped_cleanups.len() < FAILURES_KEPT {
            log.dropped_cleanups.push(dropped);
        }
    }

    fn root_scope(&self) -> Shutdown {
        let mut s = self.inner.clone();
        while let Some(p) = s.parent.clone() {
            s = p;
        }
        Shutdown { inner: s }
    }

    /// Spawns `fut` as a tracked task of this scope, named after the future's type
    /// (`poll_feed` for `poll_feed(..)`), located at the caller's line. Returns tokio's
    /// own `JoinHandle`. A panic is reported with the task's name and location.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// async fn poll_feed() -> u32 { 7 }
    /// let scope = sundown::Shutdown::new();
    /// assert_eq!(scope.spawn(poll_feed()).await.unwrap(), 7);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::task::spawn(
            self,
            crate::task::TaskName::of_type::<F>(),
            Location::caller(),
            fut,
            crate::probe::AnyOutput,
            false,
        )
    }

    /// [`spawn`](Shutdown::spawn) with a name of your choosing, shown in the task table
    /// and the straggler report.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let id = 42;
    /// let _h = scope.spawn_named(format!("conn-{id}"), std::future::pending::<()>());
    /// assert_eq!(scope.tasks()[0].name(), "conn-42");
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_named<F>(
        &self,
        name: impl Into<Cow<'static, str>>,
        fut: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::task::spawn(
            self,
            crate::task::TaskName::Given(name.into()),
            Location::caller(),
            fut,
            crate::probe::AnyOutput,
            false,
        )
    }

    /// Runs a blocking closure on tokio's blocking pool as a tracked task. A blocking
    /// job cannot be interrupted: if it is still running at the drain deadline it is
    /// reported as blocking, and the process exits without waiting for it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let sum = scope.spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap();
    /// assert_eq!(sum, 55);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::task::spawn_blocking(
            self,
            crate::task::TaskName::of_type::<F>(),
            Location::caller(),
            f,
            crate::probe::AnyOutput,
            false,
        )
    }
}

impl ScopeInner {
    pub(crate) fn is_requested(&self) -> bool {
        let mut s = Some(self);
        while let Some(x) = s {
            if x.requested.load(Ordering::Acquire) {
                return true;
            }
            s = x.parent.as_deref();
        }
        // Someone may have cancelled the token directly.
        self.soft.is_cancelled()
    }

    fn mark_requested(&self) {
        self.requested.store(true, Ordering::Release);
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        let mut s = Some(self);
        while let Some(x) = s {
            if let Some(c) = x.cause.get() {
                return Some(c.clone());
            }
            s = x.parent.as_deref();
        }
        None
    }

    pub(crate) fn children_snapshot(&self) -> Vec<Arc<ScopeInner>> {
        lock(&self.children)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Visits this scope and every live descendant.
    pub(crate) fn for_each_scope(&self, f: &mut dyn FnMut(&ScopeInner)) {
        f(self);
        for c in self.children_snapshot() {
            c.for_each_scope(f);
        }
    }

    /// A tracked task of this scope ended: wake any drain waiting on it or an ancestor.
    pub(crate) fn task_finished(&self) {
        let mut s = Some(self);
        while let Some(x) = s {
            if x.draining.load(Ordering::Acquire) {
                x.drained.notify_waiters();
            }
            s = x.parent.as_deref();
        }
    }

    pub(crate) fn live_tasks(&self) -> usize {
        let mut n = 0;
        self.for_each_scope(&mut |s| n += s.registry.live());
        n
    }
}

/// Locks a mutex, ignoring poisoning: sundown's own critical sections leave their
/// data consistent even if a user's `Drop` panics inside one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
