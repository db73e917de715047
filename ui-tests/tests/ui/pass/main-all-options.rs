use sundown::graceful_main;

#[graceful_main(
    timeout = "1m30s",
    delay = "250ms",
    signals = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"],
    dump_signal = "SIGUSR1",
    on_task_failure = "shutdown",
    exit = "signal",
    flavor = "multi_thread",
    worker_threads = 2,
    debug = true,
    crate = "::sundown",
)]
async fn main() -> anyhow::Result<()> {
    Ok(())
}
