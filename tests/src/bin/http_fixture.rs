//! HTTP services as the README has them written: `http_fixture <mode>` serves on
//! 127.0.0.1 (printing `listening on ADDR`, then `ready`) until SIGTERM.
//!
//! - `plain`: axum with `with_graceful_shutdown(sundown::requested())` and nothing
//!   else: a handler that calls a `#[cancel_safe]` function (`/render?ms=N`), an event
//!   stream ended by `requested()` (`/events`), and beside them a tracked background task
//!   whose `#[cancel_safe]` loop is cancelled at step 2.
//! - `tracked`: the same router with the `TrackRequests` layer, a readiness route and a
//!   handler that never answers (`/stuck`); the task table is printed on SIGUSR1.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use sundown::{Cancelled, cancel_safe, graceful_main};
use sundown_tests::fixture::{say, unknown_mode};

fn main() {
    match std::env::args().nth(1).unwrap_or_default().as_str() {
        "plain" => plain(),
        "tracked" => tracked(),
        other => unknown_mode("http_fixture", other),
    }
}

/// Work a handler awaits: cancellable, with a cleanup, as a README function would be.
#[cancel_safe(cleanup = async { say("render cleanup") })]
async fn render(ms: u64) -> Result<String, Cancelled> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(format!("rendered in {ms}ms\n"))
}

async fn render_handler(uri: Uri) -> Result<String, (StatusCode, String)> {
    // `?ms=N` (axum's `Query` would need serde for one number).
    let ms = uri
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    say("render started");
    render(ms)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))
}

/// Never answers.
async fn stuck() -> &'static str {
    say("stuck started");
    std::future::pending().await
}

/// An endless event stream, ended with a `bye` event when shutdown is requested.
async fn events() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((Ok(Event::default().id(n.to_string()).data("tick")), n + 1))
    });
    let bye = stream::once(async { Ok(Event::default().event("bye").data("shutting down")) });
    Sse::new(ticks.take_until(sundown::requested()).chain(bye))
}

/// A tracked background loop: its `#[cancel_safe]` wait is cancelled at step 2.
#[cancel_safe]
async fn poll_feed() -> Result<(), Cancelled> {
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn poller() {
    if let Err(e) = poll_feed().await {
        say(&format!("poller: {e}"));
    }
}

fn routes() -> Router {
    Router::new()
        .route("/render", get(render_handler))
        .route("/events", get(events))
        .route("/stuck", get(stuck))
}

async fn serve(app: Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    say(&format!("listening on {}", listener.local_addr()?));
    say("ready");
    let started = Instant::now();
    axum::serve(listener, app)
        .with_graceful_shutdown(sundown::requested())
        .await?;
    say(&format!("served for {:?}", started.elapsed()));
    Ok(())
}

#[graceful_main(timeout = "5s")]
async fn plain() -> anyhow::Result<()> {
    tokio::spawn(poller());
    serve(routes()).await
}

#[graceful_main(timeout = "5s", dump_signal = "SIGUSR1")]
async fn tracked() -> anyhow::Result<()> {
    let app = routes()
        .layer(sundown::http::TrackRequests::new())
        .route_service("/ready", sundown::http::readiness());
    serve(app).await
}
