//! The shutdown sequence: drain, abort, close hooks, report and exit codes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sundown::{CloseOutcome, Shutdown, Step, TaskState};
use tokio::time::Instant;

fn pending_forever() -> impl std::future::Future<Output = ()> + Send + 'static {
    std::future::pending()
}

#[tokio::test(start_paused = true)]
async fn clean_shutdown_exits_zero_and_times_every_step() {
    let scope = Shutdown::new();
    for i in 0..10 {
        let s = scope.clone();
        scope.spawn_named(format!("worker-{i}"), async move {
            s.requested().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
    }
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(9)).await;
    assert_eq!(report.exit_code(), 0);
    assert!(report.stragglers().is_empty());
    assert_eq!(report.stats().completed, 10);
    assert_eq!(report.stats().running, 0);
    let steps: Vec<Step> = report.steps().iter().map(|s| s.step()).collect();
    assert_eq!(steps, [Step::Cancel, Step::Drain, Step::Abort, Step::Close]);
    let drain = &report.steps()[1];
    assert_eq!(
        drain.elapsed(),
        Duration::from_millis(100),
        "drain waits for the workers' wind-down"
    );
    assert!(!drain.hit_deadline());
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn straggler_is_aborted_reported_with_its_location_and_exit_124() {
    let scope = Shutdown::new();
    let line = line!() + 1;
    let handle = scope.spawn_named("stuck", pending_forever());
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(2)).await;
    assert!(started.elapsed() <= Duration::from_secs(2));
    assert_eq!(report.exit_code(), 124);
    let s = &report.stragglers()[0];
    assert_eq!(s.name(), "stuck");
    assert_eq!(s.location().file(), file!());
    assert_eq!(s.location().line(), line);
    assert_eq!(
        s.state(),
        TaskState::Running,
        "it stopped when aborted: not blocking"
    );
    assert!(handle.await.unwrap_err().is_cancelled());
    assert_eq!(report.stats().cancelled, 1);
    let drain = report
        .steps()
        .iter()
        .find(|s| s.step() == Step::Drain)
        .unwrap();
    assert!(drain.hit_deadline());
    assert!(report.to_string().contains("stuck"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn close_hooks_run_last_registered_first() {
    let scope = Shutdown::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    for name in ["db pool", "http session", "cache"] {
        let order = order.clone();
        scope.on_close(name, async move { order.lock().unwrap().push(name) });
    }
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(*order.lock().unwrap(), ["cache", "http session", "db pool"]);
    let names: Vec<&str> = report.closes().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["cache", "http session", "db pool"]);
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_close_hook_does_not_block_the_next_one() {
    let scope = Shutdown::new();
    let ran = Arc::new(Mutex::new(false));
    let r = ran.clone();
    scope.on_close("registered first, runs last", async move {
        *r.lock().unwrap() = true
    });
    scope.on_close("hangs", pending_forever());
    let started = Instant::now();
    let report = scope.shutdown(Duration::from_secs(4)).await;
    assert!(started.elapsed() <= Duration::from_secs(4));
    assert!(
        *ran.lock().unwrap(),
        "the hook after the hanging one still ran"
    );
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::TimedOut);
    assert_eq!(report.closes()[1].outcome(), &CloseOutcome::Done);
    assert_eq!(
        report.exit_code(),
        124,
        "a timed-out hook means the budget ran out"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_close_hook_is_reported_and_the_rest_still_run() {
    let scope = Shutdown::new();
    let ran = Arc::new(Mutex::new(false));
    let r = ran.clone();
    scope.on_close("after", async move { *r.lock().unwrap() = true });
    scope.on_close("broken", async { panic!("socket already closed") });
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        report.closes()[0].outcome(),
        &CloseOutcome::Panicked("socket already closed".into())
    );
    assert!(*ran.lock().unwrap());
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(start_paused = true)]
async fn zero_budget_still_returns_a_report() {
    let scope = Shutdown::new();
    scope.spawn_named("stuck", pending_forever());
    scope.on_close("hook", async {});
    let report = scope.shutdown(Duration::ZERO).await;
    assert_eq!(report.stragglers().len(), 1);
    assert_eq!(report.closes()[0].outcome(), &CloseOutcome::Skipped);
    assert_eq!(report.exit_code(), 124);
}

#[tokio::test(start_paused = true)]
async fn a_hook_registered_after_close_runs_at_once() {
    let scope = Shutdown::new();
    let _ = scope.shutdown(Duration::from_secs(1)).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    scope.on_close("late", async move {
        let _ = tx.send(());
    });
    tokio::time::timeout(Duration::from_secs(1), rx)
        .await
        .expect("the late hook ran")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn hooks_registered_during_close_run_too() {
    let scope = Shutdown::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let s = scope.clone();
    scope.on_close("registers another", async move {
        s.on_close("registered while closing", async move {
            let _ = tx.send(());
        });
    });
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.closes().len(), 2);
    rx.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn tasks_spawned_during_drain_are_waited_for() {
    let scope = Shutdown::new();
    let s = scope.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    scope.spawn_named("parent", async move {
        s.requested().await;
        s.spawn_named("helper", async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = tx.send(());
        });
    });
    let report = scope.shutdown(Duration::from_secs(5)).await;
    assert!(report.stragglers().is_empty());
    assert_eq!(report.stats().completed, 2);
    rx.await.unwrap();
}

/// Real time on purpose: a thread stuck in a sync loop cannot be driven by a paused clock.
#[test]
fn a_task_blocking_its_thread_is_reported_as_blocking_and_shutdown_returns_in_budget() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let report = rt.block_on(async {
        let scope = Shutdown::new();
        let stop2 = stop.clone();
        scope.spawn_named("sync loop", async move {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        scope.spawn_named("cooperative", pending_forever());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let report = scope.shutdown(Duration::from_secs(2)).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "returned after {:?}",
            started.elapsed()
        );
        report
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let state = |name: &str| {
        report
            .stragglers()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.state())
    };
    assert_eq!(state("sync loop"), Some(TaskState::Blocking));
    assert_eq!(state("cooperative"), Some(TaskState::Running));
    assert_eq!(report.exit_code(), 124);
    assert!(
        report.to_string().contains("1 blocking their thread"),
        "{report}"
    );
}

#[test]
fn a_blocking_pool_job_is_reported_as_blocking() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let scope = Shutdown::new();
        scope.spawn_blocking(|| std::thread::sleep(Duration::from_secs(3)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        scope.shutdown(Duration::from_secs(1)).await
    });
    assert_eq!(report.stragglers()[0].state(), TaskState::Blocking);
    rt.shutdown_timeout(Duration::from_millis(10));
}

/// Spawns a task on the ambient scope when dropped: what a value in an aborted task
/// may do (a flush, a last message).
struct SpawnsWhenDropped(&'static str);

impl Drop for SpawnsWhenDropped {
    fn drop(&mut self) {
        sundown::spawn_named(self.0, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_spawned_during_the_abort_step_is_aborted_too() {
    let scope = Shutdown::new();
    let late = scope.spawn_named("stubborn", async {
        let _value = SpawnsWhenDropped("late");
        pending_forever().await;
    });
    let report = scope.shutdown(Duration::from_secs(2)).await;
    assert!(late.await.unwrap_err().is_cancelled());
    let stats = report.stats();
    assert_eq!(
        (stats.running, stats.cancelled),
        (0, 2),
        "the task the aborted one spawned as it was dropped is aborted too: {stats:?}"
    );
    assert!(scope.tasks().is_empty(), "{:?}", scope.tasks());
}

/// Spawns a blocking job on the ambient scope when dropped, and returns once the job
/// runs: from then on no abort stops it.
struct BlocksWhenDropped;

impl Drop for BlocksWhenDropped {
    fn drop(&mut self) {
        let (started, running) = std::sync::mpsc::channel();
        sundown::spawn_blocking(move || {
            let _ = started.send(());
            std::thread::sleep(Duration::from_secs(3));
        });
        let _ = running.recv_timeout(Duration::from_secs(2));
    }
}

/// Real time on purpose, as the blocking job above: a blocking job spawned during the
/// abort step, which no abort stops, is in the report with the stragglers. One thread,
/// so that the aborted task is dropped (and the job started) between two sweeps, never
/// during one.
#[test]
fn a_blocking_job_spawned_during_the_abort_step_is_reported() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let scope = Shutdown::new();
        scope.spawn_named("stubborn", async {
            let _value = BlocksWhenDropped;
            pending_forever().await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        scope.shutdown(Duration::from_secs(1)).await
    });
    let states: Vec<(String, TaskState)> = report
        .stragglers()
        .iter()
        .map(|t| (t.name().to_owned(), t.state()))
        .collect();
    assert_eq!(states.len(), 2, "{states:?}\n{report}");
    assert_eq!(states[0], ("stubborn".to_owned(), TaskState::Running));
    assert_eq!(states[1].1, TaskState::Blocking, "{states:?}");
    assert_eq!(report.stats().running, 1);
    rt.shutdown_timeout(Duration::from_millis(10));
}
