//! The error types of cancellation and deadlines, and the cause of a shutdown.

use crate::waits::{AwaitSite, Chain};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::text::Shown;

/// What started a shutdown.
///
/// Carried by [`Cancelled`] and by the [`Report`](crate::Report), and printed in the
/// first line of the shutdown log.
///
/// ```
/// use sundown::{Cause, Shutdown};
///
/// let scope = Shutdown::new();
/// scope.trigger("config reloaded");
/// assert_eq!(scope.cause(), Some(Cause::Trigger("config reloaded".into())));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// A terminating signal, by name (`"SIGTERM"`, `"CTRL_C"`).
    Signal(&'static str),
    /// [`Shutdown::trigger`](crate::Shutdown::trigger) with its reason.
    Trigger(Cow<'static, str>),
    /// The body of `#[graceful_main]` returned.
    MainReturned,
    /// A tracked task failed and the failure policy is `"shutdown"`; the task's name.
    TaskFailed(Cow<'static, str>),
    /// [`Shutdown::shutdown`](crate::Shutdown::shutdown) was called on a scope nobody had
    /// triggered.
    ShutdownCalled,
    /// [`Shutdown::join`](crate::Shutdown::join) was called on a scope nobody had
    /// triggered: its tasks finished on their own (or the budget ran out).
    JoinCalled,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Signal(name) => write!(f, "{name}"),
            Cause::Trigger(reason) => write!(f, "trigger: {}", Shown(reason)),
            Cause::MainReturned => f.write_str("main returned"),
            Cause::TaskFailed(name) => write!(f, "task `{}` failed", Shown(name)),
            Cause::ShutdownCalled => f.write_str("shutdown() called"),
            Cause::JoinCalled => f.write_str("join() called"),
        }
    }
}

/// The error a cancelled operation returns: the scope's shutdown was requested while
/// it was pending.
///
/// `#[cancel_safe]` functions return `Err(Cancelled.into())`, so their error type must
/// implement `From<Cancelled>`. It carries the [`Cause`] when one is known.
///
/// ```
/// use sundown::{Cancelled, Cause};
///
/// let err = Cancelled::new(Some(Cause::Signal("SIGTERM")));
/// assert_eq!(err.to_string(), "cancelled: shutdown requested (SIGTERM)");
/// assert_eq!(Cancelled::new(None).to_string(), "cancelled: shutdown requested");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    cause: Option<Cause>,
}

impl Cancelled {
    /// A `Cancelled` with the given cause.
    ///
    /// ```
    /// let c = sundown::Cancelled::new(None);
    /// assert!(c.cause().is_none());
    /// ```
    pub fn new(cause: Option<Cause>) -> Self {
        Cancelled { cause }
    }

    /// What started the shutdown that cancelled the operation, when known.
    ///
    /// ```
    /// use sundown::{Cancelled, Cause};
    /// let c = Cancelled::new(Some(Cause::MainReturned));
    /// assert_eq!(c.cause(), Some(&Cause::MainReturned));
    /// ```
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// True when `err` is `Cancelled` or has a `Cancelled` in its [`source`] chain.
    ///
    /// [`source`]: std::error::Error::source
    ///
    /// ```
    /// use sundown::Cancelled;
    /// let io = std::io::Error::other(Cancelled::new(None));
    /// assert!(Cancelled::is_in_chain(&io));
    /// assert!(!Cancelled::is_in_chain(&std::io::Error::other("disk full")));
    /// ```
    pub fn is_in_chain(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(err);
        while let Some(e) = next {
            if e.is::<Cancelled>() {
                return true;
            }
            // `io::Error::source()` skips its own payload and goes to the payload's
            // source, so look at the payload itself (`From<Cancelled> for io::Error`
            // puts `Cancelled` there).
            next = match e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => e.source(),
            };
        }
        false
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "cancelled: shutdown requested ({cause})"),
            None => f.write_str("cancelled: shutdown requested"),
        }
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for std::io::Error {
    fn from(c: Cancelled) -> Self {
        std::io::Error::new(std::io::ErrorKind::Interrupted, c)
    }
}

/// The error of [`deadline`](crate::deadline): the named operation did not finish in
/// time. Its message names the operation and the bound, so a stuck await (a deadlock,
/// an exhausted pool) is found by reading the log.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// let err = sundown::deadline("fetch_user", Duration::from_millis(100), std::future::pending::<()>())
///     .await
///     .unwrap_err();
/// assert_eq!(err.to_string(), "\"fetch_user\" timed out after 100ms");
/// assert_eq!(err.operation(), "fetch_user");
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedOut {
    operation: Cow<'static, str>,
    after: Duration,
    stuck: Chain,
}

impl TimedOut {
    pub(crate) fn new(operation: Cow<'static, str>, after: Duration, stuck: Chain) -> Self {
        TimedOut {
            operation,
            after,
            stuck,
        }
    }

    /// The await the operation was stuck at when the deadline fired: the innermost
    /// `.await` in code the attributes see (`#[graceful_main]`, `#[cancel_safe]`,
    /// `#[sundown::track_awaits]`) that it was pending on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// #[sundown::track_awaits]
    /// async fn acquire(pool: &tokio::sync::Semaphore) {
    ///     let _permit = pool.acquire().await;
    /// }
    /// let pool = tokio::sync::Semaphore::new(0);
    /// let err = sundown::deadline("acquire", Duration::from_secs(1), acquire(&pool))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.waiting_at().unwrap().expr(), "pool.acquire()");
    /// assert!(err.to_string().contains(", waiting at "));
    /// # }
    /// ```
    pub fn waiting_at(&self) -> Option<&'static AwaitSite> {
        self.stuck.sites().0.pop()
    }

    /// The name given to the operation.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let err = sundown::deadline("db", Duration::from_secs(1), std::future::pending::<()>()).await.unwrap_err();
    /// assert_eq!(err.operation(), "db");
    /// # }
    /// ```
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The bound the operation exceeded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let err = sundown::deadline("db", Duration::from_secs(1), std::future::pending::<()>()).await.unwrap_err();
    /// assert_eq!(err.after(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" timed out after {}",
            self.operation,
            crate::duration::Human(self.after)
        )?;
        let (sites, _) = self.stuck.sites();
        if let Some((innermost, callers)) = sites.split_last() {
            let loc = innermost.location();
            write!(f, ", waiting at {}:{} ", loc.file(), loc.line())?;
            for s in callers {
                write!(f, "{} -> ", s.callee())?;
            }
            f.write_str(innermost.expr())?;
        }
        Ok(())
    }
}

impl std::error::Error for TimedOut {}
