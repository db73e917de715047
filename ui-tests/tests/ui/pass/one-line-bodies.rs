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

// Written on one line, as rustfmt leaves a short body in an `impl` or when told to.
#[rustfmt::skip]
#[cancel_safe]
async fn really_one_line() -> Result<u32, Cancelled> { Ok(1) }

#[rustfmt::skip]
#[cancel_safe]
async fn one_line_await() -> Result<u32, Cancelled> { Ok(really_one_line().await?) }

#[rustfmt::skip]
#[allow(dead_code)]
async fn uses() -> u32 { really_one_line().await.unwrap() + one_line_await().await.unwrap() }
