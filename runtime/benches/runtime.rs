//! Benchmarks of sundown's tracked tasks against plain tokio and tokio-util.
//!
//! A self-contained harness (`harness = false`, no bench framework):
//!
//! ```text
//! cargo bench -p sundown --bench runtime            # everything
//! cargo bench -p sundown --bench runtime -- spawn   # benchmarks whose name contains "spawn"
//! ```
//!
//! * `spawn`: spawn and join 200 000 trivial tasks;
//! * `cancel`: from cancellation to all joined, for 100 000 idle tasks;
//! * `memory`: resident memory per live idle task, each variant in a fresh process;
//! * `suspend`: one task that suspends 1 000 000 times, its awaits recorded
//!   (`#[sundown::track_awaits]`) or not (on a `current_thread` runtime).
//!
//! The timed benchmarks run their variants side by side in one process on one 2-worker
//! multi-thread runtime, interleaved round by round (the starting variant rotates), after
//! one warm-up round, and print the median of every variant and the ratios the project
//! holds itself to.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), the binary makes a quick
//! smoke pass with small task counts instead, to check that every variant still works.

use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sundown::{CancellationToken, Shutdown};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

mod harness;

/// How big and how long: the benchmark's sizes, or small ones for a smoke pass.
#[derive(Clone, Copy)]
struct Config {
    spawn_tasks: usize,
    cancel_tasks: usize,
    memory_tasks: usize,
    suspensions: usize,
    /// Measured rounds of the timed benchmarks (after the warm-up rounds).
    rounds: usize,
    warmup_rounds: usize,
    /// Fresh child processes per variant of the memory benchmark.
    memory_runs: usize,
    /// Whether the numbers are measurements to hold against the targets.
    judge: bool,
}

const BENCH: Config = Config {
    spawn_tasks: 200_000,
    cancel_tasks: 100_000,
    memory_tasks: 200_000,
    suspensions: 1_000_000,
    rounds: 201,
    warmup_rounds: 1,
    memory_runs: 7,
    judge: true,
};

const SMOKE: Config = Config {
    spawn_tasks: 1_000,
    cancel_tasks: 1_000,
    memory_tasks: 1_000,
    suspensions: 1_000,
    rounds: 1,
    warmup_rounds: 0,
    memory_runs: 1,
    judge: false,
};

/// Set in a child process of the memory benchmark: the variant to measure.
const CHILD_ENV: &str = "SUNDOWN_BENCH_MEMORY_VARIANT";
/// Set in a child process of the memory benchmark: how many tasks to spawn.
const CHILD_TASKS_ENV: &str = "SUNDOWN_BENCH_MEMORY_TASKS";
const DRAIN_BUDGET: Duration = Duration::from_secs(60);

fn main() {
    if let Ok(variant) = std::env::var(CHILD_ENV) {
        let tasks = std::env::var(CHILD_TASKS_ENV)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(BENCH.memory_tasks);
        memory_child(&variant, tasks);
        return;
    }
    // Any argument that is not an option (`--bench`) is a filter on the names.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = if harness::is_bench() { BENCH } else { SMOKE };
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(*f));

    println!(
        "sundown runtime benchmarks{}: {} CPUs, tokio multi-thread runtime with 2 workers",
        harness::smoke_note(config.judge),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut ran = false;
    if selected("spawn") {
        bench_spawn(config);
        ran = true;
    }
    if selected("cancel") {
        bench_cancel(config);
        ran = true;
    }
    if selected("memory") {
        bench_memory(config);
        ran = true;
    }
    if selected("suspend") {
        bench_suspend(config);
        ran = true;
    }
    if selected("scaling") {
        bench_scaling(config);
        ran = true;
    }
    if !ran {
        println!(
            "no benchmark matches {filters:?}; the benchmarks are: spawn, cancel, memory, \
             suspend, scaling"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Harness

fn runtime() -> Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build the tokio runtime: {e}"),
    }
}

/// Runs `body` as a task on `rt` (so that it spawns from a worker thread, as a server
/// does) and returns what it measured.
fn in_task<F>(rt: &Runtime, body: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    match rt.block_on(rt.spawn(body)) {
        Ok(d) => d,
        Err(e) => panic!("benchmark task failed: {e}"),
    }
}

struct Variant {
    name: &'static str,
    /// Runs one round with this many tasks; returns the timed interval.
    run: fn(&Runtime, usize) -> Duration,
}

/// `numerator / denominator` of two variants' medians, and the target it must not exceed.
struct Ratio {
    numerator: &'static str,
    denominator: &'static str,
    target: Option<f64>,
}

/// Runs the variants interleaved, round by round, and prints medians and ratios.
fn run_timed(title: &str, config: Config, tasks: usize, variants: &[Variant], ratios: &[Ratio]) {
    println!();
    println!("== {title}");
    println!(
        "   {} rounds after {} warm-up, variants interleaved; median [min .. max]",
        config.rounds, config.warmup_rounds
    );
    let rt = runtime();
    let mut samples =
        harness::interleaved(config.warmup_rounds, config.rounds, variants.len(), |i| {
            (variants[i].run)(&rt, tasks)
        });
    drop(rt);

    let width = variants.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut medians = Vec::with_capacity(variants.len());
    for (v, s) in variants.iter().zip(samples.iter_mut()) {
        let m = harness::median(s);
        let (min, max) = (s[0], s[s.len() - 1]);
        println!(
            "   {:<width$}  {m:8.2} ms  [{min:7.2} .. {max:7.2}]  {:6.0} ns/task",
            v.name,
            m * 1e6 / tasks as f64,
        );
        medians.push((v.name, m));
    }
    let find = |name: &str| {
        medians
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, m)| *m)
    };
    for r in ratios {
        let value = find(r.numerator) / find(r.denominator);
        println!(
            "   ratio {} / {} = {value:.3}  {}",
            r.numerator,
            r.denominator,
            harness::verdict(config.judge, value, r.target)
        );
    }
}

async fn join_all<T>(handles: Vec<JoinHandle<T>>) {
    for h in handles {
        if let Err(e) = h.await {
            panic!("a benchmark task failed: {e}");
        }
    }
}

/// Waits until `polled` reaches `n`: every task has been polled once and is idle.
async fn until_polled(polled: &AtomicUsize, n: usize) {
    while polled.load(Ordering::Acquire) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The last task counted itself just before registering its waiter.
    tokio::time::sleep(Duration::from_millis(5)).await;
}

// ---------------------------------------------------------------------------------------
// 1. spawn + join

const RAW_JOIN: &str = "tokio::spawn, await handles";
const TRACKER_JOIN: &str = "TaskTracker::spawn, await handles";
const TRACKER_WAIT: &str = "TaskTracker::spawn, close + wait";
const SUNDOWN_JOIN: &str = "Shutdown::spawn, await handles";
const SUNDOWN_DRAIN: &str = "Shutdown::spawn, shutdown (drain)";
const SUNDOWN_JOIN_REUSED: &str = "Shutdown::spawn, await, long-lived scope";

fn bench_spawn(config: Config) {
    let variants = [
        Variant {
            name: RAW_JOIN,
            run: spawn_raw_join,
        },
        Variant {
            name: TRACKER_JOIN,
            run: spawn_tracker_join,
        },
        Variant {
            name: TRACKER_WAIT,
            run: spawn_tracker_wait,
        },
        Variant {
            name: SUNDOWN_JOIN,
            run: spawn_sundown_join,
        },
        Variant {
            name: SUNDOWN_DRAIN,
            run: spawn_sundown_drain,
        },
        Variant {
            name: SUNDOWN_JOIN_REUSED,
            run: spawn_sundown_join_reused,
        },
    ];
    let ratios = [
        Ratio {
            numerator: SUNDOWN_JOIN,
            denominator: TRACKER_JOIN,
            target: Some(1.10),
        },
        Ratio {
            numerator: SUNDOWN_JOIN,
            denominator: RAW_JOIN,
            target: Some(1.20),
        },
        Ratio {
            numerator: SUNDOWN_DRAIN,
            denominator: TRACKER_WAIT,
            target: Some(1.10),
        },
        Ratio {
            numerator: SUNDOWN_JOIN_REUSED,
            denominator: TRACKER_JOIN,
            target: None,
        },
        Ratio {
            numerator: TRACKER_JOIN,
            denominator: RAW_JOIN,
            target: None,
        },
    ];
    run_timed(
        &format!("spawn: spawn + join {} trivial tasks", config.spawn_tasks),
        config,
        config.spawn_tasks,
        &variants,
        &ratios,
    );
}

fn spawn_raw_join(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let mut handles = Vec::with_capacity(n);
        let t = Instant::now();
        for _ in 0..n {
            handles.push(tokio::spawn(async {}));
        }
        join_all(handles).await;
        t.elapsed()
    })
}

fn spawn_tracker_join(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let mut handles = Vec::with_capacity(n);
        let t = Instant::now();
        let tracker = TaskTracker::new();
        for _ in 0..n {
            handles.push(tracker.spawn(async {}));
        }
        join_all(handles).await;
        t.elapsed()
    })
}

fn spawn_tracker_wait(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let t = Instant::now();
        let tracker = TaskTracker::new();
        for _ in 0..n {
            drop(tracker.spawn(async {}));
        }
        tracker.close();
        tracker.wait().await;
        t.elapsed()
    })
}

fn spawn_sundown_join(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let mut handles = Vec::with_capacity(n);
        let t = Instant::now();
        let scope = Shutdown::new();
        for _ in 0..n {
            handles.push(scope.spawn(async {}));
        }
        join_all(handles).await;
        let elapsed = t.elapsed();
        assert_eq!(scope.stats().completed, n as u64);
        elapsed
    })
}

fn spawn_sundown_drain(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let t = Instant::now();
        let scope = Shutdown::new();
        for _ in 0..n {
            drop(scope.spawn(async {}));
        }
        let report = scope.shutdown(DRAIN_BUDGET).await;
        let elapsed = t.elapsed();
        assert!(report.stragglers().is_empty());
        assert_eq!(report.exit_code(), 0);
        elapsed
    })
}

/// The same scope every round: its registry has already grown to the burst's size, as a
/// process scope's has after the first burst.
fn spawn_sundown_join_reused(rt: &Runtime, n: usize) -> Duration {
    static SCOPE: std::sync::OnceLock<Shutdown> = std::sync::OnceLock::new();
    let scope = SCOPE.get_or_init(Shutdown::new).clone();
    in_task(rt, async move {
        let mut handles = Vec::with_capacity(n);
        let t = Instant::now();
        for _ in 0..n {
            handles.push(scope.spawn(async {}));
        }
        join_all(handles).await;
        t.elapsed()
    })
}

// ---------------------------------------------------------------------------------------
// 2. cancel → all joined

const HAND_CANCEL: &str = "CancellationToken + TaskTracker";
const SUNDOWN_CANCEL: &str = "Shutdown::shutdown";

fn bench_cancel(config: Config) {
    let variants = [
        Variant {
            name: HAND_CANCEL,
            run: cancel_hand_written,
        },
        Variant {
            name: SUNDOWN_CANCEL,
            run: cancel_sundown,
        },
    ];
    let ratios = [Ratio {
        numerator: SUNDOWN_CANCEL,
        denominator: HAND_CANCEL,
        target: Some(1.10),
    }];
    run_timed(
        &format!(
            "cancel: cancellation -> all joined, {} idle tasks (spawning not timed)",
            config.cancel_tasks
        ),
        config,
        config.cancel_tasks,
        &variants,
        &ratios,
    );
}

fn cancel_hand_written(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let polled = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let t = token.clone();
            let polled = polled.clone();
            tracker.spawn(async move {
                polled.fetch_add(1, Ordering::Release);
                t.cancelled().await;
            });
        }
        until_polled(&polled, n).await;

        let t = Instant::now();
        token.cancel();
        tracker.close();
        tracker.wait().await;
        t.elapsed()
    })
}

fn cancel_sundown(rt: &Runtime, n: usize) -> Duration {
    in_task(rt, async move {
        let scope = Shutdown::new();
        let polled = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let polled = polled.clone();
            // As a tracked task is written: it waits on its ambient scope, and holds no
            // handle of its own (the hand-written task holds its token, nothing more).
            scope.spawn(async move {
                polled.fetch_add(1, Ordering::Release);
                sundown::requested().await;
            });
        }
        until_polled(&polled, n).await;

        let t = Instant::now();
        let report = scope.shutdown(DRAIN_BUDGET).await;
        let elapsed = t.elapsed();
        assert!(report.stragglers().is_empty());
        assert_eq!(report.stats().completed, n as u64);
        elapsed
    })
}

// ---------------------------------------------------------------------------------------
// 3. memory per live task

const MEMORY_VARIANTS: [(&str, &str); 3] = [
    ("raw", "tokio::spawn (baseline)"),
    ("tracker", "CancellationToken + TaskTracker"),
    ("sundown", "Shutdown::spawn + requested()"),
];

fn bench_memory(config: Config) {
    println!();
    let (tasks, runs) = (config.memory_tasks, config.memory_runs);
    println!("== memory: resident bytes per live idle task, {tasks} tasks");
    if rss_bytes().is_none() {
        println!("   skipped: needs /proc/self/smaps_rollup or /proc/self/statm (Linux)");
        return;
    }
    println!(
        "   RSS growth from before the spawns to all tasks polled once, / {tasks}; \
         median of {runs} fresh processes per variant, interleaved"
    );
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => panic!("cannot find the benchmark's own executable: {e}"),
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); MEMORY_VARIANTS.len()];
    for _ in 0..runs {
        for (i, (key, _)) in MEMORY_VARIANTS.iter().enumerate() {
            let child = Command::new(&exe)
                .env(CHILD_ENV, key)
                .env(CHILD_TASKS_ENV, tasks.to_string())
                .output();
            let out = match child {
                Ok(o) => o,
                Err(e) => panic!("cannot run the memory child process: {e}"),
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            let bytes: f64 = match stdout.trim().parse() {
                Ok(b) if out.status.success() => b,
                _ => panic!(
                    "memory child `{key}` failed ({}): {stdout}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
            };
            samples[i].push(bytes / tasks as f64);
        }
    }
    let mut medians = Vec::new();
    for ((_, name), s) in MEMORY_VARIANTS.iter().zip(samples.iter_mut()) {
        let m = harness::median(s);
        println!(
            "   {name:<32}  {m:7.1} B/task  [{:7.1} .. {:7.1}]",
            s[0],
            s[s.len() - 1]
        );
        medians.push(m);
    }
    let extra = medians[2] - medians[1];
    println!(
        "   sundown - TaskTracker = {extra:.1} B/task  {}",
        harness::verdict(config.judge, extra, Some(64.0))
    );
    println!(
        "   TaskTracker - tokio::spawn = {:.1} B/task  (for information)",
        medians[1] - medians[0]
    );
}

// ---------------------------------------------------------------------------------------
// 4. suspend: the cost of recording await sites

const SUSPEND_RAW: &str = "tokio::spawn, plain awaits";
const SUSPEND_PLAIN: &str = "Shutdown::spawn, plain awaits";
const SUSPEND_RECORDED: &str = "Shutdown::spawn, #[track_awaits]";
const SUSPEND_NESTED: &str = "Shutdown::spawn, 3 nested #[track_awaits]";

fn bench_suspend(config: Config) {
    let variants = [
        Variant {
            name: SUSPEND_RAW,
            run: suspend_raw,
        },
        Variant {
            name: SUSPEND_PLAIN,
            run: suspend_plain,
        },
        Variant {
            name: SUSPEND_RECORDED,
            run: suspend_recorded,
        },
        Variant {
            name: SUSPEND_NESTED,
            run: suspend_nested,
        },
    ];
    let ratios = [
        Ratio {
            numerator: SUSPEND_RECORDED,
            denominator: SUSPEND_PLAIN,
            target: Some(1.05),
        },
        Ratio {
            numerator: SUSPEND_NESTED,
            denominator: SUSPEND_PLAIN,
            target: None,
        },
        Ratio {
            numerator: SUSPEND_PLAIN,
            denominator: SUSPEND_RAW,
            target: None,
        },
    ];
    run_timed(
        &format!(
            "suspend: one task that suspends {} times (tokio::task::yield_now)",
            config.suspensions
        ),
        config,
        config.suspensions,
        &variants,
        &ratios,
    );
}

/// The task's body without recording: `n` suspensions.
async fn yield_plain(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// The same body, its await recorded.
#[sundown::track_awaits]
async fn yield_recorded(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

#[sundown::track_awaits]
async fn yield_once_inner() {
    tokio::task::yield_now().await;
}

#[sundown::track_awaits]
async fn yield_once_middle() {
    yield_once_inner().await;
}

/// Each suspension three recorded awaits deep: a chain of three sites.
#[sundown::track_awaits]
async fn yield_nested(n: usize) {
    for _ in 0..n {
        yield_once_middle().await;
    }
}

/// One task suspending alone is measured on a `current_thread` runtime: on the shared
/// 2-worker runtime each yield may move it to the other worker, and those moves, not the
/// work per suspension, decided the time (±25% between rounds).
fn on_one_thread<F>(body: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build the tokio runtime: {e}"),
    };
    rt.block_on(body)
}

fn suspend_raw(_: &Runtime, n: usize) -> Duration {
    on_one_thread(async move {
        let t = Instant::now();
        if let Err(e) = tokio::spawn(yield_plain(n)).await {
            panic!("{e}");
        }
        t.elapsed()
    })
}

fn suspend_with<F: Future<Output = ()> + Send + 'static>(body: F) -> Duration {
    on_one_thread(async move {
        let scope = Shutdown::new();
        let t = Instant::now();
        if let Err(e) = scope.spawn(body).await {
            panic!("{e}");
        }
        t.elapsed()
    })
}

fn suspend_plain(_: &Runtime, n: usize) -> Duration {
    suspend_with(yield_plain(n))
}

fn suspend_recorded(_: &Runtime, n: usize) -> Duration {
    suspend_with(yield_recorded(n))
}

fn suspend_nested(_: &Runtime, n: usize) -> Duration {
    suspend_with(yield_nested(n))
}

/// In a child process: spawns `tasks` idle tasks of `variant` and prints the RSS growth
/// in bytes.
fn memory_child(variant: &str, tasks: usize) {
    let rt = runtime();
    let variant = variant.to_owned();
    let grown = rt.block_on(rt.spawn(async move {
        let polled = Arc::new(AtomicUsize::new(0));
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let scope = Shutdown::new();
        let before = rss_bytes().unwrap_or(0);
        for _ in 0..tasks {
            let polled = polled.clone();
            match variant.as_str() {
                "raw" => {
                    let t = token.clone();
                    drop(tokio::spawn(async move {
                        polled.fetch_add(1, Ordering::Release);
                        t.cancelled().await;
                    }));
                }
                "tracker" => {
                    let t = token.clone();
                    drop(tracker.spawn(async move {
                        polled.fetch_add(1, Ordering::Release);
                        t.cancelled().await;
                    }));
                }
                "sundown" => {
                    let s = scope.clone();
                    drop(scope.spawn(async move {
                        polled.fetch_add(1, Ordering::Release);
                        s.requested().await;
                    }));
                }
                other => panic!("unknown memory variant `{other}`"),
            }
        }
        until_polled(&polled, tasks).await;
        let after = rss_bytes().unwrap_or(0);
        after.saturating_sub(before)
    }));
    match grown {
        Ok(bytes) => println!("{bytes}"),
        Err(e) => panic!("memory child task failed: {e}"),
    }
    // Skip tearing the tasks down: the number is out.
    std::process::exit(0);
}

/// Resident set size: `Rss` of smaps_rollup (exact), else statm's resident pages × 4 KiB.
fn rss_bytes() -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        let kib = s
            .lines()
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        if let Some(kib) = kib {
            return Some(kib * 1024);
        }
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

// ---------------------------------------------------------------------------------------
// Scaling: two spawning threads at once, and the cost per task as live tasks grow

const TRACKER_ONE: &str = "TaskTracker, 1 spawning task";
const TRACKER_TWO: &str = "TaskTracker, 2 spawning tasks at once";
const SUNDOWN_ONE: &str = "Shutdown::spawn, 1 spawning task";
const SUNDOWN_TWO: &str = "Shutdown::spawn, 2 spawning tasks at once";

fn bench_scaling(config: Config) {
    let variants = [
        Variant {
            name: TRACKER_ONE,
            run: |rt, n| spawn_from(rt, n, 1, false),
        },
        Variant {
            name: TRACKER_TWO,
            run: |rt, n| spawn_from(rt, n, 2, false),
        },
        Variant {
            name: SUNDOWN_ONE,
            run: |rt, n| spawn_from(rt, n, 1, true),
        },
        Variant {
            name: SUNDOWN_TWO,
            run: |rt, n| spawn_from(rt, n, 2, true),
        },
    ];
    let ratios = [
        Ratio {
            numerator: SUNDOWN_ONE,
            denominator: TRACKER_ONE,
            target: None,
        },
        Ratio {
            numerator: SUNDOWN_TWO,
            denominator: TRACKER_TWO,
            target: None,
        },
    ];
    run_timed(
        &format!(
            "scaling: spawn + join {} trivial tasks from 1 and from 2 spawning tasks",
            config.spawn_tasks
        ),
        config,
        config.spawn_tasks,
        &variants,
        &ratios,
    );

    // The cost per task of spawning into a scope that already holds N live tasks.
    println!();
    println!(
        "== scaling: spawning 10 000 more tasks (until each was polled once) into a scope with N live ones"
    );
    let rt = runtime();
    let sizes: &[usize] = if config.judge {
        &[10_000, 100_000, 1_000_000]
    } else {
        &[100, 1_000]
    };
    let batch = if config.judge { 10_000 } else { 100 };
    let batches = if config.judge { 5 } else { 1 };
    let rounds = if config.judge { 41 } else { 1 };
    println!(
        "   {rounds} rounds, each timing {batches} batches of {batch} (let go between batches) \
         for every size and both variants, all interleaved; medians"
    );
    // Sizes interleaved too, not one after the other: the flatness compares sizes, and
    // measured minutes apart they also compared the machine's state then and later.
    let mut samples = harness::interleaved(0, rounds, 2 * sizes.len(), |k| {
        in_task(
            &rt,
            spawn_among_live(sizes[k / 2], batch, batches, k % 2 == 1),
        )
    });
    let timed = (batch * batches) as f64;
    let mut per_task = Vec::new();
    for (i, &live) in sizes.iter().enumerate() {
        let ns = [0, 1].map(|v| harness::median(&mut samples[2 * i + v]) * 1e6 / timed);
        println!(
            "   {live:>9} live: TaskTracker {:6.0} ns/task, Shutdown::spawn {:6.0} ns/task ({:.3}x)",
            ns[0],
            ns[1],
            ns[1] / ns[0]
        );
        per_task.push(ns);
    }
    if let (Some(first), Some(last)) = (per_task.first(), per_task.last()) {
        println!(
            "   ratio largest / smallest, Shutdown::spawn = {:.3}  {}",
            last[1] / first[1],
            harness::verdict(config.judge, last[1] / first[1], Some(1.2))
        );
        println!(
            "   ratio largest / smallest, TaskTracker = {:.3}  (for information: what tokio \
             itself adds as live tasks grow)",
            last[0] / first[0]
        );
        // What sundown adds over the bare tracker, as the live tasks grow: the registry's
        // own scaling, without tokio's.
        let (r_first, r_last) = (first[1] / first[0], last[1] / last[0]);
        println!(
            "   ratio to TaskTracker, largest / smallest = {:.3}  (for information)",
            r_last / r_first,
        );
    }
}

/// Spawns `batches` batches of `batch` waiting tasks, one after the other, next to `live`
/// waiting ones already there (all polled once before the clock starts), on TaskTracker
/// or a sundown scope, and times the spawns and the first poll of each. A batch is let
/// go (untimed) before the next, so every batch finds `live` tasks; several per round
/// make a round long enough to measure steadily (one batch of 10 000 lasts 3–6 ms).
async fn spawn_among_live(live: usize, batch: usize, batches: usize, sundown: bool) -> Duration {
    let scope = Shutdown::new();
    let tracker = TaskTracker::new();
    let polled = Arc::new(AtomicUsize::new(0));
    let spawn = |token: &CancellationToken| {
        let (t, polled) = (token.clone(), polled.clone());
        let waiting = async move {
            polled.fetch_add(1, Ordering::Release);
            t.cancelled_owned().await
        };
        if sundown {
            scope.spawn(waiting)
        } else {
            tracker.spawn(waiting)
        }
    };
    let token = CancellationToken::new();
    for _ in 0..live {
        drop(spawn(&token));
    }
    until_polled(&polled, live).await;
    let mut timed = Duration::ZERO;
    for _ in 0..batches {
        let before = polled.load(Ordering::Acquire);
        let batch_token = CancellationToken::new();
        let mut handles = Vec::with_capacity(batch);
        let t = Instant::now();
        for _ in 0..batch {
            handles.push(spawn(&batch_token));
        }
        while polled.load(Ordering::Acquire) < before + batch {
            tokio::task::yield_now().await;
        }
        timed += t.elapsed();
        batch_token.cancel();
        join_all(handles).await;
    }
    token.cancel();
    tracker.close();
    tracker.wait().await;
    drop(scope.shutdown(DRAIN_BUDGET).await);
    timed
}

/// Spawns `n` trivial tasks from `spawners` tasks at once (each `n / spawners`), on
/// TaskTracker or on one sundown scope, and joins them.
fn spawn_from(rt: &Runtime, n: usize, spawners: usize, sundown: bool) -> Duration {
    in_task(rt, async move {
        let t = Instant::now();
        let scope = Shutdown::new();
        let tracker = TaskTracker::new();
        let each = n / spawners;
        let mut spawning = Vec::new();
        for _ in 0..spawners {
            let (scope, tracker) = (scope.clone(), tracker.clone());
            spawning.push(tokio::spawn(async move {
                let mut handles = Vec::with_capacity(each);
                for _ in 0..each {
                    handles.push(if sundown {
                        scope.spawn(async {})
                    } else {
                        tracker.spawn(async {})
                    });
                }
                join_all(handles).await;
            }));
        }
        join_all(spawning).await;
        t.elapsed()
    })
}
