//! A job queue on SQLite that a shutdown never leaves half-done:
//! `cargo run -p sundown --example job_queue [DB]` (default `jobs.db`); press Ctrl+C at
//! any moment, run it again, and count:
//! `sqlite3 jobs.db "SELECT state, count(*), max(attempts) FROM jobs GROUP BY state"`.
//!
//! Table `jobs(id, state, attempts, result)`. Each start enqueues 40 jobs; four workers,
//! each with its own connection (SQLite calls block, so they run on blocking threads),
//! claim a job (`pending` → `claimed`), work 20–80 ms and record the result (`claimed` →
//! `done`). What to look at:
//! - intake stops on shutdown: a worker looks at `sundown::is_requested()` only between
//!   jobs, never while it holds a claim;
//! - a claimed job is finished: it runs inside `sundown::shield`, so the `#[cancel_safe]`
//!   work in it does not see the shutdown, and the drain waits the few milliseconds the
//!   job needs. Without the shield, a SIGTERM mid-job cancels the work and the job stays
//!   `claimed` with nobody working on it;
//! - so after any single SIGTERM every job is `done` exactly once or still `pending`.
//!   Only a forced exit (a second signal, SIGKILL, a crash) can leave claims behind; the
//!   next start returns them to `pending` and says how many.
//!
//! Why two transactions (claim, then done) and not one around the work: SQLite has a
//! single writer, so a transaction held across the work would make the workers take
//! turns.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rusqlite::{Connection, OptionalExtension, params};
use sundown::{cancel_safe, graceful_main};

const WORKERS: u32 = 4;
const JOBS_PER_START: u32 = 40;

/// One worker's connection.
type Db = Arc<Mutex<Connection>>;

fn open(path: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    Ok(conn)
}

/// Creates the table, returns claims left by a forced exit to `pending` and enqueues
/// this start's jobs, in one transaction. Returns how many claims were returned.
fn setup(conn: &mut Connection) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS jobs (
             id INTEGER PRIMARY KEY,
             state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done')),
             attempts INTEGER NOT NULL DEFAULT 0,
             result TEXT
         )",
    )?;
    let tx = conn.transaction()?;
    let returned = tx.execute(
        "UPDATE jobs SET state = 'pending' WHERE state = 'claimed'",
        [],
    )?;
    for _ in 0..JOBS_PER_START {
        tx.execute("INSERT INTO jobs DEFAULT VALUES", [])?;
    }
    tx.commit()?;
    Ok(returned)
}

/// `pending` → `claimed`, oldest first; one statement, so one transaction.
fn claim(conn: &mut Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "UPDATE jobs SET state = 'claimed', attempts = attempts + 1
         WHERE id = (SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 1)
         RETURNING id",
        [],
        |row| row.get(0),
    )
    .optional()
}

/// `claimed` → `done` with the result, in one transaction, only if still claimed.
fn finish(conn: &mut Connection, id: i64, result: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let changed = tx.execute(
        "UPDATE jobs SET state = 'done', result = ?2 WHERE id = ?1 AND state = 'claimed'",
        params![id, result],
    )?;
    if changed != 1 {
        // Dropping `tx` rolls back.
        return Err(rusqlite::Error::StatementChangedRows(changed));
    }
    tx.commit()
}

/// Runs `f` with the worker's connection on a blocking thread.
async fn on_db<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let db = db.clone();
    sundown::spawn_blocking(move || {
        let mut conn = db.lock().map_err(|_| anyhow!("connection lock poisoned"))?;
        Ok(f(&mut conn)?)
    })
    .await?
}

/// The job's real work (an API call, a computation): 20–80 ms. Like any `#[cancel_safe]`
/// code it would stop at its next await once shutdown is requested — outside `shield`.
#[cancel_safe]
async fn compute(id: i64) -> anyhow::Result<String> {
    let ms = 20 + id.unsigned_abs() * 37 % 61;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(format!("{}", id * id))
}

/// Claims one job and takes it to `done`. Returns false when the queue is empty.
async fn run_one(db: &Db) -> anyhow::Result<bool> {
    let Some(id) = on_db(db, claim).await? else {
        return Ok(false);
    };
    println!("job {id} claimed");
    let result = compute(id).await?;
    println!("job {id} committing");
    on_db(db, move |conn| finish(conn, id, &result))
        .await
        .with_context(|| format!("recording job {id}"))?;
    println!("job {id} done");
    Ok(true)
}

async fn worker(db: Db) -> anyhow::Result<()> {
    // Intake stops here, between jobs.
    while !sundown::is_requested() {
        if !sundown::shield(run_one(&db)).await? {
            // Nothing pending: look again in 50 ms, unless shutdown comes first.
            tokio::select! {
                biased;
                () = sundown::requested() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
    Ok(())
}

#[graceful_main(timeout = "5s")]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or("jobs.db".into());
    let (returned, connections) = tokio::task::spawn_blocking(move || {
        let returned = setup(&mut open(&path)?)?;
        let connections = (0..WORKERS)
            .map(|_| open(&path))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        anyhow::Ok((returned, connections))
    })
    .await??;
    println!("returned {returned} claim(s) left by a forced exit to pending");
    println!("enqueued {JOBS_PER_START} jobs; {WORKERS} workers");
    for conn in connections {
        tokio::spawn(worker(Arc::new(Mutex::new(conn))));
    }
    println!("ready");
    sundown::requested().await;
    Ok(())
}
