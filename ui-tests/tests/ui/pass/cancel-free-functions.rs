use sundown::{Cancelled, cancel_safe, graceful_main};

#[derive(Debug)]
enum FetchError {
    Cancelled(Cancelled),
    NotFound,
}

impl From<Cancelled> for FetchError {
    fn from(cancelled: Cancelled) -> Self {
        FetchError::Cancelled(cancelled)
    }
}

#[cancel_safe]
async fn fetch(id: u32) -> Result<u32, FetchError> {
    if id == 0 {
        return Err(FetchError::NotFound);
    }
    Ok(id)
}

#[cancel_safe(timeout = "2s")]
async fn fetch_plain() -> Result<(), Cancelled> {
    Ok(())
}

#[cancel_safe]
async fn fetch_anyhow() -> anyhow::Result<u32> {
    let value: u32 = "5".parse()?;
    Ok(value)
}

#[cancel_safe]
async fn fetch_boxed() -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok("6".parse::<u32>()?)
}

#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("io")]
    Io(#[from] std::io::Error),
}

#[cancel_safe]
async fn fetch_thiserror() -> Result<(), ServiceError> {
    let io: Result<(), std::io::Error> = Ok(());
    io?;
    Ok(())
}

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    assert_eq!(fetch(3).await.ok(), Some(3));
    assert!(matches!(fetch(0).await, Err(FetchError::NotFound)));
    fetch_plain().await?;
    assert_eq!(fetch_anyhow().await?, 5);
    assert_eq!(fetch_boxed().await.ok(), Some(6));
    fetch_thiserror().await?;
    Ok(())
}
