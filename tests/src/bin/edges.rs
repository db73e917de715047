//! `edges <mode>`: programs at the edges of the process lifecycle. Each prints `ready`
//! (on stderr for the modes whose stdout is a pipe nobody reads) once it is set up.

use std::io::Write;
use std::time::Duration;

use sundown::{Cancelled, Shutdown, cancel_safe, graceful_main};
use sundown_tests::fixture::{say, unknown_mode};

fn main() {
    match std::env::args().nth(1).unwrap_or_default().as_str() {
        "serve" => serve(),
        "child_shutdown" => child_shutdown(),
        "err_after_signal" => err_after_signal(),
        "err_after_signal_exit_signal" => err_after_signal_exit_signal(),
        "stdout_blocked" => stdout_blocked(),
        "body_stuck_in_println" => body_stuck_in_println(),
        "main_drop_panics" => {
            std::panic::set_hook(Box::new(|_| {}));
            main_drop_panics()
        }
        "nested_runtime" => nested_runtime(),
        "second_main" => second_main(),
        "million_stubborn" => million_stubborn(),
        "many_dropped_cleanups" => many_dropped_cleanups(),
        "hook_spawns" => hook_spawns(),
        "join_from_main" => join_from_main(),
        "hook_blocks" => hook_blocks(),
        "main_panics" => {
            std::panic::set_hook(Box::new(|_| {}));
            main_panics()
        }
        other => unknown_mode("edges", other),
    }
}

fn say_err(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Serves until a signal: the program the startup-window test signals early.
#[graceful_main(timeout = "2s")]
async fn serve() {
    say("ready");
    sundown::requested().await;
}

/// A child scope is shut down on its own, then the program serves on past the
/// budget, and ends by returning.
#[graceful_main(timeout = "500ms")]
async fn child_shutdown() {
    let child = Shutdown::current().child();
    child.spawn_named("reloader", std::future::pending::<()>());
    let report = child.shutdown(Duration::from_millis(200)).await;
    say(&format!("child report: {}", report.exit_code()));
    say("ready");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    say(&format!("still serving, ready={}", sundown::is_ready()));
}

/// After the signal the body returns an error.
#[graceful_main]
async fn err_after_signal() -> anyhow::Result<()> {
    say("ready");
    sundown::requested().await;
    anyhow::bail!("flush failed")
}

#[graceful_main(exit = "signal")]
async fn err_after_signal_exit_signal() -> anyhow::Result<()> {
    say("ready");
    sundown::requested().await;
    anyhow::bail!("flush failed")
}

/// A task writes to stdout for ever; the test never reads it, so the task blocks in a
/// write holding stdout's lock.
#[graceful_main(timeout = "1s")]
async fn stdout_blocked() {
    tokio::task::spawn_blocking(|| {
        let line = vec![b'y'; 4096];
        while std::io::stdout().write_all(&line).is_ok() {}
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    say_err("ready");
    sundown::requested().await;
}

/// The body itself is stuck in `println!` (stdout unread) when the signal comes.
#[graceful_main(timeout = "1s", flavor = "current_thread")]
async fn body_stuck_in_println() {
    say_err("ready");
    loop {
        println!("{}", "z".repeat(4096));
    }
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("drop of main's state failed");
    }
}

/// Main's body ignores cancellation and holds a value whose `Drop` panics: it is
/// aborted at the deadline.
#[graceful_main(timeout = "1s")]
async fn main_drop_panics() {
    let _state = PanicsOnDrop;
    say("ready");
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[graceful_main]
async fn inner_main() {
    say("inner ran");
}

/// `#[graceful_main]` called from inside a runtime.
#[tokio::main(flavor = "current_thread")]
async fn nested_runtime() {
    say("ready");
    inner_main();
}

#[graceful_main(timeout = "1s")]
async fn other_main() {
    say("other ran");
}

/// A second `#[graceful_main]` started on another thread while the first runs.
#[graceful_main(timeout = "2s")]
async fn second_main() {
    let t = std::thread::spawn(other_main);
    let joined = tokio::task::spawn_blocking(move || t.join().is_err())
        .await
        .unwrap_or(false);
    say(&format!("second main refused: {joined}"));
    say("ready");
    sundown::requested().await;
}

/// A million tasks that ignore cancellation.
#[graceful_main(timeout = "2s")]
async fn million_stubborn() {
    for _ in 0..1_000_000 {
        sundown::spawn_named("stubborn", async {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    }
    say("ready");
    sundown::requested().await;
}

#[cancel_safe(cleanup = async {})]
async fn cut_short() -> Result<(), Cancelled> {
    std::future::pending::<()>().await;
    Ok(())
}

/// Thousands of `#[cancel_safe]` calls dropped from outside (a timeout around each).
#[graceful_main]
async fn many_dropped_cleanups() {
    for _ in 0..2000 {
        let _ = tokio::time::timeout(Duration::ZERO, cut_short()).await;
    }
    say("ready");
}

/// A close hook hands its work to a spawned task and returns.
#[graceful_main(timeout = "2s")]
async fn hook_spawns() {
    sundown::on_close("journal", async {
        sundown::spawn_named("journal flush", async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            say("journal flushed");
        });
    });
    say("ready");
    sundown::requested().await;
}

/// Main's body joins its own scope: the join must not wait for main itself.
#[graceful_main(timeout = "5s")]
async fn join_from_main(scope: Shutdown) {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        say("job done");
    });
    say("ready");
    let report = scope.join(Duration::from_secs(3)).await;
    say(&format!("joined: exit code {}", report.exit_code()));
}

/// Main's body panics.
#[graceful_main]
async fn main_panics() {
    say("ready");
    panic!("configuration missing");
}

/// A close hook that blocks the runtime's only thread.
#[graceful_main(timeout = "1s", flavor = "current_thread")]
async fn hook_blocks() {
    sundown::on_close("blocker", async {
        std::thread::sleep(Duration::from_secs(5));
    });
    say("ready");
    sundown::requested().await;
}
