use sundown::graceful_main;

#[graceful_main]
async fn main() -> i32 {
    0
}
