//! What both benchmark binaries share: bench-or-smoke selection, interleaved rounds,
//! medians and verdicts against a target. (`mod harness;` in each; not a bench itself.)

use std::time::Duration;

/// Whether `cargo bench` started the binary (it passes `--bench`); otherwise, as under
/// `cargo test --all-targets`, the binary makes a quick smoke pass.
pub fn is_bench() -> bool {
    std::env::args().skip(1).any(|a| a == "--bench")
}

/// The banner's note for a smoke pass.
pub fn smoke_note(judge: bool) -> &'static str {
    if judge {
        ""
    } else {
        " (smoke pass: run with --bench for the real sizes)"
    }
}

/// Runs `count` variants `warmup + rounds` times, interleaved round by round with the
/// starting variant rotating, and returns each variant's measured rounds in ms.
pub fn interleaved(
    warmup: usize,
    rounds: usize,
    count: usize,
    mut run: impl FnMut(usize) -> Duration,
) -> Vec<Vec<f64>> {
    let mut samples = vec![Vec::new(); count];
    for round in 0..warmup + rounds {
        for k in 0..count {
            let i = (k + round) % count;
            let elapsed = run(i);
            if round >= warmup {
                samples[i].push(elapsed.as_secs_f64() * 1e3);
            }
        }
    }
    samples
}

/// The median of `samples`, which are sorted in place (so `samples[0]` and the last are
/// the min and max afterwards).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// `value` held against `target` (at most), or why it is not judged.
pub fn verdict(judge: bool, value: f64, target: Option<f64>) -> String {
    match target {
        Some(_) if !judge => "(smoke pass: not judged)".to_owned(),
        Some(t) if value <= t => format!("target <= {t:.2}: PASS"),
        Some(t) => format!(
            "target <= {t:.2}: MISS by {:.1}%",
            (value / t - 1.0) * 100.0
        ),
        None => "(for information)".to_owned(),
    }
}
