//! What a shutdown did: the [`Report`] and its parts.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::duration::Human;
use crate::error::Cause;
use crate::registry::{Stats, TaskInfo, TaskState};
pub(crate) use crate::text::Shown;

/// How many failures a scope keeps in full; the rest are counted.
pub(crate) const FAILURES_KEPT: usize = 64;

/// The message of a panic payload (`&str` or `String`, as `panic!` makes them).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// A step of the shutdown sequence, as timed in the [`Report`].
///
/// ```
/// assert_eq!(sundown::Step::Drain.to_string(), "drain");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// [`Shutdown::join`](crate::Shutdown::join): wait for the tasks to finish on their
    /// own, without cancelling. It hit its deadline when the budget ran out first.
    Join,
    /// Keep serving after readiness went false (`delay`).
    Delay,
    /// Cancel the scope's token.
    Cancel,
    /// Wait for the tracked tasks to finish.
    Drain,
    /// Abort the stragglers and wait briefly for them to go.
    Abort,
    /// Run the close hooks, last registered first.
    Close,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Join => "join",
            Step::Delay => "delay",
            Step::Cancel => "cancel",
            Step::Drain => "drain",
            Step::Abort => "abort",
            Step::Close => "close",
        })
    }
}

/// How long one step took and whether it ran into its deadline.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
/// let drain = report.steps().iter().find(|s| s.step() == sundown::Step::Drain).unwrap();
/// assert!(!drain.hit_deadline());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct StepTiming {
    pub(crate) step: Step,
    pub(crate) elapsed: Duration,
    pub(crate) hit_deadline: bool,
}

impl StepTiming {
    /// Which step.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.steps()[0].step(), sundown::Step::Cancel);
    /// # }
    /// ```
    pub fn step(&self) -> Step {
        self.step
    }

    /// How long it took.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.steps()[0].elapsed() < std::time::Duration::from_secs(1));
    /// # }
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// True when the step was cut by its deadline.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.steps().iter().all(|s| !s.hit_deadline()));
    /// # }
    /// ```
    pub fn hit_deadline(&self) -> bool {
        self.hit_deadline
    }
}

/// What went wrong in a failure.
///
/// ```
/// let kind = sundown::FailureKind::Panicked("boom".into());
/// assert_eq!(kind.to_string(), "panicked: boom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The task panicked; the panic message.
    Panicked(String),
    /// The task returned `Err` and nobody could await it; the error's `{:?}`.
    Returned(String),
    /// A `#[cancel_safe]` cleanup panicked or returned `Err`.
    Cleanup(String),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Panicked(m) => write!(f, "panicked: {m}"),
            FailureKind::Returned(m) => write!(f, "returned Err: {m}"),
            FailureKind::Cleanup(m) => write!(f, "cleanup failed: {m}"),
        }
    }
}

/// A tracked task that failed: its name, spawn location and what happened.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let _ = scope.spawn_named("parser", async { panic!("bad input") }).await;
/// let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
/// let failure = &report.failures()[0];
/// assert_eq!(failure.task(), "parser");
/// assert_eq!(failure.kind(), &sundown::FailureKind::Panicked("bad input".into()));
/// assert_eq!(report.exit_code(), 1);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Failure {
    task: Cow<'static, str>,
    location: &'static Location<'static>,
    kind: FailureKind,
}

impl Failure {
    pub(crate) fn new(
        task: Cow<'static, str>,
        location: &'static Location<'static>,
        kind: FailureKind,
    ) -> Self {
        Failure {
            task,
            location,
            kind,
        }
    }

    pub(crate) fn task_name_owned(&self) -> Cow<'static, str> {
        self.task.clone()
    }

    /// The failed task's name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let scope = sundown::Shutdown::new();
    /// # let _ = scope.spawn_named("t", async { panic!("x") }).await;
    /// # let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.failures()[0].task(), "t");
    /// # }
    /// ```
    pub fn task(&self) -> &str {
        &self.task
    }

    /// Where the failed task was spawned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let scope = sundown::Shutdown::new();
    /// # let _ = scope.spawn_named("t", async { panic!("x") }).await;
    /// # let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.failures()[0].location().file().ends_with(".rs"));
    /// # }
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// What happened.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let scope = sundown::Shutdown::new();
    /// # let _ = scope.spawn_named("t", async { panic!("x") }).await;
    /// # let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(matches!(report.failures()[0].kind(), sundown::FailureKind::Panicked(_)));
    /// # }
    /// ```
    pub fn kind(&self) -> &FailureKind {
        &self.kind
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task `{}` ({}:{}) {}",
            Shown(&self.task),
            self.location.file(),
            self.location.line(),
            self.kind
        )
    }
}

/// A `#[cancel_safe]` function whose cleanup did not run to its end: dropped from
/// outside before it could start (`select!`, `timeout`, abort), or cut by its timeout
/// or the hard deadline.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
/// assert!(report.dropped_cleanups().is_empty());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DroppedCleanup {
    pub(crate) function: &'static str,
    pub(crate) location: &'static Location<'static>,
    pub(crate) why: CleanupLoss,
}

/// Why a cleanup did not complete.
///
/// ```
/// assert_eq!(sundown::CleanupLoss::DroppedFromOutside.to_string(),
///            "dropped from outside before its cleanup could run");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CleanupLoss {
    /// The function's future was dropped while its body was pending.
    DroppedFromOutside,
    /// The cleanup ran past its timeout and was cut.
    TimedOut(Duration),
    /// The cleanup was cut by the hard deadline or a forced shutdown.
    Forced,
    /// The cleanup's future was dropped while it ran.
    CleanupDropped,
}

impl fmt::Display for CleanupLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CleanupLoss::DroppedFromOutside => {
                f.write_str("dropped from outside before its cleanup could run")
            }
            CleanupLoss::TimedOut(d) => write!(f, "cleanup cut after its {} timeout", Human(*d)),
            CleanupLoss::Forced => f.write_str("cleanup cut by the hard deadline"),
            CleanupLoss::CleanupDropped => f.write_str("cleanup dropped while it ran"),
        }
    }
}

impl DroppedCleanup {
    /// The `#[cancel_safe]` function.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// for d in report.dropped_cleanups() { println!("{}", d.function()); }
    /// # }
    /// ```
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// Where the function is defined.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// for d in report.dropped_cleanups() { println!("{}", d.location()); }
    /// # }
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// Why the cleanup did not complete.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// for d in report.dropped_cleanups() { println!("{}", d.why()); }
    /// # }
    /// ```
    pub fn why(&self) -> CleanupLoss {
        self.why
    }
}

impl fmt::Display for DroppedCleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ({}:{}) {}",
            self.function,
            self.location.file(),
            self.location.line(),
            self.why
        )
    }
}

/// How a close hook ended.
///
/// ```
/// assert_eq!(sundown::CloseOutcome::Done.to_string(), "done");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseOutcome {
    /// It finished.
    Done,
    /// It ran past its share of the budget and was abandoned.
    TimedOut,
    /// It panicked; the message.
    Panicked(String),
    /// It was not run: the budget was already spent.
    Skipped,
}

impl fmt::Display for CloseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseOutcome::Done => f.write_str("done"),
            CloseOutcome::TimedOut => f.write_str("timed out"),
            CloseOutcome::Panicked(m) => write!(f, "panicked: {m}"),
            CloseOutcome::Skipped => f.write_str("skipped: no budget left"),
        }
    }
}

/// One close hook's result.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.on_close("cache", async {});
/// let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
/// assert_eq!(report.closes()[0].outcome(), &sundown::CloseOutcome::Done);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CloseResult {
    pub(crate) name: Cow<'static, str>,
    pub(crate) elapsed: Duration,
    pub(crate) outcome: CloseOutcome,
}

impl CloseResult {
    /// The hook's name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let scope = sundown::Shutdown::new();
    /// # scope.on_close("cache", async {});
    /// # let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.closes()[0].name(), "cache");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long it ran.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let scope = sundown::Shutdown::new();
    /// # scope.on_close("cache", async {});
    /// # let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.closes()[0].elapsed() < std::time::Duration::from_secs(1));
    /// # }
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How it ended.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let scope = sundown::Shutdown::new();
    /// # scope.on_close("cache", async {});
    /// # let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.closes()[0].outcome(), &sundown::CloseOutcome::Done);
    /// # }
    /// ```
    pub fn outcome(&self) -> &CloseOutcome {
        &self.outcome
    }
}

/// What a shutdown did: its cause, each step's timing, the stragglers, the failures,
/// the close hooks' results, and the exit code that sums it up.
///
/// `Display` prints the summary the process runner writes to stderr.
///
/// ```
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// scope.trigger("maintenance");
/// let report = scope.shutdown(Duration::from_secs(5)).await;
/// assert_eq!(report.cause(), Some(&sundown::Cause::Trigger("maintenance".into())));
/// assert_eq!(report.exit_code(), 0);
/// println!("{report}");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    pub(crate) cause: Option<Cause>,
    pub(crate) budget: Duration,
    pub(crate) total: Duration,
    pub(crate) steps: Vec<StepTiming>,
    pub(crate) stragglers: Vec<TaskInfo>,
    /// How many of the stragglers, the last ones, are tasks close hooks spawned that
    /// were still running when the hooks' time ran out.
    pub(crate) from_hooks: usize,
    /// Tasks still running when `join` ran out of budget (and cancelled them).
    pub(crate) unjoined: usize,
    pub(crate) failures: Vec<Failure>,
    pub(crate) failures_total: u64,
    pub(crate) dropped_cleanups: Vec<DroppedCleanup>,
    pub(crate) dropped_cleanups_total: u64,
    pub(crate) closes: Vec<CloseResult>,
    pub(crate) stats: Stats,
    /// How long the drain could last at most (from the start of the sequence).
    pub(crate) drain_limit: Duration,
    /// Set by the process runner: how the process ends, which the report then states.
    pub(crate) process_exit: Option<ProcessExit>,
}

/// How the process ends, decided once by the process runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcessExit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by re-raising this signal with its default disposition (`exit = "signal"`).
    Signal { name: &'static str, number: i32 },
}

impl ProcessExit {
    /// The status a shell sees (128+N for a signal).
    pub(crate) fn code(self) -> i32 {
        match self {
            ProcessExit::Code(c) => c,
            ProcessExit::Signal { number, .. } => 128 + number,
        }
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Code(c) => write!(f, "exit code {c}"),
            ProcessExit::Signal { name, number } => {
                write!(f, "exiting by {name} (status {})", 128 + number)
            }
        }
    }
}

impl Report {
    /// What started the shutdown.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.cause(), Some(&sundown::Cause::ShutdownCalled));
    /// # }
    /// ```
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// The budget the sequence ran in.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(3)).await;
    /// assert_eq!(report.budget(), std::time::Duration::from_secs(3));
    /// # }
    /// ```
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// How long the whole sequence took.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(3)).await;
    /// assert!(report.total() <= report.budget());
    /// # }
    /// ```
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Each step with its timing, in order.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// let names: Vec<String> = report.steps().iter().map(|s| s.step().to_string()).collect();
    /// assert_eq!(names, ["cancel", "drain", "abort", "close"]);
    /// # }
    /// ```
    pub fn steps(&self) -> &[StepTiming] {
        &self.steps
    }

    /// Tasks still running at the drain deadline, aborted, then tasks close hooks
    /// spawned that were still running when the hooks' time ran out, aborted too;
    /// those that did not stop even then have state [`TaskState::Blocking`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.stragglers().is_empty());
    /// # }
    /// ```
    pub fn stragglers(&self) -> &[TaskInfo] {
        &self.stragglers
    }

    /// The first failures of tracked tasks (at most 64; see
    /// [`failure_count`](Report::failure_count) for all).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.failures().is_empty());
    /// # }
    /// ```
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// How many failures there were in all.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.failure_count(), 0);
    /// # }
    /// ```
    pub fn failure_count(&self) -> u64 {
        self.failures_total
    }

    /// `#[cancel_safe]` functions whose cleanup did not complete (at most 64 kept).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.dropped_cleanups().is_empty());
    /// # }
    /// ```
    pub fn dropped_cleanups(&self) -> &[DroppedCleanup] {
        &self.dropped_cleanups
    }

    /// Each close hook's result, in the order they ran (last registered first).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(report.closes().is_empty());
    /// # }
    /// ```
    pub fn closes(&self) -> &[CloseResult] {
        &self.closes
    }

    /// Task counts at the end of the sequence.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.stats().running, 0);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True when the budget ran out: a [`join`](crate::Shutdown::join) had to cancel,
    /// stragglers were aborted or a close hook timed out.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert!(!report.budget_exceeded());
    /// # }
    /// ```
    pub fn budget_exceeded(&self) -> bool {
        self.unjoined > 0
            || !self.stragglers.is_empty()
            || self
                .closes
                .iter()
                .any(|c| matches!(c.outcome, CloseOutcome::TimedOut | CloseOutcome::Skipped))
    }

    /// `124` when the budget ran out (see [`budget_exceeded`](Report::budget_exceeded)),
    /// else `1` when a task or close hook failed, else `0`.
    /// In the report `#[graceful_main]` prints, the code the process exits with (which
    /// also counts main's own result), and the report's last line says the same.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let report = sundown::Shutdown::new().shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.exit_code(), 0);
    /// # }
    /// ```
    pub fn exit_code(&self) -> i32 {
        if let Some(exit) = self.process_exit {
            return exit.code();
        }
        if self.budget_exceeded() {
            124
        } else if self.failures_total > 0
            || self
                .closes
                .iter()
                .any(|c| matches!(c.outcome, CloseOutcome::Panicked(_)))
        {
            1
        } else {
            0
        }
    }
}

/// Writes the task table: name, spawn `file:line`, age, state (or `blocking for` a
/// time when the task is inside one long poll), and where it is waiting.
pub(crate) fn write_task_table(
    f: &mut dyn fmt::Write,
    tasks: &[TaskInfo],
    limit: usize,
) -> fmt::Result {
    let shown = &tasks[..tasks.len().min(limit)];
    let mut names: Vec<String> = shown.iter().map(|t| Shown(t.name()).to_string()).collect();
    let name_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, NAME_COLUMN);
    // A longer name is cut to the column, so the columns after it stay aligned.
    for n in &mut names {
        if n.chars().count() > name_w {
            *n = n.chars().take(name_w - 1).chain(['…']).collect();
        }
    }
    let loc: Vec<String> = shown
        .iter()
        .map(|t| format!("{}:{}", t.location().file(), t.location().line()))
        .collect();
    let loc_w = loc.iter().map(String::len).max().unwrap_or(8).clamp(8, 60);
    let states: Vec<String> = shown
        .iter()
        .map(|t| match t.blocking_for() {
            Some(d) => format!("blocking for {}", Tenths(d)),
            None => t.state().to_string(),
        })
        .collect();
    // A task inside a long poll is not waiting: its last await is where it came from.
    let waiting: Vec<Option<String>> = shown
        .iter()
        .map(|t| {
            let after = if t.blocking_for().is_some() {
                "after "
            } else {
                ""
            };
            t.waiting_text()
                .map(|(at, text)| format!("{after}{at} {}", Shown(&text)))
        })
        .collect();
    let any_waiting = waiting.iter().any(Option::is_some);
    let state_w = states.iter().map(String::len).max().unwrap_or(5).max(5);
    if any_waiting {
        writeln!(
            f,
            "  {:<name_w$}  {:<loc_w$}  {:>8}  {:<state_w$}  waiting at",
            "task", "spawned at", "age", "state"
        )?;
    } else {
        writeln!(
            f,
            "  {:<name_w$}  {:<loc_w$}  {:>8}  state",
            "task", "spawned at", "age"
        )?;
    }
    for (i, t) in shown.iter().enumerate() {
        let row = format!(
            "  {:<name_w$}  {:<loc_w$}  {:>8}  {:<state_w$}  {}",
            names[i],
            loc[i],
            Human(t.age()).to_string(),
            states[i],
            waiting[i].as_deref().unwrap_or(""),
        );
        writeln!(f, "{}", row.trim_end())?;
    }
    if tasks.len() > shown.len() {
        writeln!(f, "  … and {} more", tasks.len() - shown.len())?;
    }
    Ok(())
}

/// A duration to a tenth of a second (`12.3s`): the coarse clock's precision.
struct Tenths(Duration);

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}s", self.0.as_secs_f64())
    }
}

/// The first line of a text, at most [`LINE_CHARS`] characters, with `…` when cut.
pub(crate) struct OneLine<'a>(pub(crate) &'a str);

/// The longest failure line a report prints whole.
pub(crate) const LINE_CHARS: usize = 200;

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.0.lines().next().unwrap_or("");
        let cut = line.char_indices().nth(LINE_CHARS).map(|(i, _)| i);
        match cut {
            Some(i) => write!(f, "{}…", &line[..i]),
            None if line.len() < self.0.trim_end().len() => write!(f, "{line} …"),
            None => f.write_str(line),
        }
    }
}

/// The widest the name column of a task table gets.
const NAME_COLUMN: usize = 40;

/// How many rows of a task table are printed before "… and N more".
pub(crate) const TABLE_ROWS: usize = 50;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = self
            .cause
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        write!(
            f,
            "shutdown ({cause}) took {} of {}:",
            Human(self.total),
            Human(self.budget)
        )?;
        for s in &self.steps {
            write!(f, " {} {}", s.step, Human(s.elapsed))?;
            if s.step == Step::Drain {
                write!(f, " (of {})", Human(self.drain_limit))?;
            }
            if s.hit_deadline {
                f.write_str(" (deadline)")?;
            }
            if s.step != Step::Close {
                f.write_str(",")?;
            }
        }
        writeln!(f)?;
        if self.unjoined > 0 {
            writeln!(
                f,
                "the budget ran out while joining: {} task(s) still running were cancelled",
                self.unjoined
            )?;
        }
        if !self.stragglers.is_empty() {
            let blocking = self
                .stragglers
                .iter()
                .filter(|t| t.state() == TaskState::Blocking)
                .count();
            let (n, hooks) = (
                self.stragglers.len(),
                self.from_hooks.min(self.stragglers.len()),
            );
            let which = if hooks == 0 {
                "still running at the drain deadline"
            } else if hooks == n {
                "spawned by close hooks and still running when the hooks' time ran out"
            } else {
                "still running at the drain deadline, or spawned by close hooks and still \
                 running when the hooks' time ran out,"
            };
            writeln!(
                f,
                "{n} task(s) {which} were aborted ({blocking} blocking their thread):"
            )?;
            write_task_table(f, &self.stragglers, TABLE_ROWS)?;
            for t in self.stragglers.iter().take(TABLE_ROWS) {
                if let Some(trace) = t.backtrace() {
                    writeln!(
                        f,
                        "  async backtrace of `{}` (tokio task dump):",
                        Shown(t.name())
                    )?;
                    for line in trace.lines() {
                        writeln!(f, "    {line}")?;
                    }
                }
            }
        }
        for c in &self.closes {
            if c.outcome != CloseOutcome::Done {
                writeln!(
                    f,
                    "close hook `{}`: {} after {}",
                    Shown(&c.name),
                    c.outcome,
                    Human(c.elapsed)
                )?;
            }
        }
        if self.failures_total > 0 {
            writeln!(f, "{} task failure(s):", self.failures_total)?;
            // One line each: the full text was printed when the failure happened.
            for x in &self.failures {
                writeln!(f, "  {}", OneLine(&x.to_string()))?;
            }
            let rest = self.failures_total - self.failures.len() as u64;
            if rest > 0 {
                writeln!(f, "  … and {rest} more")?;
            }
        }
        if self.dropped_cleanups_total > 0 {
            writeln!(
                f,
                "{} cleanup(s) did not complete:",
                self.dropped_cleanups_total
            )?;
            for d in &self.dropped_cleanups {
                writeln!(f, "  {d}")?;
            }
        }
        write!(
            f,
            "tasks: {} completed, {} failed, {} cancelled; ",
            self.stats.completed, self.stats.failed, self.stats.cancelled,
        )?;
        match self.process_exit {
            Some(exit) => write!(f, "{exit}"),
            None => write!(f, "exit code {}", self.exit_code()),
        }
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn a_long_name_is_cut_to_its_column_and_the_columns_stay_aligned() {
        use crate::registry::{Registry, TaskName};
        let registry = Registry::new();
        let here = std::panic::Location::caller();
        registry.insert(
            TaskName::Given("x".repeat(1 << 20).into()),
            here,
            TaskState::Running,
        );
        registry.insert(TaskName::Given("short".into()), here, TaskState::Running);
        let mut tasks = Vec::new();
        registry.snapshot_into(&mut tasks);
        let mut text = String::new();
        write_task_table(&mut text, &tasks, TABLE_ROWS).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        // In characters, as a terminal shows them.
        let at = |row: &str| row[..row.find("report.rs").unwrap()].chars().count();
        assert_eq!(at(rows[1]), at(rows[2]), "{text}");
        assert!(text.len() < 1_000, "{} bytes", text.len());
    }
}

#[cfg(test)]
mod tests {
    use super::OneLine;

    #[test]
    fn a_failure_line_is_one_line_cut_with_an_ellipsis() {
        assert_eq!(OneLine("disk full").to_string(), "disk full");
        assert_eq!(OneLine("Error {\n    code: 5,\n}").to_string(), "Error { …");
        let long = "x".repeat(300);
        let shown = OneLine(&long).to_string();
        assert_eq!(shown.chars().count(), 201);
        assert!(shown.ends_with('…'));
    }
}
