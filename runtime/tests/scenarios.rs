//! What programs written with tokio-graceful-shutdown (subsystems) or tokio-util's
//! `TaskTracker` rely on, as sundown scopes do it: a failing child starts the shutdown,
//! a nested child can request it, a group shuts down alone, and close-then-wait waits
//! without cancelling. Tasks of named child scopes are listed by path (`jobs/worker`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sundown::{Cause, FailureKind, FailurePolicy, Shutdown};
use tokio::time::Instant;

/// A subsystem that serves until shutdown is requested.
fn serve(scope: &Shutdown, name: &'static str) -> tokio::task::JoinHandle<()> {
    let s = scope.clone();
    scope.spawn_named(name, async move { s.requested().await })
}

#[tokio::test(start_paused = true)]
async fn an_error_in_a_child_starts_the_shutdown_of_the_whole_program() {
    let root = Shutdown::new();
    root.set_failure_policy(FailurePolicy::Shutdown);
    let http = serve(&root, "http");
    let jobs = root.child_named("jobs");
    let worker = serve(&jobs, "idle");
    jobs.spawn_detached("worker", async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err::<(), _>("queue unreachable")
    });

    tokio::time::sleep(Duration::from_millis(999)).await;
    assert!(!root.is_requested());
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert!(root.is_requested(), "the child's failure reached the root");
    assert_eq!(
        root.cause(),
        Some(Cause::TaskFailed("jobs/worker".into())),
        "named by its path"
    );
    let report = root.shutdown(Duration::from_secs(5)).await;
    assert!(http.is_finished() && worker.is_finished());
    assert_eq!(report.failures()[0].task(), "jobs/worker");
    assert_eq!(
        report.failures()[0].kind(),
        &FailureKind::Returned("\"queue unreachable\"".into())
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_nested_child_starts_the_shutdown_of_the_whole_program() {
    let root = Shutdown::new();
    root.set_failure_policy(FailurePolicy::Shutdown);
    let http = serve(&root, "http");
    let batch = root.child_named("jobs").child_named("batch");
    let _ = batch
        .spawn_named("sender", async {
            let sent: Vec<u32> = Vec::new();
            sent[0]
        })
        .await;
    assert!(root.is_requested());
    let report = root.shutdown(Duration::from_secs(5)).await;
    assert!(http.is_finished());
    let failure = &report.failures()[0];
    assert_eq!(failure.task(), "jobs/batch/sender");
    assert!(
        matches!(failure.kind(), FailureKind::Panicked(m) if m.contains("index out of bounds"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_under_the_log_policy_is_reported_and_the_program_runs_on() {
    let root = Shutdown::new();
    let jobs = root.child_named("jobs");
    jobs.spawn_detached("worker", async { Err::<(), _>("bad row") });
    tokio::task::yield_now().await;
    assert_eq!(root.stats().failed, 1);
    assert!(!root.is_requested());
}

#[tokio::test(start_paused = true)]
async fn a_nested_child_can_request_the_shutdown_of_the_whole_program() {
    let root = Shutdown::new();
    let http = serve(&root, "http");
    let deep = root.child_named("admin").child_named("commands");
    let d = deep.clone();
    deep.spawn_named("stop-command", async move {
        Shutdown::current()
            .root()
            .trigger("stop requested by an operator");
        d.requested().await;
    });
    root.requested().await;
    assert_eq!(
        root.cause(),
        Some(Cause::Trigger("stop requested by an operator".into()))
    );
    let report = root.shutdown(Duration::from_secs(5)).await;
    assert!(http.is_finished());
    assert_eq!(report.stats().completed, 2);
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_group_shuts_down_alone_while_the_rest_runs_on() {
    let root = Shutdown::new();
    let http = serve(&root, "http");
    let group = root.child_named("workers");
    let stopped = Arc::new(AtomicUsize::new(0));
    for i in 0..3 {
        let (g, stopped) = (group.clone(), stopped.clone());
        group.spawn_named(format!("w{i}"), async move {
            g.requested().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopped.fetch_add(1, Ordering::SeqCst);
        });
    }
    let names: Vec<String> = root.tasks().iter().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["http", "workers/w0", "workers/w1", "workers/w2"]);

    let report = group.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
    assert_eq!(report.stats().completed, 3);
    assert!(!root.is_requested() && root.is_ready());
    assert!(!http.is_finished(), "the rest of the program runs on");
    let names: Vec<String> = root.tasks().iter().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["http"]);
    root.shutdown(Duration::from_secs(1)).await;
    assert!(http.is_finished());
}

#[tokio::test(start_paused = true)]
async fn stragglers_of_a_named_child_are_listed_by_path() {
    let root = Shutdown::new();
    let jobs = root.child_named("jobs");
    jobs.spawn_named("stuck", std::future::pending::<()>());
    let report = root.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.stragglers()[0].name(), "jobs/stuck");
    assert!(report.to_string().contains("jobs/stuck"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn close_then_wait_waits_without_cancelling() {
    // TaskTracker: `close(); wait().await` lets every task run to its end.
    let root = Shutdown::new();
    let batch = root.child_named("notifications");
    let sent = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicBool::new(false));
    for i in 0..1000u64 {
        let (b, sent, cancelled) = (batch.clone(), sent.clone(), cancelled.clone());
        batch.spawn_named(format!("notify-{i}"), async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(i % 50)) => {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                () = b.requested() => cancelled.store(true, Ordering::SeqCst),
            }
        });
    }
    let started = Instant::now();
    let report = batch.join(Duration::from_secs(10)).await;
    assert_eq!(
        sent.load(Ordering::SeqCst),
        1000,
        "1000 launched, 1000 sent"
    );
    assert!(!cancelled.load(Ordering::SeqCst));
    assert_eq!(started.elapsed(), Duration::from_millis(49));
    assert_eq!(report.stats().completed, 1000);
    assert!(
        !root.is_requested(),
        "joining a group leaves its parent alone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_policy_set_on_a_child_stops_only_that_child() {
    let root = Shutdown::new();
    let http = serve(&root, "http");
    let jobs = root.child_named("jobs");
    jobs.set_failure_policy(FailurePolicy::Shutdown);
    assert_eq!(root.failure_policy(), FailurePolicy::Log);
    assert_eq!(jobs.child().failure_policy(), FailurePolicy::Shutdown);
    let idle = serve(&jobs, "idle");
    jobs.spawn_detached("import", async { Err::<(), _>("bad row") });
    jobs.requested().await;
    assert_eq!(jobs.cause(), Some(Cause::TaskFailed("jobs/import".into())));
    let report = jobs.shutdown(Duration::from_secs(1)).await;
    assert!(idle.is_finished());
    assert_eq!(report.failure_count(), 1);
    assert!(!root.is_requested() && !http.is_finished());
    assert_eq!(
        root.stats().failed,
        1,
        "the child's failure still counts at the root"
    );
}
