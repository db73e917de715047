// The body's `?` converts errors into the declared return type, as in a plain `main`.
use sundown::graceful_main;

#[derive(Debug)]
struct ConfigError;

#[graceful_main]
async fn main() -> Result<(), ConfigError> {
    let config = std::fs::read_to_string("app.toml")?;
    assert!(!config.is_empty());
    Ok(())
}
