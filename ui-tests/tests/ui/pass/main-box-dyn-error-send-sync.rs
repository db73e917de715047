use sundown::graceful_main;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[graceful_main]
async fn main() -> Result<(), BoxError> {
    let number: i32 = "7".parse()?;
    assert_eq!(number, 7);
    Ok(())
}
