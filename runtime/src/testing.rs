//! `#[sundown::test]`'s runner: the test's body in a scope of its own on the runtime
//! the attribute configured, the scope shut down when the body returns, and the
//! verdict: a test whose scope did not shut down cleanly fails with the report.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::process::{Flavor, settle_untracked};
use crate::registry::TaskOutcome;
use crate::report::{CloseOutcome, Report};
use crate::scope::Shutdown;
use crate::task::catch_panic;

/// `#[sundown::test]`'s arguments.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct TestConfig {
    /// The test function's name, for the failure message.
    pub name: &'static str,
    /// The budget of the end-of-test shutdown.
    pub timeout: Duration,
    pub flavor: Flavor,
    pub worker_threads: Option<usize>,
}

impl TestConfig {
    /// As `#[tokio::test]`: one thread; a 2 s budget, plenty for tasks that stop on
    /// `requested()`, short for a test that has to abort one.
    pub const DEFAULT: TestConfig = TestConfig {
        name: "test",
        timeout: Duration::from_secs(2),
        flavor: Flavor::CurrentThread,
        worker_threads: None,
    };
}

/// The runtime builder for a test; the expansion adds `start_paused(true)` when asked
/// (it needs tokio's `test-util` feature, the user's as with `#[tokio::test]`).
#[doc(hidden)]
pub fn test_runtime(config: &TestConfig) -> tokio::runtime::Builder {
    let mut builder = match config.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    if let (Flavor::MultiThread, Some(n)) = (config.flavor, config.worker_threads) {
        builder.worker_threads(n.max(1));
    }
    builder.enable_all();
    builder
}

type TestBody<'a> = Pin<Box<dyn Future<Output = TaskOutcome> + 'a>>;

/// Runs a `#[sundown::test]` body; panics (failing the test) with the report when the
/// scope did not shut down cleanly, with `Error: {:?}` when the body returned `Err`,
/// and with the body's own panic when it panicked.
#[doc(hidden)]
#[track_caller]
pub fn run_test<'a, B, Fut>(config: TestConfig, builder: tokio::runtime::Builder, body: B)
where
    B: FnOnce(Shutdown) -> Fut + 'a,
    Fut: Future<Output = TaskOutcome> + 'a,
{
    run_boxed(
        config,
        builder,
        Box::new(move |scope| Box::pin(body(scope)) as TestBody<'a>),
    );
}

#[track_caller]
fn run_boxed<'a>(
    config: TestConfig,
    mut builder: tokio::runtime::Builder,
    body: Box<dyn FnOnce(Shutdown) -> TestBody<'a> + 'a>,
) {
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("sundown::test: cannot build the tokio runtime: {e}"),
    };
    let scope = Shutdown::new();
    let (body, report, untracked) = runtime.block_on(async {
        let body = catch_panic(scope.enter(body(scope.clone()))).await;
        let report = scope.shutdown(config.timeout).await;
        let untracked = settle_untracked(&scope, 0).await;
        (body, report, untracked)
    });
    // Untracked tasks still pending are destroyed here, as at the end of a program.
    runtime.shutdown_timeout(Duration::from_millis(500));
    // The failure lines printed as they happened come before the verdict.
    crate::output::flush(Duration::from_millis(200));
    let verdict = verdict(config.name, &report, untracked);
    match body {
        Err(payload) => {
            if let Err(message) = verdict {
                eprintln!("{message}");
            }
            std::panic::resume_unwind(payload)
        }
        Ok(outcome) => {
            let error = match outcome {
                TaskOutcome::Failed(debug) => Some(format!("Error: {debug}")),
                TaskOutcome::Completed | TaskOutcome::Cancelled => None,
            };
            match (verdict, error) {
                (Ok(()), None) => {}
                (Ok(()), Some(error)) => panic!("{error}"),
                (Err(message), None) => panic!("{message}"),
                (Err(message), Some(error)) => panic!("{error}\n{message}"),
            }
        }
    }
}

/// Whether a test's scope shut down cleanly; the failure message when it did not.
pub(crate) fn verdict(name: &str, report: &Report, untracked: usize) -> Result<(), String> {
    let mut why = Vec::new();
    if !report.stragglers().is_empty() {
        why.push(format!(
            "{} task(s) ignored cancellation and had to be aborted: stop them on \
             `sundown::requested()` (or await them) before the test ends",
            report.stragglers().len()
        ));
    }
    if report.failure_count() > 0 {
        why.push(format!(
            "{} tracked task(s) failed without anyone seeing it (a panic, or an `Err` from a \
             task whose handle was discarded)",
            report.failure_count()
        ));
    }
    let hooks = report
        .closes()
        .iter()
        .filter(|c| c.outcome() != &CloseOutcome::Done)
        .count();
    if hooks > 0 {
        why.push(format!("{hooks} close hook(s) failed"));
    }
    if untracked > 0 {
        why.push(format!(
            "{untracked} untracked task(s) were still alive when the test ended (spawned \
             outside sundown's tracking: use `sundown::spawn`, or `tokio::spawn` written in \
             the test's body)"
        ));
    }
    if why.is_empty() {
        return Ok(());
    }
    let mut message = format!("sundown::test `{name}`: the test's scope did not shut down cleanly");
    for w in &why {
        message.push_str("\n  - ");
        message.push_str(w);
    }
    message.push('\n');
    message.push_str(&report.to_string());
    Err(message)
}

// Only the verdict's wording is tested here: the whole runner, failing tests included,
// is tested through real `#[sundown::test]` functions in `tests/test_attribute.rs`.
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_clean_scope_passes_and_each_kind_of_leak_is_named() {
        let scope = Shutdown::new();
        let s = scope.clone();
        scope.spawn_named("polite", async move { s.requested().await });
        let report = scope.shutdown(Duration::from_secs(1)).await;
        assert_eq!(verdict("t", &report, 0), Ok(()));

        let scope = Shutdown::new();
        scope.spawn_named("stubborn", std::future::pending::<()>());
        let _ = scope.spawn_named("boom", async { panic!("boom") }).await;
        scope.on_close("db", async { panic!("db") });
        let report = scope.shutdown(Duration::from_secs(1)).await;
        let message = verdict("leaky", &report, 3).unwrap_err();
        for part in [
            "sundown::test `leaky`: the test's scope did not shut down cleanly",
            "1 task(s) ignored cancellation and had to be aborted",
            "1 tracked task(s) failed without anyone seeing it",
            "1 close hook(s) failed",
            "3 untracked task(s) were still alive when the test ended",
            "stubborn",
            "panicked: boom",
            "close hook `db`: panicked: db",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }
}
