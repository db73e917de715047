//! The one owner of how the process ends. Every end — the body and sequence finishing,
//! the second signal, the hard deadline, re-raising the signal — goes through [`end`]
//! with a [`ProcessExit`] decided once: it writes the text that states that status,
//! flushes sundown's lines with a bound, and ends the process with exactly that
//! status.
//!
//! Ends that must happen whatever the process is doing are kept by the **watchdog**, a
//! thread started with the program that sleeps until the earliest armed instant and
//! then calls `_exit(2)`: no flushing and no locks, which is what may be stuck (a thread
//! blocked on a full stdout pipe holding its lock, a body stuck in `println!`, a million
//! stragglers being aborted on both cores). It is started before anything can need it,
//! so arming it at a signal or an exit costs a message, not a thread.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::output;
use crate::report::ProcessExit;
use crate::sync::Mailbox;

/// How long an exit waits for its last lines to reach stderr.
pub(crate) const EXIT_FLUSH: Duration = Duration::from_millis(200);
/// A forced exit must happen within 200 ms of the signal: flush for less.
pub(crate) const FORCED_EXIT_FLUSH: Duration = Duration::from_millis(100);
/// What the watchdog gives an exit beyond its flush bound: `exit(3)` runs atexit
/// handlers and std's stdout cleanup, which takes stdout's lock only if it is free.
const EXIT_SLACK: Duration = Duration::from_millis(30);

/// Set by the first end: its status is the process's.
static ENDING: AtomicBool = AtomicBool::new(false);

/// Whether an end has begun (its status decided).
pub(crate) fn is_ending() -> bool {
    ENDING.load(Ordering::Acquire)
}

/// Ends the process once with `exit`, after writing `text` (which states it). A later
/// caller waits for the first one's end.
pub(crate) fn end(exit: ProcessExit, text: &str, flush: Duration) -> ! {
    if ENDING.swap(true, Ordering::AcqRel) {
        loop {
            std::thread::park();
        }
    }
    arm(
        Instant::now() + flush + EXIT_SLACK,
        exit.code(),
        Unless::Never,
    );
    output::stderr(text);
    // Only sundown's lines: std's own exit flushes stdout if nobody holds its lock.
    output::flush(flush);
    match exit {
        ProcessExit::Code(code) => std::process::exit(code),
        ProcessExit::Signal { number, .. } => die_by(number),
    }
}

/// When an armed end is let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unless {
    /// It ends the process whatever happens.
    Never,
    /// An end under way by then keeps its own status (and its own armed end).
    Ending,
}

struct Armed {
    at: Instant,
    code: i32,
    unless: Unless,
}

static WATCHDOG: OnceLock<Mailbox<Armed>> = OnceLock::new();

/// Starts the watchdog thread. Before it runs (or if it could not start), [`arm`]
/// starts a thread of its own.
pub(crate) fn start_watchdog() -> std::io::Result<()> {
    let started = std::thread::Builder::new()
        .name("sundown-watchdog".into())
        .spawn(watch)?;
    drop(started);
    Ok(())
}

fn mailbox() -> &'static Mailbox<Armed> {
    WATCHDOG.get_or_init(|| Mailbox::new(16))
}

fn watch() {
    let mut armed: Vec<Armed> = Vec::new();
    let mailbox = mailbox();
    READY.store(true, Ordering::Release);
    loop {
        let next = armed.iter().map(|a| a.at).min();
        match mailbox.recv(next) {
            Some(a) => armed.push(a),
            None => {
                let now = Instant::now();
                armed.retain(|a| {
                    if a.at > now {
                        return true;
                    }
                    if a.unless == Unless::Ending && is_ending() {
                        return false;
                    }
                    hard_exit(a.code)
                });
            }
        }
    }
}

/// The watchdog is waiting for arms.
static READY: AtomicBool = AtomicBool::new(false);

/// Ends the process with `_exit(code)` at `at`, unless `unless` lets it go.
pub(crate) fn arm(at: Instant, code: i32, unless: Unless) {
    let armed = Armed { at, code, unless };
    if READY.load(Ordering::Acquire) && mailbox().try_send(armed).is_ok() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("sundown-last-resort".into())
        .spawn(move || {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            if !(unless == Unless::Ending && is_ending()) {
                hard_exit(code)
            }
        });
}

/// `_exit(code)`.
pub(crate) fn hard_exit(code: i32) -> ! {
    #[cfg(unix)]
    {
        signal_hook::low_level::exit(code)
    }
    #[cfg(not(unix))]
    {
        std::process::exit(code)
    }
}

/// Ends the process the way the signal would have (`exit = "signal"`). As PID 1, where
/// a signal with its default disposition is ignored, exits with 128+N instead.
fn die_by(number: i32) -> ! {
    #[cfg(unix)]
    {
        if std::process::id() != 1 {
            let _ = signal_hook::low_level::emulate_default_handler(number);
        }
    }
    std::process::exit(128 + number)
}
