//! An imported `tokio::spawn` whose task's output type is decided by the handle's
//! declared type (as `tokio::spawn` in full is, see `spawn-forms.rs`).
use sundown::graceful_main;
use tokio::spawn;
use tokio::task::JoinHandle;

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    let declared: JoinHandle<anyhow::Result<()>> = spawn(async {
        tokio::task::yield_now().await;
        Ok(())
    });
    declared.await??;
    Ok(())
}
