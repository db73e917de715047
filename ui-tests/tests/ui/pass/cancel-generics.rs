use std::fmt::Debug;
use sundown::{Cancelled, cancel_safe, graceful_main};

#[cancel_safe]
async fn first<T: Clone + Debug, E>(items: &[T]) -> Result<Option<T>, E>
where
    E: From<Cancelled>,
{
    Ok(items.first().cloned())
}

#[cancel_safe]
async fn convert<T, U, const N: usize>(values: [T; N]) -> Result<Vec<U>, Cancelled>
where
    U: From<T>,
{
    Ok(values.into_iter().map(U::from).collect())
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    let found = first::<u8, Cancelled>(&[1, 2]).await?;
    assert_eq!(found, Some(1));
    let converted: Vec<u64> = convert([1u32, 2, 3]).await?;
    assert_eq!(converted, [1, 2, 3]);
    Ok(())
}
