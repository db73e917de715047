//! [`Shutdown`]: one scope's state — its lifecycle, its tracked tasks, its close hooks,
//! its failures — and the tree of scopes.
//!
//! This module holds state and the rules that read it. What runs code (spawning,
//! `enter`, the sequence, `on_close`) is in `handle`, a layer above the task context.
//!
//! A child belongs to its parent until it is shut down: the parent holds it (dropping
//! every handle loses nothing: its tasks are drained, its hooks run in the parent's
//! close phase, its failures count). A child with nothing left in it and no handle is
//! folded into its parent (its counts and failures move up) the next time the parent
//! makes a child, so a child per request does not pile up.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::close::HookStack;
use crate::error::Cause;
use crate::lifecycle::{Lifecycle, Phase};
use crate::registry::{Registry, SlotKey, Stats, TaskInfo, TaskState, Totals};
use crate::report::{DroppedCleanup, FAILURES_KEPT, Failure};
use crate::sync::lock;

/// What a failed tracked task (a panic, or an `Err` nobody will see) does to its scope.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use sundown::{FailurePolicy, Shutdown};
/// let scope = Shutdown::new();
/// scope.set_failure_policy(FailurePolicy::Shutdown);
/// let _ = scope.spawn(async { panic!("boom") }).await;
/// assert!(scope.is_requested(), "the failure started the shutdown");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Report it, keep running, count it in the exit code.
    Log = 1,
    /// Report it and start the scope's shutdown.
    Shutdown = 2,
}

/// Failures kept in full, and counts of the rest.
#[derive(Default)]
pub(crate) struct FailureLog {
    pub(crate) kept: Vec<Failure>,
    pub(crate) total: u64,
    pub(crate) dropped_cleanups: Vec<DroppedCleanup>,
    pub(crate) dropped_cleanups_total: u64,
}

impl FailureLog {
    fn absorb(&mut self, other: FailureLog) {
        self.total += other.total;
        self.dropped_cleanups_total += other.dropped_cleanups_total;
        let room = FAILURES_KEPT.saturating_sub(self.kept.len());
        self.kept.extend(other.kept.into_iter().take(room));
        let room = FAILURES_KEPT.saturating_sub(self.dropped_cleanups.len());
        self.dropped_cleanups
            .extend(other.dropped_cleanups.into_iter().take(room));
    }
}

pub(crate) struct ScopeInner {
    parent: Option<Arc<ScopeInner>>,
    /// Given by `child_named`: its tasks are listed as `name/task`.
    name: Option<Cow<'static, str>>,
    /// Held strongly: a child belongs to its parent until shut down or folded in.
    children: Mutex<Vec<Arc<ScopeInner>>>,
    life: Lifecycle,
    registry: Registry,
    /// Counts of children folded into this scope.
    folded: Mutex<Totals>,
    /// A drain is waiting: finishing tasks must wake it.
    draining: AtomicBool,
    drained: Notify,
    hooks: HookStack,
    failures: Mutex<FailureLog>,
    /// 0: inherit the parent's; else a [`FailurePolicy`].
    policy: AtomicU8,
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
    inner: Arc<ScopeInner>,
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
        Shutdown::with_parent(None, None)
    }

    fn with_parent(parent: Option<Arc<ScopeInner>>, name: Option<Cow<'static, str>>) -> Self {
        // The clock that times polls, and debug mode's settings, once per process.
        if let Some(complaint) = crate::waits::start() {
            crate::output::line(&complaint);
        }
        let life = Lifecycle::new(parent.as_deref().map(|p| &p.life));
        Shutdown {
            inner: Arc::new(ScopeInner {
                parent,
                name,
                children: Mutex::new(Vec::new()),
                life,
                registry: Registry::new(),
                folded: Mutex::new(Totals::default()),
                draining: AtomicBool::new(false),
                drained: Notify::new(),
                hooks: HookStack::new(),
                failures: Mutex::new(FailureLog::default()),
                policy: AtomicU8::new(0),
            }),
        }
    }

    /// A nested scope: cancelled (and forced) with this one, but it can also be
    /// triggered, drained and shut down on its own, which never touches this scope's
    /// readiness or deadlines. Until it is shut down it belongs to this scope: this
    /// scope's drain waits for its tasks, its close hooks run in this scope's close
    /// phase, and its stats and failures count here too, even once every handle to it
    /// is dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let parent = sundown::Shutdown::new();
    /// let child = parent.child();
    /// child.trigger("reloading");
    /// assert!(child.is_requested());
    /// assert!(!parent.is_requested() && parent.is_ready());
    /// parent.trigger("stop");
    /// assert!(parent.child().is_requested(), "children follow the parent");
    /// # }
    /// ```
    pub fn child(&self) -> Shutdown {
        self.make_child(None)
    }

    /// A [`child`](Shutdown::child) with a name: its tasks are listed as `name/task` in
    /// [`tasks`](Shutdown::tasks), the straggler table and the failures, and a named
    /// child of a named child as `jobs/batch/task` (the way tokio-graceful-shutdown
    /// names nested subsystems). A child without a name adds nothing to the path.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let root = sundown::Shutdown::new();
    /// let jobs = root.child_named("jobs");
    /// let _h = jobs.spawn_named("worker", std::future::pending::<()>());
    /// let _h = jobs.child_named("batch").spawn_named("sender", std::future::pending::<()>());
    /// let names: Vec<String> = root.tasks().iter().map(|t| t.name().to_owned()).collect();
    /// assert_eq!(names, ["jobs/worker", "jobs/batch/sender"]);
    /// # }
    /// ```
    pub fn child_named(&self, name: impl Into<Cow<'static, str>>) -> Shutdown {
        self.make_child(Some(name.into()))
    }

    fn make_child(&self, name: Option<Cow<'static, str>>) -> Shutdown {
        let child = Shutdown::with_parent(Some(self.inner.clone()), name);
        let folded = {
            let mut children = lock(&self.inner.children);
            let mut folded = Vec::new();
            children.retain(|c| {
                let keep = !c.is_spent();
                if !keep {
                    folded.push(c.clone());
                }
                keep
            });
            children.push(child.inner.clone());
            folded
        };
        for c in folded {
            self.inner.fold(&c);
        }
        child
    }

    /// The scope this one belongs to at the top: itself for a scope made by `new()` or
    /// `#[graceful_main]`, its root for a child. A task deep in a child can stop the
    /// whole program with `Shutdown::current().root().trigger(..)`.
    ///
    /// ```
    /// let top = sundown::Shutdown::new();
    /// let deep = top.child().child();
    /// deep.root().trigger("fatal");
    /// assert!(top.is_requested() && deep.is_requested());
    /// ```
    pub fn root(&self) -> Shutdown {
        let mut s = self.inner.clone();
        while let Some(p) = s.parent.clone() {
            s = p;
        }
        Shutdown { inner: s }
    }

    /// The scope's cancellation token, for APIs that take one. Cancelling it directly
    /// cancels the scope as [`trigger`](Shutdown::trigger) does (level-triggered,
    /// `#[cancel_safe]` calls see it), but records no cause and leaves readiness on.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// let token = scope.token();
    /// token.cancel();
    /// assert!(scope.is_requested());
    /// ```
    pub fn token(&self) -> CancellationToken {
        self.inner.life.expose_soft()
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
        self.inner.life.soft().clone().cancelled_owned()
    }

    /// Whether shutdown of this scope has been requested (level-triggered: once true,
    /// true for good), however it was cancelled.
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

    /// False from the moment shutdown of this scope or an ancestor begins (the first
    /// signal, before any `delay`); drive a readiness probe with it so load balancers
    /// stop routing first.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// assert!(scope.is_ready());
    /// scope.trigger("test");
    /// assert!(!scope.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.inner.ancestry().all(|s| s.life.is_ready())
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
        self.inner.ancestry().find_map(|s| s.life.cause().cloned())
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
        self.request(Cause::Trigger(reason.into()));
        self.cancel();
    }

    /// Tells the scope what a failed task (panic, or an `Err` nobody will see) does:
    /// [`FailurePolicy::Log`] reports and counts it, [`FailurePolicy::Shutdown`] also
    /// starts this scope's shutdown. A scope without a policy of its own follows its
    /// parent's; the top scope's default is `Log`.
    ///
    /// ```
    /// use sundown::{FailurePolicy, Shutdown};
    /// let scope = Shutdown::new();
    /// scope.set_failure_policy(FailurePolicy::Shutdown);
    /// assert_eq!(scope.child().failure_policy(), FailurePolicy::Shutdown);
    /// ```
    pub fn set_failure_policy(&self, policy: FailurePolicy) {
        self.inner.policy.store(policy as u8, Ordering::Relaxed);
    }

    /// The failure policy in force for this scope (its own, else its nearest
    /// ancestor's, else `Log`).
    ///
    /// ```
    /// assert_eq!(sundown::Shutdown::new().failure_policy(), sundown::FailurePolicy::Log);
    /// ```
    pub fn failure_policy(&self) -> FailurePolicy {
        self.policy_owner().map_or(FailurePolicy::Log, |(_, p)| p)
    }

    /// Counts of this scope's tracked tasks (children included).
    ///
    /// `running` counts every tracked task alive, the caller included when it is one
    /// (main's body is a tracked task of the process scope): wait for the others with
    /// [`join`](Shutdown::join), not by polling `running` down to zero.
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
            t.add(&s.registry.totals());
            t.add(&lock(&s.folded));
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
        self.inner.for_each_scope(&mut |s| {
            let from = out.len();
            s.registry.snapshot_into(&mut out);
            s.name_tasks(&mut out[from..]);
        });
        out.sort_by_key(TaskInfo::started);
        out
    }
}

/// The crate's view of a scope: each rule in one method, the fields kept inside.
impl Shutdown {
    /// The one entry point that starts a shutdown of this scope: readiness off, the
    /// cause recorded (first wins). Cancelling follows separately (after `delay`).
    pub(crate) fn request(&self, cause: Cause) -> bool {
        self.inner.life.request(cause)
    }

    /// Step 2: cancel the token of this scope and its children.
    pub(crate) fn cancel(&self) {
        self.inner.life.cancel();
    }

    /// The part of [`cancel`](Self::cancel) that wakes nobody: from now on
    /// `is_requested()` is true and `#[cancel_safe]` calls look at their token.
    pub(crate) fn mark_cancelled(&self) {
        self.inner.life.mark_cancelled();
    }

    /// Cuts shielded work and cleanups: the hard deadline passed or shutdown was forced.
    pub(crate) fn cancel_hard(&self) {
        self.inner.life.cancel_hard();
    }

    pub(crate) fn enter_phase(&self, phase: Phase) {
        self.inner.life.enter(phase);
    }

    /// The token that code of this scope waits on: the hard one inside `shield`.
    pub(crate) fn waiter(&self, shielded: bool) -> &CancellationToken {
        if shielded {
            self.inner.life.hard()
        } else {
            self.inner.life.soft()
        }
    }

    /// [`waiter`](Self::waiter)'s state, level-triggered.
    pub(crate) fn is_cancelled_for(&self, shielded: bool) -> bool {
        if shielded {
            self.inner.life.hard().is_cancelled()
        } else {
            self.inner.is_requested()
        }
    }

    /// Installs the process runner's observer; only its own transitions reach it.
    pub(crate) fn observe(&self, observer: crate::lifecycle::Observer) {
        self.inner.life.observe(observer);
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Shows the task `key` of this scope as `state` until the returned guard is dropped,
    /// then as it was before (inside `shield`, while a cleanup runs); `None` when the
    /// task is gone.
    pub(crate) fn show_state(&self, key: SlotKey, state: TaskState) -> Option<ShownState> {
        self.registry()
            .set_state(key, state)
            .map(|previous| ShownState {
                scope: self.clone(),
                key,
                previous,
            })
    }

    pub(crate) fn hooks(&self) -> &HookStack {
        &self.inner.hooks
    }

    /// Every scope of the tree, this one first then each child's subtree: the order
    /// close hooks run in is its reverse (children's hooks before their parent's).
    pub(crate) fn tree(&self) -> Vec<Shutdown> {
        let mut out = Vec::new();
        fn walk(s: &Arc<ScopeInner>, out: &mut Vec<Shutdown>) {
            out.push(Shutdown { inner: s.clone() });
            for c in lock(&s.children).iter() {
                walk(c, out);
            }
        }
        walk(&self.inner, &mut out);
        out
    }

    /// The `n` oldest live tasks of the tree, oldest first, and how many are live.
    pub(crate) fn oldest_tasks(&self, n: usize) -> (Vec<TaskInfo>, usize) {
        let mut out = Vec::new();
        let mut live = 0;
        self.inner.for_each_scope(&mut |s| {
            let from = out.len();
            live += s.registry.oldest_into(n, &mut out);
            s.name_tasks(&mut out[from..]);
        });
        out.sort_by_key(TaskInfo::started);
        out.truncate(n);
        (out, live)
    }

    /// The live task `key` of the tree, named with its scope's path.
    pub(crate) fn task_info(&self, key: SlotKey) -> Option<TaskInfo> {
        let mut found = None;
        self.inner.for_each_scope(&mut |s| {
            if found.is_none() {
                found = s.registry.snapshot_one(key).map(|t| {
                    let mut one = [t];
                    s.name_tasks(&mut one);
                    let [t] = one;
                    t
                });
            }
        });
        found
    }

    /// Tracked tasks alive in the tree.
    pub(crate) fn live_tasks(&self) -> usize {
        let mut n = 0;
        self.inner.for_each_scope(&mut |s| n += s.registry.live());
        n
    }

    /// Tells finishing tasks of the tree to wake [`drained`](Self::drained) waiters.
    pub(crate) fn start_draining(&self) {
        self.inner
            .for_each_scope(&mut |s| s.draining.store(true, Ordering::SeqCst));
    }

    pub(crate) fn drained(&self) -> &Notify {
        &self.inner.drained
    }

    /// A tracked task of this scope ended: wake any drain waiting on it or an ancestor.
    /// A task of this scope ended: wakes the drains of the tree waiting on it, when
    /// `few_left` (its registry shard is down to at most one task; asked only when a
    /// drain is waiting).
    pub(crate) fn task_finished(&self, few_left: impl FnOnce() -> bool) {
        let mut few_left = Some(few_left);
        let mut worth_waking = false;
        for s in self.inner.ancestry() {
            // `SeqCst`, as the registry's count of ended tasks (see `Registry::remove`).
            if s.draining.load(Ordering::SeqCst) {
                if let Some(f) = few_left.take() {
                    worth_waking = f();
                }
                if worth_waking {
                    s.drained.notify_waiters();
                }
            }
        }
    }

    /// Aborts every live tracked task of the tree except `spare` (the caller: a task
    /// of that scope).
    pub(crate) fn abort_tasks(&self, spare: Option<(&Shutdown, SlotKey)>) {
        self.inner.for_each_scope(&mut |s| {
            let spare =
                spare.and_then(|(owner, key)| std::ptr::eq(s, &*owner.inner).then_some(key));
            s.registry.abort_all(spare);
        });
    }

    pub(crate) fn same_scope(&self, other: &Shutdown) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Marks every task still in the tree as blocking its thread.
    pub(crate) fn mark_blocking(&self) {
        self.inner
            .for_each_scope(&mut |s| s.registry.mark_all(TaskState::Blocking));
    }

    /// The scope whose policy applies here, with the policy.
    fn policy_owner(&self) -> Option<(Shutdown, FailurePolicy)> {
        let mut s = Some(self.inner.clone());
        while let Some(x) = s {
            match x.policy.load(Ordering::Relaxed) {
                1 => return Some((Shutdown { inner: x }, FailurePolicy::Log)),
                2 => return Some((Shutdown { inner: x }, FailurePolicy::Shutdown)),
                _ => s = x.parent.clone(),
            }
        }
        None
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
        if let Some((owner, FailurePolicy::Shutdown)) = self.policy_owner() {
            owner.request(Cause::TaskFailed(name));
            owner.cancel();
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

    /// The failures of the tree, the first [`FAILURES_KEPT`] of them in full.
    pub(crate) fn failure_log(&self) -> FailureLog {
        let mut all = FailureLog::default();
        self.inner.for_each_scope(&mut |s| {
            let log = lock(&s.failures);
            all.absorb(FailureLog {
                kept: log.kept.clone(),
                total: log.total,
                dropped_cleanups: log.dropped_cleanups.clone(),
                dropped_cleanups_total: log.dropped_cleanups_total,
            });
        });
        all
    }

    /// A child that finished its own shutdown leaves its parent, handing its counts
    /// and failures up (they still count there); its report has them too.
    pub(crate) fn leave_parent(&self) {
        let Some(parent) = &self.inner.parent else {
            return;
        };
        let removed = {
            let mut children = lock(&parent.children);
            let before = children.len();
            children.retain(|c| !Arc::ptr_eq(c, &self.inner));
            children.len() != before
        };
        if removed {
            parent.fold(&self.inner);
        }
    }

    /// Moves the failures, counts, hooks and children of `other` (a scope used for a
    /// while and done with, such as the one a close hook's tasks ran in) into this one.
    pub(crate) fn absorb(&self, other: &Shutdown) {
        self.inner.fold(&other.inner);
    }

    /// Keeps `other` (a close hook's scope whose tasks outlived the close step) in this
    /// scope's tree, as a child: its failures move here now, as [`absorb`](Self::absorb)
    /// moves them, but its counts stay in it and are read through the tree, so its
    /// tasks still alive count as running and their ends are counted when they come.
    /// (Folded in, their counts were taken with none live and their ends were lost.)
    pub(crate) fn adopt(&self, other: &Shutdown) {
        let log = std::mem::take(&mut *lock(&other.inner.failures));
        lock(&self.inner.failures).absorb(log);
        lock(&self.inner.children).push(other.inner.clone());
    }
}

impl ScopeInner {
    /// This scope, then its parent, up to the root.
    fn ancestry(&self) -> impl Iterator<Item = &ScopeInner> {
        std::iter::successors(Some(self), |s| s.parent.as_deref())
    }

    fn is_requested(&self) -> bool {
        let mut exposed = false;
        for s in self.ancestry() {
            if s.life.is_marked_cancelled() {
                return true;
            }
            exposed |= s.life.is_exposed();
        }
        // Some token of the ancestry was handed out and may have been cancelled
        // directly: the token itself (cancelled with any ancestor's) says.
        exposed && self.life.soft().is_cancelled()
    }

    /// The path its tasks' names get: the names of this scope and its named ancestors,
    /// outermost first, each followed by `/`; `None` when none has a name.
    fn task_path(&self) -> Option<String> {
        let mut names: Vec<&str> = self.ancestry().filter_map(|s| s.name.as_deref()).collect();
        if names.is_empty() {
            return None;
        }
        names.reverse();
        let mut path = names.join("/");
        path.push('/');
        Some(path)
    }

    /// Prefixes snapshots of this scope's tasks with its path.
    fn name_tasks(&self, tasks: &mut [TaskInfo]) {
        if let Some(path) = self.task_path() {
            for t in tasks {
                t.prefix_name(&path);
            }
        }
    }

    /// Visits this scope and every descendant.
    fn for_each_scope(&self, f: &mut dyn FnMut(&ScopeInner)) {
        f(self);
        let children: Vec<Arc<ScopeInner>> = lock(&self.children).clone();
        for c in children {
            c.for_each_scope(f);
        }
    }

    /// Nothing left in it and nobody holding it but its parent's list.
    fn is_spent(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) == 1
            && self.registry.live() == 0
            && self.hooks.is_empty()
            && lock(&self.children).is_empty()
    }

    fn fold(&self, other: &ScopeInner) {
        let log = std::mem::take(&mut *lock(&other.failures));
        lock(&self.failures).absorb(log);
        let mut t = other.registry.totals();
        t.live = 0;
        t.add(&std::mem::take(&mut *lock(&other.folded)));
        lock(&self.folded).add(&t);
        self.hooks.take_from(&other.hooks);
        let grandchildren = std::mem::take(&mut *lock(&other.children));
        lock(&self.children).extend(grandchildren);
    }
}

/// A task's state shown for a while (see [`Shutdown::show_state`]): the state before it
/// comes back when this is dropped.
pub(crate) struct ShownState {
    scope: Shutdown,
    key: SlotKey,
    previous: TaskState,
}

impl Drop for ShownState {
    fn drop(&mut self) {
        self.scope.registry().set_state(self.key, self.previous);
    }
}
