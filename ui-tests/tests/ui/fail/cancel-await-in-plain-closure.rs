// An `.await` where none is allowed is reported at the user's `.await`, in a body with no
// suspension point of its own (no watcher) and in one with (a watcher).
use sundown::{Cancelled, cancel_safe};

#[cancel_safe]
async fn no_suspension_point(id: u32) -> Result<u32, Cancelled> {
    let next = || std::future::ready(id + 1).await;
    Ok(next())
}

#[cancel_safe]
async fn with_a_suspension_point(id: u32) -> Result<u32, Cancelled> {
    let next = || std::future::ready(id + 1).await;
    std::future::ready(()).await;
    Ok(next())
}

fn main() {
    let _ = no_suspension_point(1);
    let _ = with_a_suspension_point(1);
}
