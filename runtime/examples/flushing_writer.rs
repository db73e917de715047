//! Acknowledged means written, even when the program is stopped mid-stream:
//! `cargo run -p sundown --example flushing_writer [FILE]` (default `records.log`), press
//! Ctrl+C at any moment, then compare the last `ack` line with `tail -1 records.log`.
//!
//! A task appends records through a `tokio::io::BufWriter<File>` and acknowledges each
//! one (`ack N` on stdout) as soon as it is in the buffer — before it reaches the file.
//! That is asyncio's unclosed `ClientSession`: whatever sits in the buffer when the
//! program stops is lost although it was acknowledged (tokio's `BufWriter` does not
//! flush on drop: flushing is a write, and a write can block). Two things close it:
//! - `#[cancel_safe(cleanup = writer.flush())]` on the writing function: on shutdown it
//!   stops at its next await, flushes the buffer into the file, and returns
//!   `Err(Cancelled)` (the task counts as cancelled in the report);
//! - an `on_close` hook, run after every task has stopped, `fsync`s the file, so what
//!   was flushed is on disk too.
//!
//! What to look at: the last `ack` is the last line of the file, whenever you stop it.

use std::time::Duration;

use sundown::{cancel_safe, graceful_main};
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Appends records until shutdown; each is acknowledged once it is in `writer`.
#[cancel_safe(cleanup = writer.flush())]
async fn append_records(writer: &mut BufWriter<File>) -> anyhow::Result<()> {
    for n in 1u64.. {
        let record = format!("record {n} {}\n", "payload ".repeat(6));
        writer.write_all(record.as_bytes()).await?;
        println!("ack {n}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

#[graceful_main(timeout = "5s")]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or("records.log".into());
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await?;
    let to_sync = file.try_clone().await?;
    sundown::on_close("fsync records", async move {
        if let Err(e) = to_sync.sync_all().await {
            eprintln!("fsync records: {e}");
        }
    });
    tokio::spawn(async move {
        let mut writer = BufWriter::new(file);
        append_records(&mut writer).await
    });
    println!("ready");
    sundown::requested().await;
    Ok(())
}
