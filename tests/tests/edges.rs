//! The process lifecycle at its edges, on real processes with real signals: each test
//! is a bug that once let a process lose work, hang, or say one thing and do another.

use std::time::{Duration, Instant};

use sundown_tests::{Program, Start};

const EDGES: &str = env!("CARGO_BIN_EXE_edges");
const SIGTERM: i32 = 15;

fn start(mode: &str) -> Program {
    Program::start(EDGES, mode, Start::default())
}

fn last_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

#[test]
fn a_child_shut_down_on_its_own_leaves_the_process_serving_past_the_budget() {
    let p = start("child_shutdown");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(
        end.stdout.iter().any(|l| l == "still serving, ready=true"),
        "{:?} {}",
        end.stdout,
        end.stderr
    );
    assert!(!end.stderr.contains("budget ran out"), "{}", end.stderr);
}

#[test]
fn a_body_returning_err_after_a_signal_says_exit_code_1_and_exits_1() {
    let mut p = start("err_after_signal");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    end.assert_mentions("Error: flush failed");
    assert!(
        last_line(&end.stderr).ends_with("1 failed, 0 cancelled; exit code 1"),
        "{}",
        end.stderr
    );
}

#[test]
fn with_exit_signal_the_report_says_how_the_process_ends() {
    // A clean shutdown re-raises the signal; the report says so, not `exit code 0`.
    let mut p = Program::start(
        env!("CARGO_BIN_EXE_fixture"),
        "exit_signal",
        Start::default(),
    );
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.signal(), Some(SIGTERM), "{}", end.stderr);
    assert!(
        last_line(&end.stderr).ends_with("exiting by SIGTERM (status 143)"),
        "{}",
        end.stderr
    );
    // An error wins over re-raising: the process exits 1 and says so.
    let mut p = start("err_after_signal_exit_signal");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    assert!(
        last_line(&end.stderr).ends_with("exit code 1"),
        "{}",
        end.stderr
    );
}

fn unread_stdout() -> Start<'static> {
    Start {
        unread_stdout: true,
        ..Start::default()
    }
}

#[test]
fn a_thread_blocked_on_a_full_stdout_pipe_does_not_hold_the_exit() {
    let mut p = Program::start(EDGES, "stdout_blocked", unread_stdout());
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(Duration::from_millis(1600), &["blocking"]);
}

#[test]
fn a_body_stuck_in_println_does_not_hold_the_exit() {
    let mut p = Program::start(EDGES, "body_stuck_in_println", unread_stdout());
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(124), "{}", end.stderr);
    end.assert_within(Duration::from_millis(1600));
}

#[test]
fn a_panicking_drop_in_an_aborted_main_is_reported_not_a_crash() {
    let mut p = start("main_drop_panics");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(124), "{}", end.stderr);
    end.assert_mentions("panicked: while being dropped: drop of main's state failed");
    end.assert_mentions("exit code 124");
}

#[test]
fn graceful_main_inside_a_runtime_says_what_to_do_instead() {
    let p = Program::start(EDGES, "nested_runtime", Start::default());
    let end = p.wait(Duration::from_secs(10));
    assert_ne!(end.code(), Some(0));
    end.assert_mentions("was called from inside a tokio runtime");
    end.assert_mentions("Shutdown::new()");
    assert!(!end.stdout.iter().any(|l| l == "inner ran"));
}

#[test]
fn a_second_graceful_main_is_refused_and_the_first_runs_on() {
    let mut p = start("second_main");
    assert!(
        p.stderr().contains("while another `#[graceful_main]` runs"),
        "{}",
        p.stderr()
    );
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(end.stdout.iter().any(|l| l == "second main refused: true"));
    assert!(!end.stdout.iter().any(|l| l == "other ran"));
}

#[test]
fn lost_cleanup_lines_are_capped_with_a_count() {
    let p = start("many_dropped_cleanups");
    let end = p.wait(Duration::from_secs(20));
    let lines = end
        .stderr
        .lines()
        .filter(|l| l.contains("cleanup of"))
        .count();
    assert!((1..=64).contains(&lines), "{lines} lines: {}", end.stderr);
    end.assert_mentions("further lost cleanups are only counted");
    end.assert_mentions("2000 cleanup(s) did not complete");
}

#[test]
fn tasks_spawned_by_a_close_hook_are_waited_for() {
    let mut p = start("hook_spawns");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(
        end.stdout.iter().any(|l| l == "journal flushed"),
        "{:?}",
        end.stdout
    );
}

/// `strace` delays the first `socketpair(2)` (the signal pipe) by a second, so a
/// SIGTERM lands in the window between the first handler and the pipe existing.
#[test]
fn a_signal_in_the_startup_window_is_never_lost() {
    let strace_ok = std::process::Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !strace_ok {
        panic!("strace is needed (and able to trace) for this test; .ci/run installs it");
    }
    let mut child = std::process::Command::new("strace")
        .args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "trace=socketpair",
            "-e",
            "inject=socketpair:delay_enter=1000000:when=1",
            EDGES,
            "serve",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start strace");
    // strace starts the program, which then sits in the delayed socketpair.
    std::thread::sleep(Duration::from_millis(500));
    let pid = program_pid(child.id()).expect("the traced program");
    let sent = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = sent + Duration::from_secs(8);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a SIGTERM during startup was lost: the program kept running");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Either it died by the default disposition (signal before sundown handled it) or
    // sundown handled it and shut down cleanly: never "running until SIGKILL".
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal() == Some(SIGTERM)
            || status.code() == Some(128 + SIGTERM)
            || status.code() == Some(0),
        "{status:?}"
    );
}

fn program_pid(strace: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[test]
fn join_from_mains_own_body_returns_when_the_others_are_done() {
    let started = Instant::now();
    let p = start("join_from_main");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(
        end.stdout.iter().any(|l| l == "joined: exit code 0"),
        "{:?} {}",
        end.stdout,
        end.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_panicking_main_counts_as_failed() {
    let p = start("main_panics");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    end.assert_mentions("`main_panics` panicked: configuration missing");
    assert!(
        last_line(&end.stderr).ends_with("0 completed, 1 failed, 0 cancelled; exit code 1"),
        "{}",
        end.stderr
    );
}

#[test]
fn a_close_hook_blocking_the_runtime_is_named_at_the_hard_deadline() {
    let mut p = start("hook_blocks");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(
        Duration::from_millis(1600),
        &["close hook `blocker` was still running"],
    );
}
