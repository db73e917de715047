//! tokio's `Handle::spawn` reached through an `Arc<Handle>` (auto-deref) spawns a
//! tracked task, as on the `Handle` itself.
#![deny(deprecated)]
use std::sync::Arc;

use sundown::graceful_main;

#[graceful_main]
async fn main() {
    let handle = Arc::new(tokio::runtime::Handle::current());
    let (release, gate) = tokio::sync::watch::channel(false);
    let mut second = gate.clone();
    let mut first = gate;
    let before = sundown::Shutdown::current().tasks().len();
    let h = handle.spawn(async move {
        let _ = first.wait_for(|open| *open).await;
    });
    let by_ref = &handle;
    let other = by_ref.spawn(async move {
        let _ = second.wait_for(|open| *open).await;
        7
    });
    let during = sundown::Shutdown::current().tasks().len();
    let _ = release.send(true);
    h.await.unwrap();
    assert_eq!(other.await.unwrap(), 7);
    assert_eq!(during - before, 2, "the tasks spawned through Arc<Handle> are tracked");
}
