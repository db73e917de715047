//! The fault matrix: misbehaving tasks, hooks and pipes, each on a real process with
//! its exit code, stderr and timing checked.

use std::time::Duration;

use rustix::process::Signal;
use sundown_tests::{Program, Start};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn start(mode: &str) -> Program {
    Program::start(FIXTURE, mode, Start::default())
}

#[test]
fn a_task_that_never_yields_is_reported_as_blocking_and_exit_stays_in_budget() {
    let mut p = start("sync_loop");
    std::thread::sleep(Duration::from_millis(50));
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(Duration::from_secs(2), &["spin", "blocking"]);
}

#[test]
fn a_panicking_cleanup_is_reported_and_exits_1() {
    let mut p = start("cleanup_panics");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    assert!(
        end.stderr
            .contains("cleanup failed: panicked: flush failed"),
        "{}",
        end.stderr
    );
}

#[test]
fn a_panicking_close_hook_is_reported_and_exits_1() {
    let mut p = start("close_hook_panics");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    assert!(
        end.stderr
            .contains("close hook `broken hook`: panicked: socket already closed"),
        "{}",
        end.stderr
    );
}

#[test]
fn a_hanging_close_hook_is_cut_at_the_budget_with_exit_124() {
    let mut p = start("close_hook_hangs");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(
        Duration::from_secs(2),
        &["close hook `stuck hook`: timed out"],
    );
}

#[test]
fn a_signal_during_the_close_phase_lets_the_hooks_finish() {
    let mut p = start("slow_close");
    p.wait_for_line("closing", Duration::from_secs(5));
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(
        end.stdout.contains(&"hook done".to_string()),
        "{:?}",
        end.stdout
    );
}

#[test]
fn ten_thousand_failures_are_all_counted_and_the_report_stays_bounded() {
    let mut p = start("many_failures");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(20));
    assert_eq!(
        end.code(),
        Some(1),
        "{}",
        &end.stderr[..end.stderr.len().min(4000)]
    );
    assert!(
        end.stderr.contains("10000 task failure(s)"),
        "every failure counted"
    );
    assert!(
        end.stderr.contains("… and 9936 more"),
        "the rest summarised"
    );
    assert!(end.stderr.contains("further failures are only counted"));
    assert!(
        end.stderr.len() < 64 * 1024,
        "stderr stayed bounded: {} bytes",
        end.stderr.len()
    );
}

#[test]
fn a_closed_stderr_changes_nothing_but_the_lines() {
    let mut p = Program::start(
        FIXTURE,
        "stubborn",
        Start {
            closed_stderr: true,
            ..Start::default()
        },
    );
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(
        end.code(),
        Some(124),
        "EPIPE must not change the exit code (or panic: 101)"
    );
}

#[test]
fn a_full_stderr_pipe_cannot_hold_the_process_past_its_budget() {
    let mut p = Program::start(FIXTURE, "stubborn", Start::blocked_stderr());
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(124));
    end.assert_within(Duration::from_secs(2));
}

#[test]
fn a_million_live_tracked_tasks_shut_down_cleanly() {
    let n = std::env::var("SUNDOWN_MANY_TASKS").unwrap_or_else(|_| "1000000".into());
    let mut p = Program::start(
        FIXTURE,
        "many_tasks",
        Start {
            env: vec![("FIXTURE_TASKS", &n)],
            ..Start::default()
        },
    );
    let spawned = p
        .stdout_lines
        .iter()
        .find(|l| l.starts_with("spawned"))
        .cloned();
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(60));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    println!("{n} tasks: {spawned:?}; SIGTERM to exit {:?}", end.elapsed);
    end.assert_within(Duration::from_secs(30));
}

#[test]
fn a_signal_storm_runs_one_sequence_and_ends_forced() {
    let mut p = start("patient");
    let storm: Vec<Signal> = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                Signal::TERM
            } else {
                Signal::INT
            }
        })
        .collect();
    let took = p.storm(&storm);
    assert!(took < Duration::from_millis(10), "the storm took {took:?}");
    let end = p.wait(Duration::from_secs(5));
    // Forced by the second signal (exit 128+N) or, if the storm outran that exit, by
    // the third (death by the signal, which shells also report as 128+N).
    let forced_code = matches!(end.code(), Some(c) if c == 128 + SIGINT || c == 128 + SIGTERM);
    let forced_signal = matches!(end.signal(), Some(s) if s == SIGINT || s == SIGTERM);
    assert!(forced_code || forced_signal, "{:?}", end.status);
    assert!(
        end.stderr.matches("received:").count() <= 1,
        "{}",
        end.stderr
    );
    assert!(
        end.stderr.matches("forcing exit").count() <= 1,
        "{}",
        end.stderr
    );
    assert!(!end.stderr.contains("panicked"), "{}", end.stderr);
    end.assert_within(Duration::from_millis(500));
}
