use sundown::graceful_main;

#[graceful_main]
async fn main(args: Vec<String>) {
    drop(args);
}
