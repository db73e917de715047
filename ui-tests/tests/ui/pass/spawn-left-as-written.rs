//! The ways to call tokio's `spawn` as written, untracked and without a warning: a
//! parenthesized callee, and the function bound to a name first. Both compile as they
//! do under `#[tokio::main]`, whatever the task's output.
#![deny(deprecated)]
use sundown::graceful_main;

#[graceful_main]
async fn main() {
    let parenthesized = (tokio::spawn)(async { 1 });
    let spawn = tokio::spawn;
    let bound = spawn(async { 2 });
    let blocking = (tokio::task::spawn_blocking)(|| 3);
    let sum = parenthesized.await.unwrap_or(0) + bound.await.unwrap_or(0);
    assert_eq!(sum + blocking.await.unwrap_or(0), 6);
}
