//! One binary, many programs: `fixture <mode>` runs one `#[graceful_main]` function.
//! Every mode prints `ready` on stdout once its tasks are spawned.

use std::io::Write;
use std::time::Duration;

use sundown::{Cancelled, cancel_safe, graceful_main};
use sundown_tests::fixture::{say, unknown_mode};

fn main() {
    if std::env::var_os("FIXTURE_FILL_STDERR").is_some() {
        // Fill stderr (a pipe nobody reads) so every later write to it blocks.
        std::thread::spawn(|| {
            let junk = vec![b'x'; 1 << 20];
            let _ = std::io::stderr().write_all(&junk);
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    match std::env::args().nth(1).unwrap_or_default().as_str() {
        "clean" => clean(),
        "stubborn" => stubborn(),
        "patient" => patient(),
        "exit_signal" => exit_signal(),
        "delay" => delay(),
        "dump" => dump(),
        "main_returns" => main_returns(),
        "task_panics" => task_panics(),
        "task_panics_shutdown" => task_panics_shutdown(),
        "untracked" => untracked(),
        "blocking_hour" => blocking_hour(),
        "body_err" => body_err(),
        "current_thread_stuck" => current_thread_stuck(),
        "sync_loop" => sync_loop(),
        "workers_blocked" => workers_blocked(),
        "cleanup_panics" => cleanup_panics(),
        "close_hook_panics" => close_hook_panics(),
        "close_hook_hangs" => close_hook_hangs(),
        "slow_close" => slow_close(),
        "many_failures" => {
            // Thousands of panics: keep the default hook from printing each one.
            std::panic::set_hook(Box::new(|_| {}));
            many_failures();
        }
        "many_tasks" => many_tasks(),
        other => unknown_mode("fixture", other),
    }
}

async fn worker(i: u32) {
    sundown::requested().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    say(&format!("worker {i} done"));
}

async fn ignore_cancellation() {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[graceful_main]
async fn clean() -> anyhow::Result<()> {
    for i in 0..4 {
        tokio::spawn(worker(i));
    }
    say("ready");
    sundown::requested().await;
    Ok(())
}

#[graceful_main(timeout = "1s")]
async fn stubborn() {
    tokio::spawn(ignore_cancellation()); // STRAGGLER LINE
    say("ready");
    sundown::requested().await;
}

#[graceful_main(timeout = "20s")]
async fn patient() {
    tokio::spawn(ignore_cancellation());
    say("ready");
    sundown::requested().await;
}

#[graceful_main(exit = "signal")]
async fn exit_signal() {
    tokio::spawn(worker(0));
    say("ready");
    sundown::requested().await;
}

#[graceful_main(delay = "600ms", timeout = "3s")]
async fn delay() {
    tokio::spawn(async {
        while sundown::is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        say("not ready");
    });
    tokio::spawn(async {
        sundown::requested().await;
        say("cancelled");
    });
    say("ready");
    sundown::requested().await;
}

#[graceful_main(dump_signal = "SIGUSR1")]
async fn dump() {
    tokio::spawn(worker(7));
    say("ready");
    sundown::requested().await;
}

async fn finisher() {
    sundown::requested().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    say("finisher done");
}

#[graceful_main]
async fn main_returns() -> Result<(), std::io::Error> {
    tokio::spawn(finisher());
    say("ready");
    Ok(())
}

async fn explode() {
    tokio::time::sleep(Duration::from_millis(50)).await;
    panic!("boom");
}

#[graceful_main(on_task_failure = "log")]
async fn task_panics() {
    tokio::spawn(explode());
    say("ready");
    sundown::requested().await;
}

#[graceful_main(on_task_failure = "shutdown")]
async fn task_panics_shutdown() {
    tokio::spawn(explode());
    say("ready");
    sundown::requested().await;
}

/// Not annotated: its spawn is not rewritten, so the task escapes tracking.
fn start_untracked() {
    tokio::spawn(std::future::pending::<()>());
}

#[graceful_main]
async fn untracked() {
    start_untracked();
    say("ready");
    sundown::requested().await;
}

#[graceful_main(timeout = "1s")]
async fn blocking_hour() {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(3600)));
    say("ready");
    sundown::requested().await;
}

#[graceful_main]
async fn body_err() -> anyhow::Result<()> {
    say("ready");
    Err(anyhow::anyhow!("config file missing"))
}

async fn spin() {
    loop {
        std::hint::spin_loop();
    }
}

#[graceful_main(flavor = "current_thread", timeout = "1s")]
async fn current_thread_stuck() {
    say("ready");
    tokio::spawn(spin());
    sundown::requested().await;
}

#[graceful_main(timeout = "1s")]
async fn sync_loop() {
    tokio::spawn(spin());
    say("ready");
    sundown::requested().await;
}

/// Both workers spin, so no task can run; the body runs on the main thread.
#[graceful_main(worker_threads = 2, timeout = "1s")]
async fn workers_blocked() {
    tokio::spawn(spin());
    tokio::spawn(spin());
    say("ready");
    sundown::requested().await;
    say("the body saw the cancellation");
}

#[cancel_safe(cleanup = async { if true { panic!("flush failed") } })]
async fn poll_with_broken_cleanup(
    started: std::sync::Arc<tokio::sync::Notify>,
) -> Result<(), Cancelled> {
    started.notify_one();
    std::future::pending().await
}

#[graceful_main]
async fn cleanup_panics() {
    // `ready` once the body runs: a call made after the signal would not run its body,
    // and so have no cleanup to run.
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    tokio::spawn(poll_with_broken_cleanup(started.clone()));
    started.notified().await;
    say("ready");
    sundown::requested().await;
}

#[graceful_main]
async fn close_hook_panics() {
    sundown::on_close("broken hook", async { panic!("socket already closed") });
    say("ready");
    sundown::requested().await;
}

#[graceful_main(timeout = "1s")]
async fn close_hook_hangs() {
    sundown::on_close("stuck hook", std::future::pending::<()>());
    say("ready");
    sundown::requested().await;
}

#[graceful_main]
async fn slow_close() {
    sundown::on_close("slow hook", async {
        say("closing");
        tokio::time::sleep(Duration::from_millis(600)).await;
        say("hook done");
    });
    say("ready");
}

async fn fail_now(i: u32) {
    panic!("failure {i}");
}

#[graceful_main]
async fn many_failures() {
    for i in 0..10_000 {
        tokio::spawn(fail_now(i));
    }
    while sundown::Shutdown::current().stats().failed < 10_000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    say("ready");
    sundown::requested().await;
}

async fn idle() {
    sundown::requested().await;
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[graceful_main(timeout = "30s")]
async fn many_tasks() {
    let n: u32 = std::env::var("FIXTURE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let before = resident_bytes();
    let started = std::time::Instant::now();
    for _ in 0..n {
        tokio::spawn(idle());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = resident_bytes();
    say(&format!(
        "spawned {n} tasks in {:?}; resident +{} MiB ({} bytes/task)",
        started.elapsed(),
        (after - before) >> 20,
        (after - before) / u64::from(n)
    ));
    say("ready");
    sundown::requested().await;
}
