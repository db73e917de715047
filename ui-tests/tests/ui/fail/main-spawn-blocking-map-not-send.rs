use std::rc::Rc;

#[sundown::graceful_main]
async fn main() {
    let shared = Rc::new(1);
    let handles: Vec<_> = vec![move || *shared]
        .into_iter()
        .map(tokio::task::spawn_blocking)
        .collect();
    drop(handles);
}
