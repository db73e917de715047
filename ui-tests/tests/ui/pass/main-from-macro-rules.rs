//! `#[graceful_main]` and `#[cancel_safe]` on functions that a `macro_rules!` writes from
//! its caller's tokens (the name, the body), with a tracked spawn in every form: the
//! expansions' locals keep their own hygiene, whatever the user's tokens carry.
#![deny(warnings)]
use sundown::{Cancelled, cancel_safe, graceful_main};
use tokio::runtime::Handle;
use tokio::spawn;

macro_rules! cancel_safe_fn {
    ($name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        #[cancel_safe]
        async fn $name($($arg: $ty),*) -> Result<u32, Cancelled> $body
    };
}

cancel_safe_fn!(spawns(n: u32) {
    let full = tokio::spawn(async move { n });
    let imported = spawn(async move { n });
    let on_handle = Handle::current().spawn(async move { n });
    let blocking = tokio::task::spawn_blocking(move || n);
    let as_value: Vec<_> = vec![async move { n }].into_iter().map(tokio::spawn).collect();
    let mut sum = 0;
    for handle in [full, imported, on_handle, blocking].into_iter().chain(as_value) {
        sum += handle.await.unwrap_or(0);
    }
    Ok(sum)
});

// Spawns passed as values written inside the macro's own definition: their tokens carry
// the macro's hygiene, not the caller's.
macro_rules! as_values_fn {
    ($name:ident) => {
        #[cancel_safe]
        async fn $name(n: u32) -> Result<u32, Cancelled> {
            let futures: Vec<_> = vec![async move { n }].into_iter().map(tokio::spawn).collect();
            let blocking: Vec<_> = vec![move || n]
                .into_iter()
                .map(tokio::task::spawn_blocking)
                .collect();
            let mut sum = 0;
            for handle in futures.into_iter().chain(blocking) {
                sum += handle.await.unwrap_or(0);
            }
            Ok(sum)
        }
    };
}

as_values_fn!(as_values);

macro_rules! program {
    ($name:ident, $body:block) => {
        #[graceful_main]
        async fn $name() -> Result<(), Cancelled> $body
    };
}

program!(main, {
    assert_eq!(spawns(1).await?, 5);
    assert_eq!(as_values(2).await?, 4);
    let handle = tokio::spawn(async { 2 });
    assert_eq!(handle.await.ok(), Some(2));
    Ok(())
});
