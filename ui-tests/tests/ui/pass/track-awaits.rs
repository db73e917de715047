//! `#[track_awaits]` on free functions, methods, generic and borrowing functions, with
//! awaits in closures, async blocks and nested expressions; and with a renamed crate.

use std::future::Future;

struct Db;

impl Db {
    #[sundown::track_awaits]
    async fn get<'a>(&'a self, key: &'a str) -> &'a str {
        tokio::task::yield_now().await;
        key
    }
}

#[sundown::track_awaits]
async fn generic<F: Future<Output = u32>>(f: F) -> u32 {
    let twice = |x: u32| async move { x * 2 };
    let inner = async { f.await + 1 };
    twice(inner.await).await
}

mod renamed {
    pub use sundown as moved;
}

#[sundown::track_awaits(crate = "renamed::moved")]
async fn elsewhere(db: &Db) -> usize {
    db.get("k").await.len()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let n = runtime.block_on(generic(async { 1 }));
    assert_eq!(n, 4);
    assert_eq!(runtime.block_on(elsewhere(&Db)), 1);
}
