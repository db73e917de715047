//! The process runner behind `#[graceful_main]`.
//!
//! Three threads share the work:
//! - the **signal thread** ([`signals`]) receives signals (never blocked by user code);
//! - the **controller thread** ([`controller`]) owns the clock: the first-signal line,
//!   `delay`, the second signal, the dump signal, the hard deadline;
//! - the **main thread** ([`body`]) runs the body on the tokio runtime, then the
//!   sequence (drain, abort, close hooks) within the budget, tears the runtime down
//!   with a bound, and decides how the process ends.
//!
//! Whichever of them ends the process first wins, through the one owner of the end
//! ([`exit`]); the others never get to.

mod body;
mod config;
mod controller;
mod exit;
mod signals;
mod systemd;
mod untracked;

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub use self::config::{ExitMode, Flavor, MainConfig};

pub(crate) use self::body::settle_untracked;

use crate::lifecycle::Transition;
use crate::registry::TaskOutcome;
use crate::report::ProcessExit;
use crate::scope::Shutdown;
use crate::sync::Mailbox;

use self::controller::{CONTROL_QUEUE, Control, Shared, Timeline};
use self::exit::EXIT_FLUSH;

/// The body as the runner takes it.
type MainBody<'a> = Pin<Box<dyn Future<Output = TaskOutcome> + 'a>>;

/// Set while a `#[graceful_main]` runs: it owns the process, so there is only one.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Runs `#[graceful_main]`'s body and exits with the design's exit code.
#[doc(hidden)]
#[track_caller]
pub fn run_main<'a, B, Fut>(config: MainConfig, body: B) -> !
where
    B: FnOnce(Shutdown) -> Fut + 'a,
    Fut: Future<Output = TaskOutcome> + 'a,
{
    // Only this shim is generic: the runner is compiled once, in sundown, not in
    // every program that uses the attribute.
    run_boxed(
        config,
        Location::caller(),
        Box::new(move |scope| Box::pin(body(scope)) as MainBody<'a>),
    )
}

/// The program could not start (bad configuration, no threads): exit 1 once the
/// message is out.
fn refuse_to_start(why: &str) -> ! {
    exit::end(
        ProcessExit::Code(1),
        &format!("sundown: {why}; the program was not started\n"),
        EXIT_FLUSH,
    )
}

#[track_caller]
fn run_boxed<'a>(
    config: MainConfig,
    location: &'static Location<'static>,
    body: Box<dyn FnOnce(Shutdown) -> MainBody<'a> + 'a>,
) -> ! {
    if tokio::runtime::Handle::try_current().is_ok() {
        panic!(
            "sundown: `#[graceful_main] fn {}` was called from inside a tokio runtime. It \
             builds its own runtime and ends the process when it returns, so it can only \
             be the program's entry point; from async code, run the work in a scope of \
             your own instead (`sundown::Shutdown::new()` or `Shutdown::current().child()`)",
            config.name
        );
    }
    if config.debug
        && let Some(complaint) = crate::waits::enable_debug()
    {
        crate::output::line(&complaint);
    }
    if RUNNING.swap(true, Ordering::AcqRel) {
        panic!(
            "sundown: `#[graceful_main] fn {}` was called while another `#[graceful_main]` \
             runs in this process. Each one owns the process (its signals, its exit), so \
             only one can run; give the second its own scope instead \
             (`Shutdown::current().child()`) and spawn its work there",
            config.name
        );
    }
    let (config, budget) = match config::resolve(config) {
        Ok(resolved) => resolved,
        Err(why) => refuse_to_start(&why),
    };
    // sundown's own threads start with the program, not at the first signal, where
    // every millisecond counts.
    crate::output::start();
    if let Err(e) = exit::start_watchdog() {
        refuse_to_start(&format!("cannot start a thread ({e})"))
    }

    let scope = Shutdown::new();
    scope.set_failure_policy(config.on_task_failure);
    crate::task::ambient::set_process_scope(&scope);
    let shared = Arc::new(Shared {
        scope: scope.clone(),
        config,
        budget,
        timeline: Mutex::new(Timeline::default()),
        runtime: OnceLock::new(),
    });

    let mailbox = Arc::new(Mailbox::<Control>::new(CONTROL_QUEUE));
    let observer_tx = mailbox.clone();
    scope.observe(Box::new(move |transition| match transition {
        Transition::Requested => {
            systemd::stopping();
            let _ = observer_tx.try_send(Control::Requested);
        }
    }));

    let forced = Arc::new(AtomicBool::new(false));
    // The signal thread hands its events straight to the controller's channel.
    // A full queue drops the event: the controller is far behind, and what cannot wait
    // (forcing on the second signal) the signal thread does itself.
    let signal_tx = mailbox.clone();
    let delivered = move |e: signals::SignalEvent| {
        let _ = signal_tx.try_send(Control::Signal(e));
    };
    if let Err(why) = signals::install(
        config.signals,
        config.dump_signal,
        forced.clone(),
        delivered,
    ) {
        refuse_to_start(&why)
    }
    {
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sundown-controller".into())
            .spawn(move || controller::run(&shared, &mailbox, &forced));
        if let Err(e) = spawned {
            refuse_to_start(&format!("cannot start a thread ({e})"))
        }
    }

    let runtime = match body::build_runtime(&config) {
        Ok(rt) => rt,
        Err(e) => refuse_to_start(&format!("cannot build the tokio runtime: {e}")),
    };
    let _ = shared.runtime.set(runtime.handle().clone());
    let outcome = body::run_on(&runtime, &shared, location, body);
    body::teardown(runtime, &shared);
    body::finish(&shared, outcome)
}
