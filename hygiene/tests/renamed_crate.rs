//! `#[cancel_safe]` functions expanded with `crate = "::sundown_renamed"` run through
//! cancellation, clean up, and track what they spawn on the renamed crate's scope.
#![deny(warnings, clippy::all, clippy::pedantic)]
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sundown_hygiene::shadowed::{Journal, program, unit_program, watch, with_token};
use sundown_renamed::Shutdown;

#[tokio::test]
async fn a_cancelled_call_cleans_up_and_its_tracked_spawns_end_with_the_scope() -> anyhow::Result<()>
{
    let scope = Shutdown::new();
    let journal = Arc::new(Journal::default());
    let call = scope.spawn({
        let journal = Arc::clone(&journal);
        async move { watch(&journal).await }
    });

    // The body has spawned its tracked heartbeat on the scope before it is cancelled.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !scope.tasks().iter().any(|task| task.name() == "heartbeat") {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await?;
    assert_eq!(journal.started.load(Ordering::SeqCst), 1);
    assert_eq!(journal.cleaned_up.load(Ordering::SeqCst), 0);

    scope.trigger("hygiene test");
    let outcome = tokio::time::timeout(Duration::from_secs(10), call).await??;
    let Err(cancelled) = outcome else {
        panic!("a cancelled call returns `Err(Cancelled)`, not {outcome:?}");
    };
    assert!(cancelled.cause().is_some(), "{cancelled:?}");
    assert_eq!(journal.cleaned_up.load(Ordering::SeqCst), 1);

    let report = scope.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.failure_count(), 0, "{report}");
    let stats = scope.stats();
    assert_eq!(stats.running, 0, "{stats:?}");
    // The heartbeat returned `Err(Cancelled)`, classified through the renamed crate.
    assert!(stats.cancelled >= 1, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    Ok(())
}

#[tokio::test]
async fn a_call_with_a_token_expression_runs_like_the_plain_function() -> anyhow::Result<()> {
    let scope = Shutdown::new();
    with_token(&scope).await?;
    Ok(())
}

#[test]
fn the_entry_points_compile_to_plain_functions() {
    let entry_points: [fn(); 2] = [program, unit_program];
    assert_eq!(entry_points.len(), 2);
}

#[sundown_renamed::test(crate = "::sundown_renamed", flavor = "current_thread")]
async fn the_test_attribute_expands_through_the_renamed_crate() {
    let handle = tokio::spawn(async { 7 });
    assert_eq!(handle.await.ok(), Some(7));
    let scope = Shutdown::current();
    assert_eq!(scope.stats().completed, 1, "the spawn was tracked");
}
