use sundown::{Cancelled, cancel_safe, graceful_main};

async fn tick(n: u32) -> u32 {
    n
}

#[cancel_safe(cleanup = async { tokio::spawn(tick(0)); })]
async fn fan_out(count: u32) -> Result<u32, Cancelled> {
    let mut handles = Vec::new();
    for n in 0..count {
        handles.push(tokio::spawn(tick(n)));
    }
    tokio::spawn(tick(99));
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap_or(0);
    }
    Ok(total)
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    assert_eq!(fan_out(4).await?, 6);
    Ok(())
}
