//! The same program with `#[sundown::graceful_main]`: the `tokio::spawn` calls in the
//! body are rewritten to tracked spawns; each task awaits `sundown::requested()`. In
//! spawn mode (`BENCH_SPAWN_ROUNDS`), the same rewritten `tokio::spawn` of trivial
//! tasks, each tracked on the process scope.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sundown_bench_programs::{ready, spawn_round, spawn_rounds, tasks, until_polled};

#[sundown::graceful_main]
async fn main() {
    let n = tasks();
    if let Some(rounds) = spawn_rounds() {
        for _ in 0..rounds {
            // Rewritten: a tracked spawn on the ambient scope, the process scope.
            spawn_round(n, || tokio::spawn(async {})).await;
        }
        // Each was tracked (and ended), not a plain spawn.
        let completed = sundown::Shutdown::current().stats().completed;
        assert!(completed >= (rounds * n) as u64, "{completed} tracked tasks");
        return;
    }
    let polled = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let polled = polled.clone();
        tokio::spawn(async move {
            polled.fetch_add(1, Ordering::Release);
            sundown::requested().await;
        });
    }
    until_polled(&polled, n).await;
    ready();

    sundown::requested().await;
}
