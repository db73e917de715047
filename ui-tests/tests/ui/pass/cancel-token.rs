use sundown::{Cancelled, Shutdown, cancel_safe, graceful_main};

struct Worker {
    scope: Shutdown,
}

impl Worker {
    // A temporary token lives as long as the call.
    #[cancel_safe(token = self.scope.token())]
    async fn step(&self) -> Result<u32, Cancelled> {
        Ok(1)
    }
}

#[cancel_safe(token = scope.token(), cleanup = async {}, timeout = "100ms")]
async fn with_scope(scope: &Shutdown) -> Result<u32, Cancelled> {
    Ok(2)
}

#[graceful_main]
async fn main(shutdown: Shutdown) -> Result<(), Cancelled> {
    let worker = Worker { scope: shutdown.child() };
    assert_eq!(worker.step().await?, 1);
    let token = shutdown.token();
    let free = Shutdown::new();
    assert_eq!(with_scope(&free).await?, 2);
    drop(token);
    Ok(())
}
