//! The whole shutdown, live: `cargo run --example demo`, then press Ctrl+C.
//! Press it twice to see the forced path; `kill -USR1 <pid>` prints the task table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sundown::{Cancelled, cancel_safe, graceful_main, shield};

/// A stand-in for an HTTP client session with a write buffer.
#[derive(Clone)]
struct Session {
    requests: Arc<AtomicU64>,
    buffered: Arc<AtomicU64>,
}

impl Session {
    async fn open() -> Session {
        println!("session: opened");
        Session {
            requests: Arc::default(),
            buffered: Arc::default(),
        }
    }

    async fn get(&self) -> u64 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.buffered.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    async fn flush(&self) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = self.buffered.swap(0, Ordering::Relaxed);
        println!("poll_feed: cleanup flushed {n} buffered item(s)");
    }

    async fn close(&self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let n = self.requests.load(Ordering::Relaxed);
        println!("session: closed after {n} request(s)");
    }
}

#[derive(Debug)]
enum FeedError {
    Cancelled(Cancelled),
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedError::Cancelled(c) => write!(f, "feed stopped: {c}"),
        }
    }
}

impl std::error::Error for FeedError {}

impl From<Cancelled> for FeedError {
    fn from(c: Cancelled) -> Self {
        FeedError::Cancelled(c)
    }
}

/// Polls until cancelled; then its cleanup flushes what the session buffered.
#[cancel_safe(cleanup = session.flush())]
async fn poll_feed(session: Session) -> Result<(), FeedError> {
    loop {
        let n = session.get().await;
        if n % 5 == 0 {
            println!("poll_feed: {n} items so far");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Finishes the job it is on when shutdown is requested, then stops.
async fn worker(id: u32) {
    let mut job = 0;
    loop {
        job += 1;
        tokio::select! {
            biased;
            () = sundown::requested() => break,
            () = tokio::time::sleep(Duration::from_millis(700 + 100 * u64::from(id))) => {}
        }
    }
    println!("worker {id}: shutdown requested during job {job}; finishing it");
    tokio::time::sleep(Duration::from_millis(300 * u64::from(id + 1))).await;
    println!("worker {id}: done");
}

/// Commits in batches; a commit is shielded, so it is never cut in half.
async fn committer() {
    let mut batch = 0;
    while !sundown::is_requested() {
        batch += 1;
        shield(async {
            tokio::time::sleep(Duration::from_millis(900)).await;
        })
        .await;
        println!("committer: batch {batch} committed");
        tokio::select! {
            biased;
            () = sundown::requested() => {}
            () = tokio::time::sleep(Duration::from_millis(600)) => {}
        }
    }
}

#[graceful_main(timeout = "5s", dump_signal = "SIGUSR1")]
async fn main() -> Result<(), FeedError> {
    let pid = std::process::id();
    println!("demo: pid {pid}. Ctrl+C shuts down (again to force); `kill -USR1 {pid}` dumps tasks");
    let session = Session::open().await;
    sundown::on_close("http session", {
        let s = session.clone();
        async move { s.close().await }
    });
    for id in 0..3 {
        tokio::spawn(worker(id));
    }
    tokio::spawn(poll_feed(session.clone()));
    tokio::spawn(committer());
    sundown::requested().await;
    println!("main: shutdown requested; waiting for the tasks");
    Ok(())
}
