//! What the three measured programs share: how many tasks, and when to say `ready`.
//!
//! Every program spawns [`tasks()`] idle tasks that wait for cancellation, waits until
//! each of them has been polled once (so it is parked on its cancellation future), and
//! then prints `ready` on stdout. The driver sends SIGTERM as soon as it reads that line.
//!
//! With [`SPAWN_ROUNDS_ENV`] set, the hand-written and the sundown program measure
//! spawning instead ([`spawn_rounds`]): that many rounds of spawning [`tasks()`] trivial
//! tasks from a task and awaiting their handles, each round's time per task printed as
//! `round <ns>`, then they return from `main`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The environment variable that overrides the number of tasks.
pub const TASKS_ENV: &str = "BENCH_TASKS";
/// The default number of idle tasks.
pub const DEFAULT_TASKS: usize = 10_000;

/// The environment variable that switches a program to measuring spawns: how many rounds.
pub const SPAWN_ROUNDS_ENV: &str = "BENCH_SPAWN_ROUNDS";

/// The rounds of spawn + join to measure, when asked for.
pub fn spawn_rounds() -> Option<usize> {
    std::env::var(SPAWN_ROUNDS_ENV).ok()?.parse().ok()
}

/// One round of spawn mode: `tasks` trivial tasks spawned with `spawn` from a task (as a
/// server's handler spawns), then awaited; prints the time per task.
pub async fn spawn_round<S>(tasks: usize, spawn: S)
where
    S: Fn() -> tokio::task::JoinHandle<()> + Send + 'static,
{
    let timed = tokio::spawn(async move {
        let mut handles = Vec::with_capacity(tasks);
        let t = std::time::Instant::now();
        for _ in 0..tasks {
            handles.push(spawn());
        }
        for h in handles {
            assert!(h.await.is_ok());
        }
        t.elapsed()
    });
    match timed.await {
        Ok(elapsed) => round(elapsed, tasks),
        Err(e) => panic!("a round failed: {e}"),
    }
}

/// Prints one round's time per task, `round <ns>`.
fn round(elapsed: Duration, tasks: usize) {
    let mut out = std::io::stdout().lock();
    let per_task = elapsed.as_secs_f64() * 1e9 / tasks.max(1) as f64;
    let _ = writeln!(out, "round {per_task:.1}");
    let _ = out.flush();
}

/// How many idle tasks to spawn.
pub fn tasks() -> usize {
    std::env::var(TASKS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TASKS)
}

/// Waits until `polled` reaches `n`: every task has started and is about to park.
pub async fn until_polled(polled: &AtomicUsize, n: usize) {
    while polled.load(Ordering::Acquire) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The last task counted itself just before registering its waiter.
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// Prints `ready` and flushes stdout.
pub fn ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}
