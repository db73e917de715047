//! What the attributes accept, on real processes: the run-time override of `timeout`
//! refuses what the attribute refuses, and spawns written in every form the attributes
//! track are waited for by the drain.

use std::time::Duration;

use sundown_tests::{Program, Start};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

/// Regression: `SUNDOWN_TIMEOUT=0s` was accepted, and a clean program then exited 124.
#[test]
fn a_zero_sundown_timeout_stops_the_program_before_the_body() {
    let p = Program::start(
        FIXTURE,
        "clean",
        Start {
            env: vec![("SUNDOWN_TIMEOUT", "0s")],
            no_wait: true,
            ..Start::default()
        },
    );
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(1), "{}", end.stderr);
    end.assert_mentions("SUNDOWN_TIMEOUT=\"0s\" is not a valid duration");
    end.assert_mentions("`timeout` must be longer than zero");
    assert!(
        !end.stdout.contains(&"ready".to_owned()),
        "the body never ran"
    );
}

/// Regression: `1.5s`, `1h` and `5S` were all said to have "a number without a unit".
#[test]
fn a_bad_sundown_timeout_says_what_is_wrong() {
    for (value, what) in [
        ("1.5s", "fractions are not supported"),
        ("1h", "unknown unit `h`"),
        ("5S", "units are lowercase, write `s`"),
    ] {
        let p = Program::start(
            FIXTURE,
            "clean",
            Start {
                env: vec![("SUNDOWN_TIMEOUT", value)],
                no_wait: true,
                ..Start::default()
            },
        );
        let end = p.wait(Duration::from_secs(10));
        assert_eq!(end.code(), Some(1), "{value}: {}", end.stderr);
        end.assert_mentions(what);
        assert!(!end.stderr.contains("without a unit"), "{}", end.stderr);
    }
}

const SPAWN_FORMS: &str = env!("CARGO_BIN_EXE_spawn_forms");
const SPAWN_FORMS_SOURCE: &str = include_str!("../src/bin/spawn_forms.rs");

/// Stops `mode` of the spawn-forms program with SIGTERM and checks that the drain waited
/// for each named task: a task shutdown does not wait for is destroyed before its line.
fn drain_waits_for(mode: &str, tasks: &[&str]) {
    let mut p = Program::start(SPAWN_FORMS, mode, Start::default());
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{mode}: {}", end.stderr);
    for task in tasks {
        assert!(
            end.stdout.contains(&format!("{task} done")),
            "{mode}: `{task}` was not waited for\nstdout: {:?}\nstderr: {}",
            end.stdout,
            end.stderr
        );
    }
    assert!(!end.stderr.contains("untracked"), "{mode}: {}", end.stderr);
}

#[test]
fn the_drain_waits_for_spawns_written_through_an_import() {
    drain_waits_for("imports", &["imported", "renamed", "module path"]);
}

#[test]
fn the_drain_waits_for_spawns_inside_vec_join_and_println() {
    drain_waits_for(
        "macros",
        &[
            "in vec",
            "imported in vec",
            "in join",
            "in join async block",
            "in println",
        ],
    );
}

#[test]
fn the_drain_waits_for_spawns_on_a_handle_and_through_map() {
    drain_waits_for("handle", &["on handle", "on a kept handle", "mapped"]);
}

#[test]
fn the_drain_waits_for_spawns_in_a_cancel_safe_body() {
    drain_waits_for(
        "cancel_safe",
        &["imported in cancel_safe", "in vec in cancel_safe"],
    );
}

/// A diverging spawn compiles and is tracked: at the deadline it is a straggler named at
/// the user's line.
#[test]
fn a_diverging_spawn_is_tracked_and_reported_as_a_straggler() {
    let mut p = Program::start(SPAWN_FORMS, "diverging", Start::default());
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    let line = sundown_tests::line_of(SPAWN_FORMS_SOURCE, "DIVERGING LINE") - 4;
    end.assert_budget_ran_out(
        Duration::from_secs(3),
        &[
            "diverging::{async block}",
            &format!("spawn_forms.rs:{line}"),
        ],
    );
}
