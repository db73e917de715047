//! Scopes: ambient lookup, children, level-triggered cancellation, shield, deadline,
//! and the registry under concurrency.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sundown::{Cause, Shutdown, TaskState};

#[test]
fn current_outside_any_scope_panics_with_directions() {
    let panic = std::panic::catch_unwind(Shutdown::current).unwrap_err();
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap();
    assert!(msg.contains("no shutdown scope here"), "{msg}");
    assert!(
        msg.contains("Shutdown::new()") && msg.contains("try_current"),
        "{msg}"
    );
    assert!(Shutdown::try_current().is_none());
}

#[tokio::test]
async fn tasks_spawned_through_a_scope_have_it_as_ambient() {
    let scope = Shutdown::new();
    let inner = scope.spawn(async { Shutdown::current() }).await.unwrap();
    inner.trigger("seen through the task");
    assert!(
        scope.is_requested(),
        "the task's ambient scope is the spawning scope"
    );

    let blocking_sees = Shutdown::new();
    let b = blocking_sees.clone();
    let same = blocking_sees
        .spawn_blocking(move || {
            Shutdown::current().trigger("from the blocking pool");
            b.is_requested()
        })
        .await
        .unwrap();
    assert!(same);
}

#[tokio::test(start_paused = true)]
async fn cancellation_is_level_triggered() {
    let scope = Shutdown::new();
    scope.trigger("first");
    scope.requested().await;
    scope.requested().await; // still resolved: nothing "consumes" the request
    assert!(scope.is_requested());
    assert!(!scope.is_ready());
    scope.trigger("second");
    assert_eq!(
        scope.cause(),
        Some(Cause::Trigger("first".into())),
        "the first cause wins"
    );
    tokio::time::timeout(
        Duration::from_millis(1),
        scope.enter(async { sundown::requested().await }),
    )
    .await
    .expect("a waiter created after the request resolves at once");
}

#[tokio::test(start_paused = true)]
async fn child_scopes_are_cancelled_with_the_parent_but_alone_on_their_own() {
    let parent = Shutdown::new();
    let child = parent.child();
    let grandchild = child.child();
    let c = child.clone();
    child.spawn_named("child worker", async move { c.requested().await });
    let p = parent.clone();
    parent.spawn_named("parent worker", async move { p.requested().await });

    let report = child.shutdown(Duration::from_secs(1)).await;
    assert!(report.stragglers().is_empty());
    assert!(child.is_requested() && grandchild.is_requested());
    assert!(
        !parent.is_requested(),
        "a child's shutdown leaves the parent alone"
    );
    assert!(parent.is_ready());
    assert_eq!(parent.stats().running, 1, "the parent's worker still runs");

    let late_child = parent.child();
    let lc = late_child.clone();
    late_child.spawn_named("late child worker", async move {
        lc.requested().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    assert_eq!(
        parent.tasks().len(),
        2,
        "the parent lists its children's tasks"
    );
    let report = parent.shutdown(Duration::from_secs(1)).await;
    assert!(late_child.is_requested());
    assert!(
        report.stragglers().is_empty(),
        "the parent's drain waited for the child's task"
    );
    assert_eq!(report.stats().completed, 3);
}

#[tokio::test(start_paused = true)]
async fn shield_hides_cancellation_until_done() {
    let scope = Shutdown::new();
    let s = scope.clone();
    let (state_tx, state_rx) = tokio::sync::oneshot::channel();
    let handle = scope.spawn_named("committer", async move {
        s.requested().await;
        sundown::shield(async move {
            assert!(
                !sundown::is_requested(),
                "inside shield the request is hidden"
            );
            let _ = state_tx.send(());
            tokio::time::sleep(Duration::from_millis(500)).await;
            "committed"
        })
        .await
    });
    let observer = scope.clone();
    let watcher = tokio::spawn(async move {
        state_rx.await.unwrap();
        observer.tasks()[0].state()
    });
    let report = scope.shutdown(Duration::from_secs(5)).await;
    assert_eq!(watcher.await.unwrap(), TaskState::Shielded);
    assert_eq!(handle.await.unwrap(), "committed");
    assert!(report.stragglers().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shield_is_cut_at_the_hard_deadline() {
    let scope = Shutdown::new();
    let handle = scope.spawn_named(
        "endless commit",
        sundown::shield(std::future::pending::<()>()),
    );
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.stragglers()[0].name(), "endless commit");
    assert!(handle.await.unwrap_err().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn deadline_names_the_operation() {
    let ok = sundown::deadline("quick", Duration::from_millis(10), async { 5 }).await;
    assert_eq!(ok, Ok(5));
    let sem = tokio::sync::Semaphore::new(1);
    let _permit = sem.acquire().await.unwrap();
    let err = sundown::deadline("nested permit", Duration::from_millis(250), sem.acquire())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "\"nested permit\" timed out after 250ms");
    assert_eq!(err.after(), Duration::from_millis(250));
}

/// Triggers the ambient scope, if any, when dropped: what a value in a task sees in
/// its `Drop`.
struct TriggerOnDrop(&'static str);

impl Drop for TriggerOnDrop {
    fn drop(&mut self) {
        if let Some(scope) = Shutdown::try_current() {
            scope.trigger(self.0);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_innermost_scope_wins_and_the_outer_one_is_back_after() {
    let (outer, inner, nested) = (Shutdown::new(), Shutdown::new(), Shutdown::new());
    let task = outer.spawn({
        let (inner, nested) = (inner.clone(), nested.clone());
        async move {
            inner
                .enter(async {
                    tokio::task::yield_now().await;
                    Shutdown::current().trigger("inside enter");
                })
                .await;
            // A panic inside a nested scope, caught in this task, does not leave that
            // scope installed.
            let mut entered = std::pin::pin!(nested.enter(async { panic!("inside enter") }));
            let caught = std::future::poll_fn(|cx| {
                let poll = || entered.as_mut().poll(cx);
                std::task::Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(poll)))
            })
            .await;
            assert!(caught.is_err());
            tokio::task::yield_now().await;
            Shutdown::current().trigger("after enter");
        }
    });
    task.await.unwrap();
    assert!(
        inner.is_requested(),
        "inside `enter`, the entered scope is ambient"
    );
    assert!(
        outer.is_requested(),
        "after `enter`, the task's own scope is back"
    );
    assert!(
        !nested.is_requested(),
        "the panicked scope was not left installed"
    );
}

/// A future that is ready at its first poll and still holds a value, dropped after it
/// returned (as a hand-written future or a combinator does): the value's `Drop` records
/// whether it ran inside a scope and how many tasks the scope listed then.
struct ReadyHolding {
    _held: AfterReady,
}

struct AfterReady {
    scope: Shutdown,
    saw: Arc<std::sync::Mutex<Option<(bool, usize)>>>,
}

impl Drop for AfterReady {
    fn drop(&mut self) {
        let ambient = Shutdown::try_current()
            .map(|s| s.trigger("dropped after it returned"))
            .is_some();
        let listed = self.scope.tasks().len();
        if let Ok(mut saw) = self.saw.lock() {
            *saw = Some((ambient, listed));
        }
    }
}

impl Future for ReadyHolding {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_completed_future_is_dropped_inside_its_scope_before_its_entry_goes() {
    let scope = Shutdown::new();
    let saw = Arc::default();
    let handle = scope.spawn(ReadyHolding {
        _held: AfterReady {
            scope: scope.clone(),
            saw: Arc::clone(&saw),
        },
    });
    handle.await.unwrap();
    assert_eq!(
        *saw.lock().unwrap(),
        Some((true, 1)),
        "dropped inside its scope, while its entry was still listed"
    );
    assert!(scope.is_requested(), "the ambient scope was the task's own");
    assert!(scope.tasks().is_empty(), "the entry went with the future");
    assert_eq!(scope.stats().completed, 1);
}

/// Waits for `gate`, then is ready; holds a value that, when dropped after that,
/// spawns a task on the ambient scope which counts `ran` after 20 ms.
struct GateThenSpawnOnDrop {
    gate: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    _held: SpawnsOnDrop,
}

struct SpawnsOnDrop(Arc<AtomicUsize>);

impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        let ran = Arc::clone(&self.0);
        drop(sundown::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ran.fetch_add(1, Ordering::SeqCst);
        }));
    }
}

impl Future for GateThenSpawnOnDrop {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.gate.as_mut().poll(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_completing_during_the_drain_whose_drop_spawns_is_waited_for() {
    let scope = Shutdown::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let waiter = Arc::clone(&gate);
    let _task = scope.spawn(GateThenSpawnOnDrop {
        gate: Box::pin(async move { waiter.notified().await }),
        _held: SpawnsOnDrop(Arc::clone(&ran)),
    });
    tokio::task::yield_now().await;
    let opener = scope.clone();
    tokio::spawn(async move {
        opener.requested().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        gate.notify_one();
    });
    let report = scope.shutdown(Duration::from_secs(2)).await;
    assert!(report.stragglers().is_empty(), "{report}");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the drain waited for the task its drop spawned"
    );
    assert_eq!(report.stats().completed, 2);
}

#[tokio::test(start_paused = true)]
async fn a_task_dropped_from_outside_drops_its_future_inside_its_scope() {
    let scope = Shutdown::new();
    let handle = scope.spawn(async {
        let _value = TriggerOnDrop("dropped with the task");
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    assert!(
        scope.is_requested(),
        "the value's Drop saw the task's scope"
    );
    let stats = scope.stats();
    assert_eq!((stats.running, stats.cancelled), (0, 1));
    // Outside, nothing is left installed.
    assert!(Shutdown::try_current().is_none());
}

/// Panics when polled; holds a value it does not drop then (an `async` block would drop
/// its locals as the panic unwinds through it): tokio drops it afterwards.
struct PanicsHolding {
    _held: TriggerOnDrop,
}

impl Future for PanicsHolding {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        panic!("the poll panics")
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_whose_poll_panics_drops_its_future_inside_its_scope() {
    let scope = Shutdown::new();
    let handle = scope.spawn(PanicsHolding {
        _held: TriggerOnDrop("dropped after the panic"),
    });
    assert!(handle.await.unwrap_err().is_panic());
    assert!(
        scope.is_requested(),
        "the value's Drop, after the panic, saw the task's scope"
    );
    let stats = scope.stats();
    assert_eq!((stats.running, stats.failed), (0, 1));
    assert!(scope.tasks().is_empty(), "the entry went with the future");
    // Outside, nothing is left installed.
    assert!(Shutdown::try_current().is_none());
}

#[tokio::test(start_paused = true)]
async fn free_functions_use_the_ambient_scope() {
    let scope = Shutdown::new();
    scope
        .enter(async {
            assert!(sundown::is_ready());
            sundown::spawn_named("ambient", std::future::pending::<()>());
            sundown::on_close("ambient hook", async {});
        })
        .await;
    assert_eq!(scope.tasks()[0].name(), "ambient");
    let report = scope.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.closes()[0].name(), "ambient hook");
    // Outside any scope nothing cancels, and spawning still works (untracked).
    assert!(!sundown::is_requested());
    assert_eq!(sundown::spawn(async { 3 }).await.unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn plain_spawn_is_named_after_the_future() {
    async fn poll_feed() {
        std::future::pending::<()>().await;
    }
    let scope = Shutdown::new();
    let _h = scope.spawn(poll_feed());
    assert_eq!(scope.tasks()[0].name(), "poll_feed");
}

/// Real threads on purpose: spawns and completions race with the reader.
#[test]
fn tasks_is_consistent_under_concurrent_spawn_and_finish() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let scope = Shutdown::new();
        // 100 long-lived tasks that must appear in every snapshot.
        for i in 0..100 {
            let s = scope.clone();
            scope.spawn_named(format!("steady-{i}"), async move { s.requested().await });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let churned = Arc::new(AtomicUsize::new(0));
        let mut churners = Vec::new();
        for _ in 0..2 {
            let (scope, stop, churned) = (scope.clone(), stop.clone(), churned.clone());
            churners.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let hs: Vec<_> = (0..64)
                        .map(|_| scope.spawn_named("churn", async {}))
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                    churned.fetch_add(64, Ordering::Relaxed);
                }
            }));
        }
        for _ in 0..300 {
            let snapshot = scope.tasks();
            let steady = snapshot
                .iter()
                .filter(|t| t.name().starts_with("steady-"))
                .count();
            assert_eq!(steady, 100, "every long-lived task is in every snapshot");
            assert!(
                snapshot
                    .iter()
                    .all(|t| t.name() == "churn" || t.name().starts_with("steady-"))
            );
            let stats = scope.stats();
            assert!(stats.running >= 100);
            tokio::task::yield_now().await;
        }
        stop.store(true, Ordering::Relaxed);
        for c in churners {
            c.await.unwrap();
        }
        assert!(churned.load(Ordering::Relaxed) > 0);
        let report = scope.shutdown(Duration::from_secs(5)).await;
        assert!(report.stragglers().is_empty());
        assert_eq!(
            report.stats().completed as usize,
            100 + churned.load(Ordering::Relaxed)
        );
    });
}

/// `enter`'s future owns what it needs: it can be spawned or boxed as `'static` while
/// the handle it was made from goes away (it captured `&self` under edition 2024).
#[tokio::test]
async fn an_entered_future_does_not_borrow_the_handle_it_came_from() {
    let entered = {
        let scope = Shutdown::new();
        tokio::spawn(scope.enter(async { Shutdown::try_current().is_some() }))
    };
    assert!(entered.await.unwrap(), "the scope is ambient inside");
}
