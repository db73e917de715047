//! The same program with `#[sundown::graceful_main]`: the `tokio::spawn` calls in the
//! body are rewritten to tracked spawns; each task awaits `sundown::requested()`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sundown_bench_programs::{ready, tasks, until_polled};

#[sundown::graceful_main]
async fn main() {
    let n = tasks();
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
