use sundown::{Shutdown, graceful_main};

#[graceful_main]
async fn main(shutdown: Shutdown) {
    assert!(!shutdown.is_requested());
    let child = shutdown.child();
    drop(child);
}
