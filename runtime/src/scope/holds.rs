//! Tasks' holds on their scope: taken and let go of without touching the scope's
//! reference count each time.
//!
//! A tracked task holds its scope (a [`Shutdown`], an `Arc`) for as long as its future
//! lives, so the scope outlives its tasks. Cloned for each spawn and dropped as each task
//! ends, that hold is an atomic add on the scope's reference count on the spawning
//! thread and another on the thread that ran the task: the count's cache line moved
//! between the two cores twice per task, the largest single cost sundown added to a
//! spawn (`BENCHMARKS.md`, "Holds kept per thread"). So a thread keeps the holds of the
//! tasks that end on it, up to [`BATCH`], all of one scope: a spawn into that scope on
//! the same thread takes one of them back ([`take`]), and the rest are dropped together
//! (the line moves once per batch).
//!
//! A kept hold is a real reference, so no scope is ever freed early; it only delays
//! freeing a scope that nothing else holds. The thread drops what it keeps when it ends
//! a task of another scope, when it has kept a batch, when code on it makes a child
//! scope ([`flush`], before spent children are folded), and when it exits (a tokio
//! worker exits with its runtime): at most one scope per thread is kept alive this way.

use std::cell::RefCell;
use std::sync::Arc;

use super::Shutdown;

/// Holds kept per thread before they are dropped together.
pub(crate) const BATCH: usize = 32;

/// What a thread keeps.
struct Kept {
    /// All of one scope.
    holds: Vec<Shutdown>,
    /// The scope the last spawn here found no kept hold of (its address), until a hold
    /// is given back: a second such spawn in a row takes a batch.
    missed: usize,
}

thread_local! {
    static KEPT: RefCell<Kept> = const {
        RefCell::new(Kept {
            holds: Vec::new(),
            missed: 0,
        })
    };
}

fn address(scope: &Shutdown) -> usize {
    Arc::as_ptr(&scope.inner).addr()
}

/// A hold on `scope` for a task about to be spawned: one this thread keeps, else a
/// clone. The second spawn in a row into a scope it keeps none of takes a batch
/// instead (one atomic add each, the count's line fetched once) and keeps the rest,
/// dropping the other scope's: a thread that spawns many tasks into one scope clones
/// once per batch, and one that spawns a task into each new scope (a child per request)
/// clones one at a time.
#[inline]
pub(crate) fn take(scope: &Shutdown) -> Shutdown {
    let taken = KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.holds.last().is_some_and(|s| s.same_scope(scope)) {
            return (kept.holds.pop(), Vec::new());
        }
        let here = address(scope);
        if kept.missed != here {
            kept.missed = here;
            return (None, Vec::new());
        }
        kept.missed = 0;
        let dropped = std::mem::replace(&mut kept.holds, Vec::with_capacity(BATCH));
        kept.holds
            .extend(std::iter::repeat_with(|| scope.clone()).take(BATCH - 1));
        (None, dropped)
    });
    // Dropped outside the borrow (see `give_back`).
    match taken {
        Ok((Some(hold), _)) => hold,
        Ok((None, dropped)) => {
            drop(dropped);
            scope.clone()
        }
        Err(_) => scope.clone(),
    }
}

/// Lets go of an ended task's hold on `scope`: kept for the next spawn or batch.
#[inline]
pub(crate) fn give_back(scope: Shutdown) {
    // Dropped outside the borrow: the last hold on a scope frees it, and freeing runs
    // the drops of what it owns (close hooks' futures), which may end up here again.
    let dropped = KEPT.try_with(move |kept| {
        let mut kept = kept.borrow_mut();
        kept.missed = 0;
        let full =
            kept.holds.len() >= BATCH || kept.holds.last().is_some_and(|s| !s.same_scope(&scope));
        let dropped = if full {
            std::mem::replace(&mut kept.holds, Vec::with_capacity(BATCH))
        } else {
            Vec::new()
        };
        kept.holds.push(scope);
        dropped
    });
    // Outside a thread's lifetime (its locals torn down), `scope` went with the closure.
    drop(dropped);
}

/// Drops every hold this thread keeps.
pub(crate) fn flush() {
    let dropped = KEPT.try_with(|kept| std::mem::take(&mut kept.borrow_mut().holds));
    drop(dropped);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Weak};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::scope::ScopeInner;
    use crate::sync::lock;

    fn watch(scope: &Shutdown) -> Weak<ScopeInner> {
        Arc::downgrade(&scope.inner)
    }

    /// Runs `n` tasks of `scope` one after the other; each has ended (its future and
    /// guard dropped) when its handle resolves.
    async fn run_tasks(scope: &Shutdown, n: usize) {
        for _ in 0..n {
            assert!(scope.spawn(async {}).await.is_ok());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_scope_nobody_holds_is_freed_when_its_thread_ends_a_task_of_another() {
        let first = Shutdown::new();
        let freed = watch(&first);
        run_tasks(&first, 3).await;
        drop(first);
        assert!(
            freed.upgrade().is_some(),
            "the holds of its three ended tasks are kept for the batch"
        );
        let second = Shutdown::new();
        run_tasks(&second, 1).await;
        assert!(
            freed.upgrade().is_none(),
            "a task of another scope ended here"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_spawn_takes_back_a_hold_its_thread_keeps() {
        let scope = Shutdown::new();
        run_tasks(&scope, 5).await;
        let before = Arc::strong_count(&scope.inner);
        let hold = take(&scope);
        assert!(hold.same_scope(&scope));
        assert_eq!(
            Arc::strong_count(&scope.inner),
            before,
            "a kept hold, not a new reference"
        );
        // Another scope's holds are kept: a clone of this one's.
        let other = Shutdown::new();
        let clone = take(&other);
        assert_eq!(Arc::strong_count(&other.inner), 2);
        // The second spawn in a row into it: a batch, the rest kept for the next spawns
        // (and the other scope's dropped).
        let again = take(&other);
        assert_eq!(Arc::strong_count(&other.inner), 2 + BATCH);
        assert_eq!(Arc::strong_count(&scope.inner), 2, "the handle and `hold`");
        let third = take(&other);
        assert_eq!(Arc::strong_count(&other.inner), 2 + BATCH);
        drop((hold, clone, again, third));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_thread_keeps_at_most_one_batch_of_holds() {
        let scope = Shutdown::new();
        run_tasks(&scope, 3 * BATCH + 1).await;
        let holds = Arc::strong_count(&scope.inner);
        assert!(
            holds <= 1 + BATCH,
            "{holds} references: the handle and at most one batch"
        );
        flush();
        assert_eq!(Arc::strong_count(&scope.inner), 1);
    }

    /// A child per request: each spawn into a new scope clones one hold, never a batch.
    #[tokio::test(flavor = "current_thread")]
    async fn a_spawn_into_each_new_scope_takes_no_batch() {
        let parent = Shutdown::new();
        for _ in 0..100 {
            let child = parent.child();
            let handle = child.spawn(async {});
            assert_eq!(Arc::strong_count(&child.inner), 3, "handle, list and task");
            assert!(handle.await.is_ok());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_spent_child_is_folded_by_the_next_child_made_on_its_thread() {
        let parent = Shutdown::new();
        let child = parent.child();
        run_tasks(&child, 2).await;
        drop(child);
        let _next = parent.child();
        assert_eq!(lock(&parent.inner.children).len(), 1, "only the new child");
        assert_eq!(parent.stats().completed, 2);
    }

    /// A child scope per request on two workers: each worker keeps the holds of one
    /// scope at most, so spent children do not pile up in their parent.
    #[test]
    fn children_spent_on_other_workers_do_not_pile_up() {
        const REQUESTS: u64 = 2_000;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build();
        let Ok(rt) = rt else {
            panic!("cannot build a runtime");
        };
        rt.block_on(async {
            let parent = Shutdown::new();
            for i in 0..REQUESTS {
                let child = parent.child();
                drop(child.spawn(async {}));
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while parent.stats().completed < REQUESTS {
                assert!(Instant::now() < deadline, "{:?}", parent.stats());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // The last tasks' guards let go of their holds just after they are counted.
            loop {
                drop(parent.child());
                let held = lock(&parent.inner.children).len();
                // The child just made, and one scope kept by each worker.
                if held <= 3 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{held} children still held after all {REQUESTS} requests ended"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(parent.stats().completed, REQUESTS);
        });
    }
}
