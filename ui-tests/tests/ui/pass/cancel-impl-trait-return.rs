//! `#[cancel_safe]` accepts any `Result<T, E>` with `E: From<Cancelled>`, including an
//! `impl Trait` in `T`, whether the body runs inline or is raced whole.
use std::fmt::Display;
use sundown::{Cancelled, cancel_safe, graceful_main};

#[cancel_safe]
async fn shown() -> Result<impl Display, Cancelled> {
    tokio::task::yield_now().await;
    Ok(7)
}

#[cancel_safe(cleanup = async {})]
async fn several() -> Result<(impl Display, Vec<impl Display + Send>), Cancelled> {
    let (a, b) = tokio::join!(async { 1 }, async { "two" });
    Ok((a, vec![b]))
}

#[cancel_safe]
async fn iterator(n: u32) -> anyhow::Result<impl Iterator<Item = u32>> {
    tokio::task::yield_now().await;
    Ok(0..n)
}

// Inside a trait object's associated type.
#[cancel_safe]
async fn boxed(n: u32) -> Result<Box<dyn Iterator<Item = impl Display> + Send>, Cancelled> {
    tokio::task::yield_now().await;
    Ok(Box::new(0..n))
}

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    assert_eq!(shown().await?.to_string(), "7");
    let (a, b) = several().await?;
    assert_eq!(format!("{a} {}", b[0]), "1 two");
    assert_eq!(iterator(3).await?.sum::<u32>(), 3);
    assert_eq!(boxed(2).await?.map(|x| x.to_string()).collect::<String>(), "01");
    Ok(())
}
