//! How one shutdown budget is split between the steps: the one place that says it.
//!
//! ```text
//! 0 ─ cancel ─ drain ─────────────────────┬─ abort grace ─┬─ hooks ─┬─ teardown ─ budget
//!                                   drain deadline                          (process only)
//! ```
//!
//! - **teardown** (the process runner only): 5% of the budget, at most 300 ms, to drop
//!   the tokio runtime and print the report before the hard deadline;
//! - **abort grace**: 5% of the budget, at most 500 ms, for aborted stragglers to go;
//! - **hooks that declare a bound** (`on_close_within`): their bounds, reserved whole;
//! - **hooks that declare none**: 5% of the budget, reserved only if there is one;
//! - **drain**: the rest, so without declared bounds it gets at least 85% of the budget
//!   (90% outside the process runner). A drain that ends early hands its time to the
//!   hooks.
//!
//! Tasks a hook spawned that are still alive when the hooks' time is up are aborted
//! then and get a quarter of the abort grace to go (at least 1 ms; `sequence::run_hooks`),
//! and a timed-out hook's own task 10 ms to be dropped (`close::run_one`): past the
//! sequence's end, inside the teardown margin of the process runner, and past the
//! budget of `Shutdown::shutdown` by at most that (135 ms) when something blocks.
//!
//! `join` waits without cancelling until the drain deadline less 10% of the budget
//! ([`BudgetSplit::join`]): if it has to cancel, tasks that stop on `requested()` still
//! get that tenth to wind down before stragglers are aborted.
//!
//! Arithmetic saturates: a budget of `Duration::MAX` is a budget with no deadline in
//! practice, never an overflow.

use std::time::Duration;

const TEARDOWN_MAX: Duration = Duration::from_millis(300);
const ABORT_GRACE_MAX: Duration = Duration::from_millis(500);

/// A twentieth: the share of each reserve.
fn share(budget: Duration) -> Duration {
    budget / 20
}

/// The close hooks a split must leave room for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HookReserve {
    /// Sum of the bounds hooks declared.
    pub(crate) declared: Duration,
    /// Whether any hook declared no bound.
    pub(crate) undeclared: bool,
}

impl HookReserve {
    pub(crate) fn add(&mut self, bound: Option<Duration>) {
        match bound {
            Some(b) => self.declared = self.declared.saturating_add(b),
            None => self.undeclared = true,
        }
    }
}

/// The budget of one shutdown, split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BudgetSplit {
    pub(crate) budget: Duration,
    /// From the start of the sequence to the drain deadline.
    pub(crate) drain: Duration,
    pub(crate) abort_grace: Duration,
    /// Kept back for the process runner's teardown (zero for `Shutdown::shutdown`).
    pub(crate) teardown: Duration,
}

impl BudgetSplit {
    /// Splits `budget` for a sequence with these hooks; `process` keeps the teardown
    /// margin the runner needs.
    pub(crate) fn new(budget: Duration, hooks: HookReserve, process: bool) -> Self {
        let teardown = if process {
            share(budget).min(TEARDOWN_MAX)
        } else {
            Duration::ZERO
        };
        let abort_grace = share(budget).min(ABORT_GRACE_MAX);
        let undeclared = if hooks.undeclared {
            share(budget)
        } else {
            Duration::ZERO
        };
        let drain = budget
            .saturating_sub(teardown)
            .saturating_sub(abort_grace)
            .saturating_sub(undeclared)
            .saturating_sub(hooks.declared);
        BudgetSplit {
            budget,
            drain,
            abort_grace,
            teardown,
        }
    }

    /// How long `join` waits without cancelling: the drain less two shares, which the
    /// tasks get after the cancel if the join runs out.
    pub(crate) fn join(&self) -> Duration {
        self.drain.saturating_sub(share(self.budget) * 2)
    }

    /// What the sequence (steps 2 to 5) may use: the budget less the teardown.
    pub(crate) fn sequence(&self) -> Duration {
        self.budget.saturating_sub(self.teardown)
    }
}

/// `now + d`, or a point far enough ahead to mean "never" when that overflows.
pub(crate) fn saturating_deadline<I: CheckedAdd + Copy>(now: I, d: Duration) -> I {
    now.checked_add_duration(d)
        .or_else(|| now.checked_add_duration(FAR))
        .unwrap_or(now)
}

/// About 30 years: "never" for a deadline, as tokio itself takes it.
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `Instant::checked_add`, for both std's and tokio's instants.
pub(crate) trait CheckedAdd: Sized {
    fn checked_add_duration(self, d: Duration) -> Option<Self>;
}

impl CheckedAdd for std::time::Instant {
    fn checked_add_duration(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

impl CheckedAdd for tokio::time::Instant {
    fn checked_add_duration(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(part: Duration, of: Duration) -> f64 {
        part.as_secs_f64() / of.as_secs_f64() * 100.0
    }

    #[test]
    fn without_declared_bounds_the_drain_gets_at_least_85_percent() {
        for secs in [1, 2, 9, 30, 90, 600] {
            let budget = Duration::from_secs(secs);
            let hooks = HookReserve {
                declared: Duration::ZERO,
                undeclared: true,
            };
            let split = BudgetSplit::new(budget, hooks, true);
            assert!(pct(split.drain, budget) >= 85.0, "{secs}s: {split:?}");
            let split = BudgetSplit::new(budget, HookReserve::default(), false);
            assert!(pct(split.drain, budget) >= 90.0, "{secs}s: {split:?}");
        }
    }

    #[test]
    fn a_declared_bound_is_reserved_whole() {
        let budget = Duration::from_secs(9);
        let mut hooks = HookReserve::default();
        hooks.add(Some(Duration::from_secs(2)));
        let split = BudgetSplit::new(budget, hooks, false);
        assert_eq!(
            split.drain + split.abort_grace + Duration::from_secs(2),
            budget
        );
    }

    #[test]
    fn join_leaves_a_tenth_of_the_budget_for_the_cancelled_drain() {
        let budget = Duration::from_secs(10);
        let split = BudgetSplit::new(budget, HookReserve::default(), false);
        assert_eq!(split.join(), Duration::from_millis(8_500));
        assert_eq!(split.drain - split.join(), Duration::from_secs(1));
        let tiny = BudgetSplit::new(Duration::from_millis(1), HookReserve::default(), false);
        assert!(tiny.join() <= tiny.drain);
    }

    #[test]
    fn huge_budgets_saturate() {
        let split = BudgetSplit::new(Duration::MAX, HookReserve::default(), true);
        assert!(split.drain > Duration::from_secs(86_400 * 365));
        let now = std::time::Instant::now();
        assert!(saturating_deadline(now, Duration::MAX) > now);
        let now = tokio::time::Instant::now();
        assert!(saturating_deadline(now, Duration::MAX) > now);
    }
}
