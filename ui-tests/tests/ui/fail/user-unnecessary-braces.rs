#![deny(unused_braces)]

use sundown::{Cancelled, cancel_safe, graceful_main};

fn take(n: u32) -> u32 {
    n
}

#[cancel_safe]
async fn braces() -> Result<u32, Cancelled> {
    let y = 5;
    let x = take({ y });
    tokio::task::yield_now().await;
    Ok(x)
}

#[graceful_main]
async fn main() {
    let y = 1;
    let _ = take({ y }) + braces().await.unwrap();
}
