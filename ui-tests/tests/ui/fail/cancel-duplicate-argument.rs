use sundown::{Cancelled, cancel_safe};

#[cancel_safe(timeout = "1s", timeout = "2s")]
async fn fetch() -> Result<u32, Cancelled> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
