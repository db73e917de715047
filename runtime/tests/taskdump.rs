//! Feature `taskdump` (run with `RUSTFLAGS="--cfg tokio_unstable" cargo test -p sundown
//! --features taskdump --test taskdump`): the straggler report carries tokio's async
//! backtrace of each straggler.
#![cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

#[inline(never)]
async fn stuck_on_the_pool(pool: Arc<Semaphore>) {
    let _permit = pool.acquire().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_straggler_carries_its_async_backtrace() {
    let pool = Arc::new(Semaphore::new(0));
    let scope = sundown::Shutdown::new();
    let _h = scope.spawn_named("uploader", stuck_on_the_pool(pool.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The dump gets at most half of what the drain leaves of the budget: 3 s leaves
    // about 450 ms.
    let budget = Duration::from_secs(3);
    let report = scope.shutdown(budget).await;
    assert!(
        report.total() <= budget + Duration::from_millis(50),
        "{report}"
    );
    let straggler = &report.stragglers()[0];
    let trace = straggler.backtrace().expect("a backtrace");
    assert!(trace.contains("stuck_on_the_pool"), "{trace}");
    let text = report.to_string();
    assert!(
        text.contains("async backtrace of `uploader` (tokio task dump):"),
        "{text}"
    );
}
