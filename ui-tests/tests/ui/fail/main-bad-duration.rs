use sundown::graceful_main;

#[graceful_main(timeout = "9 seconds")]
async fn main() {}
