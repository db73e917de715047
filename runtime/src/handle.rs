//! What a [`Shutdown`] runs: spawning tracked tasks, entering the scope, close hooks,
//! and the shutdown sequence. The scope's state and its rules are in `scope`; this
//! layer sits above the task context and the sequence, which it calls.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::close::CloseHook;
use crate::probe;
use crate::report::Report;
use crate::scope::Shutdown;
use crate::task::{
    self,
    ambient::{self, Ambient},
};

impl Shutdown {
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
    pub fn enter<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        ambient::scope(
            Ambient {
                scope: self.clone(),
                task: None,
                shielded: false,
                in_flight: false,
            },
            fut,
        )
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
        self.add_hook(name.into(), None, fut);
    }

    /// [`on_close`](Shutdown::on_close) with a bound of the hook's own: `bound` is kept
    /// back from the drain for it (see "How a shutdown is decided" in the crate docs),
    /// and the hook is cut after it.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// scope.on_close_within("flush journal", Duration::from_secs(2), async { /* fsync */ });
    /// let report = scope.shutdown(Duration::from_secs(9)).await;
    /// assert_eq!(report.closes()[0].name(), "flush journal");
    /// # }
    /// ```
    pub fn on_close_within(
        &self,
        name: impl Into<Cow<'static, str>>,
        bound: Duration,
        fut: impl Future<Output = ()> + Send + 'static,
    ) {
        self.add_hook(name.into(), Some(bound), fut);
    }

    fn add_hook(
        &self,
        name: Cow<'static, str>,
        bound: Option<Duration>,
        fut: impl Future<Output = ()> + Send + 'static,
    ) {
        let hook = CloseHook {
            name,
            run: Box::pin(fut),
            bound,
        };
        if let Err(hook) = self.hooks().push(hook) {
            crate::sequence::run_late_hook(self, hook);
        }
    }

    /// Runs the shutdown sequence and returns its report: requests shutdown if nobody
    /// has (cause [`Cause::ShutdownCalled`](crate::Cause::ShutdownCalled)), waits for
    /// the tasks to drain, aborts those still running at the drain deadline (and
    /// reports those that do not stop even then as blocking their thread), then runs
    /// the close hooks in reverse order, each bounded — all inside `budget`.
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
        crate::sequence::run(self, budget, crate::sequence::Mode::Shutdown).await
    }

    /// Waits for every tracked task of this scope (and its children) to finish on its
    /// own, **without cancelling** anything, then runs the close hooks, and returns the
    /// report: what a batch tool needs at its end ("1000 notifications launched: wait
    /// for them"). Like closing a `TaskTracker` and waiting on it, or leaving a Trio
    /// nursery; tasks may still spawn helpers while it waits.
    ///
    /// The calling task is not waited for (main's body, or a tracked task joining its
    /// own scope). If the tasks are still running when only a tenth of `budget` is left
    /// before the drain deadline, the join continues as [`shutdown`](Shutdown::shutdown)
    /// would: it cancels the scope (the tasks get that tenth to stop on
    /// [`requested`](Shutdown::requested)), aborts the stragglers and runs the close
    /// hooks. The report then says so: its [`Step::Join`](crate::Step::Join) hit its
    /// deadline, the summary says how many tasks were cancelled, and the exit code is
    /// 124. Either way the scope is done afterwards: requested, with cause
    /// [`Cause::JoinCalled`](crate::Cause::JoinCalled) unless something else started it
    /// first.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// for n in 0..5u64 {
    ///     scope.spawn_named(format!("job-{n}"), async move {
    ///         tokio::time::sleep(Duration::from_secs(n)).await; // runs to its end
    ///     });
    /// }
    /// let report = scope.join(Duration::from_secs(30)).await;
    /// assert_eq!(report.stats().completed, 5);
    /// assert_eq!(report.stats().cancelled, 0);
    /// assert_eq!(report.exit_code(), 0);
    /// # }
    /// ```
    pub async fn join(&self, budget: Duration) -> Report {
        crate::sequence::run(self, budget, crate::sequence::Mode::Join).await
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
        task::spawn(
            self,
            task::TaskName::of_type::<F>(),
            Location::caller(),
            fut,
            probe::AnyOutput,
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
        task::spawn(
            self,
            task::TaskName::Given(name.into()),
            Location::caller(),
            fut,
            probe::AnyOutput,
            false,
        )
    }

    /// Spawns a tracked task whose handle nobody keeps, so that its `Err` is sundown's
    /// to report: a failure (name, location, the error's `{:?}`) counted in the report
    /// and the exit code, and under [`FailurePolicy::Shutdown`](crate::FailurePolicy)
    /// the start of the shutdown. The runtime-API form of `tokio::spawn(f());` as a
    /// statement under the attributes. A kept `JoinHandle` cannot say whether it was
    /// awaited, so an `Err` returned to one is the holder's: use this instead of
    /// `drop(scope.spawn(f()))` (see "Errors from kept handles" in the README).
    /// An `Err` that carries the cancellation of a `#[cancel_safe]` call the task made
    /// counts as cancelled, not failed.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// scope.spawn_detached("send report", async { Err::<(), _>("disk full") });
    /// let report = scope.shutdown(Duration::from_secs(1)).await;
    /// assert_eq!(report.failures()[0].task(), "send report");
    /// assert_eq!(report.exit_code(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_detached<F, T, E>(&self, name: impl Into<Cow<'static, str>>, fut: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::fmt::Debug + Send + 'static,
    {
        drop(task::spawn(
            self,
            task::TaskName::Given(name.into()),
            Location::caller(),
            fut,
            probe::DebugResult,
            true,
        ));
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
        task::spawn_blocking(
            self,
            task::TaskName::of_type::<F>(),
            Location::caller(),
            f,
            probe::AnyOutput,
            false,
        )
    }
}
