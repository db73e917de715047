use sundown::graceful_main;

#[graceful_main(signals = ["SIGTERM", "SIGKILL"])]
async fn main() {}
