//! Regression tests for the lifecycle of scopes after the restructuring: children shut
//! down on their own, dropped children, `shutdown()` from inside its own scope, close
//! hooks that spawn, the budget split, names in the report text, the failure policy and
//! `root()`. All in-process, on tokio's paused clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sundown::{Cause, CloseOutcome, FailurePolicy, Report, Shutdown};
use tokio::sync::oneshot;
use tokio::time::Instant;

fn pending_forever() -> impl std::future::Future<Output = ()> + Send + 'static {
    std::future::pending()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn close_names(report: &Report) -> Vec<&str> {
    report.closes().iter().map(|c| c.name()).collect()
}

fn straggler_names(report: &Report) -> Vec<&str> {
    report.stragglers().iter().map(|t| t.name()).collect()
}

/// Lets spawned tasks run (a panic happen, a quick task finish) without moving time.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------------------
// 1. A child shut down on its own does not touch its parent.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_child_triggered_on_its_own_leaves_its_parent_ready() {
    let parent = Shutdown::new();
    let child = parent.child();
    child.trigger("reloading");
    assert!(child.is_requested());
    assert!(!child.is_ready());
    assert!(parent.is_ready(), "the parent's readiness is untouched");
    assert!(!parent.is_requested());
    assert_eq!(parent.cause(), None, "no cause recorded on the parent");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_child_shut_down_on_its_own_leaves_its_parent_ready() {
    let parent = Shutdown::new();
    let child = parent.child();
    let c = child.clone();
    child.spawn_named("child worker", async move { c.requested().await });
    let hook_ran = Arc::new(AtomicBool::new(false));
    let h = hook_ran.clone();
    child.on_close("child pool", async move { h.store(true, Ordering::SeqCst) });

    let report = child.shutdown(secs(9)).await;

    assert_eq!(report.cause(), Some(&Cause::ShutdownCalled));
    assert_eq!(close_names(&report), ["child pool"], "the child's report");
    assert!(hook_ran.load(Ordering::SeqCst));
    assert_eq!(report.stats().completed, 1);
    assert_eq!(report.exit_code(), 0);
    assert!(child.is_requested() && !child.is_ready());

    assert!(parent.is_ready(), "the parent's readiness is untouched");
    assert!(!parent.is_requested());
    assert_eq!(parent.cause(), None);
    assert_eq!(
        parent.stats().completed,
        1,
        "what the child counted still counts in the parent"
    );
    // The child's hook ran once and is not run again by the parent.
    let parent_report = parent.shutdown(secs(1)).await;
    assert!(parent_report.closes().is_empty(), "{parent_report}");
    assert_eq!(parent_report.cause(), Some(&Cause::ShutdownCalled));
}

// ---------------------------------------------------------------------------------------
// 2. A child whose every handle was dropped loses nothing.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dropped_child_keeps_its_hooks_and_failures_for_its_parent() {
    let parent = Shutdown::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    parent.on_close("parent pool", async move {
        l.lock().unwrap().push("parent pool");
    });
    {
        let child = parent.child();
        let l = log.clone();
        child.on_close("x", async move { l.lock().unwrap().push("x") });
        child.spawn_named("bad", async { panic!("boom") });
    }
    settle().await; // the panic happens with no handle to the child left
    // Making more children folds spent ones: this one is not spent (it has a hook).
    let _other = parent.child();

    let report = parent.shutdown(secs(9)).await;

    assert_eq!(
        close_names(&report),
        ["x", "parent pool"],
        "children's hooks run before the parent's"
    );
    assert_eq!(*log.lock().unwrap(), ["x", "parent pool"]);
    assert_eq!(report.failure_count(), 1, "{report}");
    assert_eq!(report.failures()[0].task(), "bad");
    assert_eq!(report.stats().failed, 1);
    assert_eq!(report.exit_code(), 1, "{report}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dropped_child_folded_into_its_parent_keeps_its_failure() {
    let parent = Shutdown::new();
    parent.child().spawn_named("bad", async { panic!("boom") });
    settle().await;
    // The child is now spent (no task, no hook, no handle): the next child folds it.
    for _ in 0..3 {
        let _ = parent.child();
    }
    assert_eq!(parent.stats().failed, 1);
    let report = parent.shutdown(secs(1)).await;
    assert_eq!(report.failure_count(), 1, "{report}");
    assert_eq!(report.failures()[0].task(), "bad");
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_child_per_request_does_not_lose_counts() {
    const REQUESTS: u64 = 10_000;
    let parent = Shutdown::new();
    for i in 0..REQUESTS {
        let child = parent.child();
        let h = child.spawn_named("request", async move { i * 2 });
        if i % 3 == 0 {
            // Some are awaited, the others finish while later children are made.
            assert_eq!(h.await.unwrap(), i * 2);
        }
        drop(child);
        if i % 100 == 0 {
            settle().await;
        }
    }
    settle().await;
    let stats = parent.stats();
    assert_eq!(stats.completed, REQUESTS, "{stats:?}");
    assert_eq!(stats.running, 0);
    assert_eq!(stats.failed, 0);
    let report = parent.shutdown(secs(1)).await;
    assert_eq!(report.stats().completed, REQUESTS);
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_child_per_request_does_not_lose_failures() {
    let parent = Shutdown::new();
    for i in 0..1_000u32 {
        let child = parent.child();
        child.spawn_named("request", async move {
            assert!(i % 100 != 0, "request {i} failed");
        });
        settle().await;
    }
    let stats = parent.stats();
    assert_eq!(stats.completed, 990, "{stats:?}");
    assert_eq!(stats.failed, 10, "{stats:?}");
    let report = parent.shutdown(secs(1)).await;
    assert_eq!(report.failure_count(), 10);
    assert_eq!(report.exit_code(), 1);
}

// ---------------------------------------------------------------------------------------
// 3. `shutdown()` from inside the scope it shuts down.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_from_a_tracked_task_of_its_own_scope_returns_to_its_caller() {
    let scope = Shutdown::new();
    let drained = Arc::new(AtomicBool::new(false));
    let (s, d) = (scope.clone(), drained.clone());
    scope.spawn_named("worker", async move {
        s.requested().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        d.store(true, Ordering::SeqCst);
    });
    scope.spawn_named("stuck", pending_forever());
    let (tx, rx) = oneshot::channel();
    let s = scope.clone();
    let stopper = scope.spawn_named("stopper", async move {
        let started = Instant::now();
        let report = s.shutdown(secs(2)).await;
        let took = started.elapsed();
        tx.send(report).ok();
        took
    });

    let report = rx.await.expect("the code after the .await ran");
    assert!(drained.load(Ordering::SeqCst), "the other task was drained");
    assert_eq!(straggler_names(&report), ["stuck"], "{report}");
    assert_eq!(report.exit_code(), 124);
    let took = stopper.await.expect("the caller was not aborted");
    assert!(took <= secs(2), "{took:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_from_a_tracked_task_is_not_waited_for() {
    let scope = Shutdown::new();
    let s = scope.clone();
    let stopper = scope.spawn_named("stopper", async move {
        let started = Instant::now();
        let report = s.shutdown(secs(9)).await;
        (
            report.exit_code(),
            report.stragglers().len(),
            started.elapsed(),
        )
    });
    let (code, stragglers, took) = stopper.await.unwrap();
    assert_eq!(code, 0);
    assert_eq!(stragglers, 0);
    assert_eq!(took, Duration::ZERO, "it did not wait for itself");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_from_a_tracked_task_returns_when_the_others_are_done() {
    // The caller stays registered while it waits: the drain must still be woken when
    // the last other task of its shard ends, not sleep to its deadline.
    let scope = Shutdown::new();
    scope.spawn_named("worker", async {
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let s = scope.clone();
    let stopper = scope.spawn_named("stopper", async move {
        let started = Instant::now();
        let report = s.join(secs(9)).await;
        (report.exit_code(), started.elapsed())
    });
    let (code, took) = stopper.await.unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        took,
        Duration::from_millis(100),
        "woken when the worker ended"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_from_inside_enter_returns_its_report() {
    let scope = Shutdown::new();
    let drained = Arc::new(AtomicBool::new(false));
    let (s, d) = (scope.clone(), drained.clone());
    scope.spawn_named("worker", async move {
        s.requested().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        d.store(true, Ordering::SeqCst);
    });
    scope.spawn_named("stuck", pending_forever());
    let s = scope.clone();
    let report = scope
        .enter(async move {
            let report = s.shutdown(secs(2)).await;
            assert!(Shutdown::current().is_requested());
            report
        })
        .await;
    assert!(drained.load(Ordering::SeqCst));
    assert_eq!(straggler_names(&report), ["stuck"], "{report}");
    assert_eq!(report.exit_code(), 124);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_from_enter_inside_a_tracked_task_of_its_own_scope_returns() {
    let scope = Shutdown::new();
    let (tx, rx) = oneshot::channel();
    let s = scope.clone();
    let _task = scope.spawn_named("stopper", async move {
        let inner = s.clone();
        let report = s.enter(async move { inner.shutdown(secs(2)).await }).await;
        tx.send(report).ok();
    });
    let started = Instant::now();
    let report = rx.await;
    let took = started.elapsed();
    let report = report.unwrap_or_else(|_| {
        panic!("the caller was aborted after {took:?}: the code after the .await never ran")
    });
    assert!(report.stragglers().is_empty(), "{report}");
    assert_eq!(report.exit_code(), 0, "{report}");
}

// ---------------------------------------------------------------------------------------
// 4. Close hooks that spawn tasks.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_task_spawned_by_a_close_hook_finishes_its_work() {
    let scope = Shutdown::new();
    let flushed = Arc::new(AtomicBool::new(false));
    let f = flushed.clone();
    scope.on_close("flush", async move {
        sundown::spawn_named("flusher", async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.store(true, Ordering::SeqCst);
        });
    });
    let report = scope.shutdown(secs(9)).await;
    assert!(flushed.load(Ordering::SeqCst), "the hook's task completed");
    assert_eq!(report.exit_code(), 0, "{report}");
    assert!(report.stragglers().is_empty());
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::Done);
    assert_eq!(
        report.closes()[0].elapsed(),
        Duration::from_millis(100),
        "the hook's call ends when its task does"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_close_hook_task_that_never_ends_is_a_straggler_within_the_budget() {
    let scope = Shutdown::new();
    let later_ran = Arc::new(AtomicBool::new(false));
    let l = later_ran.clone();
    scope.on_close("runs after", async move { l.store(true, Ordering::SeqCst) });
    scope.on_close("spawns forever", async {
        sundown::spawn_named("forever", pending_forever());
    });
    let started = Instant::now();
    let report = scope.shutdown(secs(2)).await;
    let took = started.elapsed();
    assert!(took <= secs(2), "{took:?}");
    assert_eq!(straggler_names(&report), ["forever"], "{report}");
    assert_eq!(report.exit_code(), 124);
    assert_eq!(close_names(&report), ["spawns forever", "runs after"]);
    assert!(later_ran.load(Ordering::SeqCst), "the next hook still ran");
    assert!(report.to_string().contains("forever"), "{report}");
    // Aborted, it is counted: the report's totals leave no task out.
    let stats = report.stats();
    assert_eq!((stats.running, stats.cancelled), (0, 1), "{report}");
    assert!(
        report.to_string().contains("0 failed, 1 cancelled"),
        "{report}"
    );
    assert!(
        report.to_string().contains(
            "1 task(s) spawned by close hooks and still running when the hooks' time ran out \
             were aborted (0 blocking their thread)"
        ),
        "the header says which deadline they missed: {report}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_straggler_header_names_both_deadlines_when_both_were_missed() {
    let scope = Shutdown::new();
    scope.spawn_named("deaf", pending_forever());
    scope.on_close("spawns forever", async {
        sundown::spawn_named("forever", pending_forever());
    });
    let report = scope.shutdown(secs(2)).await;
    assert_eq!(straggler_names(&report), ["deaf", "forever"], "{report}");
    assert!(
        report.to_string().contains(
            "2 task(s) still running at the drain deadline, or spawned by close hooks and \
             still running when the hooks' time ran out, were aborted"
        ),
        "{report}"
    );
    assert_eq!(report.stats().cancelled, 2, "{report}");
}

/// Spawns a task on the ambient scope that never ends when it is dropped.
struct SpawnsForeverOnDrop;

impl Drop for SpawnsForeverOnDrop {
    fn drop(&mut self) {
        sundown::spawn_named("spawned as it was dropped", pending_forever());
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_task_a_timed_out_hook_task_spawns_as_it_is_aborted_is_aborted_too() {
    let scope = Shutdown::new();
    scope.on_close("spawns forever", async {
        sundown::spawn_named("forever", async {
            let _value = SpawnsForeverOnDrop;
            pending_forever().await;
        });
    });
    let started = Instant::now();
    let report = scope.shutdown(secs(2)).await;
    // The hook runs to the deadline; its task, aborted then, spawns as it is dropped,
    // and that task is aborted by the next sweep, a sixteenth of the abort grace (5%
    // of 2 s) later.
    let took = started.elapsed();
    assert!(
        took <= secs(2) + Duration::from_millis(25),
        "{took:?} {report}"
    );
    assert_eq!(straggler_names(&report), ["forever"], "{report}");
    let stats = report.stats();
    assert_eq!((stats.running, stats.cancelled), (0, 2), "{report}");
    assert_eq!(
        scope.stats().running,
        0,
        "nothing of the hook is left running"
    );
}

// ---------------------------------------------------------------------------------------
// 5. The budget split.
// ---------------------------------------------------------------------------------------

/// A task that ignores cancellation and finishes on its own after `work`.
fn stubborn(scope: &Shutdown, work: Duration) {
    scope.spawn_named("stubborn", async move {
        tokio::time::sleep(work).await;
    });
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn with_an_unbounded_hook_the_drain_gets_at_least_85_percent() {
    let scope = Shutdown::new();
    scope.on_close("pool", async {});
    stubborn(&scope, Duration::from_millis(7_600));
    let report = scope.shutdown(secs(9)).await;
    assert!(report.stragglers().is_empty(), "{report}");
    assert_eq!(report.stats().completed, 1);
    assert_eq!(report.exit_code(), 0, "{report}");
    let text = report.to_string();
    assert!(text.contains("drain 7.60s (of "), "{text}");
    // The drain limit shown is at least 85% of 9s.
    let of = text.split("(of ").nth(1).unwrap();
    let shown = of.split(')').next().unwrap();
    let secs_shown: f64 = shown.trim_end_matches('s').parse().unwrap();
    assert!(secs_shown >= 9.0 * 0.85, "{text}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_declared_hook_bound_is_reserved_and_cuts_a_long_drain() {
    let scope = Shutdown::new();
    scope.on_close_within("j", secs(2), async {});
    stubborn(&scope, Duration::from_millis(7_600));
    let report = scope.shutdown(secs(9)).await;
    assert_eq!(straggler_names(&report), ["stubborn"], "{report}");
    assert_eq!(report.exit_code(), 124);
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::Done);
    assert!(report.to_string().contains("(of "), "{report}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_declared_hook_bound_leaves_the_rest_to_the_drain() {
    let scope = Shutdown::new();
    scope.on_close_within("j", secs(2), async {});
    stubborn(&scope, Duration::from_millis(6_400));
    let report = scope.shutdown(secs(9)).await;
    assert!(report.stragglers().is_empty(), "{report}");
    assert_eq!(report.stats().completed, 1);
    assert_eq!(report.exit_code(), 0, "{report}");
    assert!(report.to_string().contains("drain 6.40s (of "), "{report}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_budget_of_duration_max_does_not_overflow() {
    let scope = Shutdown::new();
    scope.on_close("pool", async {});
    scope.on_close_within("j", secs(1), async {});
    stubborn(&scope, Duration::from_millis(300));
    let report = scope.shutdown(Duration::MAX).await;
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(report.stats().completed, 1);
    assert_eq!(report.closes().len(), 2);
    assert!(!report.to_string().is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_budget_of_zero_cuts_a_stuck_task() {
    let scope = Shutdown::new();
    scope.spawn_named("stuck", pending_forever());
    let started = Instant::now();
    let report = scope.shutdown(Duration::ZERO).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(straggler_names(&report), ["stuck"], "{report}");
    assert_eq!(report.exit_code(), 124);
    assert!(!report.to_string().is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_budget_of_zero_on_an_empty_scope_is_clean() {
    let report = Shutdown::new().shutdown(Duration::ZERO).await;
    assert_eq!(report.exit_code(), 0, "{report}");
}

// ---------------------------------------------------------------------------------------
// 7. Names in the report text are escaped and bounded.
// ---------------------------------------------------------------------------------------

const EVIL: &str = "evil\nshutdown (SIGTERM) took 0ms of 9s; exit code 0";

fn lines_starting_shutdown(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("shutdown (")).count()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_straggler_name_cannot_forge_a_report_line() {
    let scope = Shutdown::new();
    scope.spawn_named(EVIL, pending_forever());
    let report = scope.shutdown(secs(1)).await;
    assert_eq!(
        report.stragglers()[0].name(),
        EVIL,
        "the name itself is kept"
    );
    let text = report.to_string();
    assert_eq!(lines_starting_shutdown(&text), 1, "{text}");
    assert!(
        !text
            .lines()
            .skip(1)
            .any(|l| l.starts_with("shutdown (SIGTERM)")),
        "{text}"
    );
    assert!(text.contains(r"evil\nshutdown (SIGTERM)"), "{text}");
    assert!(text.ends_with("exit code 124"), "{text}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_task_or_hook_name_cannot_forge_a_report_line() {
    let scope = Shutdown::new();
    scope.spawn_named(EVIL, async { panic!("boom") });
    scope.on_close(EVIL, async { panic!("hook boom") });
    settle().await;
    let report = scope.shutdown(secs(1)).await;
    let text = report.to_string();
    assert_eq!(report.failure_count(), 1);
    assert_eq!(lines_starting_shutdown(&text), 1, "{text}");
    assert!(!text.lines().any(|l| l.ends_with("exit code 0")), "{text}");
    assert_eq!(text.matches(r"evil\nshutdown").count(), 2, "{text}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_task_name_in_the_cause_cannot_forge_a_report_line() {
    let scope = Shutdown::new();
    scope.set_failure_policy(FailurePolicy::Shutdown);
    scope.spawn_named(EVIL, async { panic!("boom") });
    settle().await;
    assert_eq!(scope.cause(), Some(Cause::TaskFailed(EVIL.into())));
    let report = scope.shutdown(secs(1)).await;
    let text = report.to_string();
    assert_eq!(lines_starting_shutdown(&text), 1, "{text}");
    assert!(
        text.lines().next().unwrap().contains(r"evil\nshutdown"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_huge_failed_task_name_in_the_cause_is_shortened() {
    let scope = Shutdown::new();
    scope.set_failure_policy(FailurePolicy::Shutdown);
    scope.spawn_named("y".repeat(200_000), async { panic!("boom") });
    settle().await;
    assert!(matches!(scope.cause(), Some(Cause::TaskFailed(_))));
    let text = scope.shutdown(secs(1)).await.to_string();
    assert!(text.len() < 10_000, "{} chars", text.len());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_huge_task_name_is_shortened_in_the_report() {
    let scope = Shutdown::new();
    let name = "x".repeat(200_000);
    scope.spawn_named(name.clone(), pending_forever());
    let report = scope.shutdown(secs(1)).await;
    assert_eq!(report.stragglers()[0].name().len(), 200_000);
    let text = report.to_string();
    assert!(text.len() < 10_000, "{} chars", text.len());
    assert!(text.contains('…'), "{text}");
    // Cut to the table's 40-character name column: 39 and the ellipsis.
    assert!(text.contains(&format!("{}…", "x".repeat(39))), "{text}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn huge_failed_task_and_hook_names_are_shortened_in_the_report() {
    let scope = Shutdown::new();
    scope.spawn_named("f".repeat(200_000), async { panic!("boom") });
    scope.on_close("h".repeat(200_000), async { panic!("hook boom") });
    settle().await;
    let report = scope.shutdown(secs(1)).await;
    assert_eq!(report.failure_count(), 1);
    let text = report.to_string();
    assert!(text.len() < 10_000, "{} chars", text.len());
}

// ---------------------------------------------------------------------------------------
// 8. `shutdown()` is Send; the failure policy is inherited; `root()`.
// ---------------------------------------------------------------------------------------

fn assert_send<T: Send>(_: &T) {}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_shutdown_future_is_send() {
    let scope = Shutdown::new();
    scope.on_close("pool", async {});
    scope.spawn_named("worker", async {});
    let fut = scope.shutdown(secs(1));
    assert_send(&fut);
    drop(fut);
    // And it can be awaited inside a task that must be `Send`.
    let s = scope.clone();
    let report = tokio::spawn(async move { s.shutdown(secs(1)).await })
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn the_failure_policy_is_inherited_unless_set() {
    let root = Shutdown::new();
    let child = root.child();
    let grandchild = child.child();
    assert_eq!(grandchild.failure_policy(), FailurePolicy::Log);
    root.set_failure_policy(FailurePolicy::Shutdown);
    assert_eq!(child.failure_policy(), FailurePolicy::Shutdown);
    assert_eq!(grandchild.failure_policy(), FailurePolicy::Shutdown);
    assert_eq!(
        root.child().failure_policy(),
        FailurePolicy::Shutdown,
        "a child made after"
    );
    child.set_failure_policy(FailurePolicy::Log);
    assert_eq!(grandchild.failure_policy(), FailurePolicy::Log);
    assert_eq!(root.failure_policy(), FailurePolicy::Shutdown);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failure_in_a_child_requests_the_scope_whose_policy_applies() {
    // The policy is the root's: the root is the one requested (and so every child).
    let root = Shutdown::new();
    root.set_failure_policy(FailurePolicy::Shutdown);
    let child = root.child();
    let sibling = root.child();
    let _ = child.spawn_named("bad", async { panic!("boom") }).await;
    assert!(root.is_requested() && !root.is_ready());
    assert_eq!(root.cause(), Some(Cause::TaskFailed("bad".into())));
    assert!(child.is_requested() && sibling.is_requested());

    // The policy is the child's own: only the child is requested.
    let root = Shutdown::new();
    let child = root.child();
    child.set_failure_policy(FailurePolicy::Shutdown);
    let _ = child.spawn_named("bad", async { panic!("boom") }).await;
    assert!(child.is_requested());
    assert_eq!(child.cause(), Some(Cause::TaskFailed("bad".into())));
    assert!(root.is_ready() && !root.is_requested());
    assert_eq!(root.cause(), None);

    // The child's own Log overrides the root's Shutdown: nothing is requested.
    let root = Shutdown::new();
    root.set_failure_policy(FailurePolicy::Shutdown);
    let child = root.child();
    child.set_failure_policy(FailurePolicy::Log);
    let _ = child.spawn_named("bad", async { panic!("boom") }).await;
    assert!(!child.is_requested() && !root.is_requested());
    let report = root.shutdown(secs(1)).await;
    assert_eq!(report.failure_count(), 1, "still counted");
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn root_from_a_grandchild_is_the_top_scope() {
    let top = Shutdown::new();
    let child = top.child();
    let grandchild = child.child();
    let other = top.child();
    let t = top.clone();
    top.spawn_named("top worker", async move { t.requested().await });
    grandchild.root().trigger("fatal");
    assert!(top.is_requested() && !top.is_ready());
    assert_eq!(top.cause(), Some(Cause::Trigger("fatal".into())));
    assert!(child.is_requested() && grandchild.is_requested() && other.is_requested());
    // root() of the top is itself.
    let report = top.root().shutdown(secs(1)).await;
    assert_eq!(report.cause(), Some(&Cause::Trigger("fatal".into())));
    assert_eq!(report.stats().completed, 1);
    assert_eq!(report.exit_code(), 0);
    assert!(top.tasks().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_zero_budget_with_two_hundred_thousand_stragglers_returns() {
    // Every straggler is still alive after a zero abort grace: telling which ones is
    // one set lookup each (it was a scan of all of them each, 4e10 comparisons).
    let scope = Shutdown::new();
    for _ in 0..200_000 {
        drop(scope.spawn(std::future::pending::<()>()));
    }
    let report = scope.shutdown(Duration::ZERO).await;
    assert_eq!(report.stragglers().len(), 200_000);
    assert_eq!(report.exit_code(), 124);
}

/// Set when dropped, after spawning a task: a close hook's value whose `Drop` needs the
/// runtime (an async cleanup started from `Drop`).
struct SpawnsOnDrop(Arc<AtomicBool>);

impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        drop(tokio::spawn(async {}));
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A scope is freed where the last of its tasks and handles lets go of it, inside its
/// runtime, so dropping its unrun close hooks may use the runtime. A design that kept
/// ended tasks' holds on their scope per thread (to spare the reference count a cache
/// line transfer per task) freed such a scope later, at the thread's exit after the
/// runtime was gone, where this `Drop`'s spawn panicked and aborted the process.
#[test]
fn a_scope_is_freed_inside_its_runtime_when_its_last_handle_goes() {
    for threads in [1, 2] {
        let dropped = Arc::new(AtomicBool::new(false));
        let mut builder = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(threads);
            b
        };
        let Ok(rt) = builder.build() else {
            panic!("cannot build a runtime");
        };
        let value = SpawnsOnDrop(dropped.clone());
        rt.block_on(async {
            let scope = Shutdown::new();
            scope.on_close("flush", async move {
                let _keep = &value;
            });
            for _ in 0..100 {
                assert!(scope.spawn(async {}).await.is_ok());
            }
            assert!(!dropped.load(Ordering::SeqCst));
            drop(scope);
            assert!(
                dropped.load(Ordering::SeqCst),
                "{threads} thread(s): the hook went with the last handle, its tasks long ended"
            );
        });
    }
}
