//! `receiver.spawn(x)` where the receiver is an indexed place whose index has a side
//! effect: the index expression must be evaluated once, as written.
use std::cell::Cell;

use sundown::graceful_main;

#[graceful_main]
async fn main() {
    let calls = Cell::new(0_u32);
    let next = || {
        calls.set(calls.get() + 1);
        0_usize
    };
    let mut sets = vec![tokio::task::JoinSet::new()];
    sets[next()].spawn(async { 1_u8 });
    assert_eq!(calls.get(), 1, "the index expression was evaluated {} times", calls.get());
    while sets[0].join_next().await.is_some() {}
}
