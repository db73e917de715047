use sundown::{Cancelled, cancel_safe, graceful_main};

#[cancel_safe]
async fn total(values: impl IntoIterator<Item = u32>, label: impl AsRef<str>) -> Result<String, Cancelled> {
    let sum: u32 = values.into_iter().sum();
    Ok(format!("{}={sum}", label.as_ref()))
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    assert_eq!(total(vec![1, 2, 3], "sum").await?, "sum=6");
    Ok(())
}
