use sundown::graceful_main;

#[graceful_main(signals = ["SIGINT", "SIGTREM"])]
async fn main() {}
