//! A function body's inner attributes apply to the function under both attributes.
#![deny(unused_variables)]

use sundown::{Cancelled, cancel_safe, graceful_main};

#[cancel_safe]
async fn poll() -> Result<u8, Cancelled> {
    #![allow(unused_variables)]
    let unused = 1;
    Ok(2)
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    #![allow(unused_variables)]
    let unused = 3;
    assert_eq!(poll().await?, 2);
    Ok(())
}
