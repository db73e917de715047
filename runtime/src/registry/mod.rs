//! The live-task registry: every tracked task's name, spawn location, start time and
//! state, cheap enough to keep on for every spawn.
//!
//! Entries live in a few cache-padded shards of 40-byte slots that no spawn, task end
//! or snapshot locks ([`slab`]). A spawning thread fills a slot of "its" shard (assigned
//! round-robin on first use), so spawns from different threads do not contend; the
//! task removes its own entry when its future is dropped, with the key it was given, and
//! its slot is free again for the shard's next spawns, which take slots in address
//! order. A task's location and
//! static name are one interned id ([`sites`]); only an owned name (`format!`ed) is kept
//! in a table with a lock. A snapshot reads each slot twice around its fields: a task
//! that is alive for the whole snapshot is always in it, an entry is never seen
//! half-written, and a task that starts or finishes during the snapshot is either in it
//! or not.

mod sites;
mod slab;

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::task::AbortHandle;

use self::sites::{Site, Sites};
use crate::waits::{self, AwaitSite, Chain};
// Wall-clock ages: a task's age is real time even under tokio's paused test clock,
// and reading it does not consult the runtime.
use std::time::Instant;

/// What a tracked task is doing, as the task table and the straggler report show it.
///
/// ```
/// use sundown::TaskState;
/// assert_eq!(TaskState::CleaningUp.to_string(), "cleaning up");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Running or waiting as usual.
    Running,
    /// A `#[cancel_safe]` function of this task is running its cleanup.
    CleaningUp,
    /// Inside [`shield`](crate::shield): hidden from cancellation.
    Shielded,
    /// Did not stop even when aborted: it is blocking its thread (a sync loop, a
    /// `spawn_blocking` job). The process exits without it.
    Blocking,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::CleaningUp => "cleaning up",
            TaskState::Shielded => "shielded",
            TaskState::Blocking => "blocking",
        })
    }
}

/// A snapshot of one live tracked task, from [`Shutdown::tasks`](crate::Shutdown::tasks)
/// or a [`Report`](crate::Report)'s stragglers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let _h = scope.spawn_named("poller", std::future::pending::<()>());
/// let tasks = scope.tasks();
/// assert_eq!(tasks[0].name(), "poller");
/// assert_eq!(tasks[0].state(), sundown::TaskState::Running);
/// assert!(tasks[0].location().file().ends_with(".rs"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TaskInfo {
    name: Cow<'static, str>,
    location: &'static Location<'static>,
    started: Instant,
    /// Which entry of which registry: a task's identity across snapshots.
    id: (u64, u64),
    state: TaskState,
    /// The await sites the task was last pending on.
    chain: Chain,
    /// How long the task had been inside its current poll, if it was in one.
    in_poll: Option<Duration>,
    /// tokio's id of the task, to find it in a task dump.
    tokio_id: Option<tokio::task::Id>,
    /// tokio's async backtrace of the task (feature `taskdump`).
    backtrace: Option<std::sync::Arc<str>>,
}

impl TaskInfo {
    /// The task's name: given to `spawn_named`, derived from the spawned expression by
    /// the attributes, or the spawning function's location for a plain `spawn`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn_named("flush", std::future::pending::<()>());
    /// assert_eq!(scope.tasks()[0].name(), "flush");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the task was spawned: the user's `file:line:col`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let line = line!() + 1;
    /// let _h = scope.spawn(std::future::pending::<()>());
    /// assert_eq!(scope.tasks()[0].location().line(), line);
    /// # }
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// How long ago the task was spawned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(std::future::pending::<()>());
    /// assert!(scope.tasks()[0].age() < std::time::Duration::from_secs(60));
    /// # }
    /// ```
    pub fn age(&self) -> Duration {
        Instant::now().saturating_duration_since(self.started)
    }

    /// What the task is doing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(std::future::pending::<()>());
    /// assert_eq!(scope.tasks()[0].state(), sundown::TaskState::Running);
    /// # }
    /// ```
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// The innermost await site the task is waiting on: the last `.await` it returned
    /// `Pending` from in code the attributes see (`#[graceful_main]`, `#[cancel_safe]`,
    /// `#[sundown::track_awaits]`). `None` when it waits elsewhere, or is running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #[sundown::track_awaits]
    /// async fn wait_for(rx: tokio::sync::oneshot::Receiver<()>) {
    ///     let _ = rx.await;
    /// }
    /// let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(wait_for(rx));
    /// tokio::task::yield_now().await;
    /// assert_eq!(scope.tasks()[0].waiting_at().unwrap().expr(), "rx");
    /// # }
    /// ```
    pub fn waiting_at(&self) -> Option<&'static AwaitSite> {
        self.await_chain().pop()
    }

    /// The await sites the task is waiting on, outermost first: the innermost site
    /// ([`waiting_at`](TaskInfo::waiting_at)) and the recorded awaits of the calls it
    /// is in (at most four; the outermost is kept when a chain is longer).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #[sundown::track_awaits]
    /// async fn inner() { std::future::pending::<()>().await }
    /// #[sundown::track_awaits]
    /// async fn outer() { inner().await }
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(outer());
    /// tokio::task::yield_now().await;
    /// let chain: Vec<_> = scope.tasks()[0].await_chain().iter().map(|s| s.expr()).collect();
    /// assert_eq!(chain, ["inner()", "std::future::pending::<()>()"]);
    /// # }
    /// ```
    pub fn await_chain(&self) -> Vec<&'static AwaitSite> {
        self.chain.sites().0
    }

    /// How long the task has been inside one poll, when that is longer than a second:
    /// it is blocking its worker thread (a sync loop, a blocking call). Measured on a
    /// clock that advances every 100 ms.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(std::future::pending::<()>());
    /// assert_eq!(scope.tasks()[0].blocking_for(), None);
    /// # }
    /// ```
    pub fn blocking_for(&self) -> Option<std::time::Duration> {
        self.in_poll.filter(|d| *d >= waits::BLOCKING_SHOWN_AFTER)
    }

    /// tokio's async backtrace of the task, taken when the task was found still running at
    /// the drain deadline: only in a [`Report`](crate::Report)'s stragglers, with the
    /// `taskdump` feature under `RUSTFLAGS="--cfg tokio_unstable"` on Linux; else `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(std::future::pending::<()>());
    /// assert!(scope.tasks()[0].backtrace().is_none());
    /// # }
    /// ```
    pub fn backtrace(&self) -> Option<&str> {
        self.backtrace.as_deref()
    }

    #[cfg_attr(
        not(all(tokio_unstable, feature = "taskdump", target_os = "linux")),
        allow(dead_code)
    )]
    pub(crate) fn tokio_id(&self) -> Option<tokio::task::Id> {
        self.tokio_id
    }

    #[cfg_attr(
        not(all(tokio_unstable, feature = "taskdump", target_os = "linux")),
        allow(dead_code)
    )]
    pub(crate) fn set_backtrace(&mut self, trace: std::sync::Arc<str>) {
        self.backtrace = Some(trace);
    }

    /// `handle_upload -> fetch_user -> pool.acquire()` and the innermost site's
    /// `file:line`, when the task waits at a recorded site.
    pub(crate) fn waiting_text(&self) -> Option<(String, String)> {
        let (sites, cut) = self.chain.sites();
        let (innermost, callers) = sites.split_last()?;
        let mut text = String::new();
        for (i, s) in callers.iter().enumerate() {
            text.push_str(s.callee());
            text.push_str(" -> ");
            if cut && i == 0 {
                text.push_str("… -> ");
            }
        }
        text.push_str(innermost.expr());
        let at = format!(
            "{}:{}",
            innermost.location().file(),
            innermost.location().line()
        );
        Some((at, text))
    }

    /// Puts its scope's path (`jobs/`) before the name.
    pub(crate) fn prefix_name(&mut self, path: &str) {
        self.name = Cow::Owned(format!("{path}{}", self.name));
    }

    pub(crate) fn with_state(mut self, state: TaskState) -> Self {
        self.state = state;
        self
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Two snapshots of the same task: the same entry (a slot reused by a later task
    /// has another generation).
    pub(crate) fn same_task(&self, other: &TaskInfo) -> bool {
        self.id == other.id
    }

    /// What [`same_task`](Self::same_task) compares, to put in a set.
    pub(crate) fn identity(&self) -> (u64, u64) {
        self.id
    }
}

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
    /// Tracked tasks alive now, the calling task included when it is one.
    pub running: u64,
    /// Tasks that finished (a `Result` output that is `Ok`, or any other output).
    pub completed: u64,
    /// Tasks that panicked or returned an `Err` that is not a cancellation.
    pub failed: u64,
    /// Tasks dropped before they finished (aborted), or that returned `Cancelled`.
    pub cancelled: u64,
}

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

/// A task's name as stored: given, or the future's type name, shortened only when it
/// is shown (spawning stays free of string work).
#[derive(Clone, Debug)]
pub(crate) enum TaskName {
    Given(Cow<'static, str>),
    /// `std::any::type_name` of the future or closure.
    OfType(&'static str),
}

impl TaskName {
    pub(crate) fn of_type<T>() -> Self {
        TaskName::OfType(std::any::type_name::<T>())
    }

    // tokio-console's task name (under `tokio_unstable`).
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn shown(&self) -> Cow<'static, str> {
        match self {
            TaskName::Given(n) => n.clone(),
            TaskName::OfType(t) => Cow::Borrowed(short_type_name(t)),
        }
    }
}

/// `app::feed::poll_feed::{{closure}}` → `poll_feed`; `app::main::{{closure}}::{{closure}}`
/// → `main::{{closure}}`; generic arguments dropped.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let base = full.find('<').map_or(full, |i| &full[..i]);
    let base = base.strip_suffix("::{{closure}}").unwrap_or(base);
    let mut segments = base.rmatch_indices("::").map(|(i, _)| i + 2);
    let Some(last) = segments.next() else {
        return base;
    };
    // Keep the segment before a trailing `{{closure}}`: it names the function.
    let start = match segments.next() {
        Some(before) if base[last..].starts_with("{{") => before,
        _ => last,
    };
    &base[start..]
}

/// How a task's entry left the registry; counted in [`Stats`](crate::Stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Failed,
    Cancelled,
}

/// Identifies one entry in 8 bytes (`Option<SlotKey>` too); the generation guards
/// against a reused slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotKey {
    /// The slot's index plus one.
    index: NonZeroU32,
    shard: u16,
    generation: u16,
}

impl SlotKey {
    fn slot(self) -> u32 {
        self.index.get() - 1
    }

    /// The key in 7 bytes (a shard index fits one: there are at most 64), for a
    /// task's guard to keep beside its own flags.
    pub(crate) fn parts(self) -> (NonZeroU32, u16, u8) {
        (self.index, self.generation, self.shard as u8)
    }

    pub(crate) fn from_parts(index: NonZeroU32, generation: u16, shard: u8) -> Self {
        SlotKey {
            index,
            shard: u16::from(shard),
            generation,
        }
    }
}

fn state_code(state: TaskState) -> u8 {
    match state {
        TaskState::Running => 0,
        TaskState::CleaningUp => 1,
        TaskState::Shielded => 2,
        TaskState::Blocking => 3,
    }
}

fn state_of(word: u64) -> TaskState {
    match slab::state_bits(word) {
        0 => TaskState::Running,
        1 => TaskState::CleaningUp,
        2 => TaskState::Shielded,
        _ => TaskState::Blocking,
    }
}

/// One task's cells, which the task writes about its polls without a lock: the await
/// chain it is pending on and when its current poll began.
pub(crate) struct TaskCell<'a> {
    chain: &'a AtomicU64,
    poll: &'a AtomicU32,
}

impl TaskCell<'_> {
    /// A poll begins: its start on the coarse clock.
    #[inline]
    pub(crate) fn poll_started(&self) {
        self.poll.store(waits::coarse_now(), Ordering::Relaxed);
    }

    /// The poll ended; `pending` with the chain it noted.
    #[inline]
    pub(crate) fn poll_ended(&self, pending: Option<Chain>) {
        self.poll.store(0, Ordering::Relaxed);
        if let Some(chain) = pending {
            self.chain.store(chain.0, Ordering::Relaxed);
        }
    }
}

/// Owned task names (`spawn_named(format!(..))`, an HTTP request's `GET /path`), by
/// slot; static names are interned sites and need no table.
type OwnedNames = Mutex<HashMap<u32, (u16, Cow<'static, str>)>>;

/// The live tasks of one scope. See the [`slab`] module for how it stays lock-free.
pub(crate) struct Registry {
    /// Which registry, for [`TaskInfo`]'s identity: never reused in the process, unlike
    /// the registry's address (a scope folded into its parent is freed, and a new
    /// child may be given its memory while snapshots of its tasks are still compared).
    id: u64,
    shards: Box<[Shard]>,
}

struct Shard {
    slab: slab::Shard,
    names: OwnedNames,
    /// tokio's task ids, for the task dump (feature `taskdump`).
    #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
    ids: Mutex<HashMap<u32, (u16, tokio::task::Id)>>,
}

/// An entry just published whose abort handle is still to come: until this is dropped
/// (after [`set_abort`](Reserved::set_abort), or at once when there is no task to
/// abort), its slot is not reused even if the task has already ended. It holds no
/// claim on the shard: other spawns, this thread's included, go on meanwhile.
pub(crate) struct Reserved<'a> {
    shard: &'a Shard,
    slot: &'a slab::Slot,
    key: SlotKey,
    handle: Option<AbortHandle>,
}

impl Reserved<'_> {
    pub(crate) fn key(&self) -> SlotKey {
        self.key
    }

    /// Stores the task's abort handle in its slot as this is dropped (one swap and one
    /// compare-and-swap on the slot), and hands the slot back. A task that has already
    /// ended gets its handle released instead; one whose abort was asked for meanwhile
    /// is aborted with it.
    pub(crate) fn set_abort(mut self, handle: AbortHandle) {
        self.handle = Some(handle);
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let slot = self.slot;
        #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
        if let Some(handle) = &self.handle {
            lock(&self.shard.ids).insert(self.key.slot(), (self.key.generation, handle.id()));
        }
        self.shard
            .slab
            .settle(slot, self.key.generation, self.handle.take());
    }
}

/// A shard claimed by this spawning thread, given back when dropped.
struct Claim<'a>(&'a slab::Shard);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// An entry just removed, from the shard it left.
pub(crate) struct Removed<'a> {
    shard: &'a Shard,
}

impl Removed<'_> {
    /// Whether the shard has at most one live entry left: a drain waits for zero tasks,
    /// or for one when its caller is a task of the scope, and the total can only reach
    /// that when a removal leaves some shard so, so only then is a waiting drain worth
    /// waking. (Read after the removal: an entry added since keeps it from waking, and
    /// that entry's own removal wakes it.)
    pub(crate) fn few_left(&self) -> bool {
        self.shard.slab.live_count() <= 1
    }
}

/// Totals across the shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) live: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, other: &Totals) {
        self.live += other.live;
        self.completed += other.completed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
    }
}

fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cpus * 2).next_power_of_two().clamp(4, 64)
    })
}

fn this_threads_shard(count: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    let hint = HINT
        .try_with(|h| {
            let mut v = h.get();
            if v == usize::MAX {
                v = NEXT.fetch_add(1, Ordering::Relaxed);
                h.set(v);
            }
            v
        })
        .unwrap_or(0);
    hint & (count - 1)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every mutation under these locks is one insert or removal of plain values: a
    // panic (allocation) leaves the data consistent, so poisoning is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    pub(crate) fn new() -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard {
                slab: slab::Shard::new(),
                names: Mutex::default(),
                #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
                ids: Mutex::default(),
            })
            .collect();
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Registry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards,
        }
    }

    fn slot(&self, key: SlotKey) -> Option<(&Shard, &slab::Slot)> {
        let shard = self.shards.get(key.shard as usize)?;
        Some((shard, shard.slab.slot(key.slot())?))
    }

    /// The entry a reader found live, as a [`TaskInfo`]; `None` when its owned name is
    /// gone already: the task ended after the slot was read (a name is in the table
    /// before its entry is published, and leaves it only once the entry is retired).
    fn info(&self, sites: &Sites, shard: usize, index: u32, read: &slab::Read) -> Option<TaskInfo> {
        let generation = slab::generation(read.word);
        let site = sites.get(read.site);
        let name = match site {
            _ if read.word & slab::OWNED_NAME != 0 => lock(&self.shards.get(shard)?.names)
                .get(&index)
                .filter(|(g, _)| *g == generation)
                .map(|(_, n)| n.clone())?,
            Some(Site {
                name: Some(name),
                of_type: true,
                ..
            }) => Cow::Borrowed(short_type_name(name)),
            Some(Site {
                name: Some(name), ..
            }) => Cow::Borrowed(name),
            _ => Cow::Borrowed("task"),
        };
        #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
        let tokio_id = lock(&self.shards[shard].ids)
            .get(&index)
            .filter(|(g, _)| *g == generation)
            .map(|(_, id)| *id);
        #[cfg(not(all(tokio_unstable, feature = "taskdump", target_os = "linux")))]
        let tokio_id = None;
        let key = (u64::from(index) << 32) | ((shard as u64) << 16) | u64::from(generation);
        Some(TaskInfo {
            name,
            location: site.map_or(Location::caller(), |s| s.location),
            started: waits::coarse_instant(read.started),
            id: (self.id, key),
            state: state_of(read.word),
            chain: Chain(read.chain),
            in_poll: waits::in_poll_for(read.poll),
            tokio_id,
            backtrace: None,
        })
    }

    /// The cells of the live entry `key` (its task writes them without a lock).
    #[inline]
    pub(crate) fn cell(&self, key: SlotKey) -> Option<TaskCell<'_>> {
        let (_, slot) = self.slot(key)?;
        Some(TaskCell {
            chain: &slot.chain,
            poll: &slot.poll,
        })
    }

    /// Claims a shard for this spawning thread: its usual one, else the next free.
    fn claim(&self) -> usize {
        let count = self.shards.len();
        let first = this_threads_shard(count);
        loop {
            for i in 0..count {
                let s = (first + i) & (count - 1);
                if self.shards[s].slab.try_claim() {
                    return s;
                }
            }
            // Every shard is being spawned into at this instant (more spawning threads
            // than shards): let one of them finish.
            std::thread::yield_now();
        }
    }

    /// Adds a live entry; its slot stays reserved until the returned [`Reserved`] is
    /// dropped.
    pub(crate) fn insert(
        &self,
        name: TaskName,
        location: &'static Location<'static>,
        state: TaskState,
    ) -> Reserved<'_> {
        let (static_name, of_type, owned) = match name {
            TaskName::OfType(t) => (Some(t), true, None),
            TaskName::Given(Cow::Borrowed(n)) => (Some(n), false, None),
            TaskName::Given(Cow::Owned(n)) => (None, false, Some(n)),
        };
        let site = sites::intern(Site {
            location,
            name: static_name,
            of_type,
        });
        let s = self.claim();
        let shard = &self.shards[s];
        let claim = Claim(&shard.slab);
        let Some((index, slot, generation)) = shard.slab.take_free() else {
            // Four billion slots in one shard: not reachable before memory runs out.
            drop(claim);
            panic!("sundown: a shard of the task registry is full");
        };
        let flags = if owned.is_some() { slab::OWNED_NAME } else { 0 };
        // The name goes in before the entry is published: a reader that finds the entry
        // live finds its name too.
        if let Some(n) = owned {
            lock(&shard.names).insert(index, (generation, Cow::Owned(n)));
        }
        slot.fill(
            generation,
            site,
            waits::coarse_now(),
            state_code(state),
            flags,
        );
        shard.slab.count_inserted();
        drop(claim);
        Reserved {
            shard,
            slot,
            key: SlotKey {
                index: NonZeroU32::MIN.saturating_add(index),
                shard: s as u16,
                generation,
            },
            handle: None,
        }
    }

    pub(crate) fn mark_propagating_cancel(&self, key: SlotKey) {
        if let Some((_, slot)) = self.slot(key) {
            slot.update(key.generation, |w| w | slab::PROPAGATING);
        }
    }

    pub(crate) fn is_propagating_cancel(&self, key: SlotKey) -> bool {
        self.slot(key)
            .and_then(|(_, slot)| slot.word_of(key.generation))
            .is_some_and(|w| w & slab::PROPAGATING != 0)
    }

    pub(crate) fn set_state(&self, key: SlotKey, state: TaskState) -> Option<TaskState> {
        let (_, slot) = self.slot(key)?;
        slot.update(key.generation, |w| slab::with_state(w, state_code(state)))
            .map(state_of)
    }

    /// Removes the entry and counts how it ended; `None` when it was not live.
    ///
    /// The count is `SeqCst`, as is the drain's flag: a drain that starts while tasks
    /// end either sees this one gone when it counts, or this removal sees the drain's
    /// flag and wakes it (see `Shutdown::task_finished`).
    pub(crate) fn remove(&self, key: SlotKey, outcome: Outcome) -> Option<Removed<'_>> {
        let (shard, slot) = self.slot(key)?;
        let word = slot.retire(key.generation)?;
        // The abort handle holds a reference to the task: released here.
        drop(slot.abort.swap(None));
        if word & slab::OWNED_NAME != 0 {
            lock(&shard.names).remove(&key.slot());
        }
        #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
        lock(&shard.ids).remove(&key.slot());
        shard
            .slab
            .count_ended(outcome == Outcome::Failed, outcome == Outcome::Cancelled);
        shard.slab.ended(slot, word);
        Some(Removed { shard })
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for shard in &self.shards[..] {
            let c = shard.slab.counted();
            t.add(&Totals {
                live: c.live,
                completed: c.completed,
                failed: c.failed,
                cancelled: c.cancelled,
            });
        }
        t
    }

    pub(crate) fn live(&self) -> usize {
        let live: u64 = self.shards.iter().map(|s| s.slab.live_count()).sum();
        usize::try_from(live).unwrap_or(usize::MAX)
    }

    pub(crate) fn snapshot_one(&self, key: SlotKey) -> Option<TaskInfo> {
        let (_, slot) = self.slot(key)?;
        let read = slot.read()?;
        if slab::generation(read.word) != key.generation {
            return None;
        }
        self.info(&Sites::read(), key.shard as usize, key.slot(), &read)
    }

    pub(crate) fn snapshot_into(&self, out: &mut Vec<TaskInfo>) {
        let sites = Sites::read();
        for (s, shard) in self.shards.iter().enumerate() {
            out.extend(
                shard
                    .slab
                    .live()
                    .filter_map(|(index, _, read)| self.info(&sites, s, index, &read)),
            );
        }
    }

    /// The `n` oldest live tasks (unordered), added to `out`, and how many are live:
    /// what a table of `n` rows needs, without copying a million entries.
    pub(crate) fn oldest_into(&self, n: usize, out: &mut Vec<TaskInfo>) -> usize {
        use std::collections::BinaryHeap;
        // Max-heap on the start time: its top is the youngest of the oldest `n`.
        let mut heap: BinaryHeap<(u32, u16, u32, u16)> = BinaryHeap::with_capacity(n + 1);
        let mut live = 0;
        for (s, shard) in self.shards.iter().enumerate() {
            for (index, _, read) in shard.slab.live() {
                live += 1;
                heap.push((read.started, s as u16, index, slab::generation(read.word)));
                if heap.len() > n {
                    heap.pop();
                }
            }
        }
        let sites = Sites::read();
        for (_, s, index, generation) in heap {
            let read = self.shards[s as usize]
                .slab
                .slot(index)
                .and_then(|slot| slot.read());
            if let Some(read) = read.filter(|r| slab::generation(r.word) == generation) {
                out.extend(self.info(&sites, s as usize, index, &read));
            }
        }
        live
    }

    /// Whether `key` names a live entry of this registry.
    pub(crate) fn is_live(&self, key: SlotKey) -> bool {
        self.slot(key)
            .is_some_and(|(_, slot)| slot.word_of(key.generation).is_some())
    }

    /// Aborts every live task that has an abort handle, or is about to get one (its
    /// spawner aborts it as it stores the handle), except `spare`; returns how many.
    /// The handles are taken out of their slots: aborting is for good.
    pub(crate) fn abort_all(&self, spare: Option<SlotKey>) -> usize {
        let mut aborted = 0;
        for (s, shard) in self.shards.iter().enumerate() {
            for (index, slot, read) in shard.slab.live() {
                let this = SlotKey {
                    index: NonZeroU32::MIN.saturating_add(index),
                    shard: s as u16,
                    generation: slab::generation(read.word),
                };
                if Some(this) == spare {
                    continue;
                }
                if slot.abort(this.generation) {
                    aborted += 1;
                }
            }
        }
        aborted
    }

    /// Sets the state of every task still present (blocking: it did not stop when
    /// aborted).
    pub(crate) fn mark_all(&self, state: TaskState) {
        for shard in &self.shards[..] {
            for (_, slot, read) in shard.slab.live() {
                slot.update(slab::generation(read.word), |w| {
                    slab::with_state(w, state_code(state))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on a current-thread runtime with a fresh registry, the caller's
    /// location and a way to spawn a task that waits for good.
    fn on_current_thread(
        test: impl AsyncFnOnce(
            &Registry,
            &'static Location<'static>,
            fn() -> tokio::task::JoinHandle<()>,
        ),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let r = Registry::new();
        rt.block_on(test(&r, Location::caller(), || {
            tokio::spawn(std::future::pending::<()>())
        }));
    }

    /// Inserts `name` the way a spawn does; the entries it takes first (the rest of the
    /// first chunk, before the cursor wraps around to reuse a slot) are removed again.
    /// Returns the entry that lands in slot `want`, or panics after a chunk.
    fn insert_into<'a>(r: &'a Registry, want: u32, name: &'static str) -> Reserved<'a> {
        let loc = Location::caller();
        let mut fillers = Vec::new();
        for _ in 0..=slab::CHUNK {
            let reserved = r.insert(TaskName::Given(name.into()), loc, TaskState::Running);
            if reserved.key().slot() == want {
                for key in fillers {
                    r.remove(key, Outcome::Completed);
                }
                return reserved;
            }
            fillers.push(reserved.key());
        }
        panic!("slot {want} was not reused within a chunk");
    }

    #[test]
    fn insert_remove_counts_and_reuses_slots() {
        let r = Registry::new();
        let loc = Location::caller();
        let a = r
            .insert(TaskName::Given("a".into()), loc, TaskState::Running)
            .key();
        let b = r
            .insert(TaskName::Given("b".into()), loc, TaskState::Running)
            .key();
        let d = r
            .insert(TaskName::Given("d".into()), loc, TaskState::Running)
            .key();
        assert_eq!(r.live(), 3);
        assert_eq!(
            (a.shard, b.shard),
            (d.shard, d.shard),
            "one thread, one shard"
        );
        let removed = r.remove(d, Outcome::Completed).unwrap();
        assert!(!removed.few_left(), "two left: no drain to wake");
        let removed = r.remove(a, Outcome::Completed).unwrap();
        assert!(removed.few_left(), "one left, maybe a drain's caller: wake");
        assert!(
            r.remove(a, Outcome::Completed).is_none(),
            "a key is removed once"
        );
        let c = insert_into(&r, a.slot(), "c").key();
        assert_eq!((c.shard, c.slot()), (a.shard, a.slot()), "slot reused");
        assert_ne!(c.generation, a.generation, "with a new generation");
        assert_eq!(
            r.set_state(a, TaskState::Blocking),
            None,
            "stale key ignored"
        );
        r.remove(b, Outcome::Failed);
        assert!(r.remove(c, Outcome::Cancelled).is_some());
        assert_eq!(r.live(), 0, "the last removal empties the shard");
        let t = r.totals();
        let fillers = slab::CHUNK as u64 - 3;
        assert_eq!(
            (t.live, t.completed, t.failed, t.cancelled),
            (0, 2 + fillers, 1, 1)
        );
    }

    #[test]
    fn long_lived_entries_and_churn_do_not_grow_the_shard_without_bound() {
        // 10 000 long-lived entries, then a million short ones, at most 300 live at a
        // time: the cursor laps the long-lived run again and again. An earlier cut of
        // the cursor grew the shard on every lap (a new slot whenever the next four
        // were live), so its slots grew with the number of spawns, not the live tasks.
        let r = Registry::new();
        let loc = Location::caller();
        let insert = || {
            r.insert(TaskName::Given("t".into()), loc, TaskState::Running)
                .key()
        };
        let long: Vec<SlotKey> = (0..10_000).map(|_| insert()).collect();
        let mut short = std::collections::VecDeque::new();
        for _ in 0..1_000_000 {
            short.push_back(insert());
            if short.len() > 300 {
                let key = short.pop_front().unwrap();
                r.remove(key, Outcome::Completed);
            }
        }
        let shard = &r.shards[long[0].shard as usize];
        let used = shard.slab.slots_used() as usize;
        assert!(
            used <= (10_000 + 300) * 4 / 3 + 2 * slab::CHUNK,
            "{used} slots for at most 10 300 live entries"
        );
        assert_eq!(r.live(), 10_300);
    }

    #[test]
    fn twin_tasks_spawned_in_one_tick_are_told_apart() {
        // Same name, same line, same coarse start: still two tasks.
        let r = Registry::new();
        let loc = Location::caller();
        let a = r
            .insert(TaskName::Given("twin".into()), loc, TaskState::Running)
            .key();
        let b = r
            .insert(TaskName::Given("twin".into()), loc, TaskState::Running)
            .key();
        let (ta, tb) = (r.snapshot_one(a).unwrap(), r.snapshot_one(b).unwrap());
        assert_eq!(ta.started(), tb.started(), "one tick of the coarse clock");
        assert!(!ta.same_task(&tb));
        assert!(ta.same_task(&r.snapshot_one(a).unwrap()));
        r.remove(a, Outcome::Completed);
        let c = r
            .insert(TaskName::Given("twin".into()), loc, TaskState::Running)
            .key();
        assert!(
            !ta.same_task(&r.snapshot_one(c).unwrap()),
            "a reused slot is another task"
        );
    }

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

    #[test]
    fn an_owned_name_read_after_its_task_ended_drops_the_entry() {
        // A snapshot found the entry live, then the task ended before its name was
        // looked up: the entry is left out, not listed under the fallback "task".
        let r = Registry::new();
        let k = r
            .insert(
                TaskName::Given(Cow::Owned(format!("conn-{}", 7))),
                Location::caller(),
                TaskState::Running,
            )
            .key();
        let shard = &r.shards[k.shard as usize];
        let (index, _, read) = shard.slab.live().next().unwrap();
        assert_eq!(
            r.info(&Sites::read(), k.shard as usize, index, &read)
                .unwrap()
                .name(),
            "conn-7"
        );
        r.remove(k, Outcome::Completed);
        assert!(
            r.info(&Sites::read(), k.shard as usize, index, &read)
                .is_none()
        );
        assert!(lock(&shard.names).is_empty(), "the name left with its task");
    }

    #[test]
    fn a_task_whose_handle_is_stored_after_abort_all_swept_it_is_aborted() {
        // The spawner published the entry; `abort_all` (a shutdown's abort step on
        // another thread) finds it live before `tokio::spawn` has returned its handle.
        on_current_thread(async |r, loc, pending| {
            let reserved = r.insert(TaskName::Given("late".into()), loc, TaskState::Running);
            let late = reserved.key();
            assert_eq!(r.abort_all(None), 1, "asked of the spawner");
            let task = pending();
            reserved.set_abort(task.abort_handle());
            let joined = tokio::time::timeout(Duration::from_secs(5), task).await;
            assert!(joined.expect("never aborted").unwrap_err().is_cancelled());

            // The ask was for that task: the slot's next one is left alone, and so is
            // the task `abort_all` spares.
            r.remove(late, Outcome::Cancelled);
            let next = insert_into(r, late.slot(), "next");
            let spared = next.key();
            assert_eq!(r.abort_all(Some(spared)), 0);
            let task = pending();
            next.set_abort(task.abort_handle());
            tokio::task::yield_now().await;
            assert!(!task.is_finished());
            task.abort();
        });
    }

    #[test]
    fn marks_aborts_and_stale_keys_race_tasks_ending_without_touching_the_next_task() {
        // Two threads spawn and end entries as fast as they can, some ending before
        // their spawner settles them; a third uses the keys of ended entries (a stale
        // `set_state`, `mark_propagating_cancel`, `remove`) and runs `mark_all` and
        // `abort_all` on the registry meanwhile.
        const ROUNDS: usize = 20_000;
        let r = Registry::new();
        let loc = Location::caller();
        let stale: Mutex<Vec<SlotKey>> = Mutex::default();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let churners: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        for i in 0..ROUNDS {
                            let reserved =
                                r.insert(TaskName::Given("c".into()), loc, TaskState::Running);
                            let k = reserved.key();
                            if i % 2 == 0 {
                                drop(reserved);
                            }
                            let t = r.snapshot_one(k).unwrap();
                            assert!(
                                matches!(t.state(), TaskState::Running | TaskState::Blocking),
                                "a stale key reached a new entry: {:?}",
                                t.state()
                            );
                            assert!(!r.is_propagating_cancel(k));
                            assert!(r.remove(k, Outcome::Completed).is_some());
                            assert!(!r.is_live(k));
                            let mut st = lock(&stale);
                            if st.len() < 64 {
                                st.push(k);
                            }
                        }
                    })
                })
                .collect();
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let keys = std::mem::take(&mut *lock(&stale));
                    for k in keys {
                        assert_eq!(r.set_state(k, TaskState::CleaningUp), None);
                        r.mark_propagating_cancel(k);
                        assert!(r.remove(k, Outcome::Failed).is_none());
                    }
                    r.mark_all(TaskState::Blocking);
                    r.abort_all(None);
                }
            });
            for c in churners {
                c.join().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        });
        let t = r.totals();
        assert_eq!(
            (t.live, t.completed, t.failed, t.cancelled),
            (0, 2 * ROUNDS as u64, 0, 0)
        );
        // Every slot is free again: none leaked (held by a spawner or an ending thread
        // that never let go), none handed out twice (below).
        for shard in &r.shards[..] {
            assert_eq!(shard.slab.busy_slots(), 0);
        }
        let keys: Vec<_> = (0..1_000)
            .map(|_| {
                r.insert(TaskName::Given("x".into()), loc, TaskState::Running)
                    .key()
            })
            .collect();
        let distinct: std::collections::HashSet<_> =
            keys.iter().map(|k| (k.shard, k.slot())).collect();
        assert_eq!(distinct.len(), keys.len());
        let mut v = Vec::new();
        r.snapshot_into(&mut v);
        assert_eq!(v.len(), keys.len());
        assert!(v.iter().all(|t| t.state() == TaskState::Running));
    }

    #[test]
    fn a_registry_given_a_freed_ones_memory_does_not_take_its_tasks_identities() {
        // A spent child scope is freed when the next child is made, and a child made
        // after may get its memory; the shutdown sequence still compares a straggler
        // snapshot taken before with one taken after (a straggler that ended was
        // marked as blocking its thread). Same slot, same generation: only the
        // registry tells them apart.
        let loc = Location::caller();
        let first = Box::new(Registry::new());
        let k = first
            .insert(TaskName::Given("victim".into()), loc, TaskState::Running)
            .key();
        let victim = first.snapshot_one(k).unwrap();
        first.remove(k, Outcome::Cancelled);
        drop(first);
        // The allocator hands the memory out again (the next box, with glibc's), while
        // `victim` is kept: the same address, the same key.
        let mut later = Vec::new();
        for _ in 0..16 {
            let next = Box::new(Registry::new());
            let k = next
                .insert(TaskName::Given("later".into()), loc, TaskState::Running)
                .key();
            assert!(!victim.same_task(&next.snapshot_one(k).unwrap()));
            later.push(next);
        }
    }

    #[test]
    fn snapshot_sees_states() {
        let r = Registry::new();
        let k = r
            .insert(
                TaskName::Given("x".into()),
                Location::caller(),
                TaskState::Running,
            )
            .key();
        r.set_state(k, TaskState::CleaningUp);
        let mut v = Vec::new();
        r.snapshot_into(&mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].state(), TaskState::CleaningUp);
        assert_eq!(v[0].name(), "x");
    }

    /// `Slot::abort(generation)` aborts the task of the live entry `generation` and
    /// returns false when that entry has ended. `abort_all` reads a slot live, then calls
    /// `abort` with that generation: between the two, the task can end and the slot go to
    /// the next spawn, whose handle is in the slot by then. `abort` swapped the handle out
    /// before it looked at the generation, so it aborted the *next* task and took its
    /// handle away for good.
    #[test]
    fn a_stale_generation_abort_leaves_the_slots_next_task_alone() {
        on_current_thread(async |r, loc, pending| {
            // Task A, live with its handle: what abort_all's sweep reads.
            let a = r.insert(TaskName::Given("a".into()), loc, TaskState::Running);
            let ka = a.key();
            let ta = pending();
            a.set_abort(ta.abort_handle());
            let shard = &r.shards[ka.shard as usize];
            let (index, slot, read) = shard.slab.live().next().unwrap();
            assert_eq!(index, ka.slot());
            let swept_generation = slab::generation(read.word);

            // A ends; its slot is taken by B, whose handle is stored.
            ta.abort();
            r.remove(ka, Outcome::Cancelled);
            let b = insert_into(r, ka.slot(), "b");
            let kb = b.key();
            assert_ne!(kb.generation, swept_generation);
            let tb = pending();
            b.set_abort(tb.abort_handle());

            // The sweep goes on with what it read: A's generation.
            let aborted = slot.abort(swept_generation);
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(
                !tb.is_finished(),
                "B (generation {}) was aborted by an abort for A (generation {swept_generation})",
                kb.generation
            );
            assert!(!aborted, "an abort of an ended entry reports false");
            tb.abort();
        });
    }

    /// A shard's counts read while cancelled entries end: `completed` stays at what
    /// completed. It was derived as ended minus failed and cancelled, the reader loading
    /// `ended` first and `cancelled` after while the ending thread added to `cancelled`
    /// first and `ended` after: a read between the two showed fewer completed entries
    /// than had ever completed.
    #[test]
    fn counts_read_while_entries_end_never_lose_a_completed_one() {
        let s = slab::Shard::new();
        for _ in 0..5 {
            s.count_ended(false, false);
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let worst = std::thread::scope(|t| {
            t.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    s.count_ended(false, true);
                }
            });
            let deadline = std::time::Instant::now() + Duration::from_millis(1500);
            let mut worst = u64::MAX;
            while std::time::Instant::now() < deadline {
                for _ in 0..1000 {
                    worst = worst.min(s.counted().completed);
                }
                if worst < 5 {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            worst
        });
        assert_eq!(
            worst, 5,
            "completed read as {worst}, though 5 completed and no more"
        );
    }

    /// A spawn pattern, given how to insert an entry, remove one, and count the slots.
    type Pattern<'a> = dyn Fn(&dyn Fn() -> SlotKey, &dyn Fn(SlotKey), &dyn Fn() -> u64) + 'a;

    /// Slots a shard holds against its most live entries, under patterns meant to make it
    /// grow: bursts ended in reverse, an oscillating stack, a checkerboard, random
    /// lifetimes, long-lived entries sprinkled among short ones.
    #[test]
    fn growth_stays_within_four_thirds_of_peak_live_under_hostile_patterns() {
        let loc = Location::caller();
        let run = |name: &str, f: &Pattern<'_>| {
            let r = Registry::new();
            let peak = std::cell::Cell::new(0u64);
            let ins = || {
                let k = r
                    .insert(TaskName::Given("t".into()), loc, TaskState::Running)
                    .key();
                peak.set(peak.get().max(r.live() as u64));
                k
            };
            let rem = |k: SlotKey| {
                r.remove(k, Outcome::Completed).unwrap();
            };
            let used = || {
                r.shards
                    .iter()
                    .map(|s| u64::from(s.slab.slots_used()))
                    .sum::<u64>()
            };
            f(&ins, &rem, &used);
            let used = used();
            let bound = peak.get() * 4 / 3 + 2 * slab::CHUNK as u64 + 33;
            assert!(
                used <= bound,
                "{name}: {used} slots for a peak of {} live",
                peak.get()
            );
        };
        // Bursts: up to D live, all end, again, with the ends in reverse order.
        run("bursts lifo", &|ins, rem, _| {
            for _ in 0..200 {
                let ks: Vec<_> = (0..3000).map(|_| ins()).collect();
                for k in ks.into_iter().rev() {
                    rem(k);
                }
            }
        });
        // A stack oscillating between 1000 and 3000 deep.
        run("stack oscillating", &|ins, rem, _| {
            let mut st: Vec<SlotKey> = (0..1000).map(|_| ins()).collect();
            for _ in 0..200 {
                for _ in 0..2000 {
                    st.push(ins());
                }
                for _ in 0..2000 {
                    rem(st.pop().unwrap());
                }
            }
        });
        // Checkerboard: spawn two, keep one; then the kept ones end, and again.
        run("checkerboard", &|ins, rem, _| {
            for _ in 0..50 {
                let mut kept = Vec::new();
                for _ in 0..3000 {
                    kept.push(ins());
                    let k = ins();
                    rem(k);
                }
                for k in kept {
                    rem(k);
                }
            }
        });
        // Random lifetimes (xorshift), at most ~2000 live.
        run("random", &|ins, rem, _| {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut live: Vec<SlotKey> = Vec::new();
            for _ in 0..400_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if live.len() < 2000 && (!x.is_multiple_of(3) || live.is_empty()) {
                    live.push(ins());
                } else {
                    let i = (x >> 20) as usize % live.len();
                    rem(live.swap_remove(i));
                }
            }
        });
        // Long-lived one in every 5, short ones sliding window of 100.
        run("sprinkled long-lived", &|ins, rem, _| {
            let mut short = std::collections::VecDeque::new();
            let mut long = Vec::new();
            for i in 0..300_000 {
                let k = ins();
                if i % 50 == 0 && long.len() < 5000 {
                    long.push(k);
                } else {
                    short.push_back(k);
                    if short.len() > 100 {
                        rem(short.pop_front().unwrap());
                    }
                }
            }
        });
    }
}
