//! Every way of reaching tokio's own `spawn` / `spawn_blocking` through a path that ends
//! in `spawn` / `spawn_blocking` is tracked: the task is listed in
//! `Shutdown::current().tasks()` as soon as it is spawned. No deprecation warning is
//! allowed (denied).
#![deny(deprecated)]
use std::sync::Arc;

use sundown::graceful_main;
use tokio::spawn;
use tokio::sync::Semaphore;
use tokio::task;
use tokio::task::spawn_blocking;

mod rt {
    pub use tokio::spawn;
    pub use tokio::task::spawn_blocking;
}

fn live() -> usize {
    sundown::Shutdown::current().tasks().len()
}

fn record(form: &'static str, before: usize, untracked: &mut Vec<&'static str>) {
    if live() != before + 1 {
        untracked.push(form);
    }
}

#[graceful_main]
async fn main() {
    use tokio as tk;
    let gate = Arc::new(Semaphore::new(0));
    let wait = |g: &Arc<Semaphore>| {
        let g = Arc::clone(g);
        async move {
            let _ = g.acquire().await;
        }
    };
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = Arc::new(std::sync::Mutex::new(hold));
    let mut untracked = Vec::new();
    let mut handles = Vec::new();

    let before = live();
    let h = spawn(wait(&gate));
    record("use tokio::spawn; spawn(x)", before, &mut untracked);
    handles.push(h);
    let before = live();
    let h = task::spawn(wait(&gate));
    record("use tokio::task; task::spawn(x)", before, &mut untracked);
    handles.push(h);
    let before = live();
    let h = rt::spawn(wait(&gate));
    record("re-export rt::spawn(x)", before, &mut untracked);
    handles.push(h);
    let before = live();
    let h = tk::spawn(wait(&gate));
    record("use tokio as tk; tk::spawn(x)", before, &mut untracked);
    handles.push(h);
    let before = live();
    let h = tk::task::spawn(wait(&gate));
    record("tk::task::spawn(x)", before, &mut untracked);
    handles.push(h);
    let before = live();
    let h = spawn::<_>(wait(&gate));
    record("spawn::<_>(x)", before, &mut untracked);
    handles.push(h);
    let before = live();
    let h = tokio::task::spawn(wait(&gate));
    record("tokio::task::spawn(x)", before, &mut untracked);
    handles.push(h);

    let h1 = Arc::clone(&hold);
    let before = live();
    let b1 = spawn_blocking(move || {
        let _ = h1.lock().unwrap().recv();
    });
    record("use tokio::task::spawn_blocking; spawn_blocking(f)", before, &mut untracked);
    let h2 = Arc::clone(&hold);
    let before = live();
    let b2 = rt::spawn_blocking(move || -> Result<u32, std::io::Error> {
        let _ = h2.lock().unwrap().recv();
        Ok(7)
    });
    record("rt::spawn_blocking(f) returning Result", before, &mut untracked);

    gate.add_permits(100);
    for h in handles {
        h.await.unwrap();
    }
    release.send(()).unwrap();
    release.send(()).unwrap();
    b1.await.unwrap();
    assert_eq!(b2.await.unwrap().unwrap(), 7);
    assert!(untracked.is_empty(), "untracked forms: {untracked:?}");
}
