//! Signal reception on a dedicated thread, independent of tokio's workers.
//!
//! The first terminating signal starts the graceful sequence; the second forces exit;
//! a third is handled inside the signal handler itself (default disposition, so the
//! process dies by that signal) in case the forced path is stuck, for example writing
//! to a full stderr pipe.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What the signal thread tells the controller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignalEvent {
    /// A terminating signal: its name and number. The thread counts them.
    Terminate {
        name: &'static str,
        number: i32,
        nth: u32,
    },
    /// The dump signal: print the task table.
    Dump,
}

/// A signal name the platform knows, with its number.
#[cfg(unix)]
pub(crate) fn number_of(name: &str) -> Option<i32> {
    use signal_hook::consts::signal::*;
    Some(match name {
        "SIGHUP" => SIGHUP,
        "SIGINT" => SIGINT,
        "SIGQUIT" => SIGQUIT,
        "SIGTERM" => SIGTERM,
        "SIGUSR1" => SIGUSR1,
        "SIGUSR2" => SIGUSR2,
        "SIGALRM" => SIGALRM,
        "SIGWINCH" => SIGWINCH,
        _ => return None,
    })
}

#[cfg(unix)]
fn name_of(number: i32, names: &[&'static str]) -> &'static str {
    names
        .iter()
        .copied()
        .find(|n| number_of(n) == Some(number))
        .unwrap_or("signal")
}

/// How long the controller gets to print the forced-exit table before the signal
/// thread ends the process itself (the design promises 128+N within 200 ms).
#[cfg(unix)]
const FORCED_EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(150);

/// Installs the handlers and starts the signal thread, which passes each event to
/// `deliver`. On the second terminating signal
/// the thread sets `forced` (from then on the handler itself applies the default
/// disposition) and makes sure the process exits with 128+N even if the controller is
/// stuck, say writing to a full stderr pipe.
#[cfg(unix)]
pub(crate) fn install(
    terminate: &[&'static str],
    dump: Option<&'static str>,
    forced: Arc<AtomicBool>,
    deliver: impl Fn(SignalEvent) + Send + 'static,
) -> Result<(), String> {
    use signal_hook::iterator::Signals;

    let mut numbers = Vec::new();
    for name in terminate {
        let n = number_of(name).ok_or_else(|| format!("unknown signal `{name}`"))?;
        // Registered before the iterator's handler, so it runs first on the third
        // signal and does not depend on any thread making progress.
        signal_hook::flag::register_conditional_default(n, forced.clone())
            .map_err(|e| format!("cannot handle {name}: {e}"))?;
        numbers.push(n);
    }
    let dump_number = match dump {
        Some(name) => Some(number_of(name).ok_or_else(|| format!("unknown signal `{name}`"))?),
        None => None,
    };
    let mut all = numbers.clone();
    all.extend(dump_number);
    let mut signals =
        Signals::new(&all).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let names: Vec<&'static str> = terminate.to_vec();
    std::thread::Builder::new()
        .name("sundown-signals".into())
        .spawn(move || {
            let mut nth = 0;
            for n in signals.forever() {
                let event = if Some(n) == dump_number && !numbers.contains(&n) {
                    SignalEvent::Dump
                } else {
                    nth += 1;
                    if nth == 2 {
                        forced.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = std::thread::Builder::new()
                            .name("sundown-forced-exit".into())
                            .spawn(move || {
                                std::thread::sleep(FORCED_EXIT_GRACE);
                                // `_exit`: no flushing, which is what may be stuck.
                                signal_hook::low_level::exit(128 + n)
                            });
                    }
                    SignalEvent::Terminate {
                        name: name_of(n, &names),
                        number: n,
                        nth,
                    }
                };
                deliver(event);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Windows console control events, all of which start shutdown.
#[cfg(windows)]
pub(crate) fn number_of(name: &str) -> Option<i32> {
    Some(match name {
        "CTRL_C" => 0,
        "CTRL_BREAK" => 1,
        "CTRL_CLOSE" => 2,
        "CTRL_LOGOFF" => 5,
        "CTRL_SHUTDOWN" => 6,
        _ => return None,
    })
}

#[cfg(windows)]
pub(crate) fn install(
    _terminate: &[&'static str],
    _dump: Option<&'static str>,
    _forced: Arc<AtomicBool>,
    deliver: impl Fn(SignalEvent) + Send + 'static,
) -> Result<(), String> {
    // Console events are delivered through tokio's handlers, polled on a small runtime
    // of our own so that they arrive even when the program's workers are blocked.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    std::thread::Builder::new()
        .name("sundown-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::windows;
                let (Ok(mut c), Ok(mut b), Ok(mut cl), Ok(mut l), Ok(mut s)) = (
                    windows::ctrl_c(),
                    windows::ctrl_break(),
                    windows::ctrl_close(),
                    windows::ctrl_logoff(),
                    windows::ctrl_shutdown(),
                ) else {
                    crate::output::line("cannot install console control handlers");
                    return;
                };
                let mut nth = 0;
                loop {
                    let name = tokio::select! {
                        _ = c.recv() => "CTRL_C",
                        _ = b.recv() => "CTRL_BREAK",
                        _ = cl.recv() => "CTRL_CLOSE",
                        _ = l.recv() => "CTRL_LOGOFF",
                        _ = s.recv() => "CTRL_SHUTDOWN",
                    };
                    nth += 1;
                    let number = number_of(name).unwrap_or(0);
                    deliver(SignalEvent::Terminate { name, number, nth });
                }
            });
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Ends the process the way the signal would have (`exit = "signal"`). As PID 1, where
/// a signal with its default disposition is ignored, exits with 128+N instead.
pub(crate) fn die_by(number: i32) -> ! {
    crate::main_runner::flush_output(std::time::Duration::from_millis(200));
    #[cfg(unix)]
    {
        if std::process::id() != 1 {
            let _ = signal_hook::low_level::emulate_default_handler(number);
        }
    }
    std::process::exit(128 + number)
}

#[cfg(all(test, unix))]
mod tests {
    /// Every signal name the attributes accept is one the runtime can install.
    #[test]
    fn every_accepted_signal_name_maps_to_a_number() {
        for name in crate::duration::facts::SIGNALS {
            assert!(super::number_of(name).is_some(), "{name}");
        }
    }
}
