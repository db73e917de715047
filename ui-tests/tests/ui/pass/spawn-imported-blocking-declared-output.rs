//! An imported `tokio::task::spawn_blocking` whose closure's return type is decided by
//! the handle's declared type.
use sundown::graceful_main;
use tokio::task::JoinHandle;
use tokio::task::spawn_blocking as run_blocking;

#[graceful_main]
async fn main() {
    let declared: JoinHandle<u32> = run_blocking(|| Default::default());
    assert_eq!(declared.await.unwrap(), 0);
}
