use sundown::{Cancelled, cancel_safe};

#[cancel_safe]
#[cancel_safe]
async fn poll() -> Result<(), Cancelled> {
    Ok(())
}

fn main() {
    let _ = poll();
}
