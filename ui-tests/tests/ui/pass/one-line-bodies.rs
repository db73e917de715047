//! One-line bodies under `#![deny(warnings)]`: the expansion keeps the user's braces
//! and must not make them "unnecessary".
#![deny(warnings)]
use sundown::{Cancelled, cancel_safe, graceful_main};

#[cancel_safe]
async fn one_line() -> Result<(), Cancelled> {
    Ok(())
}

#[graceful_main]
async fn main() -> Result<(), String> {
    Ok(one_line().await.map_err(|e| e.to_string())?)
}
