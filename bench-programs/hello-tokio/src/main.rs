//! Hello world with `#[tokio::main]` and the hand-written equivalent of what
//! `#[graceful_main]` sets up: a SIGTERM/Ctrl+C listener, a `CancellationToken`, a
//! `TaskTracker` and a bounded wait for the tasks.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut term = signal(SignalKind::terminate())?;
    let greeting = tracker.spawn(async { "hello, world" });
    tokio::select! {
        r = greeting => if let Ok(text) = r { println!("{text}") },
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    token.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(9), tracker.wait())
        .await
        .is_err()
    {
        eprintln!("some tasks did not stop");
    }
    Ok(())
}
