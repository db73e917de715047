// Type errors in the body point at the user's code and signature.
use sundown::{Cancelled, cancel_safe};

#[cancel_safe]
async fn fetch(id: u32) -> Result<u32, Cancelled> {
    if id == 0 {
        return "zero";
    }
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
