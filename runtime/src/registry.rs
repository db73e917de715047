//! The live-task registry: every tracked task's name, spawn location, start time and
//! state, cheap enough to keep on for every spawn.
//!
//! Entries live in a few cache-padded shards, each a mutex around a slab. A spawning
//! thread inserts into "its" shard (assigned round-robin on first use), so spawns from
//! different threads do not contend; the task removes its own entry when its future is
//! dropped, with the key it was given. Completion counters live beside the slab under the
//! same lock, so finishing a task touches no other shared cache line. `snapshot()` locks
//! the shards one at a time: a task that is alive for the whole snapshot is always in
//! it, an entry is never seen half-written, and a task that starts or finishes during
//! the snapshot is either in it or not.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU32;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::task::AbortHandle;

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
    id: (usize, u64),
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
    pub(crate) fn identity(&self) -> (usize, u64) {
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
}

struct Entry {
    name: TaskName,
    location: &'static Location<'static>,
    /// When the task was spawned, on sundown's coarse clock (milliseconds, 100 ms
    /// steps): no system clock read per spawn, and enough for an age shown to a human.
    started: u32,
    state: TaskState,
    /// A `#[cancel_safe]` function of this task returned its cancellation: an `Err`
    /// the task then returns is that cancellation propagating, even when the error
    /// type does not expose `Cancelled` through `source()`.
    propagating_cancel: bool,
    abort: Option<AbortHandle>,
}

struct Slot {
    generation: u16,
    next_free: u32,
    entry: Option<Entry>,
}

const NO_SLOT: u32 = u32::MAX;

/// Slots are allocated in chunks of this many, so a growing shard never copies or
/// doubles its storage.
const CHUNK: usize = 256;

#[derive(Default)]
struct Counters {
    completed: u64,
    failed: u64,
    cancelled: u64,
}

struct ShardSlots {
    chunks: Vec<Box<[Slot]>>,
    /// Slots handed out so far (the rest of the last chunk is untouched).
    used: u32,
    free: u32,
    live: usize,
    counters: Counters,
}

impl ShardSlots {
    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot> {
        let i = index as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .take(self.used as usize)
    }

    fn slots_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        let used = self.used as usize;
        self.chunks.iter_mut().flat_map(|c| c.iter_mut()).take(used)
    }

    /// A free slot's index: a recycled one, or the next never-used one.
    fn take_free(&mut self) -> u32 {
        if self.free != NO_SLOT {
            let index = self.free;
            let next = self.slot_mut(index).map_or(NO_SLOT, |s| s.next_free);
            self.free = next;
            return index;
        }
        let index = self.used;
        if index as usize == self.chunks.len() * CHUNK {
            self.chunks.push(
                (0..CHUNK)
                    .map(|_| Slot {
                        generation: 0,
                        next_free: NO_SLOT,
                        entry: None,
                    })
                    .collect(),
            );
        }
        self.used += 1;
        index
    }
}

// Padded so that two shards never share a cache line (128 covers adjacent-line
// prefetching on x86 and the 128-byte lines of some ARM cores).
#[repr(align(128))]
struct Shard(Mutex<ShardSlots>, TaskCells);

/// What a task writes about itself while it runs, without its shard's lock: the await
/// chain it is pending on and when its current poll began. One cell per slot, in
/// chunks of [`CHUNK`] that never move (12 bytes a slot), found from the key through
/// two levels of `OnceLock`s.
struct TaskCells {
    top: [OnceLock<CellDirectory>; CELL_TOP],
}

/// [`CELL_MID`] chunks, each allocated when its first slot is.
type CellDirectory = Box<[OnceLock<Box<CellChunk>>]>;

const CELL_TOP: usize = 64;
const CELL_MID: usize = 256;

struct CellChunk {
    chains: [AtomicU64; CHUNK],
    polls: [AtomicU32; CHUNK],
}

/// One task's cells.
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

impl TaskCells {
    fn new() -> Self {
        TaskCells {
            top: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn split(index: u32) -> (usize, usize, usize) {
        let i = index as usize;
        (i / (CHUNK * CELL_MID), (i / CHUNK) % CELL_MID, i % CHUNK)
    }

    #[inline]
    fn get(&self, index: u32) -> Option<TaskCell<'_>> {
        let (t, m, c) = Self::split(index);
        let chunk = self.top.get(t)?.get()?.get(m)?.get()?;
        Some(TaskCell {
            chain: &chunk.chains[c],
            poll: &chunk.polls[c],
        })
    }

    /// The cell of a new entry, allocated if needed, cleared.
    fn reset(&self, index: u32) {
        let (t, m, c) = Self::split(index);
        let Some(mid) = self.top.get(t) else { return };
        let mid = mid.get_or_init(|| (0..CELL_MID).map(|_| OnceLock::new()).collect());
        let chunk = mid[m].get_or_init(|| {
            Box::new(CellChunk {
                chains: std::array::from_fn(|_| AtomicU64::new(0)),
                polls: std::array::from_fn(|_| AtomicU32::new(0)),
            })
        });
        chunk.chains[c].store(0, Ordering::Relaxed);
        chunk.polls[c].store(0, Ordering::Relaxed);
    }

    fn read(&self, index: u32) -> (Chain, Option<Duration>) {
        match self.get(index) {
            Some(cell) => (
                Chain(cell.chain.load(Ordering::Relaxed)),
                waits::in_poll_for(cell.poll.load(Ordering::Relaxed)),
            ),
            None => (Chain::EMPTY, None),
        }
    }
}

pub(crate) struct Registry {
    shards: Box<[Shard]>,
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
    let hint = HINT.with(|h| {
        let mut v = h.get();
        if v == usize::MAX {
            v = NEXT.fetch_add(1, Ordering::Relaxed);
            h.set(v);
        }
        v
    });
    hint & (count - 1)
}

impl Registry {
    pub(crate) fn new() -> Self {
        let shards = (0..shard_count())
            .map(|_| {
                Shard(
                    Mutex::new(ShardSlots {
                        chunks: Vec::new(),
                        used: 0,
                        free: NO_SLOT,
                        live: 0,
                        counters: Counters::default(),
                    }),
                    TaskCells::new(),
                )
            })
            .collect();
        Registry { shards }
    }

    fn info(&self, shard: usize, index: u32, generation: u16, e: &Entry) -> TaskInfo {
        let (chain, in_poll) = self.shards[shard].1.read(index);
        let key = (u64::from(index) << 32) | ((shard as u64) << 16) | u64::from(generation);
        TaskInfo {
            name: e.name.shown(),
            location: e.location,
            started: waits::coarse_instant(e.started),
            id: (std::ptr::from_ref(self) as usize, key),
            state: e.state,
            chain,
            in_poll,
            tokio_id: e.abort.as_ref().map(AbortHandle::id),
            backtrace: None,
        }
    }

    /// The cells of the live entry `key` (its task writes them without the lock).
    #[inline]
    pub(crate) fn cell(&self, key: SlotKey) -> Option<TaskCell<'_>> {
        self.shards.get(key.shard as usize)?.1.get(key.slot())
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, ShardSlots> {
        // A panic while a shard is locked can only come from the allocator; the data is
        // still consistent (every mutation is a single assignment), so poisoning is ignored.
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(
        &self,
        name: TaskName,
        location: &'static Location<'static>,
        state: TaskState,
    ) -> SlotKey {
        let shard = this_threads_shard(self.shards.len());
        let started = waits::coarse_now();
        let entry = Entry {
            name,
            location,
            started,
            state,
            propagating_cancel: false,
            abort: None,
        };
        let mut slots = self.lock(shard);
        slots.live += 1;
        let index = slots.take_free();
        self.shards[shard].1.reset(index);
        let generation = match slots.slot_mut(index) {
            Some(slot) => {
                slot.entry = Some(entry);
                slot.generation
            }
            None => 0,
        };
        SlotKey {
            index: NonZeroU32::MIN.saturating_add(index),
            shard: shard as u16,
            generation,
        }
    }

    fn with_entry<R>(&self, key: SlotKey, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut slots = self.lock(key.shard as usize);
        let slot = slots.slot_mut(key.slot())?;
        if slot.generation != key.generation {
            return None;
        }
        slot.entry.as_mut().map(f)
    }

    pub(crate) fn set_abort(&self, key: SlotKey, handle: AbortHandle) {
        self.with_entry(key, |e| e.abort = Some(handle));
    }

    pub(crate) fn mark_propagating_cancel(&self, key: SlotKey) {
        self.with_entry(key, |e| e.propagating_cancel = true);
    }

    pub(crate) fn is_propagating_cancel(&self, key: SlotKey) -> bool {
        self.with_entry(key, |e| e.propagating_cancel)
            .unwrap_or(false)
    }

    pub(crate) fn set_state(&self, key: SlotKey, state: TaskState) -> Option<TaskState> {
        self.with_entry(key, |e| std::mem::replace(&mut e.state, state))
    }

    /// Removes the entry and counts how it ended. Returns true when this left the
    /// entry's shard with at most one task: a drain waits for zero tasks, or for one
    /// when its caller is a task of the scope, and the total can only reach that on
    /// such a removal, so only then is a waiting drain worth waking.
    pub(crate) fn remove(&self, key: SlotKey, outcome: Outcome) -> bool {
        let (emptied, abort) = {
            let mut slots = self.lock(key.shard as usize);
            let free = slots.free;
            let Some(slot) = slots.slot_mut(key.slot()) else {
                return false;
            };
            if slot.generation != key.generation {
                return false;
            }
            let Some(entry) = slot.entry.take() else {
                return false;
            };
            slot.generation = slot.generation.wrapping_add(1);
            slot.next_free = free;
            slots.free = key.slot();
            slots.live -= 1;
            let c = &mut slots.counters;
            match outcome {
                Outcome::Completed => c.completed += 1,
                Outcome::Failed => c.failed += 1,
                Outcome::Cancelled => c.cancelled += 1,
            }
            (slots.live <= 1, entry.abort)
        };
        // The abort handle holds a reference to the task; release it outside the lock.
        drop(abort);
        emptied
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for shard in 0..self.shards.len() {
            let slots = self.lock(shard);
            t.live += slots.live as u64;
            t.completed += slots.counters.completed;
            t.failed += slots.counters.failed;
            t.cancelled += slots.counters.cancelled;
        }
        t
    }

    pub(crate) fn live(&self) -> usize {
        (0..self.shards.len()).map(|s| self.lock(s).live).sum()
    }

    pub(crate) fn snapshot_one(&self, key: SlotKey) -> Option<TaskInfo> {
        let mut slots = self.lock(key.shard as usize);
        let slot = slots.slot_mut(key.slot())?;
        if slot.generation != key.generation {
            return None;
        }
        let e = slot.entry.as_ref()?;
        Some(self.info(key.shard as usize, key.slot(), key.generation, e))
    }

    pub(crate) fn snapshot_into(&self, out: &mut Vec<TaskInfo>) {
        for shard in 0..self.shards.len() {
            let slots = self.lock(shard);
            out.extend(slots.slots().enumerate().filter_map(|(i, s)| {
                let e = s.entry.as_ref()?;
                Some(self.info(shard, i as u32, s.generation, e))
            }));
        }
    }

    /// The `n` oldest live tasks (unordered), added to `out`, and how many are live:
    /// what a table of `n` rows needs, without copying a million entries.
    pub(crate) fn oldest_into(&self, n: usize, out: &mut Vec<TaskInfo>) -> usize {
        use std::collections::BinaryHeap;
        // Max-heap on the start time: its top is the youngest of the oldest `n`.
        let mut heap: BinaryHeap<(u32, u16, u32)> = BinaryHeap::with_capacity(n + 1);
        let mut live = 0;
        for shard in 0..self.shards.len() {
            let slots = self.lock(shard);
            live += slots.live;
            for (index, slot) in slots.slots().enumerate() {
                if let Some(e) = &slot.entry {
                    heap.push((e.started, shard as u16, index as u32));
                    if heap.len() > n {
                        heap.pop();
                    }
                }
            }
        }
        for (_, shard, index) in heap {
            let slots = self.lock(shard as usize);
            let i = index as usize;
            if let Some(slot) = slots.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
                && let Some(e) = &slot.entry
            {
                out.push(self.info(shard as usize, index, slot.generation, e));
            }
        }
        live
    }

    /// Whether `key` names a live entry of this registry.
    pub(crate) fn is_live(&self, key: SlotKey) -> bool {
        self.with_entry(key, |_| ()).is_some()
    }

    /// Aborts every live task that has an abort handle, except `spare`; returns how
    /// many.
    pub(crate) fn abort_all(&self, spare: Option<SlotKey>) -> usize {
        let mut handles = Vec::new();
        for shard in 0..self.shards.len() {
            let slots = self.lock(shard);
            for (index, slot) in slots.slots().enumerate() {
                let this = SlotKey {
                    index: NonZeroU32::MIN.saturating_add(index as u32),
                    shard: shard as u16,
                    generation: slot.generation,
                };
                if Some(this) == spare {
                    continue;
                }
                handles.extend(slot.entry.as_ref().and_then(|e| e.abort.clone()));
            }
        }
        // Abort outside the locks: aborting may drop a future that removes its entry.
        for h in &handles {
            h.abort();
        }
        handles.len()
    }

    /// Sets the state of every task still present (blocking: it did not stop when
    /// aborted).
    pub(crate) fn mark_all(&self, state: TaskState) {
        for shard in 0..self.shards.len() {
            let mut slots = self.lock(shard);
            for slot in slots.slots_mut() {
                if let Some(e) = slot.entry.as_mut() {
                    e.state = state;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_counts_and_reuses_slots() {
        let r = Registry::new();
        let loc = Location::caller();
        let a = r.insert(TaskName::Given("a".into()), loc, TaskState::Running);
        let b = r.insert(TaskName::Given("b".into()), loc, TaskState::Running);
        let d = r.insert(TaskName::Given("d".into()), loc, TaskState::Running);
        assert_eq!(r.live(), 3);
        assert_eq!(
            (a.shard, b.shard),
            (d.shard, d.shard),
            "one thread, one shard"
        );
        assert!(
            !r.remove(d, Outcome::Completed),
            "two left: no drain to wake"
        );
        assert!(
            r.remove(a, Outcome::Completed),
            "one left, maybe a drain's caller: wake"
        );
        assert!(!r.remove(a, Outcome::Completed), "a key is removed once");
        let c = r.insert(TaskName::Given("c".into()), loc, TaskState::Running);
        assert_eq!((c.shard, c.slot()), (a.shard, a.slot()), "slot reused");
        assert_ne!(c.generation, a.generation, "with a new generation");
        assert_eq!(
            r.set_state(a, TaskState::Blocking),
            None,
            "stale key ignored"
        );
        r.remove(b, Outcome::Failed);
        assert!(
            r.remove(c, Outcome::Cancelled),
            "the last removal empties the shard"
        );
        let t = r.totals();
        assert_eq!((t.live, t.completed, t.failed, t.cancelled), (0, 2, 1, 1));
    }

    #[test]
    fn twin_tasks_spawned_in_one_tick_are_told_apart() {
        // Same name, same line, same coarse start: still two tasks.
        let r = Registry::new();
        let loc = Location::caller();
        let a = r.insert(TaskName::Given("twin".into()), loc, TaskState::Running);
        let b = r.insert(TaskName::Given("twin".into()), loc, TaskState::Running);
        let (ta, tb) = (r.snapshot_one(a).unwrap(), r.snapshot_one(b).unwrap());
        assert_eq!(ta.started(), tb.started(), "one tick of the coarse clock");
        assert!(!ta.same_task(&tb));
        assert!(ta.same_task(&r.snapshot_one(a).unwrap()));
        r.remove(a, Outcome::Completed);
        let c = r.insert(TaskName::Given("twin".into()), loc, TaskState::Running);
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
    fn snapshot_sees_states() {
        let r = Registry::new();
        let k = r.insert(
            TaskName::Given("x".into()),
            Location::caller(),
            TaskState::Running,
        );
        r.set_state(k, TaskState::CleaningUp);
        let mut v = Vec::new();
        r.snapshot_into(&mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].state(), TaskState::CleaningUp);
        assert_eq!(v[0].name(), "x");
    }
}
