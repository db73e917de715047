//! `#[sundown::test]`: tests that must pass, and tests that must fail. The failing ones
//! are fixtures in `fixtures` below, which do nothing unless `SUNDOWN_TEST_FIXTURE` is
//! set; the `must_fail_*` tests run each one alone in a child process of this test
//! binary (as `cargo test` would) and check that it fails and what it says.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sundown::Shutdown;

// ---- tests that must pass ----

#[sundown::test]
async fn awaited_tasks_pass_even_when_they_fail() {
    async fn compute(x: u32) -> u32 {
        x * 2
    }
    async fn refuse() -> anyhow::Result<()> {
        anyhow::bail!("refused")
    }
    let doubled = tokio::spawn(compute(21)).await.unwrap();
    assert_eq!(doubled, 42);
    // The error reaches its handle and is handled here: not a silent failure.
    let err = tokio::spawn(refuse()).await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "refused");
    let handles: Vec<_> = (0..3).map(|i| tokio::spawn(compute(i))).collect();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(Shutdown::current().stats().completed, 5);
}

#[sundown::test]
async fn a_background_loop_that_stops_on_requested_passes() {
    let stopped = Arc::new(AtomicBool::new(false));
    let s = stopped.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = sundown::requested() => break,
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        s.store(true, Ordering::SeqCst);
    });
    sundown::on_close("check", async move {
        assert!(
            stopped.load(Ordering::SeqCst),
            "hooks run after the tasks stopped"
        );
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[sundown::test(start_paused = true, timeout = "10s")]
async fn the_paused_clock_works() {
    let started = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    tokio::spawn(async {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = sundown::requested() => return,
                _ = ticks.tick() => {}
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(3600));
    assert!(
        wall.elapsed() < Duration::from_secs(60),
        "no real hour passed"
    );
}

#[sundown::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multi_thread_flavor_works() -> anyhow::Result<()> {
    let n = tokio::task::spawn_blocking(|| 6 * 7).await?;
    assert_eq!(n, 42);
    Ok(())
}

#[sundown::test]
#[should_panic(expected = "Error: \"no such user\"")]
async fn a_test_returning_err_fails_with_the_error() -> Result<(), String> {
    Err("no such user".to_owned())
}

#[sundown::test]
#[should_panic(expected = "assertion `left == right` failed")]
async fn a_panicking_body_fails_with_its_own_panic() {
    assert_eq!(1, 2);
}

// ---- tests that must fail, run in a child process ----

mod fixtures {
    use std::time::Duration;

    fn armed() -> bool {
        std::env::var_os("SUNDOWN_TEST_FIXTURE").is_some()
    }

    async fn heartbeat() {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn lookup(i: usize) -> u32 {
        let cache: Vec<u32> = Vec::new();
        cache[i]
    }

    async fn send_report() -> anyhow::Result<()> {
        Err(anyhow::anyhow!("disk full").context("writing the report"))
    }

    #[sundown::test(timeout = "200ms")]
    pub(super) async fn task_left_running() {
        if !armed() {
            return;
        }
        tokio::spawn(heartbeat());
    }

    #[sundown::test(start_paused = true)]
    pub(super) async fn task_left_running_on_the_paused_clock() {
        if !armed() {
            return;
        }
        tokio::spawn(heartbeat());
    }

    #[sundown::test]
    pub(super) async fn detached_task_panicked() {
        if !armed() {
            return;
        }
        tokio::spawn(lookup(3));
    }

    #[sundown::test]
    pub(super) async fn detached_err() {
        if !armed() {
            return;
        }
        tokio::spawn(send_report());
    }

    #[sundown::test]
    pub(super) async fn handle_dropped_in_the_statement() {
        if !armed() {
            return;
        }
        drop(tokio::spawn(send_report()));
    }

    #[sundown::test]
    pub(super) async fn close_hook_failed() {
        if !armed() {
            return;
        }
        sundown::on_close("database pool", async { panic!("connection reset") });
    }

    #[sundown::test]
    pub(super) async fn untracked_task_alive() {
        if !armed() {
            return;
        }
        spawn_outside_tracking();
    }

    /// A plain function: the attribute does not see its spawn.
    fn spawn_outside_tracking() {
        drop(tokio::spawn(std::future::pending::<()>()));
    }
}

/// Runs `fixtures::<name>` alone in a child process; its exit status and output.
fn run_fixture(name: &str) -> (bool, String) {
    run_fixture_with(name, None)
}

fn run_fixture_with(name: &str, backtrace: Option<&str>) -> (bool, String) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary: {e}"));
    let mut command = Command::new(exe);
    command.env_remove("RUST_BACKTRACE");
    if let Some(b) = backtrace {
        command.env("RUST_BACKTRACE", b);
    }
    let out = command
        .args([
            "--exact",
            &format!("fixtures::{name}"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SUNDOWN_TEST_FIXTURE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the test binary: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("running 1 test"),
        "the fixture was not found: {text}"
    );
    (out.status.success(), text)
}

fn assert_fails_saying(name: &str, parts: &[&str]) {
    let (passed, text) = run_fixture(name);
    assert!(!passed, "fixtures::{name} passed:\n{text}");
    assert!(
        text.contains(&format!("test fixtures::{name} ... FAILED")),
        "{text}"
    );
    let header = format!("sundown::test `{name}`: the test's scope did not shut down cleanly");
    assert!(text.contains(&header), "{text}");
    for part in parts {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

#[test]
fn must_fail_a_task_left_running() {
    assert_fails_saying(
        "task_left_running",
        &[
            "1 task(s) ignored cancellation and had to be aborted",
            "heartbeat",
            "tests/test_attribute.rs:",
            "exit code 124",
        ],
    );
}

#[test]
fn must_fail_a_task_left_running_on_the_paused_clock() {
    assert_fails_saying(
        "task_left_running_on_the_paused_clock",
        &["1 task(s) ignored cancellation", "heartbeat"],
    );
}

#[test]
fn must_fail_a_detached_task_that_panicked() {
    assert_fails_saying(
        "detached_task_panicked",
        &[
            "1 tracked task(s) failed without anyone seeing it",
            "task `lookup`",
            "panicked: index out of bounds: the len is 0 but the index is 3",
            "exit code 1",
        ],
    );
}

#[test]
fn must_fail_a_detached_err() {
    assert_fails_saying(
        "detached_err",
        &[
            "1 tracked task(s) failed without anyone seeing it",
            "task `send_report`",
            "returned Err: writing the report",
        ],
    );
}

#[test]
fn must_fail_an_err_whose_handle_is_dropped_in_the_statement() {
    assert_fails_saying(
        "handle_dropped_in_the_statement",
        &[
            "task `send_report`",
            "returned Err: writing the report: disk full",
        ],
    );
}

/// With `RUST_BACKTRACE=1`, anyhow's `{:?}` carries a backtrace: a task's failure is
/// its message chain instead, printed in full once as it happens, one line in the report.
#[test]
fn a_task_error_is_its_message_chain_once_without_the_backtrace() {
    let (passed, text) = run_fixture_with("detached_err", Some("1"));
    assert!(!passed, "{text}");
    assert!(!text.contains("Stack backtrace:"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("disk full")).collect();
    assert_eq!(lines.len(), 2, "the live line and the report's: {text}");
    assert!(
        lines[0].starts_with("sundown: task `send_report`"),
        "{text}"
    );
    for line in lines {
        assert!(
            line.ends_with("returned Err: writing the report: disk full"),
            "{line}"
        );
    }
}

#[test]
fn must_fail_a_failed_close_hook() {
    assert_fails_saying(
        "close_hook_failed",
        &[
            "1 close hook(s) failed",
            "close hook `database pool`: panicked: connection reset",
        ],
    );
}

#[test]
fn must_fail_an_untracked_task_left_alive() {
    assert_fails_saying(
        "untracked_task_alive",
        &["1 untracked task(s) were still alive when the test ended"],
    );
}

#[test]
fn unarmed_fixtures_pass() {
    let (passed, text) = run_fixture_unarmed("detached_err");
    assert!(passed, "{text}");
}

fn run_fixture_unarmed(name: &str) -> (bool, String) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary: {e}"));
    let out = Command::new(exe)
        .args(["--exact", &format!("fixtures::{name}")])
        .env_remove("SUNDOWN_TEST_FIXTURE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the test binary: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
