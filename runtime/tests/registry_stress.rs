//! The task registry under concurrency: real multi-thread runtimes and OS threads
//! spawning, ending, snapshotting and aborting at once. Every assertion is exact; a
//! timeout only turns a hang into a failure.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use sundown::{Shutdown, Stats, TaskInfo};
use tokio::task::JoinHandle;

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

/// running, completed, failed, cancelled
fn counts(s: &Stats) -> (u64, u64, u64, u64) {
    (s.running, s.completed, s.failed, s.cancelled)
}

fn ended(s: &Stats) -> u64 {
    s.completed + s.failed + s.cancelled
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
    const SNAPSHOTS: usize = 2_000;
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
        counts(&stats),
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
    const SNAPSHOTS: usize = 10_000;
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
    // Until the churn has been caught live a few times, however the threads are
    // scheduled.
    let (mut seen, mut snapshots) = (0, 0);
    while snapshots < SNAPSHOTS || seen < 100 {
        snapshots += 1;
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
    let stats = scope.stats();
    assert_eq!(
        counts(&stats),
        (0, spawned.load(Ordering::Relaxed) as u64, 0, 0)
    );
}

/// More spawning threads than shards (at most 64, 4 on a small machine): each spawn
/// claims a shard, and those that find none free wait their turn. All finish, and the
/// counts add up to the task.
#[test]
fn more_spawning_threads_than_shards_finish_and_add_up() {
    const THREADS: usize = 32;
    const PER: usize = 300;
    let scope = Shutdown::new();
    let start = Arc::new(Barrier::new(THREADS));
    let (completed, cancelled) = within_hang_limit("32 spawning threads", {
        let scope = scope.clone();
        move || {
            let threads: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (scope, start) = (scope.clone(), start.clone());
                    std::thread::spawn(move || {
                        let rt = current_thread();
                        start.wait();
                        rt.block_on(scope.clone().enter(async move {
                            let (mut completed, mut cancelled) = (0u64, 0u64);
                            let mut batch: Vec<(bool, JoinHandle<()>)> = Vec::new();
                            for k in 0..PER {
                                let h = match k % 5 {
                                    0 => scope.spawn_named(format!("t{i}-{k}"), async {}),
                                    1 => scope.spawn(async { tokio::task::yield_now().await }),
                                    2 => sundown::spawn_named("free fn", async {}),
                                    3 => scope.spawn_blocking(|| ()),
                                    _ => {
                                        let h = scope.spawn(std::future::pending::<()>());
                                        h.abort();
                                        batch.push((true, h));
                                        continue;
                                    }
                                };
                                batch.push((false, h));
                                if batch.len() == 16 {
                                    for (aborted, h) in batch.drain(..) {
                                        match h.await {
                                            Ok(()) => completed += 1,
                                            Err(e) => {
                                                assert!(aborted && e.is_cancelled());
                                                cancelled += 1;
                                            }
                                        }
                                    }
                                }
                            }
                            for (aborted, h) in batch {
                                match h.await {
                                    Ok(()) => completed += 1,
                                    Err(e) => {
                                        assert!(aborted && e.is_cancelled());
                                        cancelled += 1;
                                    }
                                }
                            }
                            (completed, cancelled)
                        }))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
    });
    assert_eq!(completed + cancelled, (THREADS * PER) as u64);
    let stats = scope.stats();
    assert_eq!(counts(&stats), (0, completed, 0, cancelled));
    assert!(scope.tasks().is_empty());
}

/// A blocking job that returns at once, or a task a worker runs before the spawning
/// thread has stored its abort handle, ends before its entry is complete. Nothing
/// leaks, and the handle left behind never stands in for a later task of that slot:
/// tasks spawned afterwards into the same slots are all aborted by a shutdown.
#[test]
fn tasks_that_end_before_their_abort_handle_is_stored() {
    const THREADS: usize = 4;
    const PER: usize = 1_000;
    const PENDING: usize = 200;
    let rt = multi_thread();
    let scope = Shutdown::new();
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (scope, start, handle) = (scope.clone(), start.clone(), rt.handle().clone());
            std::thread::spawn(move || {
                start.wait();
                let mut hs = Vec::new();
                for k in 0..PER {
                    // From an OS thread onto the multi-thread runtime: a worker may run
                    // (and end) the task before `spawn` returns here.
                    let _enter = handle.enter();
                    if k % 2 == 0 {
                        hs.push(scope.spawn_blocking(move || i + k));
                    } else {
                        hs.push(scope.spawn(async move { i + k }));
                    }
                }
                handle.block_on(async move {
                    for (k, h) in hs.into_iter().enumerate() {
                        assert_eq!(h.await.unwrap(), i + k);
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = scope.stats();
    assert_eq!(counts(&stats), (0, (THREADS * PER) as u64, 0, 0));
    assert!(scope.tasks().is_empty(), "no entry outlives its task");

    // The same slots, reused by tasks that only an abort ends.
    rt.block_on(async {
        let hs: Vec<_> = (0..PENDING)
            .map(|_| scope.spawn(std::future::pending::<()>()))
            .collect();
        let report = scope.shutdown(Duration::from_millis(200)).await;
        assert_eq!(report.stragglers().len(), PENDING);
        for h in hs {
            let joined = tokio::time::timeout(HANG, h).await;
            assert!(
                joined
                    .expect("a straggler was never aborted")
                    .unwrap_err()
                    .is_cancelled()
            );
        }
    });
    let stats = scope.stats();
    assert_eq!(
        (stats.running, stats.completed, stats.cancelled),
        (0, (THREADS * PER) as u64, PENDING as u64)
    );
}

/// `shutdown(ZERO)` while tasks are ending on the workers: no panic, every task counted
/// once, and no task that had already ended among the stragglers.
#[test]
fn a_zero_budget_shutdown_races_tasks_ending() {
    const TASKS: usize = 400;
    let rt = multi_thread();
    for _round in 0..20 {
        let scope = Shutdown::new();
        rt.block_on(async {
            let hs: Vec<_> = (0..TASKS)
                .map(|i| {
                    scope.spawn_named(format!("t{i}"), async move {
                        for _ in 0..(i % 7) {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            let mut hs = hs.into_iter().enumerate();
            let mut done = std::collections::HashSet::new();
            for (i, h) in hs.by_ref().take(TASKS / 4) {
                h.await.unwrap();
                done.insert(format!("t{i}"));
            }
            let report = scope.shutdown(Duration::ZERO).await;
            for t in report.stragglers() {
                assert!(!done.contains(t.name()), "{} had ended", t.name());
            }
            let (mut completed, mut cancelled) = (done.len() as u64, 0);
            for (_, h) in hs {
                match tokio::time::timeout(HANG, h).await.expect("never ended") {
                    Ok(()) => completed += 1,
                    Err(e) => {
                        assert!(e.is_cancelled());
                        cancelled += 1;
                    }
                }
            }
            let stats = scope.stats();
            assert_eq!(counts(&stats), (0, completed, 0, cancelled));
            assert_eq!(ended(&stats), TASKS as u64);
        });
    }
}

/// A child scope per request, made and dropped at a high rate from many tasks while the
/// parent is listed and counted: the parent's counts end exact.
#[test]
fn a_child_scope_per_request() {
    const REQUESTS: usize = 2_000;
    let rt = multi_thread();
    let parent = Shutdown::new();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (parent, stop) = (parent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut snapshots = 0;
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                for t in parent.tasks() {
                    let name = t.name();
                    assert!(
                        name == "request" || (name.starts_with("req-") && name.contains('/')),
                        "{name:?}"
                    );
                }
                let s = parent.stats();
                assert!(s.failed == 0 && s.cancelled == 0, "{s:?}");
                snapshots += 1;
                if stopping {
                    return snapshots;
                }
            }
        })
    };
    rt.block_on(async {
        let hs: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let p = parent.clone();
                parent.spawn_named("request", async move {
                    let child = if i % 2 == 0 {
                        p.child_named(format!("req-{i}"))
                    } else {
                        p.child_named("req-static")
                    };
                    let hs: Vec<_> = (0..3)
                        .map(|k| {
                            child.spawn_named(format!("part-{k}"), async move {
                                tokio::task::yield_now().await;
                                k
                            })
                        })
                        .collect();
                    for (k, h) in hs.into_iter().enumerate() {
                        assert_eq!(h.await.unwrap(), k);
                    }
                    if i % 3 == 0 {
                        let report = child.shutdown(Duration::from_secs(5)).await;
                        assert_eq!(report.stats().completed, 3);
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let stats = parent.stats();
    assert_eq!(counts(&stats), (0, (REQUESTS * 4) as u64, 0, 0));
    assert!(parent.tasks().is_empty());
}

/// A shutdown's abort step while tasks keep spawning, from the scope's own tasks and
/// from other threads: no panic, no hang, every task counted once.
#[test]
fn shutdown_aborts_while_spawning_continues() {
    const SPAWNERS: usize = 4;
    let rt = multi_thread();
    let scope = Shutdown::new();
    let (release, released) = tokio::sync::watch::channel(false);
    let handles: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let spawned = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let child = |released: tokio::sync::watch::Receiver<bool>| async move {
        // Ignores cancellation: only an abort or the release at the end stops it.
        let mut released = released;
        let _ = released.wait_for(|r| *r).await;
    };
    // Spawners that are tasks of the scope (aborted with the rest).
    let entered = rt.enter();
    let mut spawners = Vec::new();
    for _ in 0..SPAWNERS {
        let (s, hs, n, released) = (
            scope.clone(),
            handles.clone(),
            spawned.clone(),
            released.clone(),
        );
        let h = scope.spawn_named("spawner", async move {
            loop {
                let h = s.spawn_named("child", child(released.clone()));
                n.fetch_add(1, Ordering::Relaxed);
                hs.lock().unwrap().push(h);
                tokio::task::yield_now().await;
            }
        });
        spawned.fetch_add(1, Ordering::Relaxed);
        spawners.push(h);
    }
    drop(entered);
    // Spawners on OS threads, until the shutdown has returned.
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (s, handles, spawned, released, stop, rt) = (
                scope.clone(),
                handles.clone(),
                spawned.clone(),
                released.clone(),
                stop.clone(),
                rt.handle().clone(),
            );
            std::thread::spawn(move || {
                let _enter = rt.enter();
                while !stop.load(Ordering::Relaxed) {
                    let h = s.spawn_named("from-thread", child(released.clone()));
                    spawned.fetch_add(1, Ordering::Relaxed);
                    handles.lock().unwrap().push(h);
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    rt.block_on(async {
        while spawned.load(Ordering::Relaxed) < 2_000 {
            tokio::task::yield_now().await;
        }
        let report = scope.shutdown(Duration::from_millis(100)).await;
        assert!(!report.stragglers().is_empty());
        // The abort reaches a spawner at its next await: until then (a worker
        // descheduled mid-spawn) it may still spawn, and push a handle.
        for h in spawners {
            let joined = tokio::time::timeout(HANG, h).await;
            assert!(
                joined
                    .expect("a spawner never ended")
                    .unwrap_err()
                    .is_cancelled()
            );
        }
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    // Whatever was spawned after the abort step is released now.
    release.send_replace(true);
    let all = std::mem::take(&mut *handles.lock().unwrap());
    assert_eq!(all.len() + SPAWNERS, spawned.load(Ordering::Relaxed));
    let (completed, cancelled) = rt.block_on(async {
        let (mut completed, mut cancelled) = (0u64, SPAWNERS as u64);
        for h in all {
            match tokio::time::timeout(HANG, h)
                .await
                .expect("a task never ended")
            {
                Ok(()) => completed += 1,
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        (completed, cancelled)
    });
    let stats = scope.stats();
    assert_eq!(counts(&stats), (0, completed, 0, cancelled));
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

/// `completed` never goes down: each of three threads completes 5 tasks, then only
/// cancels tasks. Once the 15 have completed, a reader of `stats()` must see 15
/// completed every time. (A shard's counts were read as `ended` then `cancelled`, with
/// completed = ended - failed - cancelled, while an ending task added to `cancelled`
/// first, then `ended`: a read between the two showed fewer completed tasks, as few as
/// the shard's cancellations in between allowed, down to 0.)
#[test]
fn completed_never_goes_down_while_cancelled_tasks_end() {
    const THREADS: usize = 3;
    const COMPLETED: u64 = 5;
    let scope = Shutdown::new();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let enders: Vec<_> = (0..THREADS)
        .map(|_| {
            let (scope, stop, start) = (scope.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || {
                let rt = current_thread();
                rt.block_on(async {
                    // Completed in this thread's shard, where the cancellations go next.
                    for _ in 0..COMPLETED {
                        scope.spawn(async {}).await.unwrap();
                    }
                    start.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let hs: Vec<_> = (0..64)
                            .map(|_| scope.spawn(std::future::pending::<()>()))
                            .collect();
                        for h in &hs {
                            h.abort();
                        }
                        for h in hs {
                            assert!(h.await.unwrap_err().is_cancelled());
                        }
                    }
                });
            })
        })
        .collect();
    start.wait();
    let all = THREADS as u64 * COMPLETED;
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut worst = all;
    let mut reads = 0u64;
    while Instant::now() < deadline && worst == all {
        worst = worst.min(scope.stats().completed);
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in enders {
        t.join().unwrap();
    }
    assert_eq!(
        worst, all,
        "stats().completed read as {worst} (of {all}, never more ended) in {reads} reads"
    );
}
