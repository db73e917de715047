//! A user function named `spawn` that returns a borrow of its argument, called on a
//! temporary inside a larger expression.
use sundown::graceful_main;

mod pool {
    pub fn spawn(s: &str) -> &str {
        s.trim()
    }
}

#[graceful_main]
async fn main() {
    let n = pool::spawn(&String::from("  abc ")).len();
    assert_eq!(n, 3);
}
