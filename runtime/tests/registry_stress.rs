//! The task registry under concurrency: real multi-thread runtimes and OS threads
//! spawning, ending, snapshotting and aborting at once. Every assertion is exact; a
//! timeout only turns a hang into a failure.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sundown::{Shutdown, TaskInfo};

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(20);

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("a runtime: {e}"))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("a runtime: {e}"))
}

/// Runs `f` on its own thread and fails if it has not returned within [`HANG`].
fn within_hang_limit<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap_or_else(|e| panic!("a thread: {e}"));
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {HANG:?}"),
    }
}

/// Checks one snapshot taken while the churn runs: each long-lived task exactly once,
/// and every entry under its own name and location.
fn check_snapshot(
    tasks: &[TaskInfo],
    steady: usize,
    steady_owned_line: u32,
    steady_static_line: u32,
    churn_owned_line: u32,
    churn_static_line: u32,
) {
    let mut owned_seen = vec![0usize; steady];
    let mut static_seen = 0;
    let mut churn_names = std::collections::HashSet::new();
    for t in tasks {
        let name = t.name();
        let line = t.location().line();
        if let Some(i) = name.strip_prefix("steady-") {
            assert_eq!(line, steady_owned_line, "{name} at the wrong line");
            let i: usize = i.parse().unwrap_or_else(|_| panic!("{name}"));
            owned_seen[i] += 1;
        } else if name == "steady" {
            assert_eq!(line, steady_static_line, "{name} at the wrong line");
            static_seen += 1;
        } else if name.starts_with("churn-") {
            assert_eq!(line, churn_owned_line, "{name} at the wrong line");
            assert!(churn_names.insert(name.to_owned()), "{name} listed twice");
        } else if name == "churn" {
            assert_eq!(line, churn_static_line, "{name} at the wrong line");
        } else {
            panic!("an entry under a name no task has: {name:?} at line {line}");
        }
    }
    for (i, n) in owned_seen.iter().enumerate() {
        assert_eq!(*n, 1, "steady-{i} listed {n} times");
    }
    assert_eq!(static_seen, steady, "the static-named long-lived tasks");
}

/// Idea: a snapshot reads each slot like a sequence lock, so a task alive for the whole
/// snapshot is in it exactly once while other slots are filled and freed around it.
#[test]
fn every_snapshot_lists_each_long_lived_task_once_under_churn() {
    const STEADY: usize = 40;
    const SNAPSHOTS: usize = 400;
    let rt = multi_thread();
    let scope = Shutdown::new();
    let lines = Arc::new(Mutex::new((0, 0, 0, 0)));
    let steady = rt.block_on(async {
        let mut hs = Vec::new();
        let (mut owned_line, mut static_line) = (0, 0);
        for i in 0..STEADY {
            let s = scope.clone();
            owned_line = line!() + 1;
            hs.push(scope.spawn_named(format!("steady-{i}"), async move { s.requested().await }));
            let s = scope.clone();
            static_line = line!() + 1;
            hs.push(scope.spawn_named("steady", async move { s.requested().await }));
        }
        let mut l = lines.lock().unwrap();
        l.0 = owned_line;
        l.1 = static_line;
        hs
    });

    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicUsize::new(0));
    // Churn from the runtime's workers and from OS threads with runtimes of their own.
    let churn = |scope: Shutdown,
                 stop: Arc<AtomicBool>,
                 churned: Arc<AtomicUsize>,
                 lines: Arc<Mutex<(u32, u32, u32, u32)>>,
                 seed: usize| async move {
        let mut n = seed * 1_000_000;
        while !stop.load(Ordering::Relaxed) {
            let mut hs = Vec::with_capacity(32);
            for k in 0..32 {
                n += 1;
                if k % 2 == 0 {
                    let line = line!() + 1;
                    hs.push(scope.spawn_named(format!("churn-{n}"), async move {
                        if n.is_multiple_of(3) {
                            tokio::task::yield_now().await;
                        }
                    }));
                    lines.lock().unwrap().2 = line;
                } else {
                    let line = line!() + 1;
                    hs.push(scope.spawn_named("churn", async move {
                        if n.is_multiple_of(3) {
                            tokio::task::yield_now().await;
                        }
                    }));
                    lines.lock().unwrap().3 = line;
                }
            }
            for h in hs {
                h.await.unwrap();
            }
            churned.fetch_add(32, Ordering::Relaxed);
        }
    };
    let mut on_runtime = Vec::new();
    for seed in 0..2 {
        on_runtime.push(rt.spawn(churn(
            scope.clone(),
            stop.clone(),
            churned.clone(),
            lines.clone(),
            seed,
        )));
    }
    let mut threads = Vec::new();
    for seed in 2..4 {
        let f = churn(
            scope.clone(),
            stop.clone(),
            churned.clone(),
            lines.clone(),
            seed,
        );
        threads.push(std::thread::spawn(move || current_thread().block_on(f)));
    }
    // Wait until every churn line has spawned once, so the lines are known.
    while {
        let l = lines.lock().unwrap();
        l.2 == 0 || l.3 == 0
    } {
        std::thread::yield_now();
    }
    let l = *lines.lock().unwrap();
    for _ in 0..SNAPSHOTS {
        check_snapshot(&scope.tasks(), STEADY, l.0, l.1, l.2, l.3);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    rt.block_on(async {
        for h in on_runtime {
            h.await.unwrap();
        }
        let report = scope.shutdown(Duration::from_secs(10)).await;
        assert!(report.stragglers().is_empty());
        for h in steady {
            h.await.unwrap();
        }
    });
    let stats = scope.stats();
    assert_eq!(
        (
            stats.running,
            stats.completed,
            stats.failed,
            stats.cancelled
        ),
        (
            0,
            (2 * STEADY + churned.load(Ordering::Relaxed)) as u64,
            0,
            0
        )
    );
    assert!(scope.tasks().is_empty());
}

/// Owned names live beside the slots: a snapshot never shows a live task under another
/// task's name, nor under the fallback "task".
#[test]
fn owned_names_stay_with_their_task_under_churn() {
    const SNAPSHOTS: usize = 3_000;
    let rt = multi_thread();
    let scope = Shutdown::new();
    let stop = Arc::new(AtomicBool::new(false));
    let spawned = Arc::new(AtomicUsize::new(0));
    let mut churners = Vec::new();
    for seed in 0..3usize {
        let (scope, stop, spawned) = (scope.clone(), stop.clone(), spawned.clone());
        churners.push(rt.spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // The name says which task it is: the task checks it sees its own.
                let name = format!("owned-{seed}-{n}");
                let h = scope.spawn_named(name.clone(), async move {
                    let me = Shutdown::current();
                    tokio::task::yield_now().await;
                    me.tasks().iter().any(|t| t.name() == name)
                });
                assert!(h.await.unwrap(), "a live task is listed under its own name");
                spawned.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut seen = 0;
    for _ in 0..SNAPSHOTS {
        for t in scope.tasks() {
            assert!(
                t.name().starts_with("owned-"),
                "a task listed as {:?}",
                t.name()
            );
            seen += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for c in churners {
            c.await.unwrap();
        }
    });
    assert!(seen > 0);
    let stats = scope.stats();
    assert_eq!(
        (
            stats.running,
            stats.completed,
            stats.failed,
            stats.cancelled
        ),
        (0, spawned.load(Ordering::Relaxed) as u64, 0, 0)
    );
}

/// A value whose `Drop` spawns a task that owns another such value: on a runtime that
/// has shut down, each spawn drops its task at once, inside the spawn call, so the
/// spawns nest on one thread, deeper than there are shards.
#[test]
fn spawns_nested_in_drops_deeper_than_the_shards_do_not_hang() {
    const DEPTH: usize = 70;
    struct Respawn {
        scope: Shutdown,
        depth: usize,
        dropped: Arc<AtomicUsize>,
    }
    impl Drop for Respawn {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            if self.depth > 0 {
                let next = Respawn {
                    scope: self.scope.clone(),
                    depth: self.depth - 1,
                    dropped: self.dropped.clone(),
                };
                drop(self.scope.spawn(async move {
                    let _next = next;
                }));
            }
        }
    }
    let rt = current_thread();
    let handle = rt.handle().clone();
    drop(rt);
    let scope = Shutdown::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    within_hang_limit("nested spawns", {
        let (scope, dropped) = (scope.clone(), dropped.clone());
        move || {
            let _enter = handle.enter();
            drop(Respawn {
                scope,
                depth: DEPTH,
                dropped,
            });
        }
    });
    assert_eq!(dropped.load(Ordering::SeqCst), DEPTH + 1);
    let stats = scope.stats();
    assert_eq!(
        (stats.running, stats.completed, stats.cancelled),
        (0, 0, DEPTH as u64)
    );
}
