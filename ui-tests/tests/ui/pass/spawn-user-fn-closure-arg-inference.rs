//! A user function named `spawn` that takes a closure whose argument type comes from
//! the function's signature.
use sundown::graceful_main;

mod pool {
    pub fn spawn(f: impl FnOnce(&str) -> usize) -> usize {
        f("abc")
    }
}

#[graceful_main]
async fn main() {
    let n = pool::spawn(|s| s.len());
    assert_eq!(n, 3);
}
