//! The temporaries of an awaited expression in a `#[cancel_safe]` body live to the end
//! of the statement, as with a plain await: a guard borrowed from a temporary `Arc`
//! compiles, and a temporary is dropped after the rest of the statement ran. A body that
//! is one expression with an await in it draws no warning (denied here).
#![deny(warnings)]

use std::sync::{Arc, Mutex as StdMutex};

use sundown::{Cancelled, cancel_safe};
use tokio::sync::Mutex;

struct App {
    db: Arc<Mutex<Vec<u32>>>,
}

impl App {
    fn db(&self) -> Arc<Mutex<Vec<u32>>> {
        self.db.clone()
    }
}

#[cancel_safe]
async fn push_and_count(app: &App) -> Result<usize, Cancelled> {
    app.db().lock().await.push(1);
    let n = app.db().lock().await.len();
    Ok(n)
}

static LOG: StdMutex<Vec<&'static str>> = StdMutex::new(Vec::new());

struct Noisy;

impl Noisy {
    fn value(&self) -> u32 {
        1
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        LOG.lock().unwrap().push("temporary dropped");
    }
}

fn later() -> u32 {
    LOG.lock().unwrap().push("rest of the statement");
    2
}

#[cancel_safe]
async fn drop_order() -> Result<u32, Cancelled> {
    let v = std::future::ready(Noisy.value()).await + later();
    Ok(v)
}

async fn three() -> u32 {
    3
}

#[cancel_safe]
async fn one_expression() -> Result<u32, Cancelled> {
    Ok(three().await)
}

#[cancel_safe]
async fn one_match() -> Result<u32, Cancelled> {
    match three().await {
        3 => Ok(3),
        n => Ok(n + 1),
    }
}

async fn yes() -> bool {
    true
}

// An await in every place parentheses could be "unnecessary" (denied here).
#[cancel_safe]
async fn everywhere() -> Result<u32, Cancelled> {
    let mut n = 0;
    if yes().await {
        n += 1;
    }
    while !yes().await {}
    match three().await {
        3 => n += 1,
        _ => {}
    }
    let v = vec![three().await];
    n += v[0];
    n += three().await;
    for _ in 0..three().await {
        n += 1;
    }
    if three().await > 0 { Ok(n + three().await) } else { Ok(0) }
}

#[rustfmt::skip]
#[cancel_safe]
async fn loops() -> Result<u32, Cancelled> { loop { if yes().await { break Ok(1); } } }

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = App {
        db: Arc::new(Mutex::new(Vec::new())),
    };
    assert_eq!(push_and_count(&app).await.unwrap(), 1);
    assert_eq!(drop_order().await.unwrap(), 3);
    assert_eq!(
        *LOG.lock().unwrap(),
        ["rest of the statement", "temporary dropped"]
    );
    assert_eq!(one_expression().await.unwrap(), 3);
    assert_eq!(one_match().await.unwrap(), 3);
    assert_eq!(everywhere().await.unwrap(), 14);
    assert_eq!(loops().await.unwrap(), 1);
}
