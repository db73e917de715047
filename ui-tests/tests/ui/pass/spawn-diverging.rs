//! Spawns whose output type is only decided by fallback (bodies that never return)
//! compile as they do under `#[tokio::main]`, in both attributes and in cleanups.
use std::time::Duration;
use sundown::{Cancelled, cancel_safe, graceful_main};

/// True only when a test asks for it: the panicking spawns are compiled, not run.
fn asked(what: &str) -> bool {
    std::env::var_os(what).is_some()
}

#[cancel_safe(cleanup = async { tokio::spawn(async { loop { tokio::task::yield_now().await } }).abort(); })]
async fn background() -> Result<(), Cancelled> {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let looping = tokio::spawn(async move {
        loop {
            tick.tick().await;
        }
    });
    looping.abort();
    if asked("SUNDOWN_UI_PANIC") {
        let _ = tokio::spawn(async { panic!("boom") });
        tokio::task::spawn_blocking(|| unreachable!());
    }
    Ok(())
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let looping = tokio::spawn(async move {
        loop {
            tick.tick().await;
        }
    });
    let blocking = tokio::task::spawn_blocking(|| {
        loop {
            std::thread::sleep(Duration::from_millis(5));
            if !asked("SUNDOWN_UI_LOOP") {
                return;
            }
        }
    });
    if asked("SUNDOWN_UI_PANIC") {
        let panicking = tokio::spawn(async { panic!("boom") });
        tokio::spawn(async { unreachable!() });
        tokio::task::spawn_blocking(|| loop {
            std::thread::sleep(Duration::from_secs(1));
        });
        let _ = panicking.await;
    }
    looping.abort();
    let _ = blocking.await;
    background().await
}
