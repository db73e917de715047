//! The one owner of how the process ends. Every end — the body and sequence finishing,
//! the second signal, the hard deadline, re-raising the signal — goes through
//! [`ProcessEnd::end`] with a [`ProcessExit`] decided once: it writes the text that
//! states that status, flushes with a bound, and ends the process with exactly that
//! status. A last-resort timer armed first ends the process with the same status
//! whatever std's locks are doing (a thread blocked on a full stdout pipe, a body
//! stuck in `println!`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::output;
use crate::report::ProcessExit;

/// How long an exit waits for its last lines to reach stderr.
pub(crate) const EXIT_FLUSH: Duration = Duration::from_millis(200);
/// A forced exit must happen within 200 ms of the signal: flush for less.
pub(crate) const FORCED_EXIT_FLUSH: Duration = Duration::from_millis(100);
/// What the last-resort timer gives an exit beyond its flush bound: `exit(3)` runs
/// atexit handlers and std's own stdout cleanup, which do not wait on a held lock.
const LAST_RESORT_SLACK: Duration = Duration::from_millis(30);

pub(crate) struct ProcessEnd {
    ending: AtomicBool,
}

impl ProcessEnd {
    pub(crate) const fn new() -> Self {
        ProcessEnd {
            ending: AtomicBool::new(false),
        }
    }

    /// Whether an end has begun (its status decided).
    pub(crate) fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// Ends the process once with `exit`, after writing `text` (which states it). A
    /// later caller waits for the first one's end.
    pub(crate) fn end(&self, exit: ProcessExit, text: &str, flush: Duration) -> ! {
        if self.ending.swap(true, Ordering::AcqRel) {
            loop {
                std::thread::park();
            }
        }
        arm_last_resort(exit.code(), flush.saturating_mul(2) + LAST_RESORT_SLACK);
        output::stderr(text);
        flush_output(flush);
        match exit {
            ProcessExit::Code(code) => std::process::exit(code),
            ProcessExit::Signal { number, .. } => die_by(number),
        }
    }
}

/// Ends the process with `code` after `after`, from a thread of its own, with
/// `_exit(2)`: no flushing and no locks, which is what may be stuck. If the thread
/// cannot be started, the caller's own exit path is all there is.
pub(crate) fn arm_last_resort(code: i32, after: Duration) {
    let _ = std::thread::Builder::new()
        .name("sundown-last-resort".into())
        .spawn(move || {
            std::thread::sleep(after);
            hard_exit(code)
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

/// Bounded flush of sundown's stderr lines, then of stdout. The stdout flush runs on a
/// thread of its own: another thread may hold stdout's lock for good (blocked on a full
/// pipe), and waiting for that lock is what an exit must never do.
pub(crate) fn flush_output(bound: Duration) {
    output::flush(bound);
    let done = std::sync::Arc::new(crate::sync::Mailbox::new(1));
    let tx = done.clone();
    let started = std::thread::Builder::new()
        .name("sundown-stdout-flush".into())
        .spawn(move || {
            let _ = std::io::stdout().flush();
            let _ = tx.try_send(());
        });
    if started.is_ok() {
        let _ = done.recv(Some(std::time::Instant::now() + bound));
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
