use std::error::Error;
use sundown::graceful_main;

#[graceful_main]
async fn main() -> Result<(), Box<dyn Error>> {
    let number: i32 = "7".parse()?;
    if number < 0 {
        return Err("negative".into());
    }
    Ok(())
}
