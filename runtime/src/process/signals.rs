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
        numbers.push(number_of(name).ok_or_else(|| format!("unknown signal `{name}`"))?);
    }
    let dump_number = match dump {
        Some(name) => Some(number_of(name).ok_or_else(|| format!("unknown signal `{name}`"))?),
        None => None,
    };
    let mut all = numbers.clone();
    all.extend(dump_number);
    // No window may lose a terminating signal. The conditional-default handler is
    // registered first (so that on the third signal it runs before the iterator's
    // handler wakes anybody) and starts armed: until the iterator's handler and its
    // pipe exist, a signal gets its default disposition and the process dies, as it
    // would without sundown. Disarmed once the iterator is in place, a signal is queued
    // in the pipe for the thread below, however late that thread starts.
    forced.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut counters = Vec::new();
    // The terminating signal delivered last. The iterator reports what is pending in
    // signal-number order, so SIGTERM then SIGINT read together came as SIGINT first;
    // this puts the later one last (stored before the iterator's handler wakes the
    // thread, as registered before it).
    let latest = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (&n, name) in numbers.iter().zip(terminate) {
        signal_hook::flag::register_conditional_default(n, forced.clone())
            .map_err(|e| format!("cannot handle {name}: {e}"))?;
        let order = usize::try_from(n).unwrap_or(0);
        signal_hook::flag::register_usize(n, latest.clone(), order)
            .map_err(|e| format!("cannot handle {name}: {e}"))?;
        counters.push((n, DeliveryCounter::register(n)));
    }
    let mut signals =
        Signals::new(&all).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    forced.store(false, std::sync::atomic::Ordering::SeqCst);
    let names: Vec<&'static str> = terminate.to_vec();
    std::thread::Builder::new()
        .name("sundown-signals".into())
        .spawn(move || {
            let mut nth = 0;
            // One signal of a batch read together.
            let mut handle = |n: i32| {
                if Some(n) == dump_number && !numbers.contains(&n) {
                    deliver(SignalEvent::Dump);
                    return;
                }
                // The iterator reports a signal once however often it came while
                // unread; the counter says how often (none: counted already).
                let times = counters
                    .iter_mut()
                    .find(|(m, _)| *m == n)
                    .map_or(1, |(_, c)| c.take());
                for _ in 0..times {
                    nth += 1;
                    if nth == 2 {
                        // Whatever the controller is stuck on, the process ends.
                        super::exit::arm(
                            std::time::Instant::now() + FORCED_EXIT_GRACE,
                            128 + n,
                            super::exit::Unless::Never,
                        );
                    }
                    deliver(SignalEvent::Terminate {
                        name: name_of(n, &names),
                        number: n,
                        nth,
                    });
                }
                if nth >= 2 {
                    // From now on the handler applies the default disposition: the
                    // next signal kills. Every signal counted so far has passed that
                    // check (it runs before the counter's send).
                    forced.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            };
            loop {
                let mut read: Vec<i32> = signals.wait().collect();
                if read.is_empty() && signals.is_closed() {
                    break;
                }
                let last = latest.load(std::sync::atomic::Ordering::SeqCst);
                // Stable: the others keep their order, the latest goes last.
                read.sort_by_key(|&n| usize::try_from(n).ok() == Some(last));
                read.into_iter().for_each(&mut handle);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Counts the deliveries of one signal: its handler sends one datagram per delivery
/// (datagrams are never merged, unlike the iterator's pending flag, so two signals sent
/// together are two). Without the socket (it could not be made) each report of the
/// iterator counts once.
#[cfg(unix)]
struct DeliveryCounter(Option<std::os::unix::net::UnixDatagram>);

#[cfg(unix)]
impl DeliveryCounter {
    /// Registered before the iterator's handler, so a delivery's datagram is sent
    /// before the iterator can report it. Called while a signal still kills the process
    /// (see `install`), so no delivery can be among what it discards.
    fn register(signal: i32) -> Self {
        let read = std::os::unix::net::UnixDatagram::pair()
            .ok()
            .and_then(|(read, write)| {
                read.set_nonblocking(true).ok()?;
                signal_hook::low_level::pipe::register(signal, write).ok()?;
                Some(read)
            });
        let mut counter = DeliveryCounter(read);
        // Registering probes the socket with an empty datagram: not a delivery.
        counter.take();
        counter
    }

    /// Deliveries since the last call (1 without the socket).
    fn take(&mut self) -> usize {
        let Some(read) = &self.0 else { return 1 };
        let mut n = 0;
        let mut byte = [0u8; 1];
        while read.recv(&mut byte).is_ok() {
            n += 1;
        }
        n
    }
}

/// Windows console control events, with the numbers Windows gives them.
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

/// Registers tokio's handler for each named console event (those in `terminate` start
/// shutdown, `dump` prints the task table) and starts the thread that polls them. The
/// controller counts the terminating events and forces exit on the second.
#[cfg(windows)]
pub(crate) fn install(
    terminate: &[&'static str],
    dump: Option<&'static str>,
    _forced: Arc<AtomicBool>,
    deliver: impl Fn(SignalEvent) + Send + 'static,
) -> Result<(), String> {
    use std::task::{Context, Poll};
    use tokio::signal::windows;

    type Listener = Box<dyn FnMut(&mut Context<'_>) -> Poll<Option<()>> + Send>;
    fn listen(name: &str) -> Option<std::io::Result<Listener>> {
        fn boxed<L: Send + 'static>(
            mut listener: L,
            poll: fn(&mut L, &mut Context<'_>) -> Poll<Option<()>>,
        ) -> Listener {
            Box::new(move |cx| poll(&mut listener, cx))
        }
        Some(match name {
            "CTRL_C" => windows::ctrl_c().map(|l| boxed(l, windows::CtrlC::poll_recv)),
            "CTRL_BREAK" => windows::ctrl_break().map(|l| boxed(l, windows::CtrlBreak::poll_recv)),
            "CTRL_CLOSE" => windows::ctrl_close().map(|l| boxed(l, windows::CtrlClose::poll_recv)),
            "CTRL_LOGOFF" => {
                windows::ctrl_logoff().map(|l| boxed(l, windows::CtrlLogoff::poll_recv))
            }
            "CTRL_SHUTDOWN" => {
                windows::ctrl_shutdown().map(|l| boxed(l, windows::CtrlShutdown::poll_recv))
            }
            _ => return None,
        })
    }

    // Console events are delivered through tokio's handlers, polled on a small runtime
    // of our own so that they arrive even when the program's workers are blocked.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    // Registered before the program starts: an early event is not lost, and an unknown
    // name or a failed registration stops the program as it does on Unix.
    let mut listeners: Vec<(&'static str, bool, Listener)> = Vec::new();
    {
        let _entered = rt.enter();
        let dump = dump.filter(|d| !terminate.contains(d));
        for (name, is_dump) in terminate
            .iter()
            .map(|n| (*n, false))
            .chain(dump.map(|d| (d, true)))
        {
            let listener = listen(name)
                .ok_or_else(|| format!("unknown signal `{name}`"))?
                .map_err(|e| format!("cannot handle {name}: {e}"))?;
            listeners.push((name, is_dump, listener));
        }
    }
    std::thread::Builder::new()
        .name("sundown-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut nth = 0;
                loop {
                    let (name, is_dump) = std::future::poll_fn(|cx| {
                        for (name, is_dump, listener) in &mut listeners {
                            // `None` (the handler is gone) is never ready again.
                            if let Poll::Ready(Some(())) = listener(cx) {
                                return Poll::Ready((*name, *is_dump));
                            }
                        }
                        Poll::Pending
                    })
                    .await;
                    let event = if is_dump {
                        SignalEvent::Dump
                    } else {
                        nth += 1;
                        let number = number_of(name).unwrap_or(0);
                        SignalEvent::Terminate { name, number, nth }
                    };
                    deliver(event);
                }
            });
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
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
