//! Odd but valid callees named `spawn`: a generic function with a turbofish, an
//! associated function through `Self`, a tuple struct, scoped threads, a function
//! pointer, and blocking closures returning `Result` through an imported
//! `spawn_blocking` (kept handles).
#![allow(non_camel_case_types, deprecated)]
use sundown::{Cancelled, cancel_safe, graceful_main};
use tokio::task::spawn_blocking;

fn spawn<T: Default + std::ops::Add<Output = T>>(x: T) -> T {
    x + T::default()
}

#[derive(Debug, PartialEq)]
struct spawn_tag(u8);

mod shapes {
    #[allow(non_camel_case_types)]
    #[derive(Debug, PartialEq)]
    pub struct spawn(pub u8);
}

struct Pool(u32);

impl Pool {
    fn spawn(n: u32) -> u32 {
        n * 2
    }

    #[cancel_safe]
    async fn run(&self) -> Result<u32, Cancelled> {
        let doubled = Self::spawn(self.0);
        tokio::task::yield_now().await;
        Ok(doubled)
    }
}

fn helper(n: u32) -> u32 {
    n + 10
}

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    assert_eq!(spawn::<u8>(3), 3);
    assert_eq!(spawn(4_u16), 4);
    assert_eq!(shapes::spawn(5), shapes::spawn(5));
    assert_eq!(spawn_tag(1), spawn_tag(1));
    assert_eq!(Pool(21).run().await?, 42);
    let data = vec![1, 2, 3];
    let total = std::thread::scope(|s| {
        let h = s.spawn(|| data.iter().sum::<i32>());
        h.join().unwrap()
    });
    assert_eq!(total, 6);
    let spawn_fn: fn(u32) -> u32 = helper;
    let _ = spawn_fn;
    let ok = spawn_blocking(|| -> Result<u32, std::io::Error> { Ok(1) });
    let err = spawn_blocking(|| Err::<u32, _>(std::io::Error::other("disk")));
    assert_eq!(ok.await??, 1);
    assert!(err.await?.is_err());
    Ok(())
}
