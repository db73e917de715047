// See main-renamed-crate.rs for why the rename is an `extern crate`.
extern crate sundown as sundown_renamed;

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
