// The runtime is a dependency named `sundown_renamed` here; no `sundown` path is used.
use sundown_renamed::{Shutdown, graceful_main};

#[graceful_main(crate = "::sundown_renamed", timeout = "3s")]
async fn main(shutdown: Shutdown) {
    drop(shutdown);
    tokio::spawn(async {});
}
