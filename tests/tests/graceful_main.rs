//! `#[graceful_main]` on real processes receiving real signals: one test per exit code
//! and per behaviour. Timing bounds are generous for a loaded 2-core machine.

use std::time::Duration;

use rustix::process::Signal;
use sundown_tests::{Ended, Program, Start, line_of};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const FIXTURE_SOURCE: &str = include_str!("../src/bin/fixture.rs");
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn start(mode: &str) -> Program {
    Program::start(FIXTURE, mode, Start::default())
}

#[test]
fn sigterm_with_cooperative_tasks_exits_0() {
    let mut p = start("clean");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end.assert_within(Duration::from_secs(3));
    end.assert_mentions(
        "SIGTERM received: shutting down within 9s (tasks get until 8.25s, then are aborted; \
         send SIGTERM again to force exit)",
    );
    for i in 0..4 {
        assert!(
            end.stdout.contains(&format!("worker {i} done")),
            "{:?}",
            end.stdout
        );
    }
    end.assert_mentions("exit code 0");
}

#[test]
fn sigint_works_like_sigterm() {
    let mut p = start("clean");
    p.signal("INT");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end.assert_mentions("SIGINT received");
}

#[test]
fn a_straggler_makes_exit_124_with_the_users_file_and_line() {
    let mut p = start("stubborn");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(124), "{}", end.stderr);
    end.assert_within(Duration::from_secs(2));
    let line = line_of(FIXTURE_SOURCE, "// STRAGGLER LINE");
    let at = format!("fixture.rs:{line}");
    end.assert_mentions("ignore_cancellation");
    end.assert_mentions(&at);
}

#[test]
fn a_second_signal_forces_exit_128_plus_n_at_once() {
    let mut p = start("patient");
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.is_running(), "a 20s budget keeps it draining");
    p.signal("INT");
    let end = p.wait(Duration::from_secs(5));
    assert_eq!(end.code(), Some(128 + SIGINT), "{}", end.stderr);
    end.assert_within(Duration::from_millis(500));
    end.assert_mentions("second SIGINT: forcing exit now (exit code 130)");
    end.assert_mentions("ignore_cancellation");
}

#[test]
fn a_second_sigterm_exits_143() {
    let mut p = start("patient");
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(5));
    assert_eq!(end.code(), Some(128 + SIGTERM), "{}", end.stderr);
}

#[test]
fn a_third_signal_kills_by_the_signal_even_when_the_exit_path_is_stuck() {
    // stderr is a full pipe: the forced exit's last lines cannot be written, so it
    // waits out its bounded flush (100 ms). A third signal inside that window must end
    // the process by the signal's default action, without waiting.
    let mut p = Program::start(FIXTURE, "patient", Start::blocked_stderr());
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(100));
    p.storm(&[Signal::TERM]);
    std::thread::sleep(Duration::from_millis(40));
    p.storm(&[Signal::TERM]);
    let end = p.wait(Duration::from_secs(5));
    assert_eq!(
        end.signal(),
        Some(SIGTERM),
        "died by SIGTERM, not exit: {:?}",
        end.status
    );
}

#[test]
fn the_second_signal_exits_in_time_even_when_stderr_is_blocked() {
    let mut p = Program::start(FIXTURE, "patient", Start::blocked_stderr());
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(100));
    p.signal("INT");
    let end = p.wait(Duration::from_secs(5));
    assert_eq!(end.code(), Some(128 + SIGINT));
    end.assert_within(Duration::from_millis(600));
}

#[test]
fn exit_signal_mode_dies_by_the_signal_after_a_graceful_shutdown() {
    let mut p = start("exit_signal");
    p.signal("INT");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(
        end.signal(),
        Some(SIGINT),
        "{:?} {}",
        end.status,
        end.stderr
    );
    assert!(
        end.stdout.contains(&"worker 0 done".to_string()),
        "graceful first: {:?}",
        end.stdout
    );
}

#[test]
fn sundown_timeout_overrides_the_budget() {
    let mut p = Program::start(
        FIXTURE,
        "patient",
        Start {
            env: vec![("SUNDOWN_TIMEOUT", "500ms")],
            ..Start::default()
        },
    );
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(124), "{}", end.stderr);
    end.assert_within(Duration::from_millis(1500));
    end.assert_mentions("shutting down within 500ms");
}

#[test]
fn a_bad_sundown_timeout_stops_the_program_before_the_body() {
    let p = Program::start(
        FIXTURE,
        "clean",
        Start {
            env: vec![("SUNDOWN_TIMEOUT", "soon")],
            no_wait: true,
            ..Start::default()
        },
    );
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1));
    assert!(
        end.stderr
            .contains("SUNDOWN_TIMEOUT=\"soon\" is not a valid duration"),
        "{}",
        end.stderr
    );
    assert!(
        !end.stdout.contains(&"ready".to_string()),
        "the body never ran"
    );
}

#[test]
fn delay_turns_readiness_off_first_and_cancels_later() {
    let mut p = start("delay");
    p.signal("TERM");
    let sent = p.signalled_at.unwrap();
    let not_ready = p.wait_for_line("not ready", Duration::from_secs(5));
    let cancelled = p.wait_for_line("cancelled", Duration::from_secs(5));
    assert!(
        not_ready - sent < Duration::from_millis(300),
        "readiness off after {:?}",
        not_ready - sent
    );
    assert!(
        cancelled - sent >= Duration::from_millis(550),
        "cancelled after only {:?}",
        cancelled - sent
    );
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end.assert_mentions("readiness off, serving 600ms more");
    end.assert_mentions("delay 6");
    let took = end
        .stderr
        .split("took ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    let took_ms: f64 = match took.strip_suffix("ms") {
        Some(ms) => ms.parse().unwrap_or(0.0),
        None => took
            .strip_suffix('s')
            .and_then(|s| s.parse().ok())
            .map_or(0.0, |s: f64| s * 1000.0),
    };
    assert!(
        took_ms >= 550.0,
        "the total includes the 600ms delay: took {took}"
    );
}

#[test]
fn the_dump_signal_prints_the_task_table_and_keeps_running() {
    let mut p = start("dump");
    p.signal("USR1");
    p.wait_for_stderr("task dump", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    assert!(p.is_running());
    let table = p.stderr();
    assert!(
        table.contains("worker") && table.contains("fixture.rs:"),
        "{table}"
    );
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
}

#[test]
fn main_returning_starts_shutdown_and_tasks_get_the_budget() {
    let p = start("main_returns");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(
        end.stdout.contains(&"finisher done".to_string()),
        "{:?}",
        end.stdout
    );
}

#[test]
fn a_panicking_task_makes_exit_1_with_its_name_and_message() {
    let mut p = start("task_panics");
    p.wait_for_stderr("boom", Duration::from_secs(5));
    assert!(p.is_running(), "on_task_failure = \"log\" keeps running");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    end.assert_mentions("task `explode`");
    end.assert_mentions("panicked: boom");
}

#[test]
fn on_task_failure_shutdown_stops_the_program() {
    let p = start("task_panics_shutdown");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    end.assert_mentions("shutdown (task `explode` failed)");
}

#[test]
fn an_untracked_task_is_reported_at_exit() {
    let mut p = start("untracked");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(
        end.stderr
            .contains("1 untracked task(s) were still pending"),
        "{}",
        end.stderr
    );
}

#[test]
fn an_hour_long_blocking_job_does_not_delay_exit_past_the_budget() {
    let mut p = start("blocking_hour");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(Duration::from_secs(2), &["blocking"]);
}

#[test]
fn a_body_error_exits_1_printed_like_std() {
    let p = start("body_err");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1));
    end.assert_mentions("Error: config file missing");
}

#[test]
fn a_stuck_current_thread_runtime_still_exits_on_time_with_its_table() {
    let mut p = start("current_thread_stuck");
    std::thread::sleep(Duration::from_millis(100));
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(Duration::from_secs(2), &["spin", "blocking"]);
}

/// The controller cancels through a task on the runtime; when every worker is busy
/// and that task cannot run, it cancels from its own thread a moment later, so code
/// outside the workers (here the body, on the main thread) still sees the request.
#[test]
fn cancellation_reaches_the_body_when_every_worker_is_blocked() {
    let mut p = start("workers_blocked");
    std::thread::sleep(Duration::from_millis(200));
    p.signal("TERM");
    let seen = p.wait_for_line("the body saw the cancellation", Duration::from_secs(1));
    let signalled = p.signalled_at.expect("signalled");
    assert!(
        seen.duration_since(signalled) < Duration::from_millis(500),
        "seen {:?} after the signal",
        seen.duration_since(signalled)
    );
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(Duration::from_secs(2), &["spin", "blocking"]);
}

/// As PID 1 (a container's init), a re-raised signal with its default disposition is
/// ignored by the kernel: `exit = "signal"` exits 128+N instead.
#[test]
fn exit_signal_mode_as_pid_1_exits_128_plus_n() {
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: `unshare --pid --fork` is not permitted on this machine");
        return;
    }
    let mut p = Program::start(
        FIXTURE,
        "exit_signal",
        Start {
            under: vec!["unshare", "--pid", "--fork"],
            ..Start::default()
        },
    );
    let pid1 = p.child_pid();
    p.signal_pid(pid1, "INT");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(
        end.code(),
        Some(128 + SIGINT),
        "{:?} {}",
        end.status,
        end.stderr
    );
    assert!(
        end.stdout.contains(&"worker 0 done".to_string()),
        "graceful first: {:?}",
        end.stdout
    );
}

/// Runs the fixture's `patient` mode with its signal thread made slow to read (strace
/// delays the return of its `recvfrom(2)` by 200 ms), sends `first` then, 20 ms later,
/// `second`, so both are delivered before the thread reads either, and returns how it
/// ended.
fn two_signals_read_together(first: &str, second: &str) -> Ended {
    let mut p = Program::start(
        FIXTURE,
        "patient",
        Start {
            under: vec![
                "strace",
                "-f",
                "-o",
                "/dev/null",
                "-e",
                "trace=recvfrom",
                "-e",
                "inject=recvfrom:delay_exit=200000",
            ],
            ..Start::default()
        },
    );
    let pid = p.child_pid();
    p.signal_pid(pid, first);
    std::thread::sleep(Duration::from_millis(20));
    p.signal_pid(pid, second);
    p.wait(Duration::from_secs(5))
}

/// Counted by a pending flag, two SIGTERMs read together would be one.
#[test]
fn two_sigterms_delivered_before_the_signal_thread_reads_force_the_exit() {
    for round in 0..3 {
        let end = two_signals_read_together("TERM", "TERM");
        assert_eq!(
            end.code(),
            Some(128 + SIGTERM),
            "round {round}: {}",
            end.stderr
        );
    }
}

/// Read together, SIGTERM then SIGINT are pending at once, and the pending set is in
/// signal-number order: they were announced as SIGINT first and a "second SIGTERM".
#[test]
fn two_signals_read_together_are_announced_in_the_order_they_came() {
    for round in 0..3 {
        let end = two_signals_read_together("TERM", "INT");
        assert_eq!(
            end.code(),
            Some(128 + SIGINT),
            "round {round}: {}",
            end.stderr
        );
        let first = end
            .stderr
            .lines()
            .find(|l| l.contains("received"))
            .unwrap_or_default();
        assert!(
            first.contains("SIGTERM received"),
            "round {round}: {}",
            end.stderr
        );
        end.assert_mentions("second SIGINT: forcing exit now (exit code 130)");
    }
}
