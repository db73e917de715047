use std::rc::Rc;

#[sundown::graceful_main]
async fn main() {
    let shared = Rc::new(1);
    let h = tokio::task::spawn_blocking(move || *shared + 1);
    let _ = h.await;
}
