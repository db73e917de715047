//! sundown's own `spawn` and `spawn_blocking`, imported or reached through a renamed
//! crate, are called as written (they track their task themselves) and draw no warning
//! that they are untracked (denied here, so that one would fail the build).
#![deny(deprecated)]
use sundown::graceful_main;

mod imported {
    pub use sundown::{spawn, spawn_blocking};
}

#[graceful_main]
async fn main() {
    use sundown as sd;
    use sundown::spawn;
    use sundown::spawn_blocking;
    let a = spawn(async { 1 });
    let b = sd::spawn(async { 2 });
    let c = imported::spawn(async { 3 });
    let d = spawn_blocking(|| 4);
    let e = sd::spawn_blocking(|| 5);
    let f = imported::spawn_blocking(|| 6);
    let sum = a.await.unwrap_or(0) + b.await.unwrap_or(0) + c.await.unwrap_or(0);
    let blocking = d.await.unwrap_or(0) + e.await.unwrap_or(0) + f.await.unwrap_or(0);
    assert_eq!(sum + blocking, 21);
}
