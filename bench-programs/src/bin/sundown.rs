//! The same program with `#[sundown::graceful_main]`: the `tokio::spawn` calls in the
//! body are rewritten to tracked spawns; each task awaits `sundown::requested()`. In
//! spawn mode (`BENCH_SPAWN_ROUNDS`), the same rewritten `tokio::spawn` of trivial
//! tasks, each tracked on the process scope.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sundown_bench_programs::{ready, round, spawn_rounds, tasks, until_polled};

#[sundown::graceful_main]
async fn main() {
    let n = tasks();
    if let Some(rounds) = spawn_rounds() {
        for _ in 0..rounds {
            // Spawned from a task, as a server's handler spawns.
            let timed = tokio::spawn(async move {
                let mut handles = Vec::with_capacity(n);
                let t = std::time::Instant::now();
                for _ in 0..n {
                    handles.push(tokio::spawn(async {}));
                }
                for h in handles {
                    assert!(h.await.is_ok());
                }
                t.elapsed()
            });
            match timed.await {
                Ok(elapsed) => round(elapsed, n),
                Err(e) => panic!("a round failed: {e}"),
            }
        }
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
