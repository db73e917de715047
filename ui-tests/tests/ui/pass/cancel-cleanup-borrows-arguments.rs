use sundown::{Cancelled, cancel_safe, graceful_main};

struct Session {
    pending: Vec<u32>,
}

impl Session {
    async fn get(&self) -> Result<u32, Cancelled> {
        Ok(1)
    }

    async fn flush(&mut self) {
        self.pending.clear();
    }
}

// The body only borrows `session`, so the cleanup may borrow it too, even mutably.
#[cancel_safe(cleanup = session.flush(), timeout = "2s")]
async fn poll_feed(session: &mut Session, rounds: u32) -> Result<u32, Cancelled> {
    let mut total = 0;
    for _ in 0..rounds {
        total += session.get().await?;
        session.pending.push(total);
    }
    Ok(total)
}

#[cancel_safe(cleanup = async { log.push(String::from("cancelled")) })]
async fn record(log: &mut Vec<String>) -> Result<(), Cancelled> {
    log.push(String::from("started"));
    Ok(())
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    let mut session = Session { pending: Vec::new() };
    assert_eq!(poll_feed(&mut session, 3).await?, 3);
    let mut log = Vec::new();
    record(&mut log).await?;
    assert_eq!(log, ["started"]);
    Ok(())
}
