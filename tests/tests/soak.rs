//! Soak: start and stop programs many times with SIGTERM at random points of startup,
//! work and shutdown. `SUNDOWN_SOAK_RUNS` sets the count (CI runs a short one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sundown_tests::{Program, Start};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

/// A small deterministic generator: the seed is printed, so a failing run can be
/// replayed with `SUNDOWN_SOAK_SEED`.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn start_and_stop_at_random_points() {
    let runs: u32 = std::env::var("SUNDOWN_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("SUNDOWN_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) ^ 0x5eed);
    println!("soak: {runs} runs, seed {seed}");
    let mut rng = Lcg(seed);
    // mode, budget, exit codes allowed when the signal arrives after the handlers
    let modes: [(&str, Duration, &[i32]); 4] = [
        ("clean", Duration::from_secs(9), &[0]),
        ("stubborn", Duration::from_secs(1), &[0, 124]),
        ("main_returns", Duration::from_secs(9), &[0]),
        ("slow_close", Duration::from_secs(9), &[0]),
    ];
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    for run in 0..runs {
        let (mode, budget, allowed) = modes[rng.next(modes.len() as u64) as usize];
        let delay = Duration::from_millis(rng.next(400));
        let mut p = Program::start(
            FIXTURE,
            mode,
            Start {
                no_wait: true,
                ..Start::default()
            },
        );
        std::thread::sleep(delay);
        let started = Instant::now();
        if p.is_running() {
            p.signal("TERM");
        }
        // Startup allowance on a loaded machine, plus the budget, plus one second.
        let end = p.wait(budget + Duration::from_secs(3));
        let took = started.elapsed();
        assert!(
            took < budget + Duration::from_secs(1) + Duration::from_millis(500),
            "run {run} ({mode}, signal after {delay:?}) took {took:?}"
        );
        assert!(
            !end.stderr.contains("panicked"),
            "run {run} ({mode}): {}",
            end.stderr
        );
        let outcome = match (end.code(), end.signal()) {
            (Some(c), _) => {
                assert!(
                    allowed.contains(&c),
                    "run {run} ({mode}, after {delay:?}): exit {c}\n{}",
                    end.stderr
                );
                format!("exit {c}")
            }
            // Signalled before main installed the handlers: the default action.
            (None, Some(15)) => "killed before handlers were installed".to_owned(),
            (None, s) => panic!("run {run} ({mode}): ended by {s:?}"),
        };
        *tally.entry(format!("{mode}: {outcome}")).or_default() += 1;
    }
    println!("soak tally:");
    for (k, v) in &tally {
        println!("  {v:4}  {k}");
    }
}
