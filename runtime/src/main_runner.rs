//! The process runner behind `#[graceful_main]`.
//!
//! Three threads share the work:
//! - the **signal thread** receives signals (never blocked by user code);
//! - the **controller thread** owns the clock: it prints the first-signal line, waits
//!   out `delay` before cancelling, forces exit on the second signal, prints the task
//!   table on the dump signal, and at the hard deadline exits 124 with the straggler
//!   table even if the tokio runtime is wedged (a `current_thread` program stuck in a
//!   sync loop);
//! - the **main thread** runs the body on the tokio runtime, then the sequence (drain,
//!   abort, close hooks) within the budget, tears the runtime down with a bound,
//!   reports, and exits.
//!
//! Whichever of them ends the process first wins; the others never get to.

use std::future::Future;
use std::io::Write;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::ambient;
use crate::duration::{self, Human};
use crate::error::Cause;
use crate::mailbox::Mailbox;
use crate::output;
use crate::report::{Report, Step, StepTiming, TABLE_ROWS, write_task_table};
use crate::scope::{FailurePolicy, ScopeEvent, Shutdown, lock};
use crate::signals::{self, SignalEvent};
use crate::task::{TaskGuard, TaskOutcome, catch_panic, panic_message};

/// How `#[graceful_main]` ends a signal-initiated graceful shutdown.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMode {
    /// Exit with the code from the table.
    Code,
    /// Re-raise the signal with its default disposition (as shells expect of CLI tools).
    Signal,
}

/// The tokio runtime flavor.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    MultiThread,
    CurrentThread,
}

/// `#[graceful_main]`'s arguments.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct MainConfig {
    pub name: &'static str,
    pub timeout: Duration,
    pub delay: Duration,
    pub signals: &'static [&'static str],
    pub dump_signal: Option<&'static str>,
    pub on_task_failure: FailurePolicy,
    pub exit: ExitMode,
    pub flavor: Flavor,
    pub worker_threads: Option<usize>,
}

#[cfg(unix)]
const DEFAULT_SIGNALS: &[&str] = &["SIGINT", "SIGTERM"];
#[cfg(windows)]
const DEFAULT_SIGNALS: &[&str] = &[
    "CTRL_C",
    "CTRL_BREAK",
    "CTRL_CLOSE",
    "CTRL_LOGOFF",
    "CTRL_SHUTDOWN",
];

impl MainConfig {
    /// 9 s fits inside Docker's 10 s stop window and Kubernetes' 30 s grace period.
    pub const DEFAULT: MainConfig = MainConfig {
        name: "main",
        timeout: Duration::from_secs(9),
        delay: Duration::ZERO,
        signals: DEFAULT_SIGNALS,
        dump_signal: None,
        on_task_failure: FailurePolicy::Log,
        exit: ExitMode::Code,
        flavor: Flavor::MultiThread,
        worker_threads: None,
    };
}

/// The environment variable that overrides `timeout` at run time.
pub(crate) const TIMEOUT_VAR: &str = "SUNDOWN_TIMEOUT";

/// Messages from the signal thread, the scope and the main thread to the controller.
enum Control {
    Signal(SignalEvent),
    /// Shutdown began (a trigger, main returning, a failed task).
    Begun,
}

/// Control messages that can wait unread before further ones are dropped.
const CONTROL_QUEUE: usize = 256;

/// When shutdown began, shared by the controller and the main thread.
#[derive(Default)]
struct Timeline {
    started: Option<Instant>,
    signal: Option<(&'static str, i32)>,
}

struct Shared {
    scope: Shutdown,
    config: MainConfig,
    budget: Duration,
    timeline: Mutex<Timeline>,
    exiting: AtomicBool,
    /// The body's runtime, once built: the controller cancels through it.
    runtime: OnceLock<tokio::runtime::Handle>,
}

impl Shared {
    /// Ends the process once: the first caller exits, later ones wait for it to.
    fn exit(&self, code: i32, flush_bound: Duration) -> ! {
        if self.exiting.swap(true, Ordering::AcqRel) {
            loop {
                std::thread::park();
            }
        }
        flush_output(flush_bound);
        std::process::exit(code)
    }

    fn mark_started(&self, signal: Option<(&'static str, i32)>) -> Instant {
        let mut t = lock(&self.timeline);
        if t.signal.is_none() {
            t.signal = signal;
        }
        *t.started.get_or_insert_with(Instant::now)
    }
}

/// The program could not start (bad configuration, no threads): exit 1 once the
/// message is out.
fn exit_before_start() -> ! {
    flush_output(EXIT_FLUSH);
    std::process::exit(1)
}

/// Bounded flush of sundown's stderr lines, then stdout; called before every exit.
pub(crate) fn flush_output(bound: Duration) {
    output::flush(bound);
    let _ = std::io::stdout().flush();
}

/// How long an exit waits for its last lines to reach stderr.
const EXIT_FLUSH: Duration = Duration::from_millis(200);
/// A forced exit must happen within 200 ms of the signal: flush for less.
const FORCED_EXIT_FLUSH: Duration = Duration::from_millis(100);

/// Runs `#[graceful_main]`'s body and exits with the design's exit code.
#[doc(hidden)]
#[track_caller]
pub fn run_main<'a, B, Fut>(config: MainConfig, body: B) -> !
where
    B: FnOnce(Shutdown) -> Fut + 'a,
    Fut: Future<Output = TaskOutcome> + 'a,
{
    // Only this shim is generic: the runner is compiled once, in sundown, not in
    // every program that uses the attribute.
    run_boxed(
        config,
        Location::caller(),
        Box::new(move |scope| Box::pin(body(scope)) as MainBody<'a>),
    )
}

/// The body as the runner takes it.
type MainBody<'a> = Pin<Box<dyn Future<Output = TaskOutcome> + 'a>>;

fn run_boxed<'a>(
    config: MainConfig,
    location: &'static Location<'static>,
    body: Box<dyn FnOnce(Shutdown) -> MainBody<'a> + 'a>,
) -> ! {
    let budget = match std::env::var(TIMEOUT_VAR) {
        Ok(text) => match duration::parse(&text) {
            Ok(d) => d,
            Err(why) => {
                output::stderr(&format!(
                    "sundown: {TIMEOUT_VAR}=\"{text}\" is not a valid duration ({why}); \
                     the program was not started\n"
                ));
                exit_before_start()
            }
        },
        Err(std::env::VarError::NotPresent) => config.timeout,
        Err(std::env::VarError::NotUnicode(_)) => {
            output::stderr(&format!(
                "sundown: {TIMEOUT_VAR} is not valid UTF-8; the program was not started\n"
            ));
            exit_before_start()
        }
    };
    let mut config = config;
    if !config.delay.is_zero() && config.delay >= budget {
        let delay = budget / 2;
        output::line(&format!(
            "delay {} is not shorter than the {} budget; using {}",
            Human(config.delay),
            Human(budget),
            Human(delay)
        ));
        config.delay = delay;
    }

    let scope = Shutdown::new();
    scope.set_policy(config.on_task_failure);
    ambient::set_process_scope(&scope);
    let shared = Arc::new(Shared {
        scope: scope.clone(),
        config,
        budget,
        timeline: Mutex::new(Timeline::default()),
        exiting: AtomicBool::new(false),
        runtime: OnceLock::new(),
    });

    let mailbox = Arc::new(Mailbox::<Control>::new(CONTROL_QUEUE));
    let observer_tx = mailbox.clone();
    let _ = scope.inner.observer.set(Box::new(move |event| match event {
        ScopeEvent::Begun => {
            crate::systemd::stopping();
            let _ = observer_tx.try_send(Control::Begun);
        }
    }));

    let forced = Arc::new(AtomicBool::new(false));
    // The signal thread hands its events straight to the controller's channel.
    // A full queue drops the event: the controller is far behind, and what cannot wait
    // (forcing on the second signal) the signal thread does itself.
    let signal_tx = mailbox.clone();
    let delivered = move |e: SignalEvent| {
        let _ = signal_tx.try_send(Control::Signal(e));
    };
    if let Err(why) = signals::install(
        config.signals,
        config.dump_signal,
        forced.clone(),
        delivered,
    ) {
        output::stderr(&format!("sundown: {why}; the program was not started\n"));
        exit_before_start()
    }
    {
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sundown-controller".into())
            .spawn(move || controller(&shared, &mailbox, &forced));
        if let Err(e) = spawned {
            output::stderr(&format!(
                "sundown: cannot start a thread ({e}); the program was not started\n"
            ));
            exit_before_start()
        }
    }

    let runtime = match build_runtime(&config) {
        Ok(rt) => rt,
        Err(e) => {
            output::stderr(&format!("sundown: cannot build the tokio runtime: {e}\n"));
            exit_before_start()
        }
    };
    let _ = shared.runtime.set(runtime.handle().clone());
    let code = run_on(&runtime, &shared, location, body);
    let code = teardown(runtime, &shared, code);
    finish(&shared, code)
}

fn build_runtime(config: &MainConfig) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match config.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    if let (Flavor::MultiThread, Some(n)) = (config.flavor, config.worker_threads) {
        builder.worker_threads(n.max(1));
    }
    builder.enable_all().build()
}

/// What the main thread learned from running the body and the sequence.
struct Outcome {
    body: Option<Result<TaskOutcome, String>>,
    report: Report,
    untracked: usize,
}

fn run_on<'a>(
    runtime: &tokio::runtime::Runtime,
    shared: &Arc<Shared>,
    location: &'static Location<'static>,
    body: Box<dyn FnOnce(Shutdown) -> MainBody<'a> + 'a>,
) -> Outcome {
    let scope = shared.scope.clone();
    runtime.block_on(async move {
        let guard = TaskGuard::new(
            &scope,
            crate::registry::TaskName::Given(shared.config.name.into()),
            location,
        );
        let ambient = guard.ambient();
        let mut guard = Some(guard);
        let mut body: Option<BodyFuture<'_>> = Some(Box::pin(ambient::scope(
            ambient,
            catch_panic(body(scope.clone())),
        )));
        let mut result = None;

        if scope.is_requested() {
            // A signal arrived during startup: the body never starts, nothing is lost.
            body = None;
            guard = None;
        } else {
            crate::systemd::ready();
        }
        // Pinged from this runtime, so that a wedged runtime stops the pings.
        let internal_tasks = match crate::systemd::watchdog_interval() {
            Some(every) => {
                tokio::spawn(async move {
                    loop {
                        crate::systemd::watchdog();
                        tokio::time::sleep(every).await;
                    }
                });
                1
            }
            None => 0,
        };

        // Run until the body returns or the scope is cancelled (after any delay).
        let soft = scope.inner.soft.clone();
        let mut cancelled = std::pin::pin!(soft.cancelled());
        let first = std::future::poll_fn(|cx| {
            if let Some(Poll::Ready(r)) = body.as_mut().map(|b| b.as_mut().poll(cx)) {
                return Poll::Ready(Some(r));
            }
            cancelled.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Some(r) = first {
            result = Some(body_result(r, guard.as_ref()));
            body = None;
            guard = None;
        }
        scope.begin(Cause::MainReturned);
        let started = shared.mark_started(None);
        scope.cancel();
        let cancelled_at = Instant::now();

        // Steps 2–5 within what is left of the budget, keeping a margin for teardown.
        let margin = (shared.budget / 10).min(Duration::from_millis(300));
        let deadline = started + shared.budget.saturating_sub(margin);
        let deadline = tokio::time::Instant::from_std(deadline);
        let mut sequence = std::pin::pin!(crate::sequence::run(&scope, deadline));
        let hard = scope.inner.hard.clone();
        let mut aborted = std::pin::pin!(hard.cancelled());
        let mut report = loop {
            let woke = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = sequence.as_mut().poll(cx) {
                    return Poll::Ready(Wake::Report(Box::new(r)));
                }
                if let Some(b) = body.as_mut() {
                    if let Poll::Ready(r) = b.as_mut().poll(cx) {
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
                Wake::Body(r) => result = Some(body_result(r, guard.as_ref())),
                // Stragglers are being aborted: the body is one of them.
                Wake::Aborted => {}
            }
            body = None;
            guard = None;
        };
        drop(body);
        drop(guard);
        report.budget = shared.budget;
        let delay = cancelled_at.saturating_duration_since(started);
        if !shared.config.delay.is_zero() {
            // The budget counts from the first signal, so the total does too.
            report.total += delay;
            report.steps.insert(
                0,
                StepTiming {
                    step: Step::Delay,
                    elapsed: delay,
                    hit_deadline: false,
                },
            );
        }
        // Aborted tasks are released by the workers shortly after their futures are
        // dropped; let the count settle before comparing it with ours.
        let untracked_now = || {
            let alive = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            alive.saturating_sub(scope.inner.live_tasks() + internal_tasks)
        };
        let mut untracked = untracked_now();
        // Only when something is left: a clean exit pays nothing here.
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
        Outcome {
            body: result,
            report,
            untracked,
        }
    })
}

type BodyFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TaskOutcome, Box<dyn std::any::Any + Send>>> + 'a>>;

enum Wake {
    Report(Box<Report>),
    Body(Result<TaskOutcome, Box<dyn std::any::Any + Send>>),
    Aborted,
}

/// Classifies the body's result and records it on main's registry entry.
fn body_result(
    r: Result<TaskOutcome, Box<dyn std::any::Any + Send>>,
    guard: Option<&TaskGuard>,
) -> Result<TaskOutcome, String> {
    match (r, guard) {
        (Ok(outcome), Some(g)) => {
            let outcome = g.refine(outcome);
            // Not detached: main's error is printed as main's, not as a task failure.
            g.finish(outcome.clone());
            Ok(outcome)
        }
        (Ok(outcome), None) => Ok(outcome),
        (Err(payload), _) => Err(panic_message(&*payload)),
    }
}

fn controller(shared: &Shared, mailbox: &Mailbox<Control>, forced: &AtomicBool) {
    let mut cancel_at: Option<Instant> = None;
    let mut hard_at: Option<Instant> = None;
    let mut cancel_here_at: Option<Instant> = None;
    loop {
        let next = [cancel_at, hard_at, cancel_here_at]
            .into_iter()
            .flatten()
            .min();
        match mailbox.recv(next) {
            Some(Control::Signal(SignalEvent::Terminate {
                name,
                number,
                nth: 1,
            })) => {
                let started = shared.mark_started(Some((name, number)));
                hard_at.get_or_insert(started + shared.budget);
                first_signal_line(shared, name);
                shared.scope.begin(Cause::Signal(name));
                let delay = shared.config.delay;
                if delay.is_zero() || shared.scope.is_requested() {
                    cancel_here_at = request_cancel(shared);
                } else {
                    cancel_at = Some(Instant::now() + delay);
                }
            }
            Some(Control::Signal(SignalEvent::Terminate { name, number, .. })) => {
                // The signal thread has armed the third-signal default already; this
                // covers platforms where the controller is the only counter.
                forced.store(true, Ordering::SeqCst);
                forced_exit(shared, name, number)
            }
            Some(Control::Signal(SignalEvent::Dump)) => dump_tasks(shared),
            Some(Control::Begun) => {
                let started = shared.mark_started(None);
                hard_at.get_or_insert(started + shared.budget);
            }
            None => {
                let now = Instant::now();
                if cancel_at.is_some_and(|t| now >= t) {
                    cancel_at = None;
                    cancel_here_at = request_cancel(shared);
                }
                if cancel_here_at.is_some_and(|t| now >= t) {
                    cancel_here_at = None;
                    shared.scope.cancel();
                }
                if hard_at.is_some_and(|t| now >= t) {
                    hard_deadline_exit(shared)
                }
            }
        }
    }
}

/// How long the controller lets a cancel task wait for a worker before it cancels
/// from its own thread (every worker is blocked, say).
const CANCEL_TASK_GRACE: Duration = Duration::from_millis(10);

/// Step 2 from the controller. `is_requested()` is true at once; the token is
/// cancelled by a task on the body's runtime, so the wake-ups of every waiting task go
/// to a worker's own queue as in a program that cancels from its main task, instead of
/// one by one through the runtime's shared queue from this thread. If no worker runs
/// that task within [`CANCEL_TASK_GRACE`], the controller cancels itself: the returned
/// instant.
fn request_cancel(shared: &Shared) -> Option<Instant> {
    shared.scope.mark_requested();
    let Some(runtime) = shared.runtime.get() else {
        shared.scope.cancel();
        return None;
    };
    let scope = shared.scope.clone();
    drop(runtime.spawn(async move { scope.cancel() }));
    Some(Instant::now() + CANCEL_TASK_GRACE)
}

fn first_signal_line(shared: &Shared, name: &str) {
    let delay = shared.config.delay;
    let keep = if delay.is_zero() {
        String::new()
    } else {
        format!("readiness off, serving {} more, then ", Human(delay))
    };
    output::stderr(&format!(
        "sundown: {name} received: {keep}shutting down within {} (send {name} again to force exit)\n",
        Human(shared.budget)
    ));
}

fn task_table_text(shared: &Shared, header: &str) -> String {
    let tasks = shared.scope.tasks();
    let mut text = format!("sundown: {header}; {} task(s) running\n", tasks.len());
    if !tasks.is_empty() {
        let _ = write_task_table(&mut text, &tasks, TABLE_ROWS);
    }
    text
}

fn dump_tasks(shared: &Shared) {
    let name = shared.config.dump_signal.unwrap_or("dump signal");
    let stats = shared.scope.stats();
    let text = task_table_text(
        shared,
        &format!(
            "{name}: task dump ({} completed, {} failed, {} cancelled so far)",
            stats.completed, stats.failed, stats.cancelled
        ),
    );
    output::stderr(&text);
}

fn forced_exit(shared: &Shared, name: &str, number: i32) -> ! {
    let code = 128 + number;
    let text = task_table_text(shared, &format!("second {name}: forcing exit now ({code})"));
    output::stderr(&text);
    shared.exit(code, FORCED_EXIT_FLUSH)
}

fn hard_deadline_exit(shared: &Shared) -> ! {
    // The runtime did not finish the sequence in time: whatever is still registered is
    // holding a thread that aborting cannot free.
    shared
        .scope
        .inner
        .for_each_scope(&mut |s| s.registry.mark_all_blocking());
    let text = task_table_text(
        shared,
        &format!(
            "the {} shutdown budget ran out with the runtime still busy: exiting now (124)",
            Human(shared.budget)
        ),
    );
    output::stderr(&text);
    shared.exit(124, EXIT_FLUSH)
}

/// Drops the runtime with a bound: `spawn_blocking` work still running is abandoned,
/// and untracked tasks still pending are destroyed here.
fn teardown(runtime: tokio::runtime::Runtime, shared: &Shared, outcome: Outcome) -> Outcome {
    let started = lock(&shared.timeline).started.unwrap_or_else(Instant::now);
    let hard = started + shared.budget;
    let left = hard
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_millis(50));
    runtime.shutdown_timeout(left.min(Duration::from_millis(500)));
    outcome
}

fn finish(shared: &Shared, outcome: Outcome) -> ! {
    let Outcome {
        body,
        report,
        untracked,
    } = outcome;
    let requested_by_signal = lock(&shared.timeline).signal;
    let mut code = report.exit_code();
    match &body {
        Some(Ok(TaskOutcome::Failed(debug))) => {
            output::stderr(&format!("Error: {debug}\n"));
            code = code.max(1);
        }
        Some(Ok(TaskOutcome::Cancelled)) if report.cause() == Some(&Cause::MainReturned) => {
            // Cancelled while nobody asked for a shutdown: an error like any other.
            output::stderr("Error: main returned Cancelled without a shutdown request\n");
            code = code.max(1);
        }
        Some(Err(panic)) => {
            output::stderr(&format!(
                "sundown: `{}` panicked: {panic}\n",
                shared.config.name
            ));
            code = code.max(1);
        }
        _ => {}
    }
    let quiet = report.cause() == Some(&Cause::MainReturned)
        && report.exit_code() == 0
        && report.closes().is_empty()
        && untracked == 0;
    if !quiet {
        output::report(&report);
    }
    if untracked > 0 {
        output::line(&format!(
            "{untracked} untracked task(s) were still pending at exit and were destroyed \
             (spawned outside sundown's tracking: use sundown::spawn, or spawn inside a \
             #[graceful_main] or #[cancel_safe] body)"
        ));
    }
    if code == 0 && shared.config.exit == ExitMode::Signal {
        if let Some((_, number)) = requested_by_signal {
            if !shared.exiting.swap(true, Ordering::AcqRel) {
                signals::die_by(number)
            }
        }
    }
    shared.exit(code, EXIT_FLUSH)
}
