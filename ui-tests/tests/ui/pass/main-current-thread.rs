use sundown::graceful_main;

#[graceful_main(flavor = "current_thread", on_task_failure = "log", exit = "code")]
async fn main() {
    let handle = tokio::spawn(async { 1 + 1 });
    assert_eq!(handle.await.ok(), Some(2));
}
