//! The `flushing_writer` example stopped by SIGTERM at random moments: every record
//! acknowledged on stdout before the exit is in the file, complete and in order.
//! `SUNDOWN_WRITER_RUNS` sets the number of runs (8 by default), `SUNDOWN_SEED` the
//! random seed (printed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use sundown_tests::{Program, Start};

const WRITER: &str = env!("CARGO_BIN_EXE_flushing_writer");
const SIGTERM: i32 = 15;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map_or(default, |v| v.parse().expect(name))
}

#[test]
fn every_acknowledged_record_is_in_the_file() {
    let runs = env_or("SUNDOWN_WRITER_RUNS", 8);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let seed = env_or("SUNDOWN_SEED", now.subsec_nanos().into());
    println!("flushing_writer: seed {seed} (SUNDOWN_SEED={seed} repeats the timings)");
    let mut rng = seed | 1;
    let mut below = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let dir = std::env::temp_dir().join(format!("sundown-writer-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut acked_total = 0;
    let mut per_run = Vec::new();
    for run in 0..runs {
        let file = dir.join(format!("records-{run}.log"));
        // The first run is stopped during startup, the others 0–600 ms after `ready`.
        let startup = run == 0;
        let mut p = Program::start(
            WRITER,
            file.to_str().unwrap(),
            Start {
                no_wait: startup,
                ..Start::default()
            },
        );
        let wait = if startup { below(8) } else { below(601) };
        std::thread::sleep(Duration::from_millis(wait));
        p.signal("TERM");
        let end = p.wait(Duration::from_secs(10));
        let ctx = format!("run {run}, SIGTERM after {wait} ms: {}", end.stderr);
        assert!(
            end.code() == Some(0) || (startup && end.signal() == Some(SIGTERM)),
            "{:?} {ctx}",
            end.status
        );

        let acked: Vec<u64> = end
            .stdout
            .iter()
            .filter_map(|l| l.strip_prefix("ack ")?.parse().ok())
            .collect();
        assert!(
            acked.iter().copied().eq(1..=acked.len() as u64),
            "acks in order: {ctx}"
        );
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "no half record: {ctx}"
        );
        let written: Vec<u64> = text
            .lines()
            .map(|l| {
                let n = l
                    .strip_prefix("record ")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("a damaged record {l:?}: {ctx}"));
                assert_eq!(l, format!("record {n} {}", "payload ".repeat(6)), "{ctx}");
                n
            })
            .collect();
        // Acknowledged is in the file; nothing is written that was not acknowledged
        // (a record is acknowledged right after it enters the buffer).
        assert_eq!(
            written,
            acked,
            "{} acknowledged, {} in the file: {ctx}",
            acked.len(),
            written.len()
        );
        if !startup {
            assert!(
                end.stderr.contains("1 cancelled"),
                "the writer was cancelled, so its cleanup ran: {ctx}"
            );
        }
        acked_total += acked.len();
        per_run.push(format!("{}@{wait}ms", acked.len()));
    }
    println!(
        "flushing_writer: {runs} runs, {acked_total} records acknowledged, all in their files \
         (acknowledged@SIGTERM time per run: {})",
        per_run.join(" ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
