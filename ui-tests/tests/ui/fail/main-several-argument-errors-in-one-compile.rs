use sundown::graceful_main;

#[graceful_main(
    timeout = "9",
    signal = ["SIGTERM"],
    delay = 2s,
    on_task_failure = "panic",
    exit = "code",
    exit = "signal",
    worker_threads = 0,
)]
async fn main() {}
