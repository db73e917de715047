//! The main thread: the body on the tokio runtime, then the sequence, the runtime's
//! teardown, and the decision of how the process ends.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::error::Cause;
use crate::registry::{TaskName, TaskOutcome};
use crate::report::{ProcessExit, Report, Step, StepTiming, panic_message};
use crate::scope::Shutdown;
use crate::sequence::{self, Mode};
use crate::sync::lock;
use crate::task::ambient::PollWatch;
use crate::task::{TaskGuard, ambient, catch_panic};

use super::MainBody;
use super::config::{ExitMode, Flavor, MainConfig};
use super::controller::Shared;
use super::exit::EXIT_FLUSH;
use super::systemd;

pub(super) fn build_runtime(config: &MainConfig) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match config.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    if let (Flavor::MultiThread, Some(n)) = (config.flavor, config.worker_threads) {
        builder.worker_threads(n.max(1));
    }
    super::untracked::install(&mut builder);
    builder.enable_all().build()
}

/// What the main thread learned from running the body and the sequence.
pub(super) struct Outcome {
    /// How main's body ended: its outcome, or a panic's message (a panic while it was
    /// dropped included); `None` if it never ran or was cut at the deadline.
    body: Option<Result<TaskOutcome, String>>,
    report: Report,
    untracked: usize,
    /// What to say of them, taken before the runtime's teardown destroys them.
    untracked_text: String,
}

type BodyFuture<'a> = Pin<Box<dyn Future<Output = Result<TaskOutcome, Box<dyn Any + Send>>> + 'a>>;

/// Main's body with its registry entry.
struct Body<'a> {
    future: Option<BodyFuture<'a>>,
    guard: Option<TaskGuard>,
    result: Option<Result<TaskOutcome, String>>,
}

impl Body<'_> {
    /// Polls the body, if it is still there, watched as a tracked task's poll is.
    fn poll_body(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<Poll<Result<TaskOutcome, Box<dyn Any + Send>>>> {
        let future = self.future.as_mut()?;
        let watch = self.guard.as_ref().map(PollWatch::begin);
        let polled = future.as_mut().poll(cx);
        if let (Some(watch), Some(guard)) = (watch, self.guard.as_ref()) {
            watch.end(guard, polled.is_pending());
        }
        Some(polled)
    }

    /// Records how the body ended, on main's registry entry too.
    fn finished(&mut self, r: Result<TaskOutcome, Box<dyn Any + Send>>) {
        self.result = Some(match r {
            Ok(outcome) => {
                let outcome = match &mut self.guard {
                    Some(g) => g.finish_main(outcome),
                    None => outcome,
                };
                Ok(outcome)
            }
            Err(payload) => {
                if let Some(g) = &mut self.guard {
                    g.mark_failed();
                }
                Err(panic_message(&*payload))
            }
        });
        self.release();
    }

    /// Drops the body's future (and then its entry). A `Drop` in it that panics is
    /// contained and reported as main's panic, as a tracked task's would be.
    fn release(&mut self) {
        let future = self.future.take();
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(future))) {
            let message = format!("while being dropped: {}", panic_message(&*payload));
            if !matches!(self.result, Some(Err(_))) {
                self.result = Some(Err(message));
            }
        }
        drop(self.guard.take());
    }
}

pub(super) fn run_on<'a>(
    runtime: &tokio::runtime::Runtime,
    shared: &Arc<Shared>,
    location: &'static Location<'static>,
    body: Box<dyn FnOnce(Shutdown) -> MainBody<'a> + 'a>,
) -> Outcome {
    let scope = shared.scope.clone();
    runtime.block_on(async move {
        let guard = TaskGuard::new(&scope, TaskName::Given(shared.config.name.into()), location);
        let ambient = guard.ambient();
        let mut main = Body {
            future: Some(Box::pin(ambient::scope(
                ambient,
                catch_panic(body(scope.clone())),
            ))),
            guard: Some(guard),
            result: None,
        };

        if scope.is_requested() {
            // A signal arrived during startup: the body never starts, nothing is lost.
            main.release();
        } else {
            systemd::ready();
        }
        // Pinged from this runtime, so that a wedged runtime stops the pings.
        let internal_tasks = match systemd::watchdog_interval() {
            Some(every) => {
                tokio::spawn(async move {
                    loop {
                        systemd::watchdog();
                        tokio::time::sleep(every).await;
                    }
                });
                1
            }
            None => 0,
        };

        // Run until the body returns or the scope is cancelled (after any delay).
        let soft = scope.waiter(false).clone();
        let mut cancelled = std::pin::pin!(soft.cancelled());
        let first = std::future::poll_fn(|cx| {
            if let Some(Poll::Ready(r)) = main.poll_body(cx) {
                return Poll::Ready(Some(r));
            }
            cancelled.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Some(r) = first {
            main.finished(r);
        }
        scope.request(Cause::MainReturned);
        let started = shared.mark_started(None);
        scope.cancel();
        let cancelled_at = Instant::now();

        // Steps 2–5 within what is left of the budget (it counts from `started`).
        let started_tokio = tokio::time::Instant::from_std(started);
        let mut sequence = std::pin::pin!(sequence::run(
            &scope,
            shared.budget,
            Mode::Process {
                started: started_tokio
            }
        ));
        let hard = scope.waiter(true).clone();
        let mut aborted = std::pin::pin!(hard.cancelled());
        let mut report = loop {
            let woke = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = sequence.as_mut().poll(cx) {
                    return Poll::Ready(Wake::Report(Box::new(r)));
                }
                if let Some(polled) = main.poll_body(cx) {
                    if let Poll::Ready(r) = polled {
                        return Poll::Ready(Wake::Body(r));
                    }
                    if aborted.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Aborted);
                    }
                }
                Poll::Pending
            })
            .await;
            match woke {
                Wake::Report(r) => break *r,
                Wake::Body(r) => main.finished(r),
                // Stragglers are being aborted: the body is one of them.
                Wake::Aborted => main.release(),
            }
        };
        main.release();
        let delay = cancelled_at.saturating_duration_since(started);
        if !shared.config.delay.is_zero() {
            report.steps.insert(
                0,
                StepTiming {
                    step: Step::Delay,
                    elapsed: delay,
                    hit_deadline: false,
                },
            );
        }
        // The budget counts from the first signal, so the total does too.
        report.total = started.elapsed();
        let untracked = settle_untracked(&scope, internal_tasks).await;
        let untracked_text = if untracked > 0 {
            super::untracked::report(untracked)
        } else {
            String::new()
        };
        Outcome {
            body: main.result.take(),
            report,
            untracked,
            untracked_text,
        }
    })
}

enum Wake {
    Report(Box<Report>),
    Body(Result<TaskOutcome, Box<dyn Any + Send>>),
    Aborted,
}

/// How many untracked tasks are alive: tokio's count of alive tasks less sundown's.
/// Aborted tasks are released by the workers shortly after their futures are dropped,
/// so the count is let settle; a clean exit (nothing left) pays nothing here.
pub(crate) async fn settle_untracked(scope: &Shutdown, internal_tasks: usize) -> usize {
    let untracked_now = || {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        alive.saturating_sub(scope.live_tasks() + internal_tasks)
    };
    let mut untracked = untracked_now();
    for _ in 0..20 {
        if untracked == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = untracked_now();
        if now == untracked {
            break;
        }
        untracked = now;
    }
    untracked
}

/// Drops the runtime with a bound: `spawn_blocking` work still running is abandoned,
/// and untracked tasks still pending are destroyed here.
pub(super) fn teardown(runtime: tokio::runtime::Runtime, shared: &Shared) {
    let hard = shared
        .hard_deadline()
        .unwrap_or_else(|| Instant::now() + shared.budget.min(Duration::from_secs(1)));
    let left = hard
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_millis(50));
    runtime.shutdown_timeout(left.min(Duration::from_millis(500)));
}

/// Decides how the process ends — once, from the report, main's result and the exit
/// mode — writes the report stating it, and ends the process.
pub(super) fn finish(shared: &Shared, outcome: Outcome) -> ! {
    let Outcome {
        body,
        mut report,
        untracked,
        untracked_text,
    } = outcome;
    let signal = lock(&shared.timeline).signal;
    let mut text = String::new();
    let mut code = report.exit_code();
    match &body {
        Some(Ok(TaskOutcome::Failed(debug))) => {
            text.push_str(&format!("Error: {debug}\n"));
            code = code.max(1);
        }
        Some(Ok(TaskOutcome::Cancelled)) if report.cause() == Some(&Cause::MainReturned) => {
            // Cancelled while nobody asked for a shutdown: an error like any other.
            text.push_str("Error: main returned Cancelled without a shutdown request\n");
            code = code.max(1);
        }
        Some(Err(panic)) => {
            text.push_str(&format!(
                "sundown: `{}` panicked: {panic}\n",
                shared.config.name
            ));
            code = code.max(1);
        }
        _ => {}
    }
    let exit = match (code, shared.config.exit, signal) {
        (0, ExitMode::Signal, Some((name, number))) => ProcessExit::Signal { name, number },
        _ => ProcessExit::Code(code),
    };
    report.process_exit = Some(exit);
    let quiet = report.cause() == Some(&Cause::MainReturned)
        && exit == ProcessExit::Code(0)
        && report.closes().is_empty()
        && report.dropped_cleanups().is_empty()
        && untracked == 0;
    if !quiet && !crate::output::report_as_events(&report) {
        text.push_str(&format!("sundown: {report}\n"));
    }
    text.push_str(&untracked_text);
    super::exit::end(exit, &text, EXIT_FLUSH)
}
