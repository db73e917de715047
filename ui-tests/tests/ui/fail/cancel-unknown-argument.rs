use sundown::{Cancelled, cancel_safe};

#[cancel_safe(clean_up = async {})]
async fn fetch() -> Result<u32, Cancelled> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
