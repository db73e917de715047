//! Where tasks wait: the await sites the attributes record, the per-thread trail a
//! task's poll leaves, the coarse clock that times polls, and debug mode's settings.
//!
//! Each `.await` the attributes rewrite has a `static` [`AwaitSite`]. When the awaited
//! future returns `Pending`, its site is noted in a thread-local trail: no lock, no
//! shared write. The innermost pending site starts the trail; the sites that return
//! `Pending` after it and were entered before it are its callers, and are added as the
//! chain grows outwards. A sibling branch of a `join!` that returns `Pending` later was
//! entered later and is left out, so the chain is one path. When a tracked task's
//! top-level poll returns `Pending`, its wrapper stores the chain (four 15-bit site ids
//! in one `u64`) in the task's registry cell with one relaxed store.
//!
//! The clock is a millisecond count a thread of sundown's advances every
//! [`TICK`]: a poll reads it (one relaxed load) instead of the system clock, and the
//! task table compares it with the poll's start to show `blocking for`.

use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

/// One `.await` in annotated code: where it is and what it awaits. Built by the
/// attributes as a `static`, one per `.await`; the task table shows the innermost
/// site each task is waiting on ([`TaskInfo::waiting_at`](crate::TaskInfo::waiting_at)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[sundown::track_awaits]
/// async fn wait_forever() {
///     std::future::pending::<()>().await
/// }
///
/// let scope = sundown::Shutdown::new();
/// let _h = scope.spawn(wait_forever());
/// tokio::task::yield_now().await;
/// let site = scope.tasks()[0].waiting_at().unwrap();
/// assert_eq!(site.expr(), "std::future::pending::<()>()");
/// assert!(site.location().file().ends_with(".rs"));
/// # }
/// ```
#[derive(Debug)]
pub struct AwaitSite {
    location: &'static Location<'static>,
    expr: &'static str,
    /// 0 until the site first returns `Pending`; then its index in [`SITES`] plus one,
    /// or [`NO_ID`] when the table is full.
    id: AtomicU32,
}

const NO_ID: u32 = u32::MAX;
/// Site ids are 15 bits (the 16th marks a cut chain): the table's size.
const MAX_SITES: usize = 0x7FFF;
const ELIDED: u64 = 0x8000 << 48;

static SITES: Mutex<Vec<&'static AwaitSite>> = Mutex::new(Vec::new());

impl AwaitSite {
    #[doc(hidden)]
    pub const fn new(location: &'static Location<'static>, expr: &'static str) -> Self {
        AwaitSite {
            location,
            expr,
            id: AtomicU32::new(0),
        }
    }

    /// Where the `.await` is: the user's `file:line:col`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #[sundown::track_awaits]
    /// async fn stuck() { std::future::pending::<()>().await }
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(stuck());
    /// tokio::task::yield_now().await;
    /// let line = scope.tasks()[0].waiting_at().unwrap().location().line();
    /// assert_eq!(line, line!() - 5);
    /// # }
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// The awaited expression as written, cut to about 60 characters.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #[sundown::track_awaits]
    /// async fn stuck(lock: std::sync::Arc<tokio::sync::Mutex<()>>) {
    ///     let _held = lock.lock().await;
    /// }
    /// let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    /// let _held = lock.lock().await;
    /// let scope = sundown::Shutdown::new();
    /// let _h = scope.spawn(stuck(lock.clone()));
    /// tokio::task::yield_now().await;
    /// assert_eq!(scope.tasks()[0].waiting_at().unwrap().expr(), "lock.lock()");
    /// # }
    /// ```
    pub fn expr(&self) -> &'static str {
        self.expr
    }

    /// What a caller's site shows in a chain: the called function's name
    /// (`fetch_user(id)` → `fetch_user`, `self.db.get(k)` → `get`).
    pub(crate) fn callee(&self) -> &'static str {
        let head = self.expr.split('(').next().unwrap_or(self.expr);
        let head = head.split("::<").next().unwrap_or(head);
        let last = head.rsplit(['.', ':']).next().unwrap_or(head).trim();
        if last.is_empty() { self.expr } else { last }
    }

    /// The site's id, assigned the first time it is needed.
    #[inline]
    fn id(&'static self) -> u16 {
        match self.id.load(Ordering::Relaxed) {
            0 => self.register(),
            NO_ID => 0,
            id => id as u16,
        }
    }

    #[cold]
    fn register(&'static self) -> u16 {
        let mut sites = crate::sync::lock(&SITES);
        // Another thread may have registered it while this one waited.
        match self.id.load(Ordering::Relaxed) {
            0 => {}
            NO_ID => return 0,
            id => return id as u16,
        }
        if sites.len() >= MAX_SITES {
            self.id.store(NO_ID, Ordering::Relaxed);
            return 0;
        }
        sites.push(self);
        let id = sites.len() as u32;
        self.id.store(id, Ordering::Relaxed);
        id as u16
    }
}

impl fmt::Display for AwaitSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} {}",
            self.location.file(),
            self.location.line(),
            self.expr
        )
    }
}

/// The chain of await sites a task was last pending on, packed: four 16-bit slots,
/// innermost first; the outermost slot's top bit marks a chain cut in the middle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Chain(pub(crate) u64);

impl Chain {
    pub(crate) const EMPTY: Chain = Chain(0);

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The sites, outermost first, and whether callers were left out in the middle.
    pub(crate) fn sites(self) -> (Vec<&'static AwaitSite>, bool) {
        if self.0 == 0 {
            return (Vec::new(), false);
        }
        let table = crate::sync::lock(&SITES);
        let mut out: Vec<&'static AwaitSite> = (0..4)
            .map(|i| ((self.0 >> (16 * i)) & 0x7FFF) as usize)
            .filter(|&id| id != 0)
            .filter_map(|id| table.get(id - 1).copied())
            .collect();
        out.reverse();
        (out, self.0 & ELIDED != 0)
    }
}

/// What one top-level poll of a task has noted so far, on this thread.
#[derive(Clone, Copy)]
struct Trail {
    /// Ticks once per noted `Pending`: orders "entered before" against "returned".
    clock: u32,
    /// The clock when the chain's innermost site was entered.
    start: u32,
    chain: u64,
    len: u8,
}

const FRESH: Trail = Trail {
    clock: 0,
    start: 0,
    chain: 0,
    len: 0,
};

thread_local! {
    static TRAIL: Cell<Trail> = const { Cell::new(FRESH) };
}

/// Read before polling a recorded await: the mark its `Pending` is placed by.
#[inline]
pub(crate) fn mark() -> u32 {
    TRAIL.try_with(|t| t.get().clock).unwrap_or(0)
}

/// A recorded await entered at `entered` returned `Pending`.
#[inline]
pub(crate) fn note_pending(site: &'static AwaitSite, entered: u32) {
    let id = u64::from(site.id());
    let _ = TRAIL.try_with(|t| {
        let mut s = t.get();
        if s.len == 0 {
            s.start = entered;
            s.chain = id;
            s.len = 1;
        } else if entered <= s.start && id != 0 {
            // A caller of the chain: entered before its innermost site.
            if s.len < 4 {
                s.chain |= id << (16 * u32::from(s.len));
                s.len += 1;
            } else {
                s.chain = (s.chain & !(0xFFFF << 48)) | (id << 48) | ELIDED;
            }
        }
        s.clock = s.clock.wrapping_add(1);
        t.set(s);
    });
}

/// A tracked task's top-level poll begins: a fresh trail, the enclosing one kept.
#[inline]
pub(crate) fn begin_poll() -> u64 {
    TRAIL
        .try_with(|t| {
            let saved = t.replace(FRESH);
            pack_saved(saved)
        })
        .unwrap_or(0)
}

/// The poll ended: the chain it noted (empty if none), and the enclosing trail back.
#[inline]
pub(crate) fn end_poll(saved: u64) -> Chain {
    TRAIL
        .try_with(|t| {
            let here = t.replace(unpack_saved(saved));
            Chain(here.chain)
        })
        .unwrap_or(Chain::EMPTY)
}

// A trail is only saved when tasks are polled inside one another's polls (a
// `block_on` in a task): what matters is that the outer chain is kept whole.
fn pack_saved(t: Trail) -> u64 {
    if t.len == 0 { 0 } else { t.chain }
}

fn unpack_saved(saved: u64) -> Trail {
    if saved == 0 {
        return FRESH;
    }
    let len = (0..4).filter(|i| (saved >> (16 * i)) & 0xFFFF != 0).count() as u8;
    Trail {
        clock: 1,
        start: 0,
        chain: saved,
        len,
    }
}

/// Runs one poll of a [`deadline`](crate::deadline)'s future on a trail of its own:
/// returns the chain that future was left pending on, and hands that chain on to the
/// enclosing trail as if noted there, so the task's own chain still runs through it.
pub(crate) fn poll_apart<R>(poll: impl FnOnce() -> Poll<R>) -> (Poll<R>, Chain) {
    let Ok(outer) = TRAIL.try_with(|t| t.replace(FRESH)) else {
        return (poll(), Chain::EMPTY);
    };
    let polled = poll();
    let inner = TRAIL.try_with(|t| t.get()).unwrap_or(FRESH);
    let mut merged = outer;
    let chain = if polled.is_pending() && inner.len > 0 {
        if outer.len == 0 {
            // Entered now: after every caller's mark, before any later sibling's.
            merged.start = outer.clock;
            merged.chain = inner.chain;
            merged.len = inner.len;
        }
        merged.clock = outer.clock.wrapping_add(1);
        Chain(inner.chain)
    } else {
        Chain::EMPTY
    };
    let _ = TRAIL.try_with(|t| t.set(merged));
    (polled, chain)
}

pin_project_lite::pin_project! {
    /// `f.await` at a recorded site: `f` polled, and its site noted when it is pending.
    #[doc(hidden)]
    pub struct At<F> {
        #[pin]
        fut: F,
        site: &'static AwaitSite,
    }
}

/// A recorded `.await`: what the attributes write for `EXPR.await`.
#[doc(hidden)]
#[inline]
pub fn at<F: std::future::IntoFuture>(f: F, site: &'static AwaitSite) -> At<F::IntoFuture> {
    At {
        fut: f.into_future(),
        site,
    }
}

impl<F: std::future::Future> std::future::Future for At<F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let entered = mark();
        let polled = this.fut.poll(cx);
        if polled.is_pending() {
            note_pending(this.site, entered);
        }
        polled
    }
}

// ---------------------------------------------------------------------------------------
// The coarse clock

/// How often the clock advances: the precision of `blocking for`.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Milliseconds since [`clock_base`], as of the last tick (at least 1).
static NOW_MS: AtomicU32 = AtomicU32::new(1);

fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Starts the clock's thread (once) and reads the debug settings from the environment.
/// The first call returns the line to print about a setting that could not be read.
pub(crate) fn start() -> Option<String> {
    static STARTED: OnceLock<()> = OnceLock::new();
    let mut complaint = None;
    STARTED.get_or_init(|| {
        let base = clock_base();
        complaint = read_debug_env();
        let _ = std::thread::Builder::new()
            .name("sundown-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    NOW_MS.store(ms_since(base, Instant::now()), Ordering::Relaxed);
                }
            });
    });
    complaint
}

fn ms_since(base: Instant, now: Instant) -> u32 {
    u32::try_from(now.saturating_duration_since(base).as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The instant a [`coarse_now`] reading stands for.
pub(crate) fn coarse_instant(ms: u32) -> Instant {
    clock_base() + Duration::from_millis(u64::from(ms))
}

/// The coarse now: one relaxed load. Never 0 (0 means "not in a poll").
#[inline]
pub(crate) fn coarse_now() -> u32 {
    NOW_MS.load(Ordering::Relaxed)
}

/// How long a poll that started at `started` (a [`coarse_now`]) has lasted, as of the
/// last tick; `None` when the task is not inside a poll.
pub(crate) fn in_poll_for(started: u32) -> Option<Duration> {
    (started != 0).then(|| Duration::from_millis(u64::from(coarse_now().saturating_sub(started))))
}

/// A task inside one poll for longer than this is shown as `blocking for`.
pub(crate) const BLOCKING_SHOWN_AFTER: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Debug mode

static DEBUG: AtomicBool = AtomicBool::new(false);
static SLOW_POLL_MICROS: AtomicU64 = AtomicU64::new(100_000);

/// The environment variable that turns debug mode on (`1`, `true`, `yes`, `on`).
pub(crate) const DEBUG_VAR: &str = "SUNDOWN_DEBUG";
/// The environment variable that sets the slow-poll threshold (`50ms`, `1s`).
pub(crate) const SLOW_POLL_VAR: &str = "SUNDOWN_SLOW_POLL";

fn read_debug_env() -> Option<String> {
    if let Ok(v) = std::env::var(DEBUG_VAR)
        && matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    {
        DEBUG.store(true, Ordering::Relaxed);
    }
    let v = std::env::var(SLOW_POLL_VAR).ok()?;
    match crate::duration::parse(v.trim()) {
        Ok(d) => {
            set_slow_poll(d);
            None
        }
        Err(why) => Some(format!(
            "{SLOW_POLL_VAR}=\"{v}\" is not a valid duration ({why}); using {}",
            crate::duration::Human(slow_poll())
        )),
    }
}

/// Turns debug mode on (`debug = true` on the attribute).
pub(crate) fn enable_debug() -> Option<String> {
    let complaint = start();
    DEBUG.store(true, Ordering::Relaxed);
    complaint
}

/// Whether debug mode is on: one relaxed load.
#[inline]
pub(crate) fn debug() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub(crate) fn set_slow_poll(d: Duration) {
    SLOW_POLL_MICROS.store(
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The slow-poll threshold.
pub(crate) fn slow_poll() -> Duration {
    Duration::from_micros(SLOW_POLL_MICROS.load(Ordering::Relaxed))
}

/// Slow-poll warnings printed in one second before the rest are only counted.
const WARNINGS_PER_SECOND: u32 = 10;

struct RateLimit {
    window: Option<Instant>,
    printed: u32,
    suppressed: u64,
}

static WARNINGS: Mutex<RateLimit> = Mutex::new(RateLimit {
    window: None,
    printed: 0,
    suppressed: 0,
});

/// Whether a slow-poll warning may be printed now, and how many were held back since
/// the last one printed.
pub(crate) fn may_warn() -> Option<u64> {
    let mut w = crate::sync::lock(&WARNINGS);
    let now = Instant::now();
    if w.window
        .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
    {
        w.window = Some(now);
        w.printed = 0;
    }
    if w.printed >= WARNINGS_PER_SECOND {
        w.suppressed += 1;
        return None;
    }
    w.printed += 1;
    Some(std::mem::take(&mut w.suppressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    static INNER: AwaitSite = AwaitSite::new(Location::caller(), "pool.acquire()");
    static MIDDLE: AwaitSite = AwaitSite::new(Location::caller(), "fetch_user(id)");
    static OUTER: AwaitSite = AwaitSite::new(Location::caller(), "self.handle_upload(req)");
    static SIBLING: AwaitSite = AwaitSite::new(Location::caller(), "other()");

    fn texts(chain: Chain) -> Vec<&'static str> {
        chain.sites().0.iter().map(|s| s.expr()).collect()
    }

    #[test]
    fn callers_join_the_chain_and_a_later_sibling_does_not() {
        let saved = begin_poll();
        let outer = mark();
        let middle = mark();
        let inner = mark();
        note_pending(&INNER, inner);
        // A sibling branch (a `join!`'s second future) entered after the inner site.
        let sibling = mark();
        note_pending(&SIBLING, sibling);
        note_pending(&MIDDLE, middle);
        note_pending(&OUTER, outer);
        let chain = end_poll(saved);
        assert_eq!(
            texts(chain),
            [
                "self.handle_upload(req)",
                "fetch_user(id)",
                "pool.acquire()"
            ]
        );
        assert_eq!(OUTER.callee(), "handle_upload");
        assert_eq!(MIDDLE.callee(), "fetch_user");
    }

    #[test]
    fn a_poll_that_notes_nothing_has_an_empty_chain() {
        let saved = begin_poll();
        assert!(end_poll(saved).is_empty());
    }

    #[test]
    fn a_deep_chain_keeps_the_innermost_and_the_outermost() {
        static SITES5: [AwaitSite; 5] = [
            AwaitSite::new(Location::caller(), "a()"),
            AwaitSite::new(Location::caller(), "b()"),
            AwaitSite::new(Location::caller(), "c()"),
            AwaitSite::new(Location::caller(), "d()"),
            AwaitSite::new(Location::caller(), "e()"),
        ];
        let saved = begin_poll();
        let marks: Vec<u32> = (0..5).map(|_| mark()).collect();
        for i in (0..5).rev() {
            note_pending(&SITES5[i], marks[i]);
        }
        let (sites, cut) = end_poll(saved).sites();
        let texts: Vec<_> = sites.iter().map(|s| s.expr()).collect();
        assert_eq!(texts, ["a()", "c()", "d()", "e()"]);
        assert!(cut);
    }
}

#[cfg(test)]
mod apart_tests {
    use super::*;

    static STUCK: AwaitSite = AwaitSite::new(Location::caller(), "lock.lock()");
    static CALLER: AwaitSite = AwaitSite::new(Location::caller(), "deadline(..)");

    #[test]
    fn a_deadline_sees_its_own_chain_each_poll_and_the_task_sees_it_too() {
        let saved = begin_poll();
        for _ in 0..3 {
            let caller = mark();
            let (polled, chain) = poll_apart(|| {
                let m = mark();
                note_pending(&STUCK, m);
                Poll::<()>::Pending
            });
            assert!(polled.is_pending());
            let texts: Vec<_> = chain.sites().0.iter().map(|s| s.expr()).collect();
            assert_eq!(texts, ["lock.lock()"]);
            note_pending(&CALLER, caller);
        }
        let (sites, _) = end_poll(saved).sites();
        let texts: Vec<_> = sites.iter().map(|s| s.expr()).collect();
        assert_eq!(texts, ["deadline(..)", "lock.lock()"]);
    }
}
