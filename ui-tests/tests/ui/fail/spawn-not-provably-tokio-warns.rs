//! A call that looks like a spawn but is not provably tokio's, and a spawn inside a macro
//! whose input the attribute cannot parse, are not tracked: each gets the deprecation
//! warning at the user's line (denied here, so that the compile shows it).
#![deny(deprecated)]

use sundown::graceful_main;

mod pool {
    pub fn spawn<F: std::future::Future>(_: F) {}
}

macro_rules! later {
    ($($task:tt)*) => { $($task)* };
}

#[graceful_main]
async fn main() {
    pool::spawn(async {});
    later!(tokio::spawn(async {}));
    // Parentheses around the callee leave it untracked without a warning.
    (pool::spawn)(async {});
}
