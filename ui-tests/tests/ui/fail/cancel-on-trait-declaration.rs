use sundown::{Cancelled, cancel_safe};

trait Poller {
    #[cancel_safe]
    async fn poll(&self) -> Result<u32, Cancelled>;
}

fn main() {}
