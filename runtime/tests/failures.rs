//! Failures are never silent: panics and unawaitable errors are reported and counted.

use std::time::Duration;

use sundown::__private::{probe_future, spawn_tracked};
use sundown::{FailureKind, Shutdown};

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_reported_with_name_location_and_message() {
    let scope = Shutdown::new();
    let line = line!() + 1;
    let handle = scope.spawn_named("parser", async { panic!("unexpected byte 0x{:02x}", 255) });
    let err = handle.await.unwrap_err();
    assert!(err.is_panic(), "the JoinHandle still sees the panic");
    let stats = scope.stats();
    assert_eq!((stats.failed, stats.running), (1, 0));
    let report = scope.shutdown(Duration::from_secs(1)).await;
    let f = &report.failures()[0];
    assert_eq!(f.task(), "parser");
    assert_eq!((f.location().file(), f.location().line()), (file!(), line));
    assert_eq!(
        f.kind(),
        &FailureKind::Panicked("unexpected byte 0xff".into())
    );
    assert_eq!(report.exit_code(), 1);
    assert!(report.to_string().contains("task `parser`"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn an_err_nobody_can_await_is_a_failure_but_a_kept_handle_is_the_callers() {
    let scope = Shutdown::new();
    scope
        .enter(async {
            // Detached: the handle is discarded where the task is spawned.
            // The classifier is picked as the attributes' expansion picks it.
            let feed = async { Err::<(), _>("feed gone".to_string()) };
            let classify = sundown::__classify!(probe_future(&feed));
            drop(spawn_tracked("sync_feed", true, feed, classify));
            // Kept: the spawner awaits it and handles the error itself.
            let fetch = async { Err::<(), _>("404".to_string()) };
            let classify = sundown::__classify!(probe_future(&fetch));
            let kept = spawn_tracked("fetch", false, fetch, classify);
            assert!(kept.await.unwrap().is_err());
        })
        .await;
    tokio::task::yield_now().await;
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 1);
    let f = &report.failures()[0];
    assert_eq!(f.task(), "sync_feed");
    assert_eq!(f.kind(), &FailureKind::Returned("\"feed gone\"".into()));
    assert_eq!(report.stats().failed, 1);
    assert_eq!(report.stats().completed, 1);
}

#[tokio::test(start_paused = true)]
async fn many_failures_are_all_counted_and_the_report_stays_bounded() {
    let scope = Shutdown::new();
    let handles: Vec<_> = (0..500)
        .map(|i| scope.spawn_named(format!("t{i}"), async move { panic!("failure {i}") }))
        .collect();
    for h in handles {
        let _ = h.await;
    }
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 500);
    assert_eq!(report.failures().len(), 64);
    assert!(report.to_string().contains("… and 436 more"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_blocking_job_that_panics_is_reported() {
    let scope = Shutdown::new();
    let h = scope.spawn_blocking(|| panic!("bad checksum"));
    assert!(h.await.unwrap_err().is_panic());
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        report.failures()[0].kind(),
        &FailureKind::Panicked("bad checksum".into())
    );
}

/// A future that is ready at its first poll and still holds a value whose `Drop`
/// panics: the panic comes after the output, as the future is dropped.
struct ReadyThenPanicOnDrop {
    _held: PanicsOnDrop,
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("flush on drop failed");
    }
}

impl std::future::Future for ReadyThenPanicOnDrop {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

/// The task behind `handle` (named `writer`) panicked as its future was dropped: its
/// handle, its counts and the scope's report say so, and what the task had come to
/// before the panic (`before`: completed, cancelled) is not counted.
async fn the_panic_in_drop_is_the_failure(
    scope: Shutdown,
    handle: tokio::task::JoinHandle<()>,
    before: fn(&sundown::Stats) -> u64,
) {
    assert!(
        handle.await.is_err_and(|e| e.is_panic()),
        "the JoinHandle sees the panic"
    );
    let stats = scope.stats();
    assert_eq!(
        (before(&stats), stats.failed, stats.running),
        (0, 1, 0),
        "the panic counts, not what came before it: {stats:?}"
    );
    let report = scope.shutdown(Duration::from_secs(1)).await;
    let f = &report.failures()[0];
    assert_eq!(f.task(), "writer");
    assert_eq!(
        f.kind(),
        &FailureKind::Panicked("flush on drop failed".into())
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_while_a_completed_future_is_dropped_is_a_failure() {
    let scope = Shutdown::new();
    let handle = scope.spawn_named(
        "writer",
        ReadyThenPanicOnDrop {
            _held: PanicsOnDrop,
        },
    );
    the_panic_in_drop_is_the_failure(scope, handle, |s| s.completed).await;
}

#[tokio::test(start_paused = true)]
async fn a_panic_while_a_cancelled_future_is_dropped_is_a_failure() {
    let scope = Shutdown::new();
    let handle = scope.spawn_named("writer", async {
        let _held = PanicsOnDrop;
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    handle.abort();
    the_panic_in_drop_is_the_failure(scope, handle, |s| s.cancelled).await;
}
