// Awaiting something that is not a future is reported at the user's code, whether the
// `.await` is a suspension point of the body or inside an async block of the body.
use sundown::{Cancelled, cancel_safe};

#[cancel_safe]
async fn suspension_point(id: u32) -> Result<u32, Cancelled> {
    id.await;
    Ok(id)
}

#[cancel_safe]
async fn in_an_async_block(id: u32) -> Result<u32, Cancelled> {
    let later = async move { id.await };
    drop(later);
    Ok(id)
}

fn main() {
    let _ = suspension_point(1);
    let _ = in_an_async_block(1);
}
