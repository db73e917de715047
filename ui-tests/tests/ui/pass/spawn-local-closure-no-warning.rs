//! A local closure or function named `spawn` is the user's own: calling it draws no
//! warning (denied here), and a tokio spawn written inside it is still rewritten.
#![deny(deprecated)]

use sundown::graceful_main;

#[graceful_main]
async fn main() {
    let spawn = |f: std::future::Ready<u32>| tokio::spawn(f);
    assert_eq!(spawn(std::future::ready(7)).await.unwrap(), 7);
    {
        fn spawn_blocking(n: u32) -> u32 {
            n * 2
        }
        assert_eq!(spawn_blocking(2), 4);
        let spawn_blocking = |n: u32| n + 1;
        assert_eq!(spawn_blocking(2), 3);
    }
}
