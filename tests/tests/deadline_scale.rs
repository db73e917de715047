//! The hard deadline at scale, alone in its test binary so that no other test's
//! processes share the two cores with it.

use std::time::{Duration, Instant};

use sundown_tests::{Program, Start};

const EDGES: &str = env!("CARGO_BIN_EXE_edges");

/// How long the kernel takes to reap a process of this size once it has exited: the
/// same program, killed with SIGKILL when ready. Freeing half a gigabyte of task
/// memory takes tens of milliseconds, and no program can exit faster than that.
fn reap_cost() -> Duration {
    let mut p = Program::start(EDGES, "million_stubborn", Start::default());
    let started = Instant::now();
    p.signal("KILL");
    let _ = p.wait(Duration::from_secs(20));
    started.elapsed()
}

#[test]
fn the_hard_deadline_holds_within_50ms_with_a_million_stubborn_tasks() {
    let reap = reap_cost();
    let mut p = Program::start(EDGES, "million_stubborn", Start::default());
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(20));
    assert_eq!(end.code(), Some(124), "{}", end.stderr);
    end.assert_mentions("the 2s shutdown budget ran out");
    // 2 s budget + 50 ms, beyond what the kernel needs to reap the process.
    let bound = Duration::from_millis(2050) + reap;
    eprintln!(
        "ended {:?} after SIGTERM; reaping alone {reap:?}",
        end.elapsed
    );
    assert!(
        end.elapsed < bound,
        "ended {:?} after SIGTERM; bound {bound:?} (reaping alone takes {reap:?})",
        end.elapsed
    );
}
