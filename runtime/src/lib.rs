//! # sundown
//!
//! Tokio programs that shut down correctly. `#[graceful_main]` turns `async fn main`
//! into a program that handles SIGINT/SIGTERM, tracks every task it spawns, shuts down
//! in order within a time budget, and exits with a code that says what happened.
//! `#[cancel_safe]` gives an async function a cleanup that runs when it is cancelled,
//! and a cancellation that cannot be swallowed. The runtime underneath —
//! [`Shutdown`] scopes, tracked spawning, [`shield`], [`deadline`] — is usable on its
//! own from `#[tokio::main]` code and from tests.
//!
//! ```
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let scope = sundown::Shutdown::new();
//! let s = scope.clone();
//! scope.spawn_named("poller", async move {
//!     loop {
//!         tokio::select! {
//!             () = s.requested() => break,         // shutdown asked: leave the loop
//!             () = tokio::time::sleep(Duration::from_secs(1)) => { /* poll */ }
//!         }
//!     }
//! });
//! scope.on_close("session", async { /* close the HTTP session */ });
//!
//! let report = scope.shutdown(Duration::from_secs(9)).await;
//! assert_eq!(report.exit_code(), 0);
//! # }
//! ```
//!
//! ## The shutdown sequence
//! 1. readiness goes false ([`is_ready`]), then an optional `delay`;
//! 2. the scope's token is cancelled: [`requested`] resolves, `#[cancel_safe]` bodies
//!    stop at their next await and run their cleanup. That is tracked work (main's body,
//!    tasks spawned through sundown, [`Shutdown::enter`]); in-flight work — code sundown
//!    did not spawn, such as a server's handler tasks — is drained by its owner, so its
//!    `#[cancel_safe]` calls are cut only at the drain deadline (see `#[cancel_safe]`);
//! 3. drain: wait for the tracked tasks until the drain deadline;
//! 4. abort the stragglers; those that do not stop even then block their thread and are
//!    reported as such;
//! 5. close hooks ([`on_close`]) in reverse order, each bounded;
//! 6. report and exit (`#[graceful_main]`).
//!
//! ## Tests and libraries
//! - [`#[sundown::test]`](macro@test): `#[tokio::test]` with a scope; the test fails when a
//!   task had to be aborted, a tracked task failed silently, a close hook failed or
//!   untracked tasks were left alive.
//! - [`Shutdown::join`]: wait for the tracked tasks to finish on their own, without
//!   cancelling (a batch's end), then close.
//! - [`Shutdown::child_named`]: a library's own scope inside the application's, its tasks
//!   listed as `name/task`, shut down with the application or alone.
//!
//! ## Features
//! - `systemd`: `READY=1`, `STOPPING=1` and `WATCHDOG=1` to systemd when
//!   `NOTIFY_SOCKET` is set.
//! - `tracing`: on a thread whose dispatcher has a subscriber, sundown's lines and the
//!   shutdown report are `tracing` events (target `sundown`) instead of stderr lines.
//! - `tower`: the `sundown::http` module, HTTP requests as tracked units of the scope (a
//!   `tower` `Layer`) and a readiness service for load balancers.
//! - `taskdump` (needs `RUSTFLAGS="--cfg tokio_unstable"`, Linux): the straggler report
//!   adds tokio's async backtrace of each straggler ([`TaskInfo::backtrace`]). Free until
//!   a shutdown has stragglers; then one `Handle::dump`, which pauses every worker and
//!   polls every task in tracing mode, bounded by 200 ms and by half of what the drain
//!   left of the budget (it cannot finish while a worker is blocked).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The attribute docs show the `fn main` the expansion writes, on purpose.
#![allow(clippy::needless_doctest_main)]

// The modules in layers; each uses only modules of the layers before it:
// 1. sync, text, duration, budget: leaves;
// 2. waits, error, registry, report, output: where tasks wait, what tasks and shutdowns are,
//    and where lines go;
// 3. lifecycle, close, scope: one scope's state and the rules that read it;
// 4. probe, task (ambient context, guard, spawning), shield, cancel_safe;
// 5. taskdump (a feature), sequence, handle: the steps, and what a `Shutdown` runs;
// 6. process: `#[graceful_main]`'s runner. (`python3 ../shared/tools/module_cycles.py`
//    checks there is no cycle.)
mod budget;
mod cancel_safe;
mod close;
mod duration;
mod error;
pub mod guide;
mod handle;
mod lifecycle;
mod output;
mod probe;
mod process;
mod registry;
mod report;
mod scope;
mod sequence;
mod shield;
mod spawn_proof;
mod sync;
mod task;
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
mod taskdump;
mod testing;
mod text;
mod waits;

// Above the scope and the task context: HTTP requests as in-flight work of a scope.
#[cfg(feature = "tower")]
pub mod http;

use std::borrow::Cow;
use std::future::Future;

use tokio::task::JoinHandle;

use crate::task::ambient;

pub use error::{Cancelled, Cause, TimedOut};
pub use registry::{Stats, TaskInfo, TaskState};
pub use report::{
    CleanupLoss, CloseOutcome, CloseResult, DroppedCleanup, Failure, FailureKind, Report, Step,
    StepTiming,
};
pub use scope::{FailurePolicy, Shutdown};
pub use shield::{deadline, shield};
pub use tokio_util::sync::CancellationToken;
pub use waits::AwaitSite;

/// Spawns a tracked task on the ambient scope (see [`Shutdown::spawn`]). Outside any
/// scope the task still runs, untracked, and a line says so.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.enter(async {
///     let h = sundown::spawn(async { 1 + 1 });
///     assert_eq!(h.await.unwrap(), 2);
/// }).await;
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    task::spawn_on_ambient(
        Some("spawn"),
        task::TaskName::of_type::<F>(),
        fut,
        probe::AnyOutput,
        false,
    )
}

/// [`spawn`] with a name for the task table and the straggler report.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.enter(async {
///     let _h = sundown::spawn_named("heartbeat", std::future::pending::<()>());
/// }).await;
/// assert_eq!(scope.tasks()[0].name(), "heartbeat");
/// # }
/// ```
#[track_caller]
pub fn spawn_named<F>(name: impl Into<Cow<'static, str>>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    task::spawn_on_ambient(
        Some("spawn_named"),
        task::TaskName::Given(name.into()),
        fut,
        probe::AnyOutput,
        false,
    )
}

/// Runs a blocking closure as a tracked task of the ambient scope (see
/// [`Shutdown::spawn_blocking`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let n = scope.enter(async { sundown::spawn_blocking(|| 6 * 7).await.unwrap() }).await;
/// assert_eq!(n, 42);
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    task::spawn_blocking_on_ambient(
        Some("spawn_blocking"),
        task::TaskName::of_type::<F>(),
        f,
        probe::AnyOutput,
        false,
    )
}

/// Resolves when the ambient scope's shutdown is requested. Inside [`shield`] it
/// resolves only at the hard deadline; outside any scope, never. `Send + 'static`, so
/// it can be handed to `with_graceful_shutdown`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let requested = scope.enter(async { sundown::requested() }).await;
/// scope.trigger("test");
/// requested.await;
/// # }
/// ```
pub fn requested() -> impl Future<Output = ()> + Send + 'static {
    let token = ambient::current().map(|a| a.scope.waiter(a.shielded).clone());
    async move {
        match token {
            Some(t) => t.cancelled_owned().await,
            None => std::future::pending().await,
        }
    }
}

/// Whether the ambient scope's shutdown was requested (false outside any scope, and
/// inside [`shield`] until the hard deadline).
///
/// ```
/// assert!(!sundown::is_requested());
/// ```
pub fn is_requested() -> bool {
    ambient::current().is_some_and(|a| a.scope.is_cancelled_for(a.shielded))
}

/// Whether the ambient scope is ready (true outside any scope): false from the first
/// signal on, before any `delay`. Drive a readiness endpoint with it.
///
/// ```
/// assert!(sundown::is_ready());
/// ```
pub fn is_ready() -> bool {
    ambient::current().is_none_or(|a| a.scope.is_ready())
}

/// Registers a close hook on the ambient scope (see [`Shutdown::on_close`]). Outside any
/// scope the hook cannot run at shutdown; a line says so.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.enter(async { sundown::on_close("pool", async {}) }).await;
/// let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
/// assert_eq!(report.closes()[0].name(), "pool");
/// # }
/// ```
pub fn on_close(
    name: impl Into<Cow<'static, str>>,
    fut: impl Future<Output = ()> + Send + 'static,
) {
    match ambient::current_scope() {
        Some(scope) => scope.on_close(name, fut),
        None => hook_without_scope("on_close", &name.into()),
    }
}

/// Registers a close hook with a bound of its own on the ambient scope (see
/// [`Shutdown::on_close_within`]): `bound` is kept back from the drain for it.
///
/// ```
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.enter(async {
///     sundown::on_close_within("journal", Duration::from_secs(2), async { /* fsync */ })
/// }).await;
/// let report = scope.shutdown(Duration::from_secs(9)).await;
/// assert_eq!(report.closes()[0].name(), "journal");
/// # }
/// ```
pub fn on_close_within(
    name: impl Into<Cow<'static, str>>,
    bound: std::time::Duration,
    fut: impl Future<Output = ()> + Send + 'static,
) {
    match ambient::current_scope() {
        Some(scope) => scope.on_close_within(name, bound, fut),
        None => hook_without_scope("on_close_within", &name.into()),
    }
}

fn hook_without_scope(what: &str, name: &str) {
    output::line(&format!(
        "sundown::{what}(\"{}\") called outside any shutdown scope: the hook will not run \
         (use #[graceful_main], Shutdown::enter, or a Shutdown's own {what})",
        text::Shown(name)
    ));
}

#[doc = include_str!("graceful_main_docs.md")]
#[doc(inline)]
pub use sundown_macros::graceful_main;

#[doc = include_str!("cancel_safe_docs.md")]
#[doc(inline)]
pub use sundown_macros::cancel_safe;

/// Makes a plain `async fn`'s `.await`s record where they wait, so the task table, the
/// straggler report and [`deadline`]'s error can name the line a task is stuck on.
/// Nothing else changes: no cancellation, no tracking (`#[graceful_main]` and
/// `#[cancel_safe]` already record their own awaits and those of the closures and async
/// blocks written in them).
///
/// A function without it shows its nearest recorded caller's await; nested recorded
/// calls show as a short chain, `handle_upload -> fetch_user -> pool.acquire()`.
/// Cost: a thread-local read per poll of each await, and a thread-local write when it is
/// pending (`BENCHMARKS.md`). Argument: `crate = "path"` for a renamed dependency.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[sundown::track_awaits]
/// async fn fetch_user(pool: &tokio::sync::Semaphore) {
///     let _permit = pool.acquire().await;
/// }
///
/// let pool = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
/// let scope = sundown::Shutdown::new();
/// let p = pool.clone();
/// let _h = scope.spawn(async move { fetch_user(&p).await });
/// tokio::task::yield_now().await;
/// let site = scope.tasks()[0].waiting_at().unwrap();
/// assert_eq!(site.expr(), "pool.acquire()");
/// # }
/// ```
#[doc(inline)]
pub use sundown_macros::track_awaits;

#[doc = include_str!("test_docs.md")]
#[doc(inline)]
pub use sundown_macros::test;

/// What the attributes' expansion calls. Not public API: no semver guarantees.
#[doc(hidden)]
pub mod __private {
    pub use crate::cancel_safe::{
        CancelSite, CancellableReturn, Cancellation, Race, TokenChoice, TokenSource, Watcher,
        assert_cancellable, precheck, race,
    };
    /// Waits (bounded) for sundown's queued stderr lines to be written: a test's child
    /// process that ends without the process runner calls it before it exits.
    pub use crate::output::flush as flush_output;
    pub use crate::output::report as emit_report;
    pub use crate::probe::{
        ArgumentProbe, Classify, FnOutput, NotATask, OutputProbe, ViaAnyOutput, ViaDebug,
        ViaDynError, ViaFunctionArgument, ViaFutureArgument, ViaNever, ViaOtherArgument,
        ViaSendSyncError, ViaStdError, probe_argument, probe_declared, probe_fn, probe_fn_as,
        probe_future, probe_future_as,
    };
    pub use crate::process::{ExitMode, Flavor, MainConfig, run_main};
    pub use crate::registry::TaskOutcome;
    pub use crate::scope::FailurePolicy;
    pub use crate::spawn_proof::{
        ProvenTokioSpawn, ProvenTokioSpawnBlocking, SpawnProof, SpawnReceiver, SundownSpawn,
        SundownSpawnBlocking, TokioHandle, TokioHandleSpawn, UnprovenSpawn, UnprovenSpawnBlocking,
        UntrackedReceiver, sundown_spawn, sundown_spawn_blocking, tokio_spawn,
        tokio_spawn_blocking,
    };
    pub use crate::testing::{TestConfig, run_test, test_runtime};
    pub use crate::waits::{At, AwaitSite, at};
    pub use tokio_util::sync::CancellationToken;

    use std::future::Future;
    use tokio::task::JoinHandle;

    /// A rewritten `tokio::spawn`: tracked on the ambient scope, named by the macro.
    #[track_caller]
    pub fn spawn_tracked<F>(
        name: &'static str,
        detached: bool,
        fut: F,
        classify: impl Classify<F::Output>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::task::spawn_on_ambient(
            None,
            crate::task::TaskName::Given(name.into()),
            fut,
            classify,
            detached,
        )
    }

    /// The closure of a rewritten `tokio::task::spawn_blocking`, unchanged: applied to
    /// the user's own expression, so that a closure which is not `Send` is reported
    /// there rather than at the attribute.
    #[inline]
    pub fn blocking_task<F, R>(f: F) -> F
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        f
    }

    /// A rewritten `tokio::task::spawn_blocking`.
    #[track_caller]
    pub fn spawn_blocking_tracked<F, R>(
        name: &'static str,
        detached: bool,
        f: F,
        classify: impl Classify<R>,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::task::spawn_blocking_on_ambient(
            None,
            crate::task::TaskName::Given(name.into()),
            f,
            classify,
            detached,
        )
    }

    /// Referenced, at the user's `spawn`, for each spawn in a macro's input that the
    /// attributes cannot parse: the deprecation note is the warning the user sees.
    #[deprecated(
        note = "this spawn is inside a macro whose input sundown cannot parse, so the task is \
                not tracked and shutdown will not wait for it: spawn before the macro and pass \
                the handle in, or write the callee in parentheses, `(spawn)(task)`, to leave it \
                untracked without this warning"
    )]
    pub fn spawn_in_macro_is_not_tracked() {}
}
