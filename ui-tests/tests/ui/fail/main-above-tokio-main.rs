#[sundown::graceful_main]
#[tokio::main]
async fn main() {}
