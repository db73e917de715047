//! The hand-written baseline: `#[tokio::main]`, tokio's SIGTERM stream, a
//! `CancellationToken` and a `TaskTracker`. In spawn mode (`BENCH_SPAWN_ROUNDS`), trivial
//! tasks spawned on the `TaskTracker`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sundown_bench_programs::{ready, spawn_round, spawn_rounds, tasks, until_polled};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let n = tasks();
    if let Some(rounds) = spawn_rounds() {
        for _ in 0..rounds {
            let tracker = tracker.clone();
            spawn_round(n, move || tracker.spawn(async {})).await;
        }
        return Ok(());
    }
    let polled = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let token = token.clone();
        let polled = polled.clone();
        tracker.spawn(async move {
            polled.fetch_add(1, Ordering::Release);
            token.cancelled().await;
        });
    }
    until_polled(&polled, n).await;
    ready();

    term.recv().await;
    token.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}
