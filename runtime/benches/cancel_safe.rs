//! What `#[cancel_safe]` costs on a call that does not suspend, next to a plain call and
//! to the two hand-written ways of making a call cancellable with tokio-util.
//!
//! A self-contained harness (`harness = false`, no bench framework):
//!
//! ```text
//! cargo bench -p sundown --bench cancel_safe
//! ```
//!
//! One task on a `current_thread` runtime awaits a trivial `async fn` 5 000 000 times in
//! a loop, once per variant:
//!
//! * plain call;
//! * `#[cancel_safe]`;
//! * `#[cancel_safe(cleanup = ...)]`;
//! * a plain call and a `#[cancel_safe]` call whose bodies await once, ready at once;
//! * tokio-util's `token.run_until_cancelled(f(x))`;
//! * `tokio::select! { biased; _ = token.cancelled() => .., r = f(x) => r }`.
//!
//! Every variant runs twice: inside a `Shutdown::enter` scope (as in a `#[graceful_main]`
//! program) and outside any scope. The variants are interleaved round by round (the
//! starting variant rotates), after one warm-up round; the harness prints the median,
//! min and max of each and the ratio to the plain call in the same context.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), the binary makes a quick
//! smoke pass with a few calls instead, to check that every variant still works and that
//! all of them compute the same value.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sundown::{CancellationToken, Cancelled, Shutdown, cancel_safe};
use tokio::runtime::Runtime;

mod harness;

/// How big and how long: the benchmark's sizes, or small ones for a smoke pass.
#[derive(Clone, Copy)]
struct Config {
    calls: u64,
    /// Measured rounds (after the warm-up rounds).
    rounds: usize,
    warmup_rounds: usize,
    /// Whether the numbers are measurements to hold against the targets.
    judge: bool,
}

const BENCH: Config = Config {
    calls: 5_000_000,
    rounds: 11,
    warmup_rounds: 1,
    judge: true,
};

const SMOKE: Config = Config {
    calls: 1_000,
    rounds: 1,
    warmup_rounds: 0,
    judge: false,
};

/// `#[cancel_safe]` must stay within this factor of a plain call.
const CANCEL_SAFE_TARGET: f64 = 1.2;
/// `#[cancel_safe(cleanup = ..)]`, which also carries its cleanup's drop watch.
const CLEANUP_TARGET: f64 = 1.5;

fn main() {
    let config = if harness::is_bench() { BENCH } else { SMOKE };
    println!(
        "sundown #[cancel_safe] benchmark{}: {} CPUs, one task on a current_thread runtime",
        harness::smoke_note(config.judge),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    bench_calls(config);
    // Last: it cancels a scope, which switches every later `#[cancel_safe]` call in the
    // process onto its level-triggered check.
    check_cancelled();
}

// ---------------------------------------------------------------------------------------
// The functions called

/// The plain call: does not suspend.
async fn plain(x: u64) -> Result<u64, Cancelled> {
    Ok(x.wrapping_mul(31) ^ 7)
}

#[cancel_safe]
async fn guarded(x: u64) -> Result<u64, Cancelled> {
    Ok(x.wrapping_mul(31) ^ 7)
}

async fn noop_cleanup() {}

/// A plain call whose body awaits once, ready at once (as most awaits of a call that
/// does not suspend are).
async fn plain_awaiting(x: u64) -> Result<u64, Cancelled> {
    plain(x).await
}

#[cancel_safe]
async fn guarded_awaiting(x: u64) -> Result<u64, Cancelled> {
    plain(x).await
}

#[cancel_safe(cleanup = noop_cleanup())]
async fn guarded_with_cleanup(x: u64) -> Result<u64, Cancelled> {
    Ok(x.wrapping_mul(31) ^ 7)
}

// ---------------------------------------------------------------------------------------
// The loops, one per variant. Each returns an accumulator of every result so that no
// call can be optimised away; the smoke pass checks that all variants agree on it.

async fn loop_plain(n: u64, _token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        match plain(black_box(i)).await {
            Ok(v) => acc ^= black_box(v),
            Err(_) => break,
        }
    }
    acc
}

async fn loop_cancel_safe(n: u64, _token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        match guarded(black_box(i)).await {
            Ok(v) => acc ^= black_box(v),
            Err(_) => break,
        }
    }
    acc
}

async fn loop_cancel_safe_cleanup(n: u64, _token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        match guarded_with_cleanup(black_box(i)).await {
            Ok(v) => acc ^= black_box(v),
            Err(_) => break,
        }
    }
    acc
}

async fn loop_plain_awaiting(n: u64, _token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        match plain_awaiting(black_box(i)).await {
            Ok(v) => acc ^= black_box(v),
            Err(_) => break,
        }
    }
    acc
}

async fn loop_cancel_safe_awaiting(n: u64, _token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        match guarded_awaiting(black_box(i)).await {
            Ok(v) => acc ^= black_box(v),
            Err(_) => break,
        }
    }
    acc
}

async fn loop_run_until_cancelled(n: u64, token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        match token.run_until_cancelled(plain(black_box(i))).await {
            Some(Ok(v)) => acc ^= black_box(v),
            Some(Err(_)) | None => break,
        }
    }
    acc
}

async fn loop_select(n: u64, token: CancellationToken) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        let r = tokio::select! {
            biased;
            () = token.cancelled() => break,
            r = plain(black_box(i)) => r,
        };
        match r {
            Ok(v) => acc ^= black_box(v),
            Err(_) => break,
        }
    }
    acc
}

// ---------------------------------------------------------------------------------------
// Harness

type LoopFuture = std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>>;
/// Makes one variant's loop: the number of calls, the token the tokio-util variants use.
type MakeLoop = fn(u64, CancellationToken) -> LoopFuture;

struct Variant {
    name: &'static str,
    /// Inside a `Shutdown::enter` scope, or outside any scope.
    in_scope: bool,
    make: MakeLoop,
}

const PLAIN: &str = "plain call";
const CANCEL_SAFE: &str = "#[cancel_safe]";
const CANCEL_SAFE_CLEANUP: &str = "#[cancel_safe(cleanup = ..)]";
const PLAIN_AWAITING: &str = "plain call, one await inside";
const CANCEL_SAFE_AWAITING: &str = "#[cancel_safe], one await inside";
const RUN_UNTIL: &str = "token.run_until_cancelled(f(x))";
const SELECT: &str = "select! { biased; cancelled(), f(x) }";

fn variants() -> Vec<Variant> {
    let kinds: [(&'static str, MakeLoop); 7] = [
        (PLAIN, |n, t| Box::pin(loop_plain(n, t))),
        (CANCEL_SAFE, |n, t| Box::pin(loop_cancel_safe(n, t))),
        (CANCEL_SAFE_CLEANUP, |n, t| {
            Box::pin(loop_cancel_safe_cleanup(n, t))
        }),
        (PLAIN_AWAITING, |n, t| Box::pin(loop_plain_awaiting(n, t))),
        (CANCEL_SAFE_AWAITING, |n, t| {
            Box::pin(loop_cancel_safe_awaiting(n, t))
        }),
        (RUN_UNTIL, |n, t| Box::pin(loop_run_until_cancelled(n, t))),
        (SELECT, |n, t| Box::pin(loop_select(n, t))),
    ];
    let mut out = Vec::new();
    for in_scope in [true, false] {
        for (name, make) in kinds {
            out.push(Variant {
                name,
                in_scope,
                make,
            });
        }
    }
    out
}

fn runtime() -> Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build the tokio runtime: {e}"),
    }
}

/// Runs one variant's loop as a task and returns the time it took and its accumulator.
/// In scope, the loop runs inside `scope.enter`. The tokio-util variants use a fresh
/// token of their own in both contexts: handing out a scope's token (`Shutdown::token`)
/// lets code cancel it from outside, so from then on every `#[cancel_safe]` call in the
/// process makes its full check (`lifecycle::any_may_be_cancelled`), and taking it here
/// would measure that path for every variant (`BENCHMARKS.md`).
fn run_once(rt: &Runtime, scope: &Shutdown, v: &Variant, calls: u64) -> (Duration, u64) {
    let future = if v.in_scope {
        let inner = (v.make)(calls, CancellationToken::new());
        let scope = scope.clone();
        rt.spawn(async move {
            let t = Instant::now();
            let acc = scope.enter(inner).await;
            (t.elapsed(), acc)
        })
    } else {
        let inner = (v.make)(calls, CancellationToken::new());
        rt.spawn(async move {
            let t = Instant::now();
            let acc = inner.await;
            (t.elapsed(), acc)
        })
    };
    match rt.block_on(future) {
        Ok(r) => r,
        Err(e) => panic!("benchmark task failed: {e}"),
    }
}

fn bench_calls(config: Config) {
    let calls = config.calls;
    println!();
    println!("== calls: {calls} awaited calls of an async fn that does not suspend");
    println!(
        "   {} rounds after {} warm-up, variants interleaved; median [min .. max]",
        config.rounds, config.warmup_rounds
    );
    let rt = runtime();
    // Never cancelled: this measures the path every call takes while no shutdown is
    // under way.
    let scope = Shutdown::new();
    let variants = variants();
    let mut results: Vec<Option<u64>> = vec![None; variants.len()];
    let mut samples =
        harness::interleaved(config.warmup_rounds, config.rounds, variants.len(), |i| {
            let (elapsed, acc) = run_once(&rt, &scope, &variants[i], calls);
            if let Some(previous) = results[i] {
                assert_eq!(previous, acc, "{} changed its result", variants[i].name);
            }
            results[i] = Some(acc);
            elapsed
        });
    drop(rt);
    let expected = results[0];
    for (v, r) in variants.iter().zip(&results) {
        assert_eq!(*r, expected, "{} computed a different result", v.name);
    }
    assert!(
        !scope.is_requested(),
        "the scope must not have been cancelled"
    );

    let width = variants.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut medians: Vec<(&'static str, bool, f64)> = Vec::new();
    for in_scope in [true, false] {
        println!();
        println!(
            "   {}",
            if in_scope {
                "inside a Shutdown::enter scope"
            } else {
                "outside any scope"
            }
        );
        for (v, s) in variants.iter().zip(samples.iter_mut()) {
            if v.in_scope != in_scope {
                continue;
            }
            let m = harness::median(s);
            let (min, max) = (s[0], s[s.len() - 1]);
            println!(
                "   {:<width$}  {m:8.2} ms  [{min:7.2} .. {max:7.2}]  {:6.2} ns/call",
                v.name,
                m * 1e6 / calls as f64,
            );
            medians.push((v.name, in_scope, m));
        }
    }
    let find = |name: &str, in_scope: bool| {
        medians
            .iter()
            .find(|(n, s, _)| *n == name && *s == in_scope)
            .map_or(f64::NAN, |(_, _, m)| *m)
    };
    println!();
    for in_scope in [true, false] {
        let context = if in_scope { "in scope" } else { "no scope" };
        for (name, base, target) in [
            (CANCEL_SAFE, PLAIN, Some(CANCEL_SAFE_TARGET)),
            (CANCEL_SAFE_CLEANUP, PLAIN, Some(CLEANUP_TARGET)),
            (CANCEL_SAFE_AWAITING, PLAIN_AWAITING, None),
            (RUN_UNTIL, PLAIN, None),
            (SELECT, PLAIN, None),
        ] {
            let value = find(name, in_scope) / find(base, in_scope);
            println!(
                "   ratio {name} / {base} ({context}) = {value:.3}  {}",
                harness::verdict(config.judge, value, target)
            );
        }
    }
}

/// On an already-cancelled scope every variant but the plain calls refuses to run a call,
/// even one that would not suspend.
fn check_cancelled() {
    const CALLS: u64 = 10;
    let rt = runtime();
    let scope = Shutdown::new();
    scope.trigger("benchmark check");
    let all = rt.block_on(loop_plain(CALLS, CancellationToken::new()));
    println!();
    println!("== on a cancelled scope, {CALLS} calls:");
    for v in variants().iter().filter(|v| v.in_scope) {
        let acc = rt.block_on(scope.enter((v.make)(CALLS, scope.token())));
        let ran = if acc == all {
            "all ran"
        } else if acc == 0 {
            "none ran"
        } else {
            "some ran"
        };
        let expected = if v.name == PLAIN || v.name == PLAIN_AWAITING {
            "all ran"
        } else {
            "none ran"
        };
        assert_eq!(ran, expected, "{} on a cancelled scope", v.name);
        println!("   {:<40} {ran}", v.name);
    }
}
