//! One binary, many programs: `fixture <mode>` runs one `#[graceful_main]` function.
//! Every mode prints `ready` on stdout once its tasks are spawned.

use std::io::Write;
use std::time::Duration;

use sundown::graceful_main;

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
        other => {
            eprintln!("fixture: unknown mode {other:?}");
            std::process::exit(2)
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
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
