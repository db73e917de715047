//! `stuck <mode>`: programs whose tasks are stuck, for the task table's "waiting at"
//! and "blocking for" columns and for debug mode's slow-poll warning. Each prints
//! `ready` on stdout once every task has reached the place it is stuck at.

use std::sync::Arc;
use std::time::Duration;

use sundown::graceful_main;
use sundown_tests::fixture::{say, unknown_mode};
use tokio::sync::{Mutex, Semaphore, mpsc};

fn main() {
    match std::env::args().nth(1).unwrap_or_default().as_str() {
        "mutex" => mutex(),
        "semaphore" => semaphore(),
        "nested" => nested(),
        "channel" => channel(),
        "cpu" => cpu(),
        "slow_poll" => slow_poll(),
        "slow_poll_debug_attribute" => slow_poll_debug_attribute(),
        "deadline" => deadline(),
        other => unknown_mode("stuck", other),
    }
}

/// Lets the spawned tasks reach their await, then says `ready`.
async fn settle_then_ready() {
    tokio::time::sleep(Duration::from_millis(100)).await;
    say("ready");
}

/// A task waits for a `tokio::sync::Mutex` that main holds forever.
#[graceful_main(timeout = "1s", dump_signal = "SIGUSR1")]
async fn mutex() {
    let lock = Arc::new(Mutex::new(0u32));
    // Held forever, past main's return.
    std::mem::forget(lock.clone().lock_owned().await);
    let l = lock.clone();
    tokio::spawn(async move {
        let mut n = l.lock().await; // MUTEX LINE
        *n += 1;
    });
    settle_then_ready().await;
    sundown::requested().await;
}

/// A task waits for a permit of a semaphore whose only permit main holds forever.
#[graceful_main(timeout = "1s", dump_signal = "SIGUSR1")]
async fn semaphore() {
    let pool = Arc::new(Semaphore::new(1));
    // Held forever, past main's return.
    std::mem::forget(pool.clone().acquire_owned().await);
    let p = pool.clone();
    tokio::spawn(async move {
        let _permit = p.acquire().await; // SEMAPHORE LINE
    });
    settle_then_ready().await;
    sundown::requested().await;
}

/// The nested-semaphore deadlock: `handle_upload` holds the pool's only permit and calls
/// `fetch_user`, which waits for a permit of the same pool.
#[sundown::track_awaits]
async fn handle_upload(pool: Arc<Semaphore>, user: u32) -> u32 {
    let _permit = pool.acquire().await;
    fetch_user(&pool, user).await // UPLOAD LINE
}

#[sundown::track_awaits]
async fn fetch_user(pool: &Semaphore, user: u32) -> u32 {
    let _permit = pool.acquire().await; // FETCH LINE
    user
}

#[graceful_main(timeout = "1s", dump_signal = "SIGUSR1")]
async fn nested() {
    let pool = Arc::new(Semaphore::new(1));
    let p = pool.clone();
    tokio::spawn(async move {
        handle_upload(p, 7).await; // TASK LINE
    });
    settle_then_ready().await;
    sundown::requested().await;
}

/// A task waits on a channel whose sender is kept but never sends.
#[graceful_main(timeout = "1s", dump_signal = "SIGUSR1")]
async fn channel() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    // Kept forever, past main's return, and never used.
    std::mem::forget(tx);
    tokio::spawn(async move {
        // The next line is the one it waits on.
        while let Some(job) = rx.recv().await {
            say(&format!("job {job}"));
        }
    });
    settle_then_ready().await;
    sundown::requested().await;
}

/// A task that never yields: one poll that lasts until the process ends.
#[graceful_main(timeout = "1s", dump_signal = "SIGUSR1")]
async fn cpu() {
    // CPU SPAWN: the next line.
    tokio::spawn(async {
        tokio::task::yield_now().await;
        // Said by the spinning task itself, as it starts: `ready` then depends on nothing
        // else being scheduled while one of the two workers spins for good.
        say("ready");
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1)); // CPU LINE
        }
    });
    sundown::requested().await;
}

/// A task whose one poll blocks its thread for 400 ms, then finishes; the program then
/// returns. With `SUNDOWN_DEBUG=1` the slow poll is named on stderr.
#[graceful_main(timeout = "2s")]
async fn slow_poll() {
    let h = tokio::spawn(async {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(400)); // SLOW LINE
        tokio::task::yield_now().await;
    });
    let _ = h.await;
    say("ready");
}

/// The same, with debug mode turned on by the attribute.
#[graceful_main(timeout = "2s", debug = true)]
async fn slow_poll_debug_attribute() {
    let h = tokio::spawn(async {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(400)); // SLOW ATTRIBUTE LINE
    });
    let _ = h.await;
    say("ready");
}

/// A deadline around the nested deadlock: its error names the await it was stuck at.
#[graceful_main(timeout = "1s")]
async fn deadline() {
    let pool = Arc::new(Semaphore::new(1));
    let stuck =
        sundown::deadline("upload", Duration::from_millis(200), handle_upload(pool, 1)).await;
    match stuck {
        Ok(_) => say("finished"),
        Err(e) => say(&format!("error: {e}")),
    }
    say("ready");
}
