#[sundown::graceful_main]
async fn main() -> () {
    let answer = 42;
    assert_eq!(answer, 42);
}
