//! Where tasks wait, through `Shutdown::tasks()`: the await sites of `#[cancel_safe]`
//! bodies (inline and raced whole), of the closures and async blocks written in them, of
//! `#[track_awaits]` functions, and the chain of recorded calls.

use std::sync::Arc;
use std::time::Duration;

use sundown::{Cancelled, Shutdown, TaskInfo, cancel_safe, track_awaits};
use tokio::sync::Semaphore;

fn chain(t: &TaskInfo) -> Vec<&'static str> {
    t.await_chain().iter().map(|s| s.expr()).collect()
}

/// Lets the spawned tasks run until they wait.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[cancel_safe]
async fn acquire_inline(pool: Arc<Semaphore>) -> Result<(), Cancelled> {
    let _permit = pool.acquire().await; // INLINE ACQUIRE
    Ok(())
}

#[cancel_safe]
async fn acquire_in_select(pool: Arc<Semaphore>) -> Result<(), Cancelled> {
    let wait = async { pool.acquire().await };
    tokio::select! {
        _ = wait => Ok(()),
    }
}

#[track_awaits]
async fn caller(pool: Arc<Semaphore>) -> Result<(), Cancelled> {
    acquire_inline(pool).await
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancel_safe_suspension_point_records_its_site() {
    let pool = Arc::new(Semaphore::new(0));
    let scope = Shutdown::new();
    let _h = scope.spawn(acquire_inline(pool.clone()));
    settle().await;
    let tasks = scope.tasks();
    let site = tasks[0].waiting_at().expect("a recorded site");
    assert_eq!(site.expr(), "pool.acquire()");
    assert!(site.location().file().ends_with("await_sites.rs"));
    let line = include_str!("await_sites.rs")
        .lines()
        .position(|l| l.ends_with("// INLINE ACQUIRE"))
        .map(|i| i as u32 + 1);
    assert_eq!(Some(site.location().line()), line);
    scope.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_raced_whole_records_the_awaits_it_can_see() {
    let pool = Arc::new(Semaphore::new(0));
    let scope = Shutdown::new();
    let _h = scope.spawn(acquire_in_select(pool.clone()));
    settle().await;
    assert_eq!(chain(&scope.tasks()[0]), ["pool.acquire()"]);
    scope.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_recorded_caller_and_a_cancel_safe_callee_make_a_chain() {
    let pool = Arc::new(Semaphore::new(0));
    let scope = Shutdown::new();
    let _h = scope.spawn(caller(pool.clone()));
    settle().await;
    let t = &scope.tasks()[0];
    assert_eq!(chain(t), ["acquire_inline(pool)", "pool.acquire()"]);
    assert_eq!(t.blocking_for(), None);
    scope.shutdown(Duration::from_secs(1)).await;
}

#[track_awaits]
async fn two_branches(a: Arc<Semaphore>, b: Arc<Semaphore>) {
    let left = async { a.acquire().await };
    let right = async { b.acquire().await };
    let _ = tokio::join!(left, right);
}

#[tokio::test(flavor = "current_thread")]
async fn of_two_pending_branches_the_chain_follows_the_first() {
    let (a, b) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    let scope = Shutdown::new();
    let _h = scope.spawn(two_branches(a.clone(), b.clone()));
    settle().await;
    // The join! is a macro: its input's awaits are not seen, the blocks' own awaits are.
    assert_eq!(chain(&scope.tasks()[0]), ["a.acquire()"]);
    // The first branch gets its permit; the task now waits in the second only.
    a.add_permits(1);
    settle().await;
    assert_eq!(chain(&scope.tasks()[0]), ["b.acquire()"]);
    scope.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_waiting_outside_recorded_code_shows_no_site() {
    let scope = Shutdown::new();
    let _h = scope.spawn(std::future::pending::<()>());
    settle().await;
    assert!(scope.tasks()[0].waiting_at().is_none());
    scope.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_site_is_replaced_when_the_task_moves_on() {
    let (first, second) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    #[track_awaits]
    async fn two_steps(first: Arc<Semaphore>, second: Arc<Semaphore>) {
        let _a = first.acquire().await;
        let _b = second.acquire().await;
    }
    let scope = Shutdown::new();
    let _h = scope.spawn(two_steps(first.clone(), second.clone()));
    settle().await;
    assert_eq!(chain(&scope.tasks()[0]), ["first.acquire()"]);
    first.add_permits(1);
    settle().await;
    assert_eq!(chain(&scope.tasks()[0]), ["second.acquire()"]);
    scope.shutdown(Duration::from_secs(1)).await;
}

/// Spawns a tracked task from a body with no suspension point of its own.
#[cancel_safe]
async fn launch_waiter(pool: Arc<Semaphore>) -> Result<(), Cancelled> {
    tokio::spawn(async move {
        let _permit = pool.acquire().await;
    });
    Ok(())
}

/// The same from a body raced whole (its awaits are inside `select!`).
#[cancel_safe]
async fn launch_waiter_in_select(pool: Arc<Semaphore>) -> Result<(), Cancelled> {
    tokio::spawn(async move {
        let _permit = pool.acquire_owned().await;
    });
    tokio::select! {
        () = std::future::ready(()) => Ok(()),
    }
}

/// Regression: a `#[cancel_safe]` body's spawns were rewritten before its awaits were
/// seen, and the awaits of the async blocks it spawned recorded no site.
#[tokio::test(flavor = "current_thread")]
async fn a_task_spawned_by_a_cancel_safe_body_records_its_awaits() {
    let pool = Arc::new(Semaphore::new(0));
    let scope = Shutdown::new();
    assert!(scope.enter(launch_waiter(pool.clone())).await.is_ok());
    assert!(
        scope
            .enter(launch_waiter_in_select(pool.clone()))
            .await
            .is_ok()
    );
    settle().await;
    let mut waits: Vec<Vec<&str>> = scope.tasks().iter().map(chain).collect();
    waits.sort();
    assert_eq!(waits, [["pool.acquire()"], ["pool.acquire_owned()"]]);
    scope.shutdown(Duration::from_secs(1)).await;
}
