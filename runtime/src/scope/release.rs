//! Tasks' holds on their scope, released in batches.
//!
//! A tracked task holds its scope (a [`Shutdown`], an `Arc`) for as long as its future
//! lives, so the scope outlives its tasks. Taking the hold and dropping it are one atomic
//! add each on the scope's reference count, and they happen on different threads: the
//! spawning worker takes it, the worker that ran the task drops it. Done task by task,
//! the count's cache line moves between the two cores twice per task, the largest single
//! cost sundown added to a spawn (5–6% of spawn + join, `BENCHMARKS.md`). So a thread
//! keeps the holds of the tasks that end on it, up to [`BATCH`] of one scope, and drops
//! them together: the line moves once per batch.
//!
//! A kept hold only delays freeing a scope that nothing else holds. The thread drops what
//! it keeps when it ends a task of another scope, when it has kept a batch, when code on
//! it asks whether a child scope is spent ([`flush`], before the check), and when it exits
//! (a tokio worker exits with its runtime). A scope is never freed early: a kept hold is
//! a real reference.

use std::cell::RefCell;

use super::Shutdown;

/// Holds kept per thread before they are dropped together.
pub(crate) const BATCH: usize = 32;

thread_local! {
    /// The holds this thread keeps: all of one scope.
    static KEPT: RefCell<Vec<Shutdown>> = const { RefCell::new(Vec::new()) };
}

/// Lets go of a task's hold on `scope`, now or with the next batch.
#[inline]
pub(crate) fn release(scope: Shutdown) {
    // Dropped outside the borrow: the last hold on a scope frees it, and freeing runs
    // the drops of what it owns (close hooks' futures), which may end up here again.
    let dropped = KEPT.try_with(move |kept| {
        let mut kept = kept.borrow_mut();
        let full = kept.len() >= BATCH || kept.last().is_some_and(|s| !s.same_scope(&scope));
        let dropped = if full {
            std::mem::replace(&mut *kept, Vec::with_capacity(BATCH))
        } else {
            Vec::new()
        };
        kept.push(scope);
        dropped
    });
    // Outside a thread's lifetime (its locals torn down), `scope` went with the closure.
    drop(dropped);
}

/// Drops every hold this thread keeps.
pub(crate) fn flush() {
    let dropped = KEPT.try_with(|kept| std::mem::take(&mut *kept.borrow_mut()));
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
