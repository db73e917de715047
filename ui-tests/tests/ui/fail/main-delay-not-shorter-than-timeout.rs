use sundown::graceful_main;

#[graceful_main(timeout = "5s", delay = "5s")]
async fn main() {}
