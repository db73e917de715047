//! An axum server that drains instead of dropping requests, ready for a rolling restart
//! behind a load balancer:
//! `cargo run -p sundown --example http_server [ADDR]` (default `127.0.0.1:0`), then
//! in another terminal, with the port it printed:
//!
//! ```sh
//! curl -N localhost:PORT/events &   # one event every 100 ms
//! curl localhost:PORT/work          # takes 200 ms
//! kill -TERM <pid>; curl -i localhost:PORT/ready   # 503 at once
//! ```
//!
//! What to look at, in order, after SIGTERM:
//! - `/ready` answers 503 at once (`sundown::http::readiness()`: `is_ready()` went
//!   false), and for the 1 s `delay` the server keeps serving everything — the time a
//!   load balancer needs to see the 503 and stop sending new requests here. Every
//!   response in that second carries `connection: close` (the `TrackRequests` layer),
//!   so clients and proxies holding a keep-alive connection open their next one to
//!   another instance;
//! - then `sundown::requested()` resolves: axum stops accepting (new connections are
//!   refused), lets every request in flight finish and closes idle keep-alive
//!   connections. Requests in flight are tracked units of the scope (`GET /work` in the
//!   task table), so the drain waits for them and a stuck one would be named;
//! - the `/events` stream ends at that moment too, with a last `bye` event. An event
//!   stream never finishes on its own, and axum has no drain timeout: if the stream
//!   ignored shutdown, `serve` would wait for it until sundown aborted `main` at the
//!   drain deadline and the process exited 124 (budget ran out) with `main` in the
//!   straggler table. Ending it on `requested()` is what a client wants: it reconnects
//!   (browsers' `EventSource` does so by itself) to an instance that is not going away,
//!   and the exit code stays 0;
//! - the line `served N /work requests`, the report on stderr, exit code 0.
//!
//! `http_server ADDR --no-readiness` answers `/ready` with 200 whatever happens, as a
//! server without a readiness route would: the rolling-restart test
//! (`tests/tests/rolling_restart.rs`) runs it to show what the load balancer then does.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use sundown::graceful_main;

/// How many `/work` handlers have started: each one answers with its number.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// 200 ms of work. Answers `work N ready R`: the handler's number and whether the
/// server was still ready (no signal yet) when it started.
async fn work() -> String {
    let n = STARTED.fetch_add(1, Ordering::SeqCst) + 1;
    let ready = sundown::is_ready();
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("work {n} ready {ready}\n")
}

/// An endless event stream, ended when shutdown is requested (see the top of the file).
async fn events() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok(Event::default().id(n.to_string()).data("tick")), n + 1))
    });
    let bye = stream::once(async { Ok(Event::default().event("bye").data("shutting down")) });
    Sse::new(ticks.take_until(sundown::requested()).chain(bye))
}

/// A short request: 2 ms of work.
async fn item() -> &'static str {
    tokio::time::sleep(Duration::from_millis(2)).await;
    "item\n"
}

#[graceful_main(delay = "1s", timeout = "5s")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:0".into());
    let readiness = std::env::args().nth(2).as_deref() != Some("--no-readiness");
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    println!("ready");
    let app = Router::new()
        .route("/work", get(work))
        .route("/item", get(item))
        .route("/events", get(events))
        // Every request a tracked unit; `connection: close` from the first signal on.
        .layer(sundown::http::TrackRequests::new());
    let app = if readiness {
        // 200 while ready, 503 from the first signal: for the load balancer's probe.
        app.route_service("/ready", sundown::http::readiness())
    } else {
        app.route("/ready", get(|| async { StatusCode::OK }))
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(sundown::requested())
        .await?;
    println!("served {} /work requests", STARTED.load(Ordering::SeqCst));
    Ok(())
}
