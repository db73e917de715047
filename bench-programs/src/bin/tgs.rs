//! The same program with tokio-graceful-shutdown, structured the way the crate's own TCP
//! server example handles many small units of work: a `Toplevel` with one subsystem that
//! owns the tasks, spawned on a `TaskTracker`, each with a cancellation token from the
//! subsystem. (That example advises against one subsystem per connection because of the
//! overhead.) The subsystem returns once the tracker has drained, and the toplevel
//! handles SIGTERM.
//!
//! With `BENCH_TGS_SUBSYSTEMS=1` every task is a nested subsystem of its own instead,
//! awaiting `on_shutdown_requested()`: the other structure the crate offers.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sundown_bench_programs::{ready, tasks, until_polled};
use tokio_graceful_shutdown::{SubsystemBuilder, SubsystemHandle, Toplevel};
use tokio_util::task::TaskTracker;

async fn tracked_tasks(subsys: &mut SubsystemHandle) -> Result<(), Infallible> {
    let n = tasks();
    let polled = Arc::new(AtomicUsize::new(0));
    let tracker = TaskTracker::new();
    for _ in 0..n {
        let token = subsys.create_cancellation_token();
        let polled = polled.clone();
        tracker.spawn(async move {
            polled.fetch_add(1, Ordering::Release);
            token.cancelled().await;
        });
    }
    until_polled(&polled, n).await;
    ready();

    subsys.on_shutdown_requested().await;
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn nested_subsystems(subsys: &mut SubsystemHandle) -> Result<(), Infallible> {
    let n = tasks();
    let polled = Arc::new(AtomicUsize::new(0));
    for i in 0..n {
        let polled = polled.clone();
        subsys.start(SubsystemBuilder::new(
            format!("task{i}"),
            async move |s: &mut SubsystemHandle| {
                polled.fetch_add(1, Ordering::Release);
                s.on_shutdown_requested().await;
                Ok::<(), Infallible>(())
            },
        ));
    }
    until_polled(&polled, n).await;
    ready();

    subsys.on_shutdown_requested().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), tokio_graceful_shutdown::errors::GracefulShutdownError> {
    let per_task = std::env::var_os("BENCH_TGS_SUBSYSTEMS").is_some_and(|v| v == "1");
    Toplevel::new(async move |s: &mut SubsystemHandle| {
        if per_task {
            s.start(SubsystemBuilder::new("tasks", nested_subsystems));
        } else {
            s.start(SubsystemBuilder::new("tasks", tracked_tasks));
        }
    })
    .catch_signals()
    .handle_shutdown_requests(Duration::from_secs(9))
    .await
}
