use sundown::{Cancelled, cancel_safe};

#[cancel_safe(token = deadline_ms)]
async fn fetch(deadline_ms: u64) -> Result<u64, Cancelled> {
    Ok(deadline_ms)
}

fn main() {
    let _ = fetch(1);
}
