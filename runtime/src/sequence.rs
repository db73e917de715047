//! Steps 2–5 of the shutdown sequence, each with a deadline inside one budget (split
//! as `budget` says), and `join`'s first step: waiting without cancelling.
//!
//! The task that runs the sequence is never waited for nor aborted by it: a
//! `shutdown()` awaited from inside the scope it shuts down (main's body, a tracked
//! task) drains everything else and returns its report to its caller.

use std::time::Duration;

use tokio::time::Instant;

use crate::budget::{BudgetSplit, HookReserve, saturating_deadline};
use crate::close::{self, CloseHook, HookStack};
use crate::error::Cause;
use crate::lifecycle::Phase;
use crate::registry::{SlotKey, TaskInfo, TaskState};
use crate::report::{CloseOutcome, Report, Step, StepTiming};
use crate::scope::Shutdown;
use crate::task::ambient::{self, Ambient};

/// Who runs the sequence, which decides what the budget must also cover.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// `Shutdown::shutdown`: the budget counts from now.
    Shutdown,
    /// `Shutdown::join`: first wait for the tasks without cancelling (until
    /// [`BudgetSplit::join`]), then the usual steps for whatever is left.
    Join,
    /// The process runner: the budget counted from `started` (the first signal, or
    /// main returning) and keeps a margin for tearing the runtime down.
    Process { started: Instant },
}

/// The split a shutdown of `scope` would use now, with the hooks registered so far.
pub(crate) fn split_for(scope: &Shutdown, budget: Duration, process: bool) -> BudgetSplit {
    let mut hooks = HookReserve::default();
    for s in scope.tree() {
        s.hooks().reserve_into(&mut hooks);
    }
    BudgetSplit::new(budget, hooks, process)
}

pub(crate) async fn run(scope: &Shutdown, budget: Duration, mode: Mode) -> Report {
    let (start, process) = match mode {
        Mode::Shutdown | Mode::Join => (Instant::now(), false),
        Mode::Process { started } => (started, true),
    };
    let begun = Instant::now();
    let split = split_for(scope, budget, process);
    let deadline = saturating_deadline(start, split.sequence());
    let drain_deadline = saturating_deadline(start, split.drain);
    let caller = caller_in(scope);
    let mut steps = Vec::with_capacity(5);

    let mut unjoined = 0;
    let cause = match mode {
        Mode::Join => {
            let t = Instant::now();
            let joined = wait_drained(
                scope,
                caller.as_ref(),
                saturating_deadline(start, split.join()),
            )
            .await;
            if !joined {
                unjoined = others_live(scope, caller.as_ref());
            }
            steps.push(timing(Step::Join, t, !joined));
            Cause::JoinCalled
        }
        Mode::Shutdown | Mode::Process { .. } => Cause::ShutdownCalled,
    };

    let t = Instant::now();
    scope.request(cause);
    scope.cancel();
    steps.push(timing(Step::Cancel, t, false));

    let t = Instant::now();
    scope.enter_phase(Phase::Draining);
    let drained = wait_drained(scope, caller.as_ref(), drain_deadline).await;
    steps.push(timing(Step::Drain, t, !drained));

    let t = Instant::now();
    let mut stragglers = Vec::new();
    if !drained {
        stragglers = stragglers_of(scope, caller.as_ref());
        #[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
        crate::taskdump::attach_backtraces(&mut stragglers, deadline).await;
        scope.cancel_hard();
        let grace = saturating_deadline(Instant::now(), split.abort_grace).min(deadline);
        if !abort_until_drained(scope, caller.as_ref(), split.abort_grace, grace).await {
            mark_blocking(scope, caller.as_ref(), &mut stragglers);
        }
    }
    steps.push(timing(Step::Abort, t, !stragglers.is_empty()));

    let t = Instant::now();
    scope.enter_phase(Phase::Closing);
    let (closes, hook_stragglers) = run_hooks(scope, deadline, split.abort_grace).await;
    let close_cut = !hook_stragglers.is_empty()
        || closes
            .iter()
            .any(|c| matches!(c.outcome, CloseOutcome::TimedOut | CloseOutcome::Skipped));
    let from_hooks = hook_stragglers.len();
    stragglers.extend(hook_stragglers);
    steps.push(timing(Step::Close, t, close_cut));
    scope.enter_phase(Phase::Done);

    let failures = scope.failure_log();
    let report = Report {
        cause: scope.cause(),
        budget,
        // From the sequence's own start: a `delay` before it is not drain time.
        drain_limit: drain_deadline.saturating_duration_since(begun),
        total: begun.elapsed(),
        steps,
        stragglers,
        from_hooks,
        unjoined,
        failures: failures.kept,
        failures_total: failures.total,
        dropped_cleanups: failures.dropped_cleanups,
        dropped_cleanups_total: failures.dropped_cleanups_total,
        closes,
        stats: scope.stats(),
        process_exit: None,
    };
    // A child shut down on its own is done with its parent; what it counted still
    // counts there.
    scope.leave_parent();
    if !process {
        let left = deadline.saturating_duration_since(Instant::now());
        crate::output::written(left.min(LINES_WRITTEN_BOUND));
    }
    report
}

/// How long a library `shutdown` or `join` waits, at most and within its budget, for
/// the lines it queued to be written before it returns.
const LINES_WRITTEN_BOUND: Duration = Duration::from_millis(100);

fn timing(step: Step, since: Instant, hit_deadline: bool) -> StepTiming {
    StepTiming {
        step,
        elapsed: since.elapsed(),
        hit_deadline,
    }
}

/// The running task, if it is a tracked task of `scope`'s tree (directly or inside an
/// `enter`): the sequence must neither wait for it nor abort it.
fn caller_in(scope: &Shutdown) -> Option<Caller> {
    let (own, key) = ambient::running_task()?;
    scope
        .tree()
        .into_iter()
        .any(|s| s.same_scope(&own))
        .then_some(Caller { scope: own, key })
}

/// The task that runs the sequence, when it is one of the scope's own.
struct Caller {
    scope: Shutdown,
    key: SlotKey,
}

impl Caller {
    fn is_live(&self) -> bool {
        self.scope.registry().is_live(self.key)
    }
}

fn stragglers_of(scope: &Shutdown, caller: Option<&Caller>) -> Vec<TaskInfo> {
    let caller = caller.and_then(|c| c.scope.task_info(c.key));
    let mut all = scope.tasks();
    if let Some(c) = caller {
        all.retain(|t| !t.same_task(&c));
    }
    all
}

/// Aborts the tree's tasks (all but `caller`) until none is left, or `grace` (the
/// deadline of a grace `length` long) runs out; true when none is left.
///
/// A task that is aborted may spawn as it is dropped (a value's `Drop` that flushes or
/// says goodbye), after the sweep has passed: so the wait is cut in four, and each part
/// starts with a sweep that aborts what appeared during the last.
async fn abort_until_drained(
    scope: &Shutdown,
    caller: Option<&Caller>,
    length: Duration,
    grace: Instant,
) -> bool {
    let part = (length / 4).max(Duration::from_millis(1));
    loop {
        scope.abort_tasks(caller.map(|c| (&c.scope, c.key)));
        let until = saturating_deadline(Instant::now(), part).min(grace);
        if wait_drained(scope, caller, until).await {
            return true;
        }
        if until >= grace {
            return false;
        }
    }
}

/// Tasks still alive after the abort grace cannot be stopped: they block their thread.
/// Those the drain deadline did not see (spawned during the abort step, as an aborted
/// task was dropped) join the stragglers, so the report leaves no live task out.
fn mark_blocking(scope: &Shutdown, caller: Option<&Caller>, stragglers: &mut Vec<TaskInfo>) {
    // Sets, not a scan per straggler: a million of them must not take a million
    // squared comparisons.
    let mut still: std::collections::HashMap<_, _> = stragglers_of(scope, caller)
        .into_iter()
        .map(|t| (t.identity(), t))
        .collect();
    scope.mark_blocking();
    for t in stragglers.iter_mut() {
        if still.remove(&t.identity()).is_some() {
            *t = t.clone().with_state(TaskState::Blocking);
        }
    }
    let mut late: Vec<TaskInfo> = still
        .into_values()
        .map(|t| t.with_state(TaskState::Blocking))
        .collect();
    late.sort_by_key(TaskInfo::started);
    stragglers.extend(late);
}

/// Tracked tasks alive in the scope tree, `caller` not counted.
fn others_live(scope: &Shutdown, caller: Option<&Caller>) -> usize {
    let live = scope.live_tasks();
    match caller {
        Some(c) if c.is_live() => live.saturating_sub(1),
        _ => live,
    }
}

/// Waits until no tracked task of the scope tree but `caller` is alive, or
/// `deadline`. True when drained.
async fn wait_drained(scope: &Shutdown, caller: Option<&Caller>, deadline: Instant) -> bool {
    let others = || others_live(scope, caller);
    scope.start_draining();
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        let notified = scope.drained().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if others() == 0 {
            return true;
        }
        tokio::select! {
            biased;
            () = &mut notified => {}
            () = &mut sleep => return others() == 0,
        }
    }
}

/// Step 5: the hooks of the tree, children's first (they were opened inside the
/// parent's lifetime). Each hook runs shielded in a scope of its own, and its call
/// ends when the tasks it spawned have ended too; those still running when its share
/// runs out are returned as stragglers and aborted, as the abort step aborts the
/// drain's: swept again through a short grace (a quarter of the abort grace: a task
/// that is aborted goes at its next poll, and one that spawns as it is dropped is
/// swept too), then counted. Those still alive after it block their thread.
async fn run_hooks(
    scope: &Shutdown,
    deadline: Instant,
    abort_grace: Duration,
) -> (Vec<crate::report::CloseResult>, Vec<TaskInfo>) {
    let mut tree = scope.tree();
    tree.reverse();
    let mut hook_scopes: Vec<Shutdown> = Vec::new();
    let mut results = Vec::new();
    // A hook that registers a hook (`sundown::on_close` inside it) registers it in its
    // own scope: those run next, in rounds, until a round registers none (after the
    // deadline a round runs nothing, so registers nothing).
    let mut round = tree;
    loop {
        let stacks: Vec<&HookStack> = round.iter().map(Shutdown::hooks).collect();
        let first = hook_scopes.len();
        results.extend(
            close::run_all(&stacks, deadline, &mut |hook| {
                let own = Shutdown::new();
                hook_scopes.push(own.clone());
                tokio::spawn(ambient::scope(shielded(&own), async move {
                    hook.await;
                    let here = Shutdown::current();
                    wait_drained(
                        &here,
                        None,
                        saturating_deadline(Instant::now(), Duration::MAX),
                    )
                    .await;
                }))
            })
            .await,
        );
        round = hook_scopes[first..]
            .iter()
            .filter(|own| !own.hooks().is_empty())
            .cloned()
            .collect();
        if round.is_empty() {
            break;
        }
    }
    let mut stragglers = Vec::new();
    let late: Vec<&Shutdown> = hook_scopes
        .iter()
        .filter(|own| own.live_tasks() > 0)
        .collect();
    for own in &late {
        stragglers.extend(own.tasks());
        own.abort_tasks(None);
    }
    // At least a millisecond: an aborted task goes at its next poll, which a grace of
    // nothing (a budget of nanoseconds) would not wait for.
    let length = (abort_grace / 4).max(Duration::from_millis(1));
    let grace = saturating_deadline(Instant::now(), length);
    for own in &late {
        if !abort_until_drained(own, None, length, grace).await {
            mark_blocking(own, None, &mut stragglers);
        }
    }
    for own in &hook_scopes {
        if own.live_tasks() > 0 {
            // Blocking their thread: still running, and counted when they end.
            scope.adopt(own);
        } else {
            scope.absorb(own);
        }
    }
    (results, stragglers)
}

fn shielded(scope: &Shutdown) -> Ambient {
    Ambient {
        scope: scope.clone(),
        task: None,
        shielded: true,
        in_flight: false,
    }
}

/// A hook registered after its scope closed: run it now rather than drop it.
pub(crate) fn run_late_hook(scope: &Shutdown, hook: CloseHook) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            crate::output::line(&format!(
                "close hook `{}` registered after shutdown closed its scope: running it now",
                crate::report::Shown(&hook.name)
            ));
            rt.spawn(ambient::scope(shielded(scope), hook.run));
        }
        Err(_) => crate::output::line(&format!(
            "close hook `{}` registered after shutdown, outside a tokio runtime: it was not run",
            crate::report::Shown(&hook.name)
        )),
    }
}
