use sundown::{Cancelled, cancel_safe, graceful_main};

#[derive(Clone)]
struct Counter {
    count: u32,
}

impl Counter {
    #[cancel_safe]
    async fn get(&self) -> Result<u32, Cancelled> {
        Ok(self.count)
    }

    #[cancel_safe(cleanup = async { self.count = 0 })]
    async fn bump(&mut self) -> Result<u32, Cancelled> {
        self.count += 1;
        Ok(self.count)
    }

    #[cancel_safe]
    async fn into_count(self) -> Result<u32, Cancelled> {
        Ok(self.count)
    }

    #[cancel_safe]
    pub(crate) async fn boxed(self: Box<Self>) -> Result<u32, Cancelled> {
        Ok(self.count)
    }

    #[cancel_safe]
    async fn make() -> Result<Self, Cancelled> {
        Ok(Self { count: 0 })
    }
}

#[graceful_main]
async fn main() -> Result<(), Cancelled> {
    let mut counter = Counter::make().await?;
    assert_eq!(counter.bump().await?, 1);
    assert_eq!(counter.get().await?, 1);
    assert_eq!(Box::new(counter.clone()).boxed().await?, 1);
    assert_eq!(counter.into_count().await?, 1);
    Ok(())
}
