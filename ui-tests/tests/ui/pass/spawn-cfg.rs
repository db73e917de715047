//! Attributes on a rewritten spawn or await stay on it: a spawn compiled out by
//! `#[cfg]` is not compiled (nor run), exactly as under `#[tokio::main]`.
use sundown::{Cancelled, cancel_safe, graceful_main};

#[cfg(any())]
async fn metrics_loop() {}

#[cancel_safe]
async fn gated() -> Result<(), Cancelled> {
    #[cfg(any())]
    tokio::spawn(metrics_loop());
    #[cfg(any())]
    metrics_loop().await;
    Ok(())
}

#[graceful_main]
async fn main() {
    #[cfg(any())]
    tokio::spawn(metrics_loop());
    #[cfg(any())]
    tokio::spawn(async { panic!("compiled out") });
    #[cfg(any())]
    tokio::task::spawn_blocking(|| panic!("compiled out"));
    let _ = gated().await;
}
