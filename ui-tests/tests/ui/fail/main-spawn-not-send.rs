use std::rc::Rc;

#[sundown::graceful_main]
async fn main() {
    let shared = Rc::new(1);
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        drop(shared);
    });
}
