//! Every spawn form the attributes track compiles as it does under `#[tokio::main]`:
//! imported and renamed functions, a module path, a turbofish, a handle, a function
//! passed as a value, and spawns inside `vec!`, `join!`, `try_join!`, `select!`,
//! `assert!` and the formatting macros, and spawns whose output type the handle's declared
//! type decides. Non-tokio functions called `spawn` still compile.
use sundown::{Cancelled, cancel_safe, graceful_main};
use tokio::spawn;
use tokio::spawn as go;
use tokio::task;
use tokio::task::spawn_blocking as run_blocking;

async fn work(n: u32) -> u32 {
    n
}

mod pool {
    /// Not tokio's: called as written (the warning it gets is shown by a fail case).
    pub fn spawn(n: u32) -> u32 {
        n + 1
    }
}

#[cancel_safe]
async fn in_cancel_safe() -> Result<u32, Cancelled> {
    let a = spawn(work(1)).await.unwrap_or(0);
    let (b, c) = tokio::join!(go(work(2)), task::spawn(work(3)));
    let d = tokio::try_join!(tokio::spawn(work(4))).map_or(0, |(d,)| d);
    Ok(a + b.unwrap_or(0) + c.unwrap_or(0) + d)
}

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    let handles = vec![tokio::spawn(work(1)), go(work(2))];
    let repeated = vec![task::spawn(work(3))];
    let mapped: Vec<_> = (4..6).map(work).map(tokio::spawn).collect();
    let typed = tokio::spawn::<_>(work(6));
    let on_handle = tokio::runtime::Handle::current().spawn(work(7));
    let handle = tokio::runtime::Handle::current();
    let on_place = handle.spawn(work(8));
    // The output type is decided by the handle's declared type, after the spawn.
    let declared: tokio::task::JoinHandle<anyhow::Result<()>> = tokio::spawn(async {
        tokio::task::yield_now().await;
        Ok(())
    });
    let declared_blocking: tokio::task::JoinHandle<u32> =
        tokio::task::spawn_blocking(|| Default::default());
    let blocking = run_blocking(|| 9_u32);
    let blocking_in_full = tokio::task::spawn_blocking::<_, u32>(|| 10);
    let mut set = tokio::task::JoinSet::new();
    set.spawn(async { anyhow::Ok(()) });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
    tokio::select! {
        biased;
        r = tokio::spawn(work(11)) => assert_eq!(r?, 11),
        _ = rx.recv(), if tokio::spawn(work(12)).is_finished() => {}
    }
    drop(tx);
    assert!(matches!(tokio::spawn(work(13)).await, Ok(13)), "{:?}", spawn(work(14)));
    println!("{} {x}", tokio::spawn(work(15)).await?, x = go(work(16)).await?);
    let mut total = 0;
    for handle in handles.into_iter().chain(repeated).chain(mapped) {
        total += handle.await?;
    }
    total += typed.await? + on_handle.await? + on_place.await?;
    total += blocking.await? + blocking_in_full.await?;
    total += in_cancel_safe().await?;
    declared.await??;
    total += declared_blocking.await?;
    total += (pool::spawn)(0);
    assert_eq!(total, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 10 + 1);
    while set.join_next().await.is_some() {}
    Ok(())
}
