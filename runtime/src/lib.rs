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
//!    stop at their next await and run their cleanup;
//! 3. drain: wait for the tracked tasks until the drain deadline;
//! 4. abort the stragglers; those that do not stop even then block their thread and are
//!    reported as such;
//! 5. close hooks ([`on_close`]) in reverse order, each bounded;
//! 6. report and exit (`#[graceful_main]`).
//!
//! ## Features
//! - `systemd`: `READY=1`, `STOPPING=1` and `WATCHDOG=1` to systemd when
//!   `NOTIFY_SOCKET` is set.
//! - `tracing`: with a subscriber installed, sundown's lines and the shutdown report are
//!   `tracing` events (target `sundown`) instead of stderr lines.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The attribute docs show the `fn main` the expansion writes, on purpose.
#![allow(clippy::needless_doctest_main)]

mod ambient;
mod cancel_safe;
mod duration;
mod error;
mod guard;
pub mod guide;
mod mailbox;
mod main_runner;
mod output;
mod probe;
mod registry;
mod report;
mod scope;
mod sequence;
mod signals;
mod systemd;
mod task;

use std::borrow::Cow;
use std::future::Future;

use tokio::task::JoinHandle;

pub use error::{Cancelled, Cause, TimedOut};
pub use guard::{deadline, shield};
pub use registry::{TaskInfo, TaskState};
pub use report::{
    CleanupLoss, CloseOutcome, CloseResult, DroppedCleanup, Failure, FailureKind, Report, Step,
    StepTiming,
};
pub use scope::{Shutdown, Stats};
pub use tokio_util::sync::CancellationToken;

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
    let token = ambient::current().map(|a| {
        if a.shielded {
            a.scope.inner.hard.clone()
        } else {
            a.scope.inner.soft.clone()
        }
    });
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
    ambient::current().is_some_and(|a| {
        if a.shielded {
            a.scope.inner.hard.is_cancelled()
        } else {
            a.scope.is_requested()
        }
    })
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
        None => output::line(&format!(
            "sundown::on_close(\"{}\") called outside any shutdown scope: the hook will not run \
             (use #[graceful_main], Shutdown::enter, or a Shutdown's own on_close)",
            name.into()
        )),
    }
}

#[doc = include_str!("graceful_main_docs.md")]
#[doc(inline)]
pub use sundown_macros::graceful_main;

#[doc = include_str!("cancel_safe_docs.md")]
#[doc(inline)]
pub use sundown_macros::cancel_safe;

/// What the attributes' expansion calls. Not public API: no semver guarantees.
#[doc(hidden)]
pub mod __private {
    pub use crate::cancel_safe::{
        CancelSite, CancellableReturn, Cancellation, Race, TokenChoice, TokenSource, Watcher,
        assert_cancellable, race,
    };
    pub use crate::main_runner::{ExitMode, Flavor, MainConfig, run_main};
    pub use crate::output::report as emit_report;
    pub use crate::probe::{
        ArgumentProbe, Classify, FnOutput, NotATask, OutputProbe, ViaAnyOutput, ViaDebug,
        ViaDynError, ViaFunctionArgument, ViaFutureArgument, ViaNever, ViaOtherArgument,
        ViaSendSyncError, ViaStdError, probe_argument, probe_fn, probe_fn_as, probe_future,
        probe_future_as,
    };
    pub use crate::scope::FailurePolicy;
    pub use crate::task::TaskOutcome;
    pub use spawn_proof::{
        ProvenTokioSpawn, ProvenTokioSpawnBlocking, SpawnProof, SpawnReceiver, TokioHandle,
        TokioHandleSpawn, UnprovenSpawn, UnprovenSpawnBlocking, UntrackedReceiver, tokio_spawn,
        tokio_spawn_blocking,
    };
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

    /// Spawns the macro sees but cannot recognise by their path: an imported or renamed
    /// `spawn` (`use tokio::spawn; spawn(x)`, `task::spawn(x)`) and `.spawn(x)` on a
    /// runtime handle. The types decide, by autoref dispatch like the output probe: a
    /// callee whose type is tokio's own `spawn` function is tracked, any other is called
    /// as written and its call is flagged by the deprecation lint at the user's span; a
    /// receiver whose type is tokio's `Handle` spawns a tracked task on that handle.
    pub mod spawn_proof {
        use super::{Classify, JoinHandle};
        use crate::task::TaskName;
        use std::future::Future;
        use std::marker::PhantomData;
        use std::pin::Pin;

        pub use tokio::runtime::Handle as TokioHandle;
        /// The function a proven callee must be (the same item as `tokio::task::spawn`).
        pub use tokio::spawn as tokio_spawn;
        /// The function a proven blocking callee must be.
        pub use tokio::task::spawn_blocking as tokio_spawn_blocking;

        /// The future tokio's `spawn` is instantiated with when a callee is not it, so that
        /// the comparison leaves no type to infer.
        type Unused = std::future::Ready<()>;

        /// Two function types, compared by method resolution: the same type means the
        /// callee is tokio's function.
        pub struct SpawnProof<A, B>(PhantomData<Compared<A, B>>);

        /// What a proof compares, held by type only.
        type Compared<A, B> = (fn() -> A, fn() -> B);

        impl<A, B> SpawnProof<A, B> {
            /// Compares the callee's type with tokio's function's.
            pub fn new(_callee: &A, _tokio: B) -> Self {
                SpawnProof(PhantomData)
            }
        }

        /// The callee is tokio's `spawn`: tracked on the ambient scope, as `tokio::spawn`
        /// written out in full is.
        pub trait ProvenTokioSpawn {
            /// Spawns `fut` tracked; `call` (the user's call) only fixes its types.
            #[track_caller]
            fn spawn_future<F, G, K, C>(
                &self,
                name: &'static str,
                detached: bool,
                fut: F,
                call: G,
                classify: K,
            ) -> JoinHandle<F::Output>
            where
                F: Future + Send + 'static,
                F::Output: Send + 'static,
                G: FnOnce(F) -> JoinHandle<F::Output>,
                K: FnOnce() -> C,
                C: Classify<F::Output>,
            {
                let _ = call;
                super::spawn_tracked(name, detached, fut, classify())
            }
        }

        impl<T> ProvenTokioSpawn for &SpawnProof<T, T> {}

        /// The callee is not tokio's `spawn` as far as its type shows: called as written.
        pub trait UnprovenSpawn<B> {
            /// Calls the user's function; the deprecation note is the warning the user sees.
            #[deprecated(
                note = "sundown cannot tell that this `spawn` is tokio's, so the task is not \
                        tracked and shutdown will not wait for it: call `tokio::spawn` (or \
                        `sundown::spawn`) to track it, or write the callee in parentheses, \
                        `(spawn)(task)`, to leave it untracked without this warning"
            )]
            fn spawn_future<X, R, G, K>(
                &self,
                name: &'static str,
                detached: bool,
                argument: X,
                call: G,
                classify: K,
            ) -> R
            where
                G: FnOnce(X) -> R,
                B: FnOnce(Unused) -> JoinHandle<()>,
            {
                let _ = (name, detached, classify);
                call(argument)
            }
        }

        impl<A, B> UnprovenSpawn<B> for SpawnProof<A, B> {}

        /// The callee is tokio's `spawn_blocking`: tracked on the ambient scope.
        pub trait ProvenTokioSpawnBlocking {
            /// Runs `f` as a tracked blocking task; `call` only fixes its types.
            #[track_caller]
            fn spawn_function<F, R, G, K, C>(
                &self,
                name: &'static str,
                detached: bool,
                f: F,
                call: G,
                classify: K,
            ) -> JoinHandle<R>
            where
                F: FnOnce() -> R + Send + 'static,
                R: Send + 'static,
                G: FnOnce(F) -> JoinHandle<R>,
                K: FnOnce() -> C,
                C: Classify<R>,
            {
                let _ = call;
                super::spawn_blocking_tracked(name, detached, f, classify())
            }
        }

        impl<T> ProvenTokioSpawnBlocking for &SpawnProof<T, T> {}

        /// The callee is not tokio's `spawn_blocking` as far as its type shows.
        pub trait UnprovenSpawnBlocking<B> {
            /// Calls the user's function; the deprecation note is the warning the user sees.
            #[deprecated(
                note = "sundown cannot tell that this `spawn_blocking` is tokio's, so the task \
                        is not tracked and shutdown will not wait for it: call \
                        `tokio::task::spawn_blocking` (or `sundown::spawn_blocking`) to track \
                        it, or write the callee in parentheses, `(spawn_blocking)(f)`, to \
                        leave it untracked without this warning"
            )]
            fn spawn_function<X, R, G, K>(
                &self,
                name: &'static str,
                detached: bool,
                argument: X,
                call: G,
                classify: K,
            ) -> R
            where
                G: FnOnce(X) -> R,
                B: FnOnce(fn()) -> JoinHandle<()>,
            {
                let _ = (name, detached, classify);
                call(argument)
            }
        }

        impl<A, B> UnprovenSpawnBlocking<B> for SpawnProof<A, B> {}

        /// The type of a `.spawn(x)` call's receiver.
        pub struct SpawnReceiver<R: ?Sized>(PhantomData<fn() -> *const R>);

        impl<R: ?Sized> SpawnReceiver<R> {
            /// Looks at the receiver's type only; the borrow ends here.
            pub fn of(_receiver: &R) -> Self {
                SpawnReceiver(PhantomData)
            }
        }

        /// A future handed to a runtime handle: tracked on the ambient scope, boxed so that
        /// the type the handle is given is a public one.
        type BoxedTask<O> = Pin<Box<dyn Future<Output = O> + Send + 'static>>;

        /// The receiver is tokio's `Handle` (or a reference to one): the task is tracked and
        /// spawned through the user's own call, so it runs on that handle's runtime.
        pub trait TokioHandleSpawn {
            /// Wraps `fut` as a tracked task and hands it to `spawn` (the user's call); the
            /// classifier is made after that call is type-checked, so the receiver may
            /// decide the output type first (`JoinSet<anyhow::Result<()>>`).
            #[track_caller]
            fn spawn_through<F, G, K, C>(
                &self,
                name: &'static str,
                detached: bool,
                fut: F,
                spawn: G,
                classify: K,
            ) -> JoinHandle<F::Output>
            where
                F: Future + Send + 'static,
                F::Output: Send + 'static,
                G: FnOnce(BoxedTask<F::Output>) -> JoinHandle<F::Output>,
                K: FnOnce() -> C,
                C: Classify<F::Output>,
            {
                let location = std::panic::Location::caller();
                let Some(scope) = crate::ambient::current_scope() else {
                    return spawn(Box::pin(fut));
                };
                let guard =
                    crate::task::TaskGuard::new(&scope, TaskName::Given(name.into()), location)
                        .detached(detached);
                let key = guard.key();
                let handle = spawn(Box::pin(crate::task::tracked(guard, fut, classify())));
                scope.inner.registry.set_abort(key, handle.abort_handle());
                handle
            }
        }

        impl TokioHandleSpawn for &SpawnReceiver<TokioHandle> {}
        impl TokioHandleSpawn for &SpawnReceiver<&TokioHandle> {}

        /// Any other receiver: its `.spawn(x)` is called as written.
        pub trait UntrackedReceiver {
            /// Calls `spawn` (the user's call) with the argument.
            fn spawn_through<X, Y, G, K>(
                &self,
                name: &'static str,
                detached: bool,
                argument: X,
                spawn: G,
                classify: K,
            ) -> Y
            where
                G: FnOnce(X) -> Y,
            {
                let _ = (name, detached, classify);
                spawn(argument)
            }
        }

        impl<R: ?Sized> UntrackedReceiver for SpawnReceiver<R> {}
    }
}
