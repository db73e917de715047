#[tokio::main]
#[sundown::graceful_main]
async fn main() {}
