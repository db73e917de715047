//! The runtime half of `#[cancel_safe]`: run the body until it finishes or its scope is
//! cancelled; on cancellation drop the body at its await point, run the cleanup once,
//! shielded and bounded, and hand back a [`Cancelled`] carrying the cause.
//!
//! The body is polled first; the cancellation machinery (ambient lookup, token, waker
//! registration) is touched only once the body returns `Pending`, so a call that does
//! not suspend costs a relaxed load and a branch. Level-triggered: a call made after
//! any scope was cancelled checks its own token before running the body.

use std::future::{Future, IntoFuture};
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::Cancelled;
use crate::lifecycle::any_may_be_cancelled;
use crate::probe::Classify;
use crate::registry::TaskOutcome;
use crate::registry::TaskState;
use crate::report::{CleanupLoss, DroppedCleanup, Failure, FailureKind};
use crate::scope::Shutdown;
use crate::task::ambient::{self, Ambient};
use crate::waits::{self, AwaitSite};

/// A `#[cancel_safe]` function: its name, where it is defined, its cleanup timeout.
#[doc(hidden)]
#[derive(Debug)]
pub struct CancelSite {
    name: &'static str,
    location: &'static Location<'static>,
    cleanup_timeout: Duration,
    has_cleanup: bool,
}

impl CancelSite {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        location: &'static Location<'static>,
        cleanup_timeout: Duration,
        has_cleanup: bool,
    ) -> Self {
        CancelSite {
            name,
            location,
            cleanup_timeout,
            has_cleanup,
        }
    }
}

/// Which token cancels the body: the ambient scope's, or one given with `token =`.
#[doc(hidden)]
pub enum TokenChoice<'a> {
    Ambient,
    Given(&'a CancellationToken),
}

/// What `token = <expr>` accepts: a `CancellationToken`, a [`Shutdown`], or a reference
/// to either.
#[doc(hidden)]
pub trait TokenSource {
    fn token_ref(&self) -> &CancellationToken;
}

impl TokenSource for CancellationToken {
    fn token_ref(&self) -> &CancellationToken {
        self
    }
}

impl TokenSource for Shutdown {
    fn token_ref(&self) -> &CancellationToken {
        self.waiter(false)
    }
}

impl<T: TokenSource + ?Sized> TokenSource for &T {
    fn token_ref(&self) -> &CancellationToken {
        (**self).token_ref()
    }
}

/// A body was cancelled: what is needed to run its cleanup and build the error.
#[doc(hidden)]
pub struct Cancellation {
    site: SiteInfo,
    ambient: Option<Ambient>,
    /// False when the call was cancelled before its body ran: nothing to clean up.
    body_ran: bool,
}

#[derive(Clone, Copy)]
struct SiteInfo {
    name: &'static str,
    location: &'static Location<'static>,
    cleanup_timeout: Duration,
}

impl From<&CancelSite> for SiteInfo {
    fn from(s: &CancelSite) -> Self {
        SiteInfo {
            name: s.name,
            location: s.location,
            cleanup_timeout: s.cleanup_timeout,
        }
    }
}

/// Watches the token once the body has suspended.
struct Watch {
    ambient: Option<Ambient>,
    cancelled: Option<std::pin::Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Watch {
    fn resolve(choice: &TokenChoice<'_>) -> Watch {
        let ambient = ambient::current();
        let token = match choice {
            TokenChoice::Given(t) => Some((*t).clone()),
            TokenChoice::Ambient => ambient
                .as_ref()
                .map(|a| a.scope.waiter(a.cut_at_deadline()).clone()),
        };
        Watch {
            ambient,
            cancelled: token.map(|t| Box::pin(t.cancelled_owned())),
        }
    }

    fn poll_cancelled(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.cancelled
            .as_mut()
            .is_some_and(|c| c.as_mut().poll(cx).is_ready())
    }

    fn is_cancelled(&self, choice: &TokenChoice<'_>) -> bool {
        match choice {
            TokenChoice::Given(t) => t.is_cancelled(),
            TokenChoice::Ambient => self
                .ambient
                .as_ref()
                .is_some_and(|a| a.scope.is_cancelled_for(a.cut_at_deadline())),
        }
    }
}

/// Records a body dropped from outside while pending, when it had a cleanup to run.
struct DropRecorder {
    site: SiteInfo,
    armed: bool,
    ambient: Option<Ambient>,
    why: CleanupLoss,
}

impl Drop for DropRecorder {
    fn drop(&mut self) {
        if self.armed {
            record_loss(self.ambient.as_ref().map(|a| &a.scope), self.site, self.why);
        }
    }
}

fn record_loss(scope: Option<&Shutdown>, site: SiteInfo, why: CleanupLoss) {
    let dropped = DroppedCleanup {
        function: site.name,
        location: site.location,
        why,
    };
    match scope {
        Some(s) => s.record_dropped_cleanup(dropped),
        None => crate::output::dropped_cleanup(&dropped),
    }
}

/// The cancellation side of one `#[cancel_safe]` call, a local of the generated
/// function. [`precheck`](Watcher::precheck) is the level-triggered check made before
/// the body runs; every suspension point of the body is awaited through
/// [`race`], which polls the awaited future first and looks at the token
/// only once it is pending. Dropped while armed (pending, with a cleanup to run), the
/// call was dropped from outside and its cleanup is lost: that is recorded.
#[doc(hidden)]
pub struct Watcher<'a> {
    site: &'a CancelSite,
    token: TokenChoice<'a>,
    // Boxed so that a call that never suspends carries one word for it. Emptied by
    // `Drop` (`release`), so the drop glue of a call that never suspended is one test.
    watch: ManuallyDrop<Option<Box<Watch>>>,
    armed: bool,
}

impl<'a> Watcher<'a> {
    #[doc(hidden)]
    #[inline]
    pub fn new(site: &'a CancelSite, token: TokenChoice<'a>) -> Self {
        Watcher {
            site,
            token,
            watch: ManuallyDrop::new(None),
            armed: false,
        }
    }

    /// `Some` when the call must not run its body: its token is cancelled already.
    #[doc(hidden)]
    #[inline]
    pub fn precheck(&self) -> Option<Cancellation> {
        precheck(self.site, &self.token)
    }
}

/// The level-triggered check a `#[cancel_safe]` call makes before its body runs:
/// `Some` when the call must not run its body, its token being cancelled already. A
/// body with no suspension point makes only this check (it has no watcher).
#[doc(hidden)]
#[inline]
pub fn precheck(site: &CancelSite, token: &TokenChoice<'_>) -> Option<Cancellation> {
    if any_may_be_cancelled() || matches!(token, TokenChoice::Given(_)) {
        precheck_slow(site, token)
    } else {
        None
    }
}

#[cold]
fn precheck_slow(site: &CancelSite, token: &TokenChoice<'_>) -> Option<Cancellation> {
    // Only the answer: the watch (a token clone, a boxed wait) is made if the body
    // suspends, so a call that does not pays no allocation here.
    let watch = Watch {
        ambient: ambient::current(),
        cancelled: None,
    };
    watch.is_cancelled(token).then(|| Cancellation {
        site: SiteInfo::from(site),
        ambient: watch.ambient,
        body_ran: false,
    })
}

impl Drop for Watcher<'_> {
    #[inline]
    fn drop(&mut self) {
        // A call that never suspended has nothing to release: no call, no branch more.
        if self.armed || self.watch.is_some() {
            self.release();
        }
    }
}

impl Watcher<'_> {
    #[cold]
    #[inline(never)]
    fn release(&mut self) {
        let watch = (*self.watch).take();
        if self.armed {
            let scope = watch
                .as_ref()
                .and_then(|w| w.ambient.as_ref())
                .map(|a| &a.scope);
            record_loss(
                scope,
                SiteInfo::from(self.site),
                CleanupLoss::DroppedFromOutside,
            );
        }
    }

    /// The awaited future is pending: watch the token (resolved on first use).
    fn pending<T>(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<T, Cancellation>> {
        let token = &self.token;
        let watch = self
            .watch
            .get_or_insert_with(|| Box::new(Watch::resolve(token)));
        self.armed = self.site.has_cleanup;
        if watch.poll_cancelled(cx) {
            self.armed = false;
            return Poll::Ready(Err(Cancellation {
                site: SiteInfo::from(self.site),
                ambient: watch.ambient.take(),
                body_ran: true,
            }));
        }
        Poll::Pending
    }
}

/// `f.await` at a suspension point of a `#[cancel_safe]` body, unless the call's token
/// is cancelled first; `site` is the await's, noted when `f` is pending (`None` for a
/// body raced whole, whose own awaits note theirs). The future comes first so that it
/// is evaluated before the watcher is borrowed (it may hold suspension points of its
/// own).
#[doc(hidden)]
#[inline]
pub fn race<'w, 'a, F: IntoFuture>(
    f: F,
    watcher: &'w mut Watcher<'a>,
    site: Option<&'static AwaitSite>,
) -> Race<'w, 'a, F::IntoFuture> {
    Race {
        fut: f.into_future(),
        watcher,
        site,
    }
}

pin_project_lite::pin_project! {
    /// One suspension point of a `#[cancel_safe]` body racing the call's token.
    #[doc(hidden)]
    pub struct Race<'w, 'a, F> {
        #[pin]
        fut: F,
        watcher: &'w mut Watcher<'a>,
        site: Option<&'static AwaitSite>,
    }
}

impl<F: Future> Future for Race<'_, '_, F> {
    type Output = Result<F::Output, Cancellation>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = waits::mark();
        // Disarmed while the future runs: a panic in it unwinds through the call, which
        // is not a drop from outside. `pending` arms it again.
        this.watcher.armed = false;
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if let Some(site) = *this.site {
            waits::note_pending(site, entered);
        }
        this.watcher.pending(cx)
    }
}

/// Restores the task's state when the cleanup ends or is dropped.
/// A boxed future polled by a function that is never inlined: the cold path of a
/// `#[cancel_safe]` call.
#[doc(hidden)]
pub struct OutOfLine<F>(Pin<Box<F>>);

impl<F: Future> Future for OutOfLine<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Cancellation {
    /// Whether the body ran before it was cancelled (else the call was refused by its
    /// level-triggered check, and has nothing to clean up: the expansion does not even
    /// evaluate the cleanup expression then).
    #[doc(hidden)]
    pub fn body_ran(&self) -> bool {
        self.body_ran
    }

    /// Runs the cleanup once: shielded from the cancellation that stopped the body (so
    /// `#[cancel_safe]` calls inside it work), bounded by the cleanup timeout and cut
    /// by the hard deadline or a forced shutdown. A cleanup that fails, panics or is
    /// cut is reported. Called only when the body ran ([`body_ran`](Self::body_ran)):
    /// the expansion decides that before it evaluates the cleanup expression.
    ///
    /// The cleanup's future is boxed and polled out of line: it exists only once the call
    /// was cancelled, and the calling function's state machine and its fast path stay
    /// as small as without a cleanup.
    pub fn run_cleanup<C: IntoFuture>(
        self,
        cleanup: C,
        classify: impl Classify<C::Output>,
    ) -> OutOfLine<impl Future<Output = Self>> {
        OutOfLine(Box::pin(self.cleanup_then(cleanup, classify)))
    }

    async fn cleanup_then<C: IntoFuture>(
        self,
        cleanup: C,
        classify: impl Classify<C::Output>,
    ) -> Self {
        let scope = self.ambient.as_ref().map(|a| a.scope.clone());
        let task = self.ambient.as_ref().and_then(|a| a.task);
        let _restore = match (&scope, task) {
            (Some(s), Some(k)) => s.show_state(k, TaskState::CleaningUp),
            _ => None,
        };
        let mut cut = DropRecorder {
            site: self.site,
            armed: false,
            ambient: self.ambient.clone(),
            why: CleanupLoss::CleanupDropped,
        };
        let hard = scope.as_ref().map(|s| s.waiter(true).clone());
        let shielded = scope.as_ref().map(|s| Ambient {
            scope: s.clone(),
            task,
            shielded: true,
            in_flight: false,
        });
        let run = crate::task::catch_panic(cleanup.into_future());
        let run = async move {
            match shielded {
                Some(a) => ambient::scope(a, run).await,
                None => run.await,
            }
        };
        let forced = async move {
            match hard {
                Some(h) => h.cancelled_owned().await,
                None => std::future::pending().await,
            }
        };
        cut.armed = true;
        let result = tokio::select! {
            biased;
            r = run => Ok(r),
            () = tokio::time::sleep(self.site.cleanup_timeout) => Err(CleanupLoss::TimedOut(self.site.cleanup_timeout)),
            () = forced => Err(CleanupLoss::Forced),
        };
        cut.armed = false;
        let failure = match result {
            Ok(Ok(v)) => match classify.classify(&v) {
                TaskOutcome::Failed(msg) => Some(FailureKind::Cleanup(msg)),
                TaskOutcome::Completed | TaskOutcome::Cancelled => None,
            },
            Ok(Err(payload)) => Some(FailureKind::Cleanup(format!(
                "panicked: {}",
                crate::report::panic_message(&*payload)
            ))),
            Err(loss) => {
                record_loss(scope.as_ref(), self.site, loss);
                None
            }
        };
        if let Some(kind) = failure {
            let f = Failure::new(self.site.name.into(), self.site.location, kind);
            match &scope {
                Some(s) => s.record_failure(f),
                None => crate::output::failure(&f),
            }
        }
        self
    }

    /// The error the function returns: [`Cancelled`] with the scope's cause. The
    /// task is marked as propagating a cancellation.
    pub fn into_error(self) -> Cancelled {
        let Some(a) = self.ambient else {
            return Cancelled::new(None);
        };
        if let Some(key) = a.task {
            a.scope.registry().mark_propagating_cancel(key);
        }
        Cancelled::new(a.scope.cause())
    }
}

/// Bounds the `#[cancel_safe]` return type: it must be able to carry cancellation.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[cancel_safe]` needs a `Result` whose error implements `From<sundown::Cancelled>`, found `{Self}`",
    label = "this return type cannot carry cancellation",
    note = "return `Result<T, E>` where `E: From<sundown::Cancelled>` (e.g. `anyhow::Result<T>`, `std::io::Result<T>`, or an error enum with a `#[from] Cancelled` variant)"
)]
pub trait CancellableReturn {}

impl<T, E: From<Cancelled>> CancellableReturn for Result<T, E> {}

#[doc(hidden)]
pub const fn assert_cancellable<R: CancellableReturn>() {}
