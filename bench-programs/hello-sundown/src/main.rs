//! Hello world with `#[graceful_main]`: signals, a tracked task, ordered shutdown.

#[sundown::graceful_main]
async fn main() {
    let greeting = tokio::spawn(async { "hello, world" });
    if let Ok(text) = greeting.await {
        println!("{text}");
    }
}
