use sundown::{Cancelled, cancel_safe};

#[cancel_safe]
fn fetch() -> Result<u32, Cancelled> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
