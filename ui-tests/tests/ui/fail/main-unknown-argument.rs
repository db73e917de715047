use sundown::graceful_main;

#[graceful_main(timout = "20s")]
async fn main() {}
