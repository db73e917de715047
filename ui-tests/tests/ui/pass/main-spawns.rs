use sundown::graceful_main;
use tokio::task::JoinHandle;

async fn poll_feed(times: u32) -> u32 {
    times
}

fn compute() -> u64 {
    6 * 7
}

mod worker {
    pub async fn run() -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    // Kept handles still have tokio's type and can be awaited.
    let kept: JoinHandle<u32> = tokio::spawn(poll_feed(3));
    assert_eq!(kept.await?, 3);
    let other = ::tokio::task::spawn(worker::run());
    other.await??;
    let blocking = tokio::task::spawn_blocking(compute);
    assert_eq!(blocking.await?, 42);
    let closure = ::tokio::task::spawn_blocking(move || compute() + 1);
    assert_eq!(closure.await?, 43);
    // Detached spawns.
    tokio::spawn(async move {
        tokio::spawn(poll_feed(1));
    });
    let _ = tokio::spawn(worker::run());
    let mut handles = Vec::new();
    for times in 0..3 {
        handles.push(tokio::spawn(poll_feed(times)));
    }
    for handle in handles {
        handle.await?;
    }
    Ok(())
}
