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
