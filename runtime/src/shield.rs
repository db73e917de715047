//! [`shield`] and [`deadline`]: the two wrappers a future can wear.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use crate::error::TimedOut;
use crate::registry::TaskState;
use crate::task::ambient;
use crate::waits::{self, Chain};
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `fut` hidden from cancellation: `#[cancel_safe]` calls and
/// [`requested`](crate::requested) inside it do not see the scope's shutdown request,
/// and the task shows as "shielded". Only the hard deadline (stragglers aborted) or a
/// forced shutdown (second signal) can cut it. For a commit that must not be cut in
/// half.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.trigger("stop");
/// let committed = scope.enter(sundown::shield(async {
///     // cancellation is already requested, but this still runs to the end
///     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
///     true
/// })).await;
/// assert!(committed);
/// # }
/// ```
pub async fn shield<F: Future>(fut: F) -> F::Output {
    let Some(mut here) = ambient::current() else {
        return fut.await;
    };
    let restore = here
        .task
        .and_then(|key| here.scope.show_state(key, TaskState::Shielded));
    here.shielded = true;
    let out = ambient::scope(here, fut).await;
    drop(restore);
    out
}

/// A timeout whose error names the operation: `"fetch_user" timed out after 100ms`.
/// Put one around every await that could wait on another task, a lock or a pool, and a
/// deadlock becomes a log line instead of a hang.
///
/// ```
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let user = sundown::deadline("fetch_user", Duration::from_millis(100), async { 7 }).await;
/// assert_eq!(user, Ok(7));
///
/// let lock = tokio::sync::Mutex::new(());
/// let _held = lock.lock().await;
/// let err = sundown::deadline("second lock", Duration::from_secs(1), lock.lock()).await.unwrap_err();
/// assert_eq!(err.to_string(), "\"second lock\" timed out after 1s");
/// # }
/// ```
///
/// When it fires, the error names the await the future was stuck at, if that await is
/// in code the attributes see ([`TimedOut::waiting_at`]): `"fetch_user" timed out after
/// 100ms, waiting at src/db.rs:42 pool.acquire()`.
pub async fn deadline<F: Future>(
    name: impl Into<Cow<'static, str>>,
    duration: Duration,
    fut: F,
) -> Result<F::Output, TimedOut> {
    let name = name.into();
    let stuck = AtomicU64::new(0);
    let watched = Watched { fut, stuck: &stuck };
    tokio::time::timeout(duration, watched)
        .await
        .map_err(|_| TimedOut::new(name, duration, Chain(stuck.load(Ordering::Relaxed))))
}

pin_project_lite::pin_project! {
    /// A deadline's future: notes the chain it was last pending on.
    struct Watched<'a, F> {
        #[pin]
        fut: F,
        stuck: &'a AtomicU64,
    }
}

impl<F: Future> Future for Watched<'_, F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let (polled, chain) = waits::poll_apart(|| this.fut.poll(cx));
        if polled.is_pending() {
            this.stuck.store(chain.0, Ordering::Relaxed);
        }
        polled
    }
}
