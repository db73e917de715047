//! The lifecycle of one scope: the only place that says where a scope is in its
//! shutdown, what started it, and which tokens its code obeys.
//!
//! ```text
//! Ready ─request(cause)─▶ Stopping ─cancel()─▶ Cancelled ─▶ Draining ─▶ Closing ─▶ Done
//!         readiness off           token cancelled      sequence steps 3–5
//! ```
//!
//! Phases only move forward. [`Lifecycle::request`] is the one way a shutdown starts:
//! the signal path, `trigger`, `shutdown`, `join`, main's body returning and the failure
//! policy all call it, and the first call wins (it records the cause). A scope's
//! lifecycle knows nothing of its parent or children: walking the tree is the scope's
//! job, so a child's shutdown cannot reach its root's readiness, deadlines, systemd
//! state or exit code. Only the process scope has an observer (the process runner),
//! and only its own transitions reach it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::error::Cause;

/// Where a scope is in its shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Serving.
    Ready = 0,
    /// Shutdown requested: readiness is off, tasks run on (the `delay`).
    Stopping = 1,
    /// The token is cancelled: `requested()` resolved, `#[cancel_safe]` bodies stop.
    Cancelled = 2,
    /// The sequence waits for the tasks.
    Draining = 3,
    /// The close hooks run.
    Closing = 4,
    /// The sequence finished.
    Done = 5,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Ready,
            1 => Phase::Stopping,
            2 => Phase::Cancelled,
            3 => Phase::Draining,
            4 => Phase::Closing,
            _ => Phase::Done,
        }
    }
}

/// Set once any scope's token was cancelled or handed out (where code may cancel it
/// directly). Until then a `#[cancel_safe]` call cannot be cancelled, whatever its
/// scope, so its level-triggered check is one relaxed load. Only a shortcut: every
/// answer after it is set comes from the scope itself.
static MAY_BE_CANCELLED: AtomicBool = AtomicBool::new(false);

/// Whether any scope may be cancelled: false means no `#[cancel_safe]` call can be.
#[inline]
pub(crate) fn any_may_be_cancelled() -> bool {
    MAY_BE_CANCELLED.load(Ordering::Relaxed)
}

/// The process runner's view of the process scope's transitions.
pub(crate) type Observer = Box<dyn Fn(Transition) + Send + Sync>;

/// A transition an observer hears about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Shutdown was requested: readiness went false.
    Requested,
}

pub(crate) struct Lifecycle {
    phase: AtomicU8,
    cause: OnceLock<Cause>,
    /// Cancelled at step 2: the cooperative signal.
    soft: CancellationToken,
    /// Cancelled at the hard deadline (stragglers aborted) or when shutdown is forced:
    /// what shielded code and cleanups still obey.
    hard: CancellationToken,
    /// `soft` was handed out and may be cancelled without this lifecycle knowing.
    exposed: AtomicBool,
    observer: OnceLock<Observer>,
}

impl Lifecycle {
    /// A lifecycle whose tokens are cancelled with `parent`'s, if any.
    pub(crate) fn new(parent: Option<&Lifecycle>) -> Self {
        let (soft, hard) = match parent {
            Some(p) => (p.soft.child_token(), p.hard.child_token()),
            None => (CancellationToken::new(), CancellationToken::new()),
        };
        Lifecycle {
            phase: AtomicU8::new(Phase::Ready as u8),
            cause: OnceLock::new(),
            soft,
            hard,
            exposed: AtomicBool::new(false),
            observer: OnceLock::new(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves to `phase` if that is forward; returns the phase before.
    fn advance(&self, phase: Phase) -> Phase {
        Phase::from_u8(self.phase.fetch_max(phase as u8, Ordering::AcqRel))
    }

    /// Starts the shutdown: records `cause` (the first one wins) and turns readiness
    /// off. True for the call that started it.
    pub(crate) fn request(&self, cause: Cause) -> bool {
        let _ = self.cause.set(cause);
        let started = self.advance(Phase::Stopping) == Phase::Ready;
        if started && let Some(observer) = self.observer.get() {
            observer(Transition::Requested);
        }
        started
    }

    /// From now on `is_cancelled()` is true and `#[cancel_safe]` calls look at their
    /// token, but nobody is woken yet (see [`cancel`](Self::cancel)).
    pub(crate) fn mark_cancelled(&self) {
        MAY_BE_CANCELLED.store(true, Ordering::Release);
        self.advance(Phase::Cancelled);
    }

    /// Step 2: cancels the token, waking whatever waits on it (children's too).
    pub(crate) fn cancel(&self) {
        self.mark_cancelled();
        self.soft.cancel();
    }

    /// Cuts shielded work and cleanups: the hard deadline passed or shutdown was forced.
    pub(crate) fn cancel_hard(&self) {
        self.hard.cancel();
    }

    /// Steps 3 to 5 as the sequence enters them.
    pub(crate) fn enter(&self, phase: Phase) {
        self.advance(phase);
    }

    pub(crate) fn cause(&self) -> Option<&Cause> {
        self.cause.get()
    }

    /// Readiness of this scope alone.
    pub(crate) fn is_ready(&self) -> bool {
        self.phase() == Phase::Ready
    }

    /// Cancelled through this lifecycle (not counting a direct cancel of the token).
    pub(crate) fn is_marked_cancelled(&self) -> bool {
        self.phase() >= Phase::Cancelled
    }

    /// The token may have been cancelled behind this lifecycle's back.
    pub(crate) fn is_exposed(&self) -> bool {
        self.exposed.load(Ordering::Acquire)
    }

    /// The cooperative token, for code that will only wait on it.
    pub(crate) fn soft(&self) -> &CancellationToken {
        &self.soft
    }

    /// The cooperative token, for code that may cancel it: from now on its state is
    /// read from the token itself too.
    pub(crate) fn expose_soft(&self) -> CancellationToken {
        self.exposed.store(true, Ordering::Release);
        MAY_BE_CANCELLED.store(true, Ordering::Release);
        self.soft.clone()
    }

    pub(crate) fn hard(&self) -> &CancellationToken {
        &self.hard
    }

    /// Installs the observer (the process runner, on the process scope only).
    pub(crate) fn observe(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_first_request_wins_and_phases_only_move_forward() {
        let life = Lifecycle::new(None);
        assert!(life.is_ready());
        assert!(life.request(Cause::Trigger("first".into())));
        assert!(!life.request(Cause::Trigger("second".into())));
        assert_eq!(life.cause(), Some(&Cause::Trigger("first".into())));
        life.enter(Phase::Closing);
        life.cancel();
        assert_eq!(life.phase(), Phase::Closing, "cancel does not move it back");
        assert!(life.soft().is_cancelled());
    }

    #[test]
    fn only_the_own_observer_hears_a_request_once() {
        let heard = Arc::new(AtomicUsize::new(0));
        let parent = Lifecycle::new(None);
        let h = heard.clone();
        parent.observe(Box::new(move |_| {
            h.fetch_add(1, Ordering::SeqCst);
        }));
        let child = Lifecycle::new(Some(&parent));
        child.request(Cause::Trigger("child".into()));
        child.cancel();
        assert_eq!(
            heard.load(Ordering::SeqCst),
            0,
            "a child never reaches its parent"
        );
        parent.request(Cause::MainReturned);
        parent.request(Cause::MainReturned);
        assert_eq!(heard.load(Ordering::SeqCst), 1);
        assert!(child.soft().is_cancelled() || !parent.soft().is_cancelled());
    }
}
