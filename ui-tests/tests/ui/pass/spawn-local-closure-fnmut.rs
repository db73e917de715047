//! A local `FnMut` closure named `spawn`, called twice: valid Rust, and valid under
//! `#[tokio::main]`.
use sundown::graceful_main;

#[graceful_main]
async fn main() {
    let mut total = 0;
    let mut spawn = |n: u32| {
        total += n;
        total
    };
    spawn(1);
    let t = spawn(2);
    assert_eq!(t, 3);
}
