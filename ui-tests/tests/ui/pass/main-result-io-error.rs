use sundown::graceful_main;

#[graceful_main(timeout = "2s")]
async fn main() -> Result<(), std::io::Error> {
    let parsed: Result<u8, std::io::Error> = Ok(1);
    let _ = parsed?;
    Ok(())
}
