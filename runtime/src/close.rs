//! Close hooks: a scope's stack of them, and running them at step 5.
//!
//! Hooks run last-registered-first, each as its own task (a panic is contained, a hang
//! abandoned). A hook that declared a bound (`on_close_within`) gets that bound; the
//! others share what is left equally, less what later declared hooks reserved, so a
//! hanging hook takes only its share (at least 50 ms, if that is left) and the next one
//! still runs. How a hook is
//! spawned (its ambient scope, waiting for tasks it spawns) is the caller's, passed in
//! as [`SpawnHook`].

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::budget::HookReserve;
use crate::report::{CloseOutcome, CloseResult, panic_message};
use crate::sync::lock;

/// The least an undeclared hook gets (if that much is left): with many hooks, an equal
/// share would be too short for a hook that does nothing.
const SHARE_FLOOR: Duration = Duration::from_millis(50);

/// A hook's future, boxed.
pub(crate) type HookFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub(crate) struct CloseHook {
    pub(crate) name: Cow<'static, str>,
    pub(crate) run: HookFuture,
    /// The bound the hook declared, if any.
    pub(crate) bound: Option<Duration>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ClosePhase {
    Open,
    Closing,
    Closed,
}

struct Stack {
    phase: ClosePhase,
    hooks: Vec<CloseHook>,
    /// The hook running now (its name), for a table made from outside the runtime.
    running: Option<Cow<'static, str>>,
}

/// One scope's close hooks.
pub(crate) struct HookStack(Mutex<Stack>);

impl HookStack {
    pub(crate) fn new() -> Self {
        HookStack(Mutex::new(Stack {
            phase: ClosePhase::Open,
            hooks: Vec::new(),
            running: None,
        }))
    }

    /// Adds a hook; hands it back once the stack has closed (the caller runs it now
    /// rather than drop it).
    pub(crate) fn push(&self, hook: CloseHook) -> Result<(), CloseHook> {
        let mut s = lock(&self.0);
        match s.phase {
            ClosePhase::Open | ClosePhase::Closing => {
                s.hooks.push(hook);
                Ok(())
            }
            ClosePhase::Closed => Err(hook),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.0).hooks.is_empty()
    }

    /// Adds what these hooks need kept back from the drain.
    pub(crate) fn reserve_into(&self, r: &mut HookReserve) {
        for h in &lock(&self.0).hooks {
            r.add(h.bound);
        }
    }

    /// Moves every hook of `other` (a scope being absorbed) below this stack's own.
    pub(crate) fn take_from(&self, other: &HookStack) {
        let mut theirs = std::mem::take(&mut lock(&other.0).hooks);
        let mut ours = lock(&self.0);
        theirs.append(&mut ours.hooks);
        ours.hooks = theirs;
    }

    /// The next hook to run, which is then the running one.
    fn pop(&self) -> Option<CloseHook> {
        let mut s = lock(&self.0);
        s.phase = ClosePhase::Closing;
        let hook = s.hooks.pop();
        s.running = hook.as_ref().map(|h| h.name.clone());
        if hook.is_none() {
            s.phase = ClosePhase::Closed;
        }
        hook
    }

    /// The name of the hook running now, if one is.
    pub(crate) fn running(&self) -> Option<Cow<'static, str>> {
        lock(&self.0).running.clone()
    }
}

/// Spawns one hook's future and returns its handle; the handle finishes when the hook
/// (and whatever the caller waits for with it) is done.
pub(crate) type SpawnHook<'a> = dyn FnMut(HookFuture) -> JoinHandle<()> + Send + 'a;

/// Runs the hooks of `stacks` in order (each stack last-registered-first) until
/// `deadline`.
pub(crate) async fn run_all(
    stacks: &[&HookStack],
    deadline: Instant,
    spawn: &mut SpawnHook<'_>,
) -> Vec<CloseResult> {
    let mut results = Vec::new();
    // What the hooks not yet run need: declared bounds are kept for them, the others
    // share what is left. Counted once and updated as hooks run (a hook registered
    // during the close phase runs too, and is simply not reserved for).
    let mut later = HookReserve::default();
    let mut undeclared_later = 0usize;
    for s in stacks {
        s.reserve_into(&mut later);
        undeclared_later += lock(&s.0)
            .hooks
            .iter()
            .filter(|h| h.bound.is_none())
            .count();
    }
    for stack in stacks {
        while let Some(hook) = stack.pop() {
            match hook.bound {
                Some(b) => later.declared = later.declared.saturating_sub(b),
                None => undeclared_later = undeclared_later.saturating_sub(1),
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let share = match hook.bound {
                Some(bound) => bound.min(remaining),
                None => {
                    let free = remaining.saturating_sub(later.declared);
                    let equal = free / u32::try_from(undeclared_later + 1).unwrap_or(u32::MAX);
                    // Thousands of hooks would each get a sliver a busy runtime cannot
                    // keep; a hook is given at least this much of what is free.
                    equal.max(SHARE_FLOOR.min(free))
                }
            };
            results.push(run_one(hook, share, spawn).await);
        }
    }
    results
}

/// How long a timed-out hook's task is given to be dropped once aborted.
const ABORTED_HOOK_DROP: Duration = Duration::from_millis(10);

async fn run_one(hook: CloseHook, share: Duration, spawn: &mut SpawnHook<'_>) -> CloseResult {
    let started = Instant::now();
    if share.is_zero() {
        return CloseResult {
            name: hook.name,
            elapsed: Duration::ZERO,
            outcome: CloseOutcome::Skipped,
        };
    }
    let mut handle = spawn(hook.run);
    let outcome = match tokio::time::timeout(share, &mut handle).await {
        Ok(Ok(())) => CloseOutcome::Done,
        Ok(Err(e)) if e.is_panic() => CloseOutcome::Panicked(panic_message(&*e.into_panic())),
        Ok(Err(_)) => CloseOutcome::Panicked("the hook's task was cancelled".into()),
        Err(_) => {
            handle.abort();
            // The hook's future is dropped as its task is cancelled, and its `Drop`s
            // may spawn into the hook's scope: waited for (briefly: a `Drop` that
            // blocks is not), so that the close step sees what they spawned.
            let _ = tokio::time::timeout(ABORTED_HOOK_DROP, &mut handle).await;
            CloseOutcome::TimedOut
        }
    };
    CloseResult {
        name: hook.name,
        elapsed: started.elapsed(),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn hook(
        name: &'static str,
        bound: Option<Duration>,
        log: &Arc<Mutex<Vec<&'static str>>>,
    ) -> CloseHook {
        let log = log.clone();
        CloseHook {
            name: name.into(),
            run: Box::pin(async move { lock(&log).push(name) }),
            bound,
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn hooks_run_last_registered_first_and_a_closed_stack_hands_hooks_back() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let stack = HookStack::new();
        assert!(stack.push(hook("db", None, &log)).is_ok());
        assert!(stack.push(hook("cache", None, &log)).is_ok());
        let deadline = Instant::now() + Duration::from_secs(1);
        let results = run_all(&[&stack], deadline, &mut |f| tokio::spawn(f)).await;
        assert_eq!(*lock(&log), ["cache", "db"]);
        assert!(results.iter().all(|r| r.outcome == CloseOutcome::Done));
        assert!(stack.push(hook("late", None, &log)).is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn twenty_thousand_quick_hooks_all_run() {
        let stack = HookStack::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..20_000 {
            assert!(stack.push(hook("quick", None, &log)).is_ok());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let results = run_all(&[&stack], deadline, &mut |f| tokio::spawn(f)).await;
        assert_eq!(results.len(), 20_000);
        assert!(results.iter().all(|r| r.outcome == CloseOutcome::Done));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_hanging_hook_takes_only_its_share_and_a_declared_bound_is_kept() {
        let stack = HookStack::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        assert!(
            stack
                .push(hook("bounded", Some(Duration::from_millis(400)), &log))
                .is_ok()
        );
        let hang = CloseHook {
            name: "hang".into(),
            run: Box::pin(std::future::pending()),
            bound: None,
        };
        assert!(stack.push(hang).is_ok());
        let start = Instant::now();
        let results = run_all(&[&stack], start + Duration::from_secs(1), &mut |f| {
            tokio::spawn(f)
        })
        .await;
        assert_eq!(results[0].outcome, CloseOutcome::TimedOut);
        assert_eq!(
            results[0].elapsed,
            Duration::from_millis(600),
            "1s less the 400ms reserved"
        );
        assert_eq!(results[1].outcome, CloseOutcome::Done);
    }
}
