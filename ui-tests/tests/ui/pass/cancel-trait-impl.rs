use sundown::{Cancelled, cancel_safe, graceful_main};

trait Source {
    async fn next(&mut self) -> Result<Option<u32>, Cancelled>;

    #[cancel_safe]
    async fn skip(&mut self) -> Result<(), Cancelled> {
        self.next().await?;
        Ok(())
    }
}

struct Countdown(u32);

impl Source for Countdown {
    #[cancel_safe]
    async fn next(&mut self) -> Result<Option<u32>, Cancelled> {
        if self.0 == 0 {
            return Ok(None);
        }
        self.0 -= 1;
        Ok(Some(self.0))
    }
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    let mut source = Countdown(2);
    source.skip().await?;
    assert_eq!(source.next().await?, Some(0));
    assert_eq!(source.next().await?, None);
    Ok(())
}
