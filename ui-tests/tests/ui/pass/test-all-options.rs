// Compiled as a binary, where test functions are left out: this checks that every
// argument is accepted. The same arguments are type-checked and run in
// runtime/tests/test_attribute.rs.

#[sundown::test]
async fn defaults() {
    tokio::spawn(async {});
}

#[sundown::test(start_paused = true, timeout = "500ms")]
async fn paused() -> Result<(), std::io::Error> {
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    Ok(())
}

#[sundown::test(flavor = "multi_thread", worker_threads = 2, crate = "::sundown")]
#[should_panic]
async fn multi_thread_and_other_attributes() -> anyhow::Result<()> {
    tokio::task::spawn_blocking(|| ()).await?;
    anyhow::bail!("fails")
}

fn main() {}
