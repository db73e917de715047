//! The `job_queue` example stopped by SIGTERM again and again on one database file:
//! at startup, mid-job, mid-commit, and forced by a second SIGTERM during the drain.
//! After every run the database is checked: every job `done` exactly once (with its
//! result) or `pending`, none `claimed` — except after a forced exit, whose claims the
//! next start must return to `pending` (a last, gentle run makes sure they are).
//! `SUNDOWN_SQLITE_RUNS` sets the number of runs (6 by default, plus the last),
//! `SUNDOWN_SEED` the random seed (printed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use sundown_tests::{Ended, Program, Start};

const QUEUE: &str = env!("CARGO_BIN_EXE_job_queue");
const WORKERS: usize = 4;
const JOBS_PER_START: i64 = 40;
const SIGTERM: i32 = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// SIGTERM 0–30 ms after the process started, before `ready`.
    Startup,
    /// 0–20 ms after a job was claimed, while it works.
    MidJob,
    /// As a job's `done` transaction starts.
    MidCommit,
    /// A job is claimed, SIGTERM, then a second SIGTERM 0–15 ms later: forced exit.
    Drain,
    /// The last run, stopped right after `ready`: it returns the claims of any forced
    /// exit before it, so the database ends with none.
    Final,
}

const PHASES: [Phase; 4] = [
    Phase::Startup,
    Phase::MidJob,
    Phase::MidCommit,
    Phase::Drain,
];

/// xorshift64*: enough randomness for timings, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

#[derive(Debug, Default)]
struct Counts {
    jobs: i64,
    pending: i64,
    claimed: i64,
    done: i64,
}

/// Checks the invariant and returns the counts.
fn check(db: &Path) -> Counts {
    if !db.exists() {
        return Counts::default();
    }
    let conn = Connection::open(db).unwrap();
    let mut counts = Counts::default();
    let mut stmt = conn
        .prepare("SELECT id, state, attempts, result FROM jobs ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, state, attempts, result) = row.unwrap();
        counts.jobs += 1;
        assert_eq!(id, counts.jobs, "job ids are 1..=n: none vanished");
        match state.as_str() {
            "done" => {
                counts.done += 1;
                let expected = (id * id).to_string();
                assert_eq!(result.as_deref(), Some(expected.as_str()), "job {id}");
                assert!(attempts >= 1, "job {id} done unclaimed");
            }
            "pending" => {
                counts.pending += 1;
                assert_eq!(result, None, "pending job {id} has a result");
            }
            "claimed" => {
                counts.claimed += 1;
                assert_eq!(result, None, "claimed job {id} has a result");
            }
            other => panic!("job {id} in state {other:?}"),
        }
    }
    assert_eq!(
        counts.jobs % JOBS_PER_START,
        0,
        "a start enqueues all of its jobs or none"
    );
    counts
}

fn pending_ids(db: &Path) -> Vec<i64> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 30")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Ids of the lines `job N <what>`.
fn jobs_with(stdout: &[String], what: &str) -> Vec<i64> {
    stdout
        .iter()
        .filter_map(|l| {
            l.strip_prefix("job ")?
                .strip_suffix(what)?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

/// Starts a run and sends its SIGTERM(s) in `phase`; returns how it ended and the job
/// that was working when the signal was sent, if any.
fn run(db: &Path, phase: Phase, rng: &mut Rng) -> (Ended, Option<i64>) {
    let db_arg = db.to_str().unwrap();
    if phase == Phase::Startup {
        let mut p = Program::start(
            QUEUE,
            db_arg,
            Start {
                no_wait: true,
                ..Start::default()
            },
        );
        std::thread::sleep(rng.millis(30));
        p.signal("TERM");
        return (p.wait(Duration::from_secs(20)), None);
    }
    let mut p = Program::start(QUEUE, db_arg, Start::default());
    if phase == Phase::Final {
        p.signal("TERM");
        return (p.wait(Duration::from_secs(20)), None);
    }
    let ids = pending_ids(db);
    let target = ids[usize::try_from(rng.below(ids.len() as u64)).unwrap()];
    match phase {
        Phase::MidJob => {
            p.wait_for_line(&format!("job {target} claimed"), Duration::from_secs(10));
            std::thread::sleep(rng.millis(20));
            p.signal("TERM");
        }
        Phase::MidCommit => {
            p.wait_for_line(&format!("job {target} committing"), Duration::from_secs(10));
            p.signal("TERM");
        }
        Phase::Drain => {
            p.wait_for_line(&format!("job {target} claimed"), Duration::from_secs(10));
            p.signal("TERM");
            std::thread::sleep(rng.millis(15));
            p.signal("TERM");
        }
        Phase::Startup | Phase::Final => unreachable!(),
    }
    (p.wait(Duration::from_secs(20)), Some(target))
}

#[test]
fn sigterm_at_any_moment_leaves_every_job_done_once_or_pending() {
    let runs: usize = std::env::var("SUNDOWN_SQLITE_RUNS")
        .ok()
        .map_or(6, |v| v.parse().expect("SUNDOWN_SQLITE_RUNS"));
    let seed: u64 = std::env::var("SUNDOWN_SEED").ok().map_or_else(
        || {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                .into()
        },
        |v| v.parse().expect("SUNDOWN_SEED"),
    );
    println!("job_queue: seed {seed} (SUNDOWN_SEED={seed} repeats the timings)");
    let mut rng = Rng(seed | 1);
    let dir = std::env::temp_dir().join(format!("sundown-job-queue-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("jobs.db");

    let mut done_lines = BTreeSet::new();
    let mut left_claimed = 0;
    let mut jobs_before = 0;
    let mut tally: BTreeMap<(Phase, String), usize> = BTreeMap::new();
    let mut returned_total = 0;
    for i in 0..=runs {
        let phase = if i == runs {
            Phase::Final
        } else {
            PHASES[i % PHASES.len()]
        };
        let (end, target) = run(&db, phase, &mut rng);
        let how = match (end.code(), end.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => unreachable!(),
        };
        let ctx = format!(
            "run {i} ({phase:?}, {how}): {:?}\n{}",
            end.stdout, end.stderr
        );

        // Claims a forced exit left are returned by the next start, all of them.
        let returned: Option<i64> = end.stdout.iter().find_map(|l| {
            l.strip_prefix("returned ")?
                .strip_suffix(" claim(s) left by a forced exit to pending")?
                .parse()
                .ok()
        });
        if let Some(r) = returned {
            assert_eq!(r, left_claimed, "{ctx}");
            returned_total += r;
        }
        let counts = check(&db);
        // Setup is one transaction that enqueues a start's jobs: it ran iff they are
        // there. A run stopped before it (its "returned" line is printed after it, so
        // that line alone cannot tell) changed nothing, not even a forced exit's claims.
        let set_up = counts.jobs > jobs_before;
        assert!(set_up || returned.is_none(), "{counts:?} {ctx}");
        match phase {
            Phase::Startup => assert!(
                end.code() == Some(0) || end.signal() == Some(SIGTERM),
                "{ctx}"
            ),
            Phase::MidJob | Phase::MidCommit | Phase::Final => {
                assert_eq!(end.code(), Some(0), "{ctx}");
            }
            Phase::Drain => assert!(
                end.code() == Some(0) || end.code() == Some(128 + SIGTERM),
                "{ctx}"
            ),
        }
        let forced = end.code() != Some(0);
        if forced {
            assert!(counts.claimed <= WORKERS as i64, "{counts:?} {ctx}");
        } else if set_up {
            // A graceful shutdown finished every job it claimed: none left `claimed`.
            assert_eq!(counts.claimed, 0, "{counts:?} {ctx}");
            let claimed: BTreeSet<_> = jobs_with(&end.stdout, "claimed").into_iter().collect();
            let done: BTreeSet<_> = jobs_with(&end.stdout, "done").into_iter().collect();
            assert_eq!(claimed, done, "{ctx}");
            if let Some(t) = target {
                assert!(
                    done.contains(&t),
                    "job {t}, working at the signal, finished: {ctx}"
                );
                assert!(counts.pending > 0, "intake stopped: {counts:?} {ctx}");
            }
        }
        if !set_up {
            // The run ended before its setup: nothing can have changed.
            assert_eq!(counts.claimed, left_claimed, "{counts:?} {ctx}");
        }
        left_claimed = counts.claimed;
        jobs_before = counts.jobs;
        // Done once: no job is reported done by two runs (or twice by one).
        for id in jobs_with(&end.stdout, "done") {
            assert!(done_lines.insert(id), "job {id} done twice: {ctx}");
        }
        *tally.entry((phase, how)).or_default() += 1;
    }
    let counts = check(&db);
    assert_eq!(counts.claimed, 0);
    let conn = Connection::open(&db).unwrap();
    let done_in_db: BTreeSet<i64> = conn
        .prepare("SELECT id FROM jobs WHERE state = 'done'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        done_lines.is_subset(&done_in_db),
        "every job reported done is done"
    );
    let max_attempts: i64 = conn
        .query_row("SELECT coalesce(max(attempts), 0) FROM jobs", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(conn);
    let phases: Vec<String> = tally
        .iter()
        .map(|((phase, how), n)| format!("{phase:?} {how}: {n}"))
        .collect();
    println!(
        "job_queue: {} runs on one database; {} jobs: {} done, {} pending, {} claimed; \
         {returned_total} claim(s) left by forced exits returned to pending by the next \
         start; max attempts {max_attempts}; runs by phase and end: {}",
        runs + 1,
        counts.jobs,
        counts.done,
        counts.pending,
        counts.claimed,
        phases.join(", ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
