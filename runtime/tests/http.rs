//! `sundown::http` on a scope of its own: a tracked request's `#[cancel_safe]` call runs
//! on past step 2 and the drain waits for it; a stuck request is a straggler, cut with
//! a 503 and counted as cancelled; readiness follows the scope.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use sundown::{Cancelled, Shutdown, cancel_safe};
use tower_layer::Layer;
use tower_service::Service;

#[cancel_safe]
async fn render() -> Result<&'static str, Cancelled> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok("rendered")
}

async fn handler() -> (StatusCode, &'static str) {
    match render().await {
        Ok(body) => (StatusCode::OK, body),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cancelled"),
    }
}

fn app(scope: &Shutdown) -> sundown::http::TrackRequestsService<Router> {
    let router: Router = Router::new()
        .route("/render", get(handler))
        .route("/stuck", get(std::future::pending::<&str>));
    sundown::http::TrackRequests::on(scope).layer(router)
}

fn req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_tracked_request_finishes_after_step_2_and_the_drain_waits_for_it() {
    let scope = Shutdown::new();
    let mut svc = app(&scope);
    let call = tokio::spawn(svc.call(req("/render?x=1")));
    tokio::task::yield_now().await;
    let tasks = scope.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].name(), "GET /render");
    assert_eq!(tasks[0].location().file(), file!());

    let report = scope.shutdown(Duration::from_secs(5)).await;
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK, "not cancelled at step 2");
    assert_eq!(res.headers()["connection"], "close");
    assert!(report.stragglers().is_empty());
    assert_eq!(report.exit_code(), 0);
    assert_eq!((report.stats().completed, report.stats().cancelled), (1, 0));
    assert!(
        report.steps()[1].elapsed() >= Duration::from_millis(400),
        "the drain waited for the request: {report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stuck_request_is_named_cut_and_counted_at_the_drain_deadline() {
    let scope = Shutdown::new();
    let mut svc = app(&scope);
    let stuck = tokio::spawn(svc.call(req("/stuck")));
    tokio::task::yield_now().await;

    let report = scope.shutdown(Duration::from_secs(1)).await;
    let names: Vec<&str> = report.stragglers().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["GET /stuck"]);
    assert_eq!(report.exit_code(), 124);
    assert_eq!(report.stats().cancelled, 1, "{report}");
    assert!(scope.tasks().is_empty(), "cut, not left blocking");
    let res = stuck.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["connection"], "close");
}

#[tokio::test]
async fn a_request_before_the_signal_keeps_its_connection_and_readiness_follows_the_scope() {
    let scope = Shutdown::new();
    let mut svc = app(&scope);
    let mut ready = sundown::http::Readiness::of(&scope);
    let res = svc.call(req("/render")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("connection").is_none());
    let probe = ready.call(req("/ready")).await.unwrap();
    assert_eq!(
        (probe.status(), probe.body().as_str()),
        (StatusCode::OK, "ready\n")
    );

    scope.trigger("deploy");
    let probe = ready.call(req("/ready")).await.unwrap();
    assert_eq!(probe.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(probe.headers()["cache-control"], "no-store");
    // Outside any scope: always ready.
    assert_eq!(sundown::http::ready_response().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_failed_request_not_a_cancelled_one() {
    let scope = Shutdown::new();
    async fn boom() -> &'static str {
        tokio::task::yield_now().await;
        if std::hint::black_box(true) {
            panic!("handler blew up");
        }
        "unreachable"
    }
    let router: Router = Router::new().route("/boom", get(boom));
    let mut svc = sundown::http::TrackRequests::on(&scope).layer(router);
    let call = tokio::spawn(svc.call(req("/boom")));
    assert!(call.await.is_err(), "the panic still reaches the server");
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_one_failed_request(&report, "GET /boom");
    assert_eq!(report.exit_code(), 1);
}

/// The shutdown counted one request, `task`, as failed and none as cancelled.
fn assert_one_failed_request(report: &sundown::Report, task: &str) {
    assert_eq!(
        (report.stats().failed, report.stats().cancelled),
        (1, 0),
        "{report}"
    );
    assert_eq!(report.failures()[0].task(), task, "{report}");
}

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("handler state dropped badly");
    }
}

/// The client goes away mid-request: the server drops the request's future, and the
/// handler's state panics as it is dropped. A spawned task dropped so is a failure;
/// a request must be too, not "cancelled" (its guard is held by the request future,
/// not on the context stack where the task wrapper counts such a panic).
#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_as_the_request_is_let_go_is_a_failed_request() {
    let scope = Shutdown::new();
    async fn stuck() -> &'static str {
        let _state = PanicsOnDrop;
        std::future::pending::<()>().await;
        "unreachable"
    }
    let router: Router = Router::new().route("/stuck", get(stuck));
    let mut svc = sundown::http::TrackRequests::on(&scope).layer(router);
    let call = tokio::spawn(svc.call(req("/stuck")));
    tokio::task::yield_now().await;
    assert_eq!(scope.stats().running, 1);
    call.abort();
    let joined = call.await.unwrap_err();
    assert!(
        joined.is_panic(),
        "the drop's panic reaches the server: {joined}"
    );
    let report = scope.shutdown(Duration::from_secs(1)).await;
    assert_one_failed_request(&report, "GET /stuck");
    assert!(
        report.failures()[0].to_string().contains("dropped badly"),
        "{report}"
    );
}
