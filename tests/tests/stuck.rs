//! Where a stuck task is stuck, on real processes: the straggler report and the dump
//! signal name the line each task waits on (and the chain of recorded calls it is in),
//! a task that never yields is shown `blocking for` a growing time, and debug mode
//! names a task whose poll blocked its thread.

use std::time::Duration;

use sundown_tests::{Ended, Program, Start, line_of};

const STUCK: &str = env!("CARGO_BIN_EXE_stuck");
const SOURCE: &str = include_str!("../src/bin/stuck.rs");

fn start(mode: &str) -> Program {
    Program::start(STUCK, mode, Start::default())
}

/// The straggler report's row for the task spawned at `spawned_at` (`file:line`).
fn row<'a>(end: &'a Ended, spawned_at: &str) -> &'a str {
    end.stderr
        .lines()
        .find(|l| l.contains(&format!("{spawned_at} ")))
        .unwrap_or_else(|| panic!("no row for {spawned_at} in: {}", end.stderr))
}

/// Runs `mode` to its shutdown and returns how it ended: the budget runs out on the
/// stuck task.
fn stuck_until_the_deadline(mode: &str) -> Ended {
    let mut p = start(mode);
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    end.assert_budget_ran_out(Duration::from_secs(5), &["waiting at"]);
    end
}

#[test]
fn a_task_stuck_on_a_mutex_is_reported_at_the_line_it_waits_on() {
    let end = stuck_until_the_deadline("mutex");
    let line = line_of(SOURCE, "// MUTEX LINE");
    let site = format!("stuck.rs:{line} l.lock()");
    end.assert_mentions(&site);
    // The row of the task carries it (spawned on the line before).
    let spawned = format!("stuck.rs:{}", line - 1);
    assert!(row(&end, &spawned).contains(&site), "{}", end.stderr);
}

#[test]
fn a_task_stuck_on_a_semaphore_is_reported_at_the_line_it_waits_on() {
    let end = stuck_until_the_deadline("semaphore");
    let line = line_of(SOURCE, "// SEMAPHORE LINE");
    end.assert_mentions(&format!("stuck.rs:{line} p.acquire()"));
}

#[test]
fn the_nested_semaphore_deadlock_names_the_inner_acquire_and_the_calls_it_is_in() {
    let end = stuck_until_the_deadline("nested");
    let line = line_of(SOURCE, "// FETCH LINE");
    end.assert_mentions(&format!(
        "stuck.rs:{line} handle_upload -> fetch_user -> pool.acquire()"
    ));
}

#[test]
fn a_task_waiting_on_a_channel_nobody_sends_on_names_the_recv() {
    let end = stuck_until_the_deadline("channel");
    let line = line_of(SOURCE, "// The next line is the one it waits on.") + 1;
    end.assert_mentions(&format!("stuck.rs:{line} rx.recv()"));
}

#[test]
fn the_dump_signal_shows_where_each_task_waits_while_it_runs() {
    let mut p = start("nested");
    p.signal("USR1");
    p.wait_for_stderr("task dump", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    let line = line_of(SOURCE, "// FETCH LINE");
    let dump = p.stderr();
    assert!(
        dump.contains(&format!(
            "stuck.rs:{line} handle_upload -> fetch_user -> pool.acquire()"
        )),
        "{dump}"
    );
    assert!(p.is_running());
    p.signal("TERM");
    let _ = p.wait(Duration::from_secs(10));
}

/// `blocking for 1.2s` in a dump: the seconds shown.
fn blocking_seconds(text: &str) -> Vec<f64> {
    text.split("blocking for ")
        .skip(1)
        .filter_map(|rest| rest.split('s').next()?.parse().ok())
        .collect()
}

#[test]
fn a_task_that_never_yields_is_blocking_for_a_growing_time_in_two_dumps() {
    let mut p = start("cpu");
    std::thread::sleep(Duration::from_millis(1500));
    p.signal("USR1");
    p.wait_for_stderr("task dump", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1000));
    p.signal("USR1");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.stderr().matches("task dump").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", p.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let dumps = p.stderr();
    let seconds = blocking_seconds(&dumps);
    assert_eq!(seconds.len(), 2, "{dumps}");
    assert!(seconds[0] >= 1.0, "{dumps}");
    assert!(
        seconds[1] >= seconds[0] + 0.7,
        "the second dump shows a longer block: {dumps}"
    );
    let spawned = format!("stuck.rs:{}", line_of(SOURCE, "// CPU SPAWN") + 1);
    assert!(dumps.contains(&spawned), "{dumps}");
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(124), "{}", end.stderr);
    // The straggler report says so too.
    assert!(blocking_seconds(&end.stderr).len() >= 3, "{}", end.stderr);
}

#[test]
fn debug_mode_names_a_task_whose_poll_blocked_400ms() {
    let p = Program::start(
        STUCK,
        "slow_poll",
        Start {
            env: vec![("SUNDOWN_DEBUG", "1")],
            ..Start::default()
        },
    );
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    let spawned = format!("stuck.rs:{}", line_of(SOURCE, "// SLOW LINE") - 2);
    let warning = end
        .stderr
        .lines()
        .find(|l| l.contains("slow poll"))
        .unwrap_or_else(|| panic!("no slow-poll line: {}", end.stderr));
    assert!(warning.contains(&spawned), "{warning}");
    let took: u64 = warning
        .split("for ")
        .nth(1)
        .and_then(|r| r.split("ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {warning}"));
    assert!((400..1000).contains(&took), "{warning}");
    // Then it waited at its second yield.
    let line = line_of(SOURCE, "// SLOW LINE") + 1;
    assert!(
        warning.contains(&format!("stuck.rs:{line} tokio::task::yield_now()")),
        "{warning}"
    );
}

#[test]
fn debug_mode_can_be_turned_on_by_the_attribute() {
    let end = start("slow_poll_debug_attribute").wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    let spawned = format!("stuck.rs:{}", line_of(SOURCE, "// SLOW ATTRIBUTE LINE") - 2);
    assert!(
        end.stderr
            .lines()
            .any(|l| l.contains("slow poll") && l.contains(&spawned)),
        "{}",
        end.stderr
    );
}

fn slow_poll_with(threshold: &str) -> Ended {
    let p = Program::start(
        STUCK,
        "slow_poll",
        Start {
            env: vec![("SUNDOWN_DEBUG", "1"), ("SUNDOWN_SLOW_POLL", threshold)],
            ..Start::default()
        },
    );
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end
}

#[test]
fn sundown_slow_poll_sets_the_threshold() {
    let end = slow_poll_with("1s");
    assert!(!end.stderr.contains("slow poll"), "{}", end.stderr);
    let end = slow_poll_with("300ms");
    assert_eq!(end.stderr.matches("slow poll").count(), 1, "{}", end.stderr);
}

#[test]
fn an_unreadable_sundown_slow_poll_is_said_and_the_default_kept() {
    let end = slow_poll_with("fast");
    end.assert_mentions("SUNDOWN_SLOW_POLL=\"fast\" is not a valid duration");
    end.assert_mentions("using 100ms");
    end.assert_mentions("slow poll: task");
}

#[test]
fn without_debug_mode_a_slow_poll_prints_nothing() {
    let p = start("slow_poll");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(!end.stderr.contains("slow poll"), "{}", end.stderr);
}

#[test]
fn a_deadline_that_fires_names_the_await_it_was_stuck_at() {
    let p = start("deadline");
    let end = p.wait(Duration::from_secs(10));
    let line = line_of(SOURCE, "// FETCH LINE");
    let expected = format!("stuck.rs:{line} fetch_user -> pool.acquire()");
    assert!(
        end.stdout.iter().any(|l| l
            .starts_with("error: \"upload\" timed out after 200ms, waiting at ")
            && l.ends_with(&expected)),
        "{:?} {}",
        end.stdout,
        end.stderr
    );
}
