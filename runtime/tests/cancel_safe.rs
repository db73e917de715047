//! `#[cancel_safe]`: cleanup then propagate; cancellation that cannot be swallowed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use sundown::{Cancelled, Cause, CleanupLoss, FailureKind, Shutdown, TaskState, cancel_safe};

#[derive(Default)]
struct Counters {
    body: AtomicU32,
    cleanup: AtomicU32,
}

#[cancel_safe(cleanup = count_cleanup(&c))]
async fn poll_forever(c: Arc<Counters>) -> Result<(), Cancelled> {
    c.body.fetch_add(1, Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn count_cleanup(c: &Counters) {
    c.cleanup.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(start_paused = true)]
async fn cleanup_runs_exactly_once_and_the_error_carries_the_cause() {
    let scope = Shutdown::new();
    let c = Arc::new(Counters::default());
    let handle = scope.spawn(poll_forever(c.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    scope.trigger("maintenance window");
    let err = handle.await.unwrap().unwrap_err();
    assert_eq!(
        err.cause(),
        Some(&Cause::Trigger("maintenance window".into()))
    );
    assert_eq!(c.cleanup.load(Ordering::SeqCst), 1);
    assert_eq!(c.body.load(Ordering::SeqCst), 1);
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_second_call_after_cancellation_returns_at_once_without_the_body() {
    let scope = Shutdown::new();
    let c = Arc::new(Counters::default());
    scope.trigger("stop");
    // The swallowing loop of the asyncio articles: it cannot keep going.
    let c2 = c.clone();
    let calls = scope
        .spawn(async move {
            let mut calls = 0;
            loop {
                calls += 1;
                match poll_forever(c2.clone()).await {
                    Err(_swallowed) if calls < 3 => continue,
                    other => break (calls, other),
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(calls.0, 3);
    assert!(calls.1.is_err());
    assert_eq!(c.body.load(Ordering::SeqCst), 0, "the body never ran");
    assert_eq!(c.cleanup.load(Ordering::SeqCst), 0, "nothing to clean up");
}

#[cancel_safe(cleanup = tokio::time::sleep(Duration::from_secs(60)), timeout = "2s")]
async fn slow_cleanup() -> Result<(), Cancelled> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_that_outlives_its_timeout_is_cut_and_reported() {
    let scope = Shutdown::new();
    let handle = scope.spawn(slow_cleanup());
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    scope.trigger("stop");
    assert!(handle.await.unwrap().is_err());
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let report = scope.shutdown(Duration::from_secs(1)).await;
    let cut = &report.dropped_cleanups()[0];
    assert_eq!(cut.function(), "slow_cleanup");
    assert_eq!(cut.why(), CleanupLoss::TimedOut(Duration::from_secs(2)));
    assert!(report.to_string().contains("slow_cleanup"), "{report}");
}

#[cancel_safe(cleanup = async { log.push("flushed") })]
async fn writes(log: &mut Vec<&'static str>) -> Result<(), Cancelled> {
    log.push("started");
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn the_cleanup_may_use_an_argument_the_body_only_borrows() {
    let scope = Shutdown::new();
    let log = scope
        .spawn(async {
            let mut log = Vec::new();
            let s = Shutdown::current();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.trigger("stop");
            });
            let r = writes(&mut log).await;
            assert!(r.is_err());
            log
        })
        .await
        .unwrap();
    assert_eq!(log, ["started", "flushed"]);
}

struct Feed {
    polls: u32,
}

impl Feed {
    #[cancel_safe(cleanup = async { self.polls += 100 })]
    async fn poll_mut(&mut self) -> Result<u32, Cancelled> {
        self.polls += 1;
        std::future::pending().await
    }

    #[cancel_safe]
    async fn poll_ref(&self) -> anyhow::Result<u32> {
        Ok(self.polls)
    }

    #[cancel_safe]
    async fn into_polls(self) -> Result<u32, std::io::Error> {
        Ok(self.polls)
    }
}

trait Source {
    async fn next(&self) -> Result<u32, AppError>;
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("feed is gone")]
    #[allow(dead_code)]
    Gone,
}

impl Source for Feed {
    #[cancel_safe]
    async fn next(&self) -> Result<u32, AppError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(self.polls)
    }
}

#[tokio::test(start_paused = true)]
async fn methods_and_trait_methods() {
    let scope = Shutdown::new();
    scope
        .enter(async {
            let feed = Feed { polls: 0 };
            assert_eq!(feed.poll_ref().await.unwrap(), 0);
            assert_eq!(feed.next().await.unwrap(), 0);
            let mut feed = feed;
            let s = Shutdown::current();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.trigger("stop");
            });
            assert!(feed.poll_mut().await.is_err());
            assert_eq!(
                feed.polls, 101,
                "the cleanup mutated self after the body was dropped"
            );
            assert!(matches!(feed.next().await, Err(AppError::Cancelled(_))));
            let e = feed.into_polls().await.unwrap_err();
            assert!(Cancelled::is_in_chain(&e), "io::Error carries Cancelled");
        })
        .await;
}

#[cancel_safe(token = token)]
async fn with_token(token: &sundown::CancellationToken) -> anyhow::Result<()> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn token_argument_cancels_without_any_scope() {
    assert!(Shutdown::try_current().is_none());
    let token = sundown::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        t.cancel();
    });
    let err = with_token(&token).await.unwrap_err();
    assert!(err.downcast_ref::<Cancelled>().is_some());
}

#[cancel_safe]
async fn quick(x: u32) -> Result<u32, Cancelled> {
    Ok(x + 1)
}

/// A body with no `.await` of its own: its expansion has no watcher, only the check
/// before the body.
#[cancel_safe]
async fn counted(ran: &AtomicUsize) -> Result<(), Cancelled> {
    ran.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[cancel_safe(token = token)]
async fn counted_with_token(
    ran: &AtomicUsize,
    token: &sundown::CancellationToken,
) -> Result<(), Cancelled> {
    ran.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_body_without_awaits_is_not_run_once_its_token_is_cancelled() {
    let ran = AtomicUsize::new(0);
    let scope = Shutdown::new();
    scope.enter(async { counted(&ran).await.unwrap() }).await;
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    scope.trigger("test");
    let r = scope.enter(async { counted(&ran).await }).await;
    assert!(r.is_err(), "level-triggered: refused before the body");
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the body did not run");

    let token = sundown::CancellationToken::new();
    counted_with_token(&ran, &token).await.unwrap();
    token.cancel();
    assert!(counted_with_token(&ran, &token).await.is_err());
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

/// A cleanup written as a plain function call, with a side effect of its own before
/// it hands back the future.
fn counting_cleanup(calls: &AtomicUsize) -> std::future::Ready<()> {
    calls.fetch_add(1, Ordering::SeqCst);
    std::future::ready(())
}

#[cancel_safe(cleanup = counting_cleanup(cleanups))]
async fn waits_with_eager_cleanup(cleanups: &AtomicUsize) -> Result<(), Cancelled> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_does_not_evaluate_its_cleanup() {
    let cleanups = AtomicUsize::new(0);
    let scope = Shutdown::new();
    // Cancelled while the body waits: the cleanup runs once.
    let call = scope.enter(waits_with_eager_cleanup(&cleanups));
    let trigger = async {
        tokio::task::yield_now().await;
        scope.trigger("test");
    };
    let (r, ()) = tokio::join!(call, trigger);
    assert!(r.is_err());
    assert_eq!(cleanups.load(Ordering::SeqCst), 1);
    // Refused before the body runs: nothing to clean up, the expression not evaluated.
    let r = scope.enter(waits_with_eager_cleanup(&cleanups)).await;
    assert!(r.is_err());
    assert_eq!(
        cleanups.load(Ordering::SeqCst),
        1,
        "no cleanup for a refused call"
    );
}

#[tokio::test(start_paused = true)]
async fn outside_any_scope_it_runs_as_the_plain_function() {
    let r = tokio::time::timeout(Duration::from_secs(1), slow_cleanup()).await;
    assert!(
        r.is_err(),
        "nothing can cancel it outside a scope: it stays pending"
    );
    assert_eq!(quick(1).await, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn dropped_from_outside_is_recorded() {
    let scope = Shutdown::new();
    scope
        .enter(async {
            let c = Arc::new(Counters::default());
            tokio::select! {
                _ = poll_forever(c.clone()) => unreachable!(),
                () = tokio::time::sleep(Duration::from_millis(30)) => {}
            }
            // A body raced whole (its awaits are inside `select!`) is recorded the same way.
            tokio::select! {
                _ = selects(c.clone()) => unreachable!(),
                () = tokio::time::sleep(Duration::from_millis(30)) => {}
            }
            assert_eq!(c.cleanup.load(Ordering::SeqCst), 0);
        })
        .await;
    let report = scope.shutdown(Duration::from_secs(1)).await;
    let dropped: Vec<_> = report
        .dropped_cleanups()
        .iter()
        .map(|d| (d.function(), d.why(), d.location().file()))
        .collect();
    assert_eq!(
        dropped,
        [
            ("poll_forever", CleanupLoss::DroppedFromOutside, file!()),
            ("selects", CleanupLoss::DroppedFromOutside, file!()),
        ]
    );
}

#[cancel_safe(cleanup = async { tokio::time::sleep(Duration::from_millis(500)).await })]
async fn long_cleanup() -> Result<(), Cancelled> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn the_task_shows_cleaning_up_while_its_cleanup_runs() {
    let scope = Shutdown::new();
    let handle = scope.spawn_named("flusher", long_cleanup());
    tokio::task::yield_now().await;
    scope.trigger("stop");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(scope.tasks()[0].state(), TaskState::CleaningUp);
    assert!(handle.await.unwrap().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_cancel_safe_call_inside_shield_is_not_cancelled() {
    let scope = Shutdown::new();
    scope.trigger("stop");
    let r = scope.enter(sundown::shield(quick(41))).await;
    assert_eq!(r, Ok(42));
    let r = scope.enter(quick(41)).await;
    assert!(r.is_err(), "outside the shield the request is seen");
}

#[cancel_safe(cleanup = async { if true { panic!("flush failed") } })]
async fn panicking_cleanup() -> Result<(), Cancelled> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn a_panicking_cleanup_is_reported_and_the_function_still_returns_cancelled() {
    let scope = Shutdown::new();
    let handle = scope.spawn(panicking_cleanup());
    tokio::task::yield_now().await;
    scope.trigger("stop");
    assert!(handle.await.unwrap().is_err());
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        report.failures()[0].kind(),
        &FailureKind::Cleanup("panicked: flush failed".into())
    );
}

#[cancel_safe]
async fn launch(c: Arc<Counters>) -> Result<(), Cancelled> {
    // Rewritten to a tracked spawn whose output is classified at this call site.
    tokio::spawn(poll_forever(c));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_output_counts_as_cancelled_not_failed() {
    let scope = Shutdown::new();
    let c = Arc::new(Counters::default());
    scope.enter(launch(c.clone())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(c.cleanup.load(Ordering::SeqCst), 1);
    assert_eq!(report.stats().cancelled, 1);
    assert_eq!(report.stats().failed, 0);
    assert_eq!(report.failure_count(), 0);
}

/// A hand-written error that converts from `Cancelled` but does not expose it through
/// `source()`: its propagation must still count as a cancellation, not a failure.
#[derive(Debug)]
enum OpaqueError {
    #[allow(dead_code)]
    Stopped(Cancelled),
}

impl From<Cancelled> for OpaqueError {
    fn from(c: Cancelled) -> Self {
        OpaqueError::Stopped(c)
    }
}

#[cancel_safe]
async fn opaque_poll() -> Result<(), OpaqueError> {
    std::future::pending().await
}

#[cancel_safe]
async fn launch_opaque() -> Result<(), Cancelled> {
    tokio::spawn(async { opaque_poll().await });
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_error_that_hides_cancelled_from_source_still_counts_as_cancelled() {
    let scope = Shutdown::new();
    scope.enter(launch_opaque()).await.unwrap();
    tokio::task::yield_now().await;
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 0, "{report}");
    assert_eq!(report.stats().cancelled, 1);
}

/// Statement-position awaits followed by `?` and a method, inside a loop: each is a
/// point where the body stops.
#[cancel_safe(cleanup = count_cleanup(&c))]
async fn steps(c: Arc<Counters>, done: Arc<AtomicU32>) -> Result<(), Cancelled> {
    c.body.fetch_add(1, Ordering::SeqCst);
    loop {
        async { Ok::<(), Cancelled>(()) }.await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
        done.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Some(1)).await.unwrap();
    }
}

/// A body whose awaits are hidden inside a macro: the whole body is raced instead.
#[cancel_safe(cleanup = count_cleanup(&c))]
async fn selects(c: Arc<Counters>) -> Result<u32, Cancelled> {
    c.body.fetch_add(1, Ordering::SeqCst);
    let mut ticks = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(10)) => ticks += 1,
            () = std::future::pending::<()>() => break,
        }
    }
    Ok(ticks)
}

#[tokio::test(start_paused = true)]
async fn a_body_stops_at_its_own_awaits_and_at_awaits_hidden_in_macros() {
    let scope = Shutdown::new();
    let (a, b) = (Arc::new(Counters::default()), Arc::new(Counters::default()));
    let done = Arc::new(AtomicU32::new(0));
    let inline = scope.spawn(steps(a.clone(), done.clone()));
    let raced = scope.spawn(selects(b.clone()));
    tokio::time::sleep(Duration::from_millis(55)).await;
    scope.trigger("stop");
    assert!(inline.await.unwrap().is_err());
    assert!(raced.await.unwrap().is_err());
    let steps_done = done.load(Ordering::SeqCst);
    assert!((4..=6).contains(&steps_done), "{steps_done}");
    for c in [&a, &b] {
        assert_eq!(c.body.load(Ordering::SeqCst), 1);
        assert_eq!(c.cleanup.load(Ordering::SeqCst), 1);
    }
    // Nothing runs after the cancellation point.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(done.load(Ordering::SeqCst), steps_done);
}

/// A body that never suspends: the only place it can be cancelled is the entry check.
#[cancel_safe]
async fn no_suspend(runs: &AtomicUsize) -> Result<(), Cancelled> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Calls `no_suspend` `n` times in `scope`, swallowing every `Err(Cancelled)`; returns
/// how many calls returned `Err`.
async fn swallowing_loop(scope: &Shutdown, runs: &AtomicUsize, n: usize) -> usize {
    scope
        .enter(async {
            let mut errs = 0;
            for _ in 0..n {
                if let Err(_swallowed) = no_suspend(runs).await {
                    errs += 1;
                }
            }
            errs
        })
        .await
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_token_cancelled_directly_stops_every_call_even_without_an_await() {
    let scope = Shutdown::new();
    let runs = AtomicUsize::new(0);
    assert_eq!(
        swallowing_loop(&scope, &runs, 3).await,
        0,
        "not cancelled yet"
    );
    assert_eq!(runs.swap(0, Ordering::SeqCst), 3);

    scope.token().cancel(); // no `trigger`
    assert!(scope.is_requested());
    assert_eq!(swallowing_loop(&scope, &runs, 5).await, 5, "every call");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the body never ran");

    // The same from inside a tracked task of the scope.
    let s = scope.clone();
    let errs = scope
        .spawn(async move {
            let runs = AtomicUsize::new(0);
            let mut errs = 0;
            for _ in 0..5 {
                if no_suspend(&runs).await.is_err() {
                    errs += 1;
                }
            }
            assert!(s.is_requested());
            (errs, runs.load(Ordering::SeqCst))
        })
        .await
        .unwrap();
    assert_eq!(errs, (5, 0));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_parent_token_cancelled_directly_stops_every_call_in_its_children() {
    let parent = Shutdown::new();
    let before = parent.child();
    let grandchild = before.child();
    parent.token().cancel(); // no `trigger`, and on the parent
    let after = parent.child();
    for (which, child) in [
        ("before", &before),
        ("grandchild", &grandchild),
        ("after", &after),
    ] {
        let runs = AtomicUsize::new(0);
        assert!(child.is_requested(), "{which}");
        assert_eq!(swallowing_loop(child, &runs, 5).await, 5, "{which}");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "{which}: the body never ran"
        );
    }
}

async fn panics_after_a_pending() -> u32 {
    tokio::time::sleep(Duration::from_millis(5)).await;
    panic!("bad response")
}

#[cancel_safe(cleanup = count_cleanup(&c))]
async fn fetch_panics(c: Arc<Counters>) -> Result<u32, Cancelled> {
    c.body.fetch_add(1, Ordering::SeqCst);
    Ok(panics_after_a_pending().await)
}

/// The same, raced whole (its awaits are inside `select!`).
#[cancel_safe(cleanup = count_cleanup(&c))]
async fn select_panics(c: Arc<Counters>) -> Result<u32, Cancelled> {
    c.body.fetch_add(1, Ordering::SeqCst);
    tokio::select! {
        v = panics_after_a_pending() => Ok(v),
    }
}

/// Regression: a panic inside an awaited future that had been pending unwound through
/// the call with its watcher armed, and the report said the cleanup was "dropped from
/// outside" though nothing was cancelled or dropped: the panic is the only failure.
#[tokio::test(start_paused = true)]
async fn a_panic_inside_an_await_is_not_a_cleanup_dropped_from_outside() {
    let scope = Shutdown::new();
    let c = Arc::new(Counters::default());
    let inline = scope.spawn(fetch_panics(c.clone()));
    let raced = scope.spawn(select_panics(c.clone()));
    assert!(inline.await.is_err_and(|e| e.is_panic()));
    assert!(raced.await.is_err_and(|e| e.is_panic()));
    assert_eq!(c.body.load(Ordering::SeqCst), 2);
    assert_eq!(c.cleanup.load(Ordering::SeqCst), 0, "nothing was cancelled");
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 2, "{report}");
    assert!(report.dropped_cleanups().is_empty(), "{report}");
}
