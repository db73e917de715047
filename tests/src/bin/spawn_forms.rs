//! `spawn_forms <mode>`: spawns written in the forms the attributes track besides
//! `tokio::spawn(..)` in full. Each mode prints `ready` once its tasks are spawned; each
//! task waits for shutdown, then works 300 ms and prints `<name> done`, so that the line
//! is printed only if the drain waited for the task.

use std::time::Duration;

use sundown::{Cancelled, cancel_safe, graceful_main};
use sundown_tests::fixture::{say, unknown_mode};
use tokio::spawn;
use tokio::spawn as start;
use tokio::task;

fn main() {
    match std::env::args().nth(1).unwrap_or_default().as_str() {
        "imports" => imports(),
        "macros" => macros(),
        "handle" => handle(),
        "cancel_safe" => cancel_safe_body(),
        "diverging" => diverging(),
        other => unknown_mode("spawn_forms", other),
    }
}

/// Keeps handles the way a program would, in a `Vec`.
fn keep<T>(handles: Vec<T>) -> usize {
    handles.len()
}

async fn finisher(name: &'static str) {
    sundown::requested().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    say(&format!("{name} done"));
}

#[graceful_main]
async fn imports() {
    spawn(finisher("imported"));
    start(finisher("renamed"));
    let _handle = task::spawn(finisher("module path"));
    say("ready");
    sundown::requested().await;
}

#[graceful_main]
async fn macros() {
    keep(vec![
        tokio::spawn(finisher("in vec")),
        spawn(finisher("imported in vec")),
    ]);
    let _joined = tokio::join!(
        std::future::ready(tokio::spawn(finisher("in join"))),
        async {
            task::spawn(finisher("in join async block"));
        },
    );
    println!(
        "finished at once: {}",
        tokio::spawn(finisher("in println")).is_finished()
    );
    say("ready");
    sundown::requested().await;
}

#[graceful_main]
async fn handle() {
    tokio::runtime::Handle::current().spawn(finisher("on handle"));
    let handle = tokio::runtime::Handle::current();
    let _kept = handle.spawn(finisher("on a kept handle"));
    let _mapped: Vec<_> = [finisher("mapped")].into_iter().map(tokio::spawn).collect();
    say("ready");
    sundown::requested().await;
}

#[cancel_safe]
async fn starts() -> Result<(), Cancelled> {
    spawn(finisher("imported in cancel_safe"));
    keep(vec![task::spawn(finisher("in vec in cancel_safe"))]);
    Ok(())
}

#[graceful_main]
async fn cancel_safe_body() -> Result<(), Cancelled> {
    starts().await?;
    say("ready");
    sundown::requested().await;
    Ok(())
}

#[graceful_main(timeout = "1s")]
async fn diverging() {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }); // DIVERGING LINE
    say("ready");
    sundown::requested().await;
}
