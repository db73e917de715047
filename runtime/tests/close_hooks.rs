//! The close step (`sequence::run_hooks`): tasks close hooks spawn that outlive the
//! hooks' time are aborted with sweeps through a quarter of the abort grace, then
//! counted; those still alive are marked blocking and stay counted as running.

#![allow(clippy::unwrap_used, clippy::async_yields_async)]
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sundown::{CloseOutcome, Report, Shutdown, Stats, TaskState};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn counts(s: &Stats) -> (u64, u64, u64, u64) {
    (s.completed, s.failed, s.cancelled, s.running)
}

fn stragglers(report: &Report) -> Vec<(String, TaskState)> {
    report
        .stragglers()
        .iter()
        .map(|t| (t.name().to_owned(), t.state()))
        .collect()
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// When dropped, spawns on the ambient scope a task that never ends; that task sets
/// `gone` when it is dropped in turn.
struct SpawnsForeverOnDrop {
    spawned: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
}

impl Drop for SpawnsForeverOnDrop {
    fn drop(&mut self) {
        self.spawned.store(true, Ordering::SeqCst);
        let gone = SetOnDrop(Arc::clone(&self.gone));
        drop(sundown::spawn_named(
            "spawned by the hook's drop",
            async move {
                let _gone = gone;
                std::future::pending::<()>().await;
            },
        ));
    }
}

/// The hook itself hangs (it spawned nothing before), and holds a value that spawns a
/// task as the timed-out hook is dropped. That task is the hook's too: it must be
/// aborted (or at least reported), not left running unseen.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_task_a_timed_out_hook_spawns_as_it_is_dropped_is_aborted_and_counted() {
    let scope = Shutdown::new();
    let spawned = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    let value = SpawnsForeverOnDrop {
        spawned: Arc::clone(&spawned),
        gone: Arc::clone(&gone),
    };
    scope.on_close("hangs", async move {
        let _value = value;
        std::future::pending::<()>().await;
    });
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(2)).await;
    let took = started.elapsed();
    // Let the runtime do what it would do next; the budget is long past.
    tokio::time::sleep(ms(500)).await;
    assert!(spawned.load(Ordering::SeqCst), "the hook was dropped");
    assert!(took <= Duration::from_secs(2) + ms(25), "{took:?}");
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::TimedOut);
    assert!(
        gone.load(Ordering::SeqCst),
        "the task the hook spawned as it was dropped is still running, untracked:\n{report}\n\
         report stats {:?}, scope stats {:?}",
        report.stats(),
        scope.stats()
    );
    let stats = report.stats();
    assert_eq!(
        stats.cancelled + stats.running,
        1,
        "the task is counted: {stats:?}\n{report}"
    );
}

/// Blocks its thread for `block` in its first poll, then is ready.
async fn blocks_then_ends(block: Duration) {
    std::thread::sleep(block);
}

/// Real time on purpose: a thread stuck in a poll cannot be driven by a paused clock.
/// A hook's task blocking its worker past the budget is a blocking straggler; the
/// report's counts and the scope's counts must still show it running, as they do for a
/// blocking straggler of the drain (`a_blocking_job_spawned_during_the_abort_step_is_
/// reported` asserts `running == 1`).
#[test]
fn a_hook_task_blocking_its_worker_is_blocking_and_still_counted_running() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scope = Shutdown::new();
    let (report, took) = rt.block_on(async {
        scope.on_close("spawns a blocker", async {
            sundown::spawn_named(
                "blocks its worker",
                blocks_then_ends(Duration::from_millis(1800)),
            );
        });
        let started = std::time::Instant::now();
        let report = scope.shutdown(Duration::from_secs(1)).await;
        (report, started.elapsed())
    });
    assert_eq!(
        stragglers(&report),
        [("blocks its worker".to_owned(), TaskState::Blocking)],
        "{report}"
    );
    assert!(
        took <= Duration::from_secs(1) + ms(12) + ms(150),
        "budget 1 s, abort grace 50 ms (a quarter: 12.5 ms): took {took:?}"
    );
    assert!(
        report.to_string().contains("(1 blocking their thread)"),
        "{report}"
    );
    let stats = report.stats();
    let in_scope = scope.stats();
    // Give the blocked worker time to finish, then look at the counts again.
    std::thread::sleep(Duration::from_millis(1500));
    let after = scope.stats();
    rt.shutdown_timeout(ms(100));
    assert_eq!(
        (stats.running, in_scope.running),
        (1, 1),
        "the blocking hook task is alive but counted nowhere: report {stats:?}, scope {in_scope:?}, scope once it ended {after:?}\n{report}"
    );
    assert_eq!(
        after.completed + after.cancelled + after.failed,
        1,
        "once it ends, its end is counted: {after:?}"
    );
}

/// The same with a blocking-pool job spawned by a hook.
#[test]
fn a_hook_blocking_job_past_the_budget_is_blocking_and_still_counted_running() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let scope = Shutdown::new();
    let report = rt.block_on(async {
        scope.on_close("spawns a job", async {
            sundown::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1500)));
        });
        scope.shutdown(Duration::from_secs(1)).await
    });
    let straggling = stragglers(&report);
    let stats = report.stats();
    rt.shutdown_timeout(ms(10));
    assert_eq!(straggling.len(), 1, "{report}");
    assert_eq!(straggling[0].1, TaskState::Blocking, "{report}");
    assert_eq!(stats.running, 1, "{stats:?}\n{report}");
}

/// Each link spawns the next as it is dropped, forever: the sweeps abort a few, the
/// last one is still alive at the end. Whatever is alive must be both listed and
/// counted running, and every link spawned must be counted somewhere.
struct Link {
    n: usize,
    spawned: Arc<AtomicUsize>,
}

/// Set once the shutdown returned: the runtime's own teardown would otherwise recurse
/// (tokio drops a task spawned during its shutdown at once, inside the spawn).
static CHAIN_STOP: AtomicBool = AtomicBool::new(false);

impl Drop for Link {
    fn drop(&mut self) {
        if CHAIN_STOP.load(Ordering::SeqCst) {
            return;
        }
        let next = Link {
            n: self.n + 1,
            spawned: Arc::clone(&self.spawned),
        };
        self.spawned.fetch_add(1, Ordering::SeqCst);
        drop(sundown::spawn_named(
            format!("link {}", next.n),
            async move {
                let _next = next;
                std::future::pending::<()>().await;
            },
        ));
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_chain_of_tasks_spawned_on_drop_by_a_hook_task_is_counted_and_bounded() {
    let scope = Shutdown::new();
    let spawned = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&spawned);
    scope.on_close("chain", async move {
        let first = Link { n: 0, spawned: s };
        sundown::spawn_named("link 0", async move {
            let _first = first;
            std::future::pending::<()>().await;
        });
    });
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(2)).await;
    let took = started.elapsed();
    CHAIN_STOP.store(true, Ordering::SeqCst);
    let total = 1 + spawned.load(Ordering::SeqCst) as u64;
    let stats = report.stats();
    let listed = stragglers(&report);
    let alive_listed = listed
        .iter()
        .filter(|(_, s)| *s == TaskState::Blocking)
        .count() as u64;
    assert!(took <= Duration::from_secs(2) + ms(26), "{took:?}");
    assert_eq!(listed[0].0, "link 0", "{report}");
    assert_eq!(
        stats.running, alive_listed,
        "what is listed as still alive is counted running: {stats:?}\n{report}"
    );
    assert_eq!(
        stats.cancelled + stats.running,
        total,
        "{total} links spawned, each counted once: {stats:?}\n{report}"
    );
}

/// Many hooks, each spawning tasks that never end: every task is aborted, listed and
/// counted, and the whole sequence stays within the budget plus the documented quarter.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn many_hooks_each_spawning_forever_tasks_are_all_aborted_and_counted() {
    let scope = Shutdown::new();
    for h in 0..20 {
        scope.on_close(format!("hook {h}"), async move {
            for t in 0..5 {
                sundown::spawn_named(format!("h{h}t{t}"), std::future::pending::<()>());
            }
        });
    }
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(2)).await;
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(2) + ms(25), "{took:?}");
    assert_eq!(report.stragglers().len(), 100, "{report}");
    assert!(
        report
            .stragglers()
            .iter()
            .all(|t| t.state() == TaskState::Running),
        "{report}"
    );
    assert!(
        report
            .closes()
            .iter()
            .all(|c| c.outcome() == &CloseOutcome::TimedOut),
        "{report}"
    );
    assert_eq!(counts(&report.stats()), (0, 0, 100, 0), "{report}");
    assert_eq!(counts(&scope.stats()), (0, 0, 100, 0));
    assert!(
        report
            .to_string()
            .contains("tasks: 0 completed, 0 failed, 100 cancelled; exit code 124"),
        "{report}"
    );
}

/// Hooks of a child and a grandchild, each spawning one quick and one endless task.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn nested_child_scopes_hooks_tasks_are_counted_in_the_root_report() {
    let root = Shutdown::new();
    let child = root.child_named("child");
    let grandchild = child.child_named("grandchild");
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    for (name, s) in [
        ("root", &root),
        ("child", &child),
        ("grandchild", &grandchild),
    ] {
        let o = Arc::clone(&order);
        s.on_close(name, async move {
            o.lock().unwrap().push(name);
            sundown::spawn_named(format!("{name} quick"), tokio::time::sleep(ms(10)));
            sundown::spawn_named(format!("{name} forever"), std::future::pending::<()>());
        });
    }
    let report = root.shutdown(Duration::from_secs(3)).await;
    assert_eq!(*order.lock().unwrap(), ["grandchild", "child", "root"]);
    let names: Vec<String> = stragglers(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["grandchild forever", "child forever", "root forever"],
        "{report}"
    );
    assert_eq!(counts(&report.stats()), (3, 0, 3, 0), "{report}");
    assert_eq!(counts(&root.stats()), (3, 0, 3, 0));
}

/// A budget of zero skips the hooks; nothing is spawned, nothing is left.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_zero_budget_skips_hooks_and_leaves_nothing() {
    let scope = Shutdown::new();
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    scope.on_close("would spawn", async move {
        r.store(true, Ordering::SeqCst);
        sundown::spawn_named("never", std::future::pending::<()>());
    });
    scope.on_close_within("bounded", Duration::from_secs(1), async {});
    let started = Instant::now();
    let report = scope.shutdown(Duration::ZERO).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(!ran.load(Ordering::SeqCst));
    assert!(
        report
            .closes()
            .iter()
            .all(|c| c.outcome() == &CloseOutcome::Skipped),
        "{report}"
    );
    assert_eq!(counts(&report.stats()), (0, 0, 0, 0));
    assert!(report.stragglers().is_empty());
}

/// A budget of `Duration::MAX`: a bounded hook whose task never ends is cut at its
/// bound, and its task is aborted within a quarter of the (capped) abort grace.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_max_budget_with_a_bounded_hook_cuts_it_at_its_bound() {
    let scope = Shutdown::new();
    scope.on_close_within("bounded", Duration::from_secs(1), async {
        sundown::spawn_named("forever", std::future::pending::<()>());
        sundown::spawn_named("quick", tokio::time::sleep(ms(100)));
    });
    let started = Instant::now();
    let report = scope.shutdown(Duration::MAX).await;
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(1) + ms(126), "{took:?}");
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::TimedOut);
    assert_eq!(report.closes()[0].elapsed(), Duration::from_secs(1));
    assert_eq!(
        stragglers(&report),
        [("forever".to_owned(), TaskState::Running)]
    );
    assert_eq!(counts(&report.stats()), (1, 0, 1, 0), "{report}");
}

/// `on_close_within`: the hook's share is its bound, and its endless task is aborted.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn on_close_within_bound_is_kept_and_its_task_is_aborted() {
    let scope = Shutdown::new();
    scope.spawn_named("slow worker", tokio::time::sleep(Duration::from_secs(10)));
    scope.on_close_within("journal", ms(500), async {
        sundown::spawn_named("fsync", std::future::pending::<()>());
    });
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(4)).await;
    let took = started.elapsed();
    // Drain: 4 s - 200 ms abort grace - 500 ms bound = 3.3 s; then abort grace,
    // then the hook's 500 ms, then a quarter of the grace at most.
    assert!(took <= Duration::from_secs(4) + ms(50), "{took:?}");
    assert_eq!(report.closes()[0].elapsed(), ms(500), "{report}");
    assert_eq!(
        stragglers(&report),
        [
            ("slow worker".to_owned(), TaskState::Running),
            ("fsync".to_owned(), TaskState::Running)
        ]
    );
    assert_eq!(counts(&report.stats()), (0, 0, 2, 0), "{report}");
}

/// A budget so small that a quarter of the abort grace is zero: an aborted hook task
/// that goes at its next poll is not blocking its thread.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_tiny_budget_does_not_call_an_aborted_hook_task_blocking() {
    let scope = Shutdown::new();
    scope.on_close_within("bounded", Duration::from_secs(1), async {
        sundown::spawn_named("forever", std::future::pending::<()>());
    });
    let report = scope.shutdown(Duration::from_nanos(50)).await;
    tokio::task::yield_now().await;
    let listed = stragglers(&report);
    assert!(
        listed.iter().all(|(_, s)| *s != TaskState::Blocking),
        "an aborted task that never blocked is called blocking: {listed:?}\n{report}"
    );
    assert_eq!(report.stats().running, 0, "{:?}\n{report}", report.stats());
}

/// A hook that registers another hook through the ambient free function: the hook
/// runs in a scope of its own, so the new hook lands there. It must run (as one
/// registered on the closing scope does), not vanish.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hook_registered_by_a_hook_through_the_free_function_runs() {
    let scope = Shutdown::new();
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    scope.on_close("registers another", async move {
        sundown::on_close("registered by a hook", async move {
            r.store(true, Ordering::SeqCst);
        });
    });
    let report = scope.shutdown(Duration::from_secs(1)).await;
    tokio::time::sleep(ms(100)).await;
    assert!(
        ran.load(Ordering::SeqCst),
        "the hook registered by a hook never ran; closes: {:?}\n{report}",
        report
            .closes()
            .iter()
            .map(|c| c.name().to_owned())
            .collect::<Vec<_>>()
    );
}

/// A panicking hook task: one failure, counted once.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_panicking_hook_task_is_one_failure() {
    let scope = Shutdown::new();
    scope.on_close("spawns a panic", async {
        sundown::spawn_named("hook task panics", async { panic!("hook task boom") });
    });
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(counts(&report.stats()), (0, 1, 0, 0), "{report}");
    assert_eq!(report.failure_count(), 1, "{report}");
    assert_eq!(report.exit_code(), 1, "{report}");
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::Done);
}

/// `join` with a hook whose task never ends: same counting as `shutdown`.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn join_with_a_hook_task_that_never_ends_counts_it() {
    let scope = Shutdown::new();
    scope.spawn_named("job", tokio::time::sleep(ms(100)));
    scope.on_close("spawns forever", async {
        sundown::spawn_named("forever", std::future::pending::<()>());
    });
    let started = Instant::now();
    let report = scope.join(Duration::from_secs(2)).await;
    assert!(started.elapsed() <= Duration::from_secs(2) + ms(25));
    assert_eq!(counts(&report.stats()), (1, 0, 1, 0), "{report}");
    assert_eq!(
        stragglers(&report),
        [("forever".to_owned(), TaskState::Running)]
    );
}
