use std::io;
use sundown::graceful_main;

fn read_config() -> io::Result<String> {
    Ok(String::from("ok"))
}

#[graceful_main]
async fn main() -> io::Result<()> {
    let config = read_config()?;
    assert_eq!(config, "ok");
    Ok(())
}
