use sundown_renamed::{Cancelled, cancel_safe};

#[cancel_safe(crate = "::sundown_renamed", cleanup = async {})]
async fn fetch() -> Result<u32, Cancelled> {
    tokio::spawn(async {});
    Ok(1)
}

#[sundown_renamed::graceful_main(crate = "sundown_renamed")]
async fn main() -> Result<(), Cancelled> {
    assert_eq!(fetch().await?, 1);
    Ok(())
}
