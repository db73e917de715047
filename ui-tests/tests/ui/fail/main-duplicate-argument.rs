use sundown::graceful_main;

#[graceful_main(timeout = "20s", timeout = "30s")]
async fn main() {}
