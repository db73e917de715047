use anyhow::Context;
use sundown::graceful_main;

#[graceful_main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = "8080".parse().context("parsing the port")?;
    if port == 0 {
        anyhow::bail!("port must not be zero");
    }
    Ok(())
}
