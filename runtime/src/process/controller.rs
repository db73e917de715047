//! The controller thread: the clock of a process shutdown, outside the user's runtime.
//! It prints the first-signal line, waits out `delay` before cancelling, forces exit
//! on the second signal, prints the task table on the dump signal, and at the hard
//! deadline ends the process with 124 and the task table even if the tokio runtime is
//! wedged (a `current_thread` program stuck in a sync loop).

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::budget::saturating_deadline;
use crate::duration::Human;
use crate::error::Cause;
use crate::registry::TaskState;
use crate::report::{ProcessExit, TABLE_ROWS, write_task_table};
use crate::scope::Shutdown;
use crate::sync::{Mailbox, lock};

use super::config::MainConfig;
use super::exit::{self, EXIT_FLUSH, FORCED_EXIT_FLUSH, Unless};
use super::signals::SignalEvent;

/// Messages from the signal thread, the scope and the main thread to the controller.
pub(crate) enum Control {
    Signal(SignalEvent),
    /// Shutdown was requested (a trigger, main returning, a failed task).
    Requested,
}

/// Control messages that can wait unread before further ones are dropped.
pub(crate) const CONTROL_QUEUE: usize = 256;

/// When shutdown began, shared by the controller and the main thread.
#[derive(Default)]
pub(crate) struct Timeline {
    pub(crate) started: Option<Instant>,
    pub(crate) signal: Option<(&'static str, i32)>,
}

/// What the controller, the signal thread and the main thread share.
pub(crate) struct Shared {
    pub(crate) scope: Shutdown,
    pub(crate) config: MainConfig,
    pub(crate) budget: Duration,
    pub(crate) timeline: Mutex<Timeline>,
    /// The body's runtime, once built: the controller cancels through it.
    pub(crate) runtime: OnceLock<tokio::runtime::Handle>,
}

impl Shared {
    /// The instant the shutdown began (the first call sets it) and the signal, if any.
    pub(crate) fn mark_started(&self, signal: Option<(&'static str, i32)>) -> Instant {
        let mut t = lock(&self.timeline);
        if t.signal.is_none() {
            t.signal = signal;
        }
        *t.started.get_or_insert_with(Instant::now)
    }

    pub(crate) fn hard_deadline(&self) -> Option<Instant> {
        lock(&self.timeline)
            .started
            .map(|s| saturating_deadline(s, self.budget))
    }
}

/// The hard deadline is kept within this; the table is printed if there is time.
const HARD_DEADLINE_SLACK: Duration = Duration::from_millis(40);

pub(crate) fn run(shared: &Shared, mailbox: &Mailbox<Control>, forced: &AtomicBool) {
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
                arm_hard_deadline(shared, &mut hard_at, started);
                first_signal_line(shared, name);
                shared.scope.request(Cause::Signal(name));
                let delay = shared.config.delay;
                if delay.is_zero() || shared.scope.is_requested() {
                    cancel_here_at = request_cancel(shared);
                } else {
                    cancel_at = Some(saturating_deadline(Instant::now(), delay));
                }
            }
            Some(Control::Signal(SignalEvent::Terminate { name, number, .. })) => {
                // On Unix the signal thread arms the third-signal default itself, once
                // the handlers of the signals it counted are done; elsewhere the
                // controller is the only counter.
                #[cfg(not(unix))]
                forced.store(true, std::sync::atomic::Ordering::SeqCst);
                #[cfg(unix)]
                let _ = forced;
                forced_exit(shared, name, number)
            }
            Some(Control::Signal(SignalEvent::Dump)) => dump_tasks(shared),
            Some(Control::Requested) => {
                let started = shared.mark_started(None);
                arm_hard_deadline(shared, &mut hard_at, started);
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

/// Sets the hard deadline once, and arms the last resort for it now, on a thread of its
/// own (the watchdog), so that nothing has to start at the deadline itself (a million stragglers being
/// aborted keep both cores busy then): if no end has begun by the deadline plus
/// [`HARD_DEADLINE_SLACK`], the process ends with 124. An end already under way keeps
/// its own status and its own last resort.
fn arm_hard_deadline(shared: &Shared, hard_at: &mut Option<Instant>, started: Instant) {
    if hard_at.is_some() {
        return;
    }
    let at = saturating_deadline(started, shared.budget);
    *hard_at = Some(at);
    exit::arm(at + HARD_DEADLINE_SLACK, 124, Unless::Ending);
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
    shared.scope.mark_cancelled();
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
    let split = crate::sequence::split_for(&shared.scope, shared.budget, true);
    crate::output::stderr(&format!(
        "sundown: {name} received: {keep}shutting down within {} (tasks get until {}, \
         then are aborted; send {name} again to force exit)\n",
        Human(shared.budget),
        Human(split.drain),
    ));
}

/// The task table, at most [`TABLE_ROWS`] rows, oldest first; `state` overrides each
/// row's state.
fn task_table_text(shared: &Shared, header: &str, state: Option<TaskState>) -> String {
    let (table, total) = table_rows(shared, state);
    format!("sundown: {header}; {total} task(s) running\n{table}")
}

/// The rows of the task table (none when no task runs) and how many tasks run.
fn table_rows(shared: &Shared, state: Option<TaskState>) -> (String, usize) {
    let (mut tasks, total) = shared.scope.oldest_tasks(TABLE_ROWS);
    if let Some(state) = state {
        tasks = tasks.into_iter().map(|t| t.with_state(state)).collect();
    }
    let mut text = String::new();
    if !tasks.is_empty() {
        let _ = write_task_table(&mut text, &tasks, TABLE_ROWS);
        if total > tasks.len() {
            text.push_str(&format!("  … and {} more\n", total - tasks.len()));
        }
    }
    (text, total)
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
        None,
    );
    crate::output::stderr(&text);
}

fn forced_exit(shared: &Shared, name: &str, number: i32) -> ! {
    let exit = ProcessExit::Code(128 + number);
    let text = task_table_text(
        shared,
        &format!("second {name}: forcing exit now ({exit})"),
        None,
    );
    exit::end(exit, &text, FORCED_EXIT_FLUSH)
}

fn hard_deadline_exit(shared: &Shared) -> ! {
    let exit = ProcessExit::Code(124);
    // The runtime did not finish the sequence in time: whatever is still registered is
    // holding a thread that aborting cannot free.
    // The line first: the table of a million tasks takes a while to build, and the
    // hard-deadline thread does not wait for it.
    crate::output::stderr(&format!(
        "sundown: the {} shutdown budget ran out with the runtime still busy: {exit}\n",
        Human(shared.budget)
    ));
    let (table, total) = table_rows(shared, Some(TaskState::Blocking));
    let mut text = format!("sundown: {total} task(s) still running:\n{table}");
    for hook in shared
        .scope
        .tree()
        .iter()
        .filter_map(|s| s.hooks().running())
    {
        text.push_str(&format!(
            "sundown: close hook `{}` was still running (blocking its thread)\n",
            crate::text::Shown(&hook)
        ));
    }
    exit::end(exit, &text, EXIT_FLUSH)
}
