//! The attributes keep a one-line body's own braces out of `unused_braces` without an
//! `#[allow]` around the body: the user's own unnecessary braces inside it are still
//! the lint's (checked in `ui/fail/user-unnecessary-braces.rs`), and a crate that
//! forbids the lint compiles.
#![forbid(unused_braces)]
#![deny(warnings)]

use sundown::{Cancelled, cancel_safe, graceful_main};

#[rustfmt::skip]
#[cancel_safe]
async fn one_line() -> Result<u32, Cancelled> { Ok(one().await) }

#[rustfmt::skip]
async fn one() -> u32 { 1 }

#[rustfmt::skip]
#[graceful_main]
async fn main() { assert_eq!(one_line().await.unwrap(), 1) }
