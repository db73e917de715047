//! `Shutdown::join`: wait for the tracked tasks to finish on their own, without
//! cancelling; fall back to the shutdown steps when the budget runs out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sundown::{Cause, CloseOutcome, Shutdown, Step};
use tokio::time::Instant;

fn steps(report: &sundown::Report) -> Vec<Step> {
    report.steps().iter().map(|s| s.step()).collect()
}

#[tokio::test(start_paused = true)]
async fn join_waits_for_five_jobs_without_cancelling_any() {
    let scope = Shutdown::new();
    let finished = Arc::new(AtomicUsize::new(0));
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    for n in 1..=5u64 {
        let (s, finished, saw_cancel) = (scope.clone(), finished.clone(), saw_cancel.clone());
        scope.spawn_named(format!("job-{n}"), async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(n)) => {
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                () = s.requested() => {
                    saw_cancel.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let f = finished.clone();
    scope.on_close("summary", async move {
        l.lock().unwrap().push(f.load(Ordering::SeqCst));
    });

    let started = Instant::now();
    let report = scope.join(Duration::from_secs(30)).await;

    assert_eq!(started.elapsed(), Duration::from_secs(5), "the slowest job");
    assert_eq!(finished.load(Ordering::SeqCst), 5);
    assert_eq!(
        saw_cancel.load(Ordering::SeqCst),
        0,
        "nothing was cancelled"
    );
    assert_eq!(*log.lock().unwrap(), [5], "the hook ran after every job");
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::Done);
    assert_eq!(
        steps(&report),
        [
            Step::Join,
            Step::Cancel,
            Step::Drain,
            Step::Abort,
            Step::Close
        ]
    );
    assert!(!report.steps()[0].hit_deadline());
    assert_eq!(report.steps()[0].elapsed(), Duration::from_secs(5));
    assert_eq!(report.cause(), Some(&Cause::JoinCalled));
    assert_eq!((report.stats().completed, report.stats().cancelled), (5, 0));
    assert_eq!(report.exit_code(), 0);
    assert!(!report.to_string().contains("ran out"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn join_falls_back_to_cancelling_when_the_budget_runs_out() {
    let scope = Shutdown::new();
    // Stops when asked: cancelled once the join runs out.
    let s = scope.clone();
    scope.spawn_named("polite", async move {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(100)) => {}
            () = s.requested() => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    });
    // Ignores cancellation: aborted at the drain deadline.
    scope.spawn_named("stubborn", tokio::time::sleep(Duration::from_secs(100)));
    // Finishes inside the join.
    scope.spawn_named("quick", tokio::time::sleep(Duration::from_secs(1)));

    let started = Instant::now();
    let report = scope.join(Duration::from_secs(10)).await;

    // 10s budget, no hooks: drain until 9.5s, join until 8.5s, then cancel.
    let join = &report.steps()[0];
    assert_eq!(join.step(), Step::Join);
    assert!(join.hit_deadline(), "the budget ran out while joining");
    assert_eq!(join.elapsed(), Duration::from_millis(8_500));
    let drain = &report.steps()[2];
    assert_eq!(drain.step(), Step::Drain);
    assert!(drain.hit_deadline(), "the stubborn one held the drain");
    assert!(started.elapsed() <= Duration::from_secs(10));
    let stragglers: Vec<&str> = report.stragglers().iter().map(|t| t.name()).collect();
    assert_eq!(stragglers, ["stubborn"]);
    let stats = report.stats();
    assert_eq!(
        (stats.completed, stats.cancelled, stats.running),
        (2, 1, 0),
        "quick and polite completed, stubborn aborted"
    );
    assert!(report.budget_exceeded());
    assert_eq!(report.exit_code(), 124);
    let text = report.to_string();
    assert!(
        text.contains("the budget ran out while joining: 2 task(s) still running were cancelled"),
        "{text}"
    );
    assert!(text.starts_with("shutdown (join() called)"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn join_that_only_cancels_polite_tasks_has_no_stragglers_but_says_it_ran_out() {
    let scope = Shutdown::new();
    let s = scope.clone();
    scope.spawn_named("loop", async move { s.requested().await });
    let report = scope.join(Duration::from_secs(2)).await;
    assert!(report.stragglers().is_empty());
    assert!(report.steps()[0].hit_deadline());
    assert_eq!(
        report.exit_code(),
        124,
        "the work did not finish on its own"
    );
}

#[tokio::test(start_paused = true)]
async fn join_from_a_tracked_task_does_not_wait_for_itself() {
    let scope = Shutdown::new();
    let s = scope.clone();
    let batch = scope.spawn_named("batch", async move {
        let sent = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let sent = sent.clone();
            sundown::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                sent.fetch_add(1, Ordering::SeqCst);
            });
        }
        // The caller counts itself: polling `running` down to zero would never end.
        assert_eq!(s.stats().running, 1001);
        let report = s.join(Duration::from_secs(9)).await;
        (sent.load(Ordering::SeqCst), report)
    });
    let (sent, report) = batch.await.unwrap();
    assert_eq!(sent, 1000, "all 1000 sent, none cancelled");
    assert!(!report.steps()[0].hit_deadline());
    assert_eq!(report.stats().completed, 1000);
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn join_of_a_child_leaves_the_parent_running() {
    let parent = Shutdown::new();
    let p = parent.clone();
    let server = parent.spawn_named("server", async move { p.requested().await });
    let jobs = parent.child();
    jobs.spawn_named("job", tokio::time::sleep(Duration::from_secs(1)));
    let report = jobs.join(Duration::from_secs(5)).await;
    assert_eq!(report.stats().completed, 1);
    assert!(!parent.is_requested() && parent.is_ready());
    assert!(!server.is_finished());
    assert_eq!(parent.stats().running, 1);
    parent.shutdown(Duration::from_secs(1)).await;
    assert!(server.is_finished());
}
