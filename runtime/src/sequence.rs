//! Steps 2–5 of the shutdown sequence, each with a deadline inside one budget.
//!
//! ```text
//! start ─ cancel ─ drain ············─┬─ abort (grace) ─┬─ close hooks ─ deadline
//!                                    drain deadline     close phase gets the rest
//! ```
//!
//! The drain deadline leaves room for the abort grace (a tenth of the budget, at most
//! 500 ms) and, when close hooks are registered, a quarter of the budget for them. A
//! drain that finishes early hands all its remaining time to the hooks. Each hook gets
//! an equal share of what is left when it starts, so a hanging hook takes only its
//! share and the next one still runs.

use std::time::Duration;

use tokio::time::Instant;

use crate::ambient::{self, Ambient};
use crate::error::Cause;
use crate::registry::{TaskInfo, TaskState};
use crate::report::{CloseOutcome, CloseResult, Report, Step, StepTiming};
use crate::scope::{CloseHook, ClosePhase, ScopeInner, Shutdown, lock};

const MAX_ABORT_GRACE: Duration = Duration::from_millis(500);

pub(crate) async fn run(scope: &Shutdown, deadline: Instant) -> Report {
    let start = Instant::now();
    let budget = deadline.saturating_duration_since(start);
    let mut steps = Vec::with_capacity(4);

    let t = Instant::now();
    scope.begin(Cause::ShutdownCalled);
    scope.cancel();
    steps.push(timing(Step::Cancel, t, false));

    let has_hooks = {
        let mut any = false;
        scope
            .inner
            .for_each_scope(&mut |s| any |= !lock(&s.hooks).stack.is_empty());
        any
    };
    let abort_grace = (budget / 10).min(MAX_ABORT_GRACE);
    let close_reserve = if has_hooks {
        budget / 4
    } else {
        Duration::ZERO
    };
    let drain_deadline = deadline
        .checked_sub(abort_grace + close_reserve)
        .unwrap_or(start)
        .max(start);

    let t = Instant::now();
    let drained = wait_drained(scope, drain_deadline).await;
    steps.push(timing(Step::Drain, t, !drained));

    let t = Instant::now();
    let mut stragglers = Vec::new();
    if !drained {
        stragglers = scope.tasks();
        abort_stragglers(scope);
        let gone = wait_drained(scope, (Instant::now() + abort_grace).min(deadline)).await;
        if !gone {
            mark_blocking(scope, &mut stragglers);
        }
    }
    steps.push(timing(Step::Abort, t, !stragglers.is_empty()));

    let t = Instant::now();
    let closes = run_hooks(scope, deadline).await;
    let close_cut = closes
        .iter()
        .any(|c| matches!(c.outcome, CloseOutcome::TimedOut | CloseOutcome::Skipped));
    steps.push(timing(Step::Close, t, close_cut));

    build_report(scope, budget, start.elapsed(), steps, stragglers, closes)
}

fn timing(step: Step, since: Instant, hit_deadline: bool) -> StepTiming {
    StepTiming {
        step,
        elapsed: since.elapsed(),
        hit_deadline,
    }
}

/// Aborts every live tracked task of the scope tree and cuts shielded work.
pub(crate) fn abort_stragglers(scope: &Shutdown) {
    scope.cancel_hard();
    scope.inner.for_each_scope(&mut |s| {
        s.registry.abort_all();
    });
}

/// Tasks still alive after the abort grace cannot be stopped: they block their thread.
pub(crate) fn mark_blocking(scope: &Shutdown, stragglers: &mut [TaskInfo]) {
    let still = scope.tasks();
    scope
        .inner
        .for_each_scope(&mut |s| s.registry.mark_all_blocking());
    for t in stragglers.iter_mut() {
        if still.iter().any(|s| s.same_task(t)) {
            *t = t.clone().with_state(TaskState::Blocking);
        }
    }
}

/// Waits until no tracked task of the scope tree is alive, or `deadline`. True when
/// drained.
pub(crate) async fn wait_drained(scope: &Shutdown, deadline: Instant) -> bool {
    scope
        .inner
        .for_each_scope(&mut |s| s.draining.store(true, std::sync::atomic::Ordering::Release));
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        let notified = scope.inner.drained.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if scope.inner.live_tasks() == 0 {
            return true;
        }
        tokio::select! {
            biased;
            () = &mut notified => {}
            () = &mut sleep => return scope.inner.live_tasks() == 0,
        }
    }
}

async fn run_hooks(scope: &Shutdown, deadline: Instant) -> Vec<CloseResult> {
    // Children's hooks first (they were opened inside the parent's lifetime), each
    // scope's stack last-registered-first.
    let mut scopes: Vec<std::sync::Arc<ScopeInner>> = Vec::new();
    collect_scopes(&scope.inner, &mut scopes);
    scopes.reverse();
    let mut hooks_left: usize = scopes.iter().map(|s| lock(&s.hooks).stack.len()).sum();
    let mut results = Vec::with_capacity(hooks_left);
    for s in &scopes {
        lock(&s.hooks).phase = ClosePhase::Closing;
        loop {
            let hook = {
                let mut hooks = lock(&s.hooks);
                match hooks.stack.pop() {
                    Some(h) => h,
                    None => {
                        hooks.phase = ClosePhase::Closed;
                        break;
                    }
                }
            };
            hooks_left = hooks_left.max(1);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let share = remaining / hooks_left as u32;
            hooks_left -= 1;
            results.push(run_one_hook(scope, hook, share).await);
        }
    }
    results
}

fn collect_scopes(s: &std::sync::Arc<ScopeInner>, out: &mut Vec<std::sync::Arc<ScopeInner>>) {
    out.push(s.clone());
    for c in s.children_snapshot() {
        collect_scopes(&c, out);
    }
}

async fn run_one_hook(scope: &Shutdown, hook: CloseHook, share: Duration) -> CloseResult {
    let started = Instant::now();
    if share.is_zero() {
        return CloseResult {
            name: hook.name,
            elapsed: Duration::ZERO,
            outcome: CloseOutcome::Skipped,
        };
    }
    // A hook runs as its own task so that a panic is contained and a hang can be
    // abandoned; shielded, so `#[cancel_safe]` code inside it is not cancelled at once.
    let mut handle = tokio::spawn(ambient::scope(shielded(scope), hook.run));
    let outcome = match tokio::time::timeout(share, &mut handle).await {
        Ok(Ok(())) => CloseOutcome::Done,
        Ok(Err(e)) if e.is_panic() => {
            CloseOutcome::Panicked(crate::task::panic_message(&*e.into_panic()))
        }
        Ok(Err(_)) => CloseOutcome::Panicked("the hook's task was cancelled".into()),
        Err(_) => {
            handle.abort();
            CloseOutcome::TimedOut
        }
    };
    CloseResult {
        name: hook.name,
        elapsed: started.elapsed(),
        outcome,
    }
}

fn shielded(scope: &Shutdown) -> Ambient {
    Ambient {
        scope: scope.clone(),
        task: None,
        shielded: true,
    }
}

/// A hook registered after its scope closed: run it now rather than drop it.
pub(crate) fn run_late_hook(scope: &Shutdown, hook: CloseHook) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            crate::output::line(&format!(
                "close hook `{}` registered after shutdown closed its scope: running it now",
                hook.name
            ));
            rt.spawn(ambient::scope(shielded(scope), hook.run));
        }
        Err(_) => crate::output::line(&format!(
            "close hook `{}` registered after shutdown, outside a tokio runtime: it was not run",
            hook.name
        )),
    }
}

fn build_report(
    scope: &Shutdown,
    budget: Duration,
    total: Duration,
    steps: Vec<StepTiming>,
    stragglers: Vec<TaskInfo>,
    closes: Vec<CloseResult>,
) -> Report {
    let mut failures = Vec::new();
    let mut failures_total = 0;
    let mut dropped_cleanups = Vec::new();
    let mut dropped_cleanups_total = 0;
    scope.inner.for_each_scope(&mut |s| {
        let log = lock(&s.failures);
        failures.extend(log.kept.iter().cloned());
        failures_total += log.total;
        dropped_cleanups.extend(log.dropped_cleanups.iter().cloned());
        dropped_cleanups_total += log.dropped_cleanups_total;
    });
    failures.truncate(crate::scope::FAILURES_KEPT);
    dropped_cleanups.truncate(crate::scope::FAILURES_KEPT);
    Report {
        cause: scope.cause(),
        budget,
        total,
        steps,
        stragglers,
        failures,
        failures_total,
        dropped_cleanups,
        dropped_cleanups_total,
        closes,
        stats: scope.stats(),
    }
}
