use sundown::graceful_main;

#[graceful_main]
fn main() {}
