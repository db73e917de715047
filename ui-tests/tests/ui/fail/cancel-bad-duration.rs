use sundown::{Cancelled, cancel_safe};

#[cancel_safe(timeout = "1.5s")]
async fn fetch() -> Result<u32, Cancelled> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
