//! HTTP services (feature `tower`): requests as tracked units of the scope, and
//! readiness a load balancer can use.
//!
//! Without anything from this module, a server that follows the README already drains
//! correctly: axum's `with_graceful_shutdown(sundown::requested())` stops accepting at
//! step 2 and waits for the requests in flight, and those requests are **in-flight
//! work** (code sundown did not spawn), so a `#[cancel_safe]` call in a handler is cut
//! only at the drain deadline, not at step 2. What this module adds:
//!
//! - [`TrackRequests`], a `tower` [`Layer`]: every request in flight is a unit of the
//!   scope, shown in the task table and the straggler report as `GET /upload` with its
//!   age and state, counted in [`Stats`](crate::Stats), and waited for by the drain. A
//!   request still running at the drain deadline is named among the stragglers, cut
//!   (its handler dropped, a `503` with `connection: close` sent instead) and counted
//!   as cancelled. From the first signal on (during `delay`), HTTP/1 responses carry
//!   `connection: close`, so keep-alive clients and proxies open their next
//!   connection elsewhere instead of reusing one to an instance that is going away.
//! - [`readiness`], a service for a readiness route (`200` while ready, `503` from the
//!   first signal), and [`ready_response`] for hyper's `service_fn`.
//!
//! A request is tracked until its handler has produced the response head. A streamed
//! body (SSE, a WebSocket after the upgrade) is not: end it on
//! [`requested`](crate::requested), which resolves at step 2.
//!
//! The task table's "where it is waiting" column is not filled for requests yet: a
//! request's row has its method and path, where the layer was added, its age and state.
//!
//! ```
//! use axum::{Router, routing::get};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let scope = sundown::Shutdown::new();
//! # scope.enter(async {
//! let app: Router = Router::new()
//!     .route("/upload", get(|| async { "stored" }))
//!     .layer(sundown::http::TrackRequests::new())        // every request a tracked unit
//!     .route_service("/ready", sundown::http::readiness()); // 200, then 503 from the signal
//! # let _ = app;
//! # }).await;
//! # }
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::registry::{TaskName, TaskOutcome};
use crate::scope::Shutdown;
use crate::task::TaskGuard;
use crate::task::ambient::{self, Ambient, Scoped};

/// A `tower` [`Layer`] that makes every HTTP request a tracked unit of a scope (see the
/// [module docs](self)): listed as `GET /path` in the task table and the straggler
/// report, waited for by the drain, cut and counted at the drain deadline; and, from
/// the first signal on, `connection: close` on HTTP/1 responses.
///
/// ```
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let mut app: Router = Router::new()
///     .route("/upload", get(|| async { "stored" }))
///     .layer(sundown::http::TrackRequests::on(&scope));
///
/// scope.trigger("deploy");   // readiness off: keep-alive connections are told to close
/// let req = Request::get("/upload").body(Body::empty()).unwrap();
/// let res = app.call(req).await.unwrap();
/// assert_eq!(res.headers()["connection"], "close");
/// assert_eq!(scope.stats().completed, 1, "the request was a unit of the scope");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TrackRequests {
    scope: Option<Shutdown>,
    location: &'static Location<'static>,
}

impl TrackRequests {
    /// Tracks requests in the ambient scope (the process scope of `#[graceful_main]`,
    /// or the scope entered), located at the caller's line. Outside any scope requests
    /// pass through untracked, and a line says so.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let layer = scope.enter(async { sundown::http::TrackRequests::new() }).await;
    /// # let _ = layer;
    /// # }
    /// ```
    #[track_caller]
    #[allow(clippy::new_without_default)] // `Default` could not say where it was made
    pub fn new() -> Self {
        let scope = ambient::current_scope();
        if scope.is_none() {
            crate::output::line(
                "sundown::http::TrackRequests::new() called outside any shutdown scope: \
                 requests are not tracked (use #[graceful_main], Shutdown::enter or \
                 TrackRequests::on(&scope))",
            );
        }
        TrackRequests {
            scope,
            location: Location::caller(),
        }
    }

    /// Tracks requests in `scope`, located at the caller's line.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// let layer = sundown::http::TrackRequests::on(&scope);
    /// # let _ = layer;
    /// ```
    #[track_caller]
    pub fn on(scope: &Shutdown) -> Self {
        TrackRequests {
            scope: Some(scope.clone()),
            location: Location::caller(),
        }
    }
}

impl<S> Layer<S> for TrackRequests {
    type Service = TrackRequestsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackRequestsService {
            inner,
            scope: self.scope.clone(),
            location: self.location,
        }
    }
}

/// The service [`TrackRequests`] wraps around another: each call is a tracked unit.
///
/// ```
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let app: Router = Router::new().route("/", get(|| async { "hi" }));
/// let mut svc = sundown::http::TrackRequests::on(&scope).layer(app);
/// let res = svc.call(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 200);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TrackRequestsService<S> {
    inner: S,
    scope: Option<Shutdown>,
    location: &'static Location<'static>,
}

impl<S, B, R> Service<Request<B>> for TrackRequestsService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = TrackedRequest<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(scope) = &self.scope else {
            return TrackedRequest {
                inner: Some(Inner::Plain(self.inner.call(req))),
                unit: None,
            };
        };
        let name = format!("{} {}", req.method(), req.uri().path());
        let http1 = req.version() < Version::HTTP_2;
        let guard = TaskGuard::new(scope, TaskName::Given(Cow::Owned(name)), self.location);
        let view = Ambient {
            scope: scope.clone(),
            task: Some(guard.key()),
            shielded: false,
            in_flight: true,
        };
        TrackedRequest {
            inner: Some(Inner::Tracked(ambient::scope(view, self.inner.call(req)))),
            unit: Some(Unit {
                guard,
                scope: scope.clone(),
                http1,
                deadline: None,
            }),
        }
    }
}

/// A request's tracking: its registry entry (removed when this goes), and the hard
/// token it is cut by, watched once the handler is pending.
struct Unit {
    guard: TaskGuard,
    scope: Shutdown,
    http1: bool,
    deadline: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Unit {
    /// The drain deadline passed (or shutdown was forced): the request is cut.
    fn is_cut(&mut self, cx: &mut Context<'_>) -> bool {
        let scope = &self.scope;
        self.deadline
            .get_or_insert_with(|| Box::pin(scope.waiter(true).clone().cancelled_owned()))
            .as_mut()
            .poll(cx)
            .is_ready()
    }

    /// From the first signal on, an HTTP/1 connection is closed after its response.
    fn closing(&self) -> bool {
        self.http1 && !self.scope.is_ready()
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<F> {
        Plain { #[pin] fut: F },
        Tracked { #[pin] fut: Scoped<F> },
    }
}

#[allow(non_snake_case)]
impl<F> Inner<F> {
    fn Plain(fut: F) -> Self {
        Inner::Plain { fut }
    }

    fn Tracked(fut: Scoped<F>) -> Self {
        Inner::Tracked { fut }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TrackRequestsService`]: the handler's future run as
    /// in-flight work of the scope, with the request's entry in the task table.
    ///
    /// ```
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = sundown::Shutdown::new();
    /// let app: Router = Router::new().route("/", get(std::future::pending::<&str>));
    /// let mut svc = sundown::http::TrackRequests::on(&scope).layer(app);
    /// let stuck = svc.call(Request::get("/?q=1").body(Body::empty()).unwrap());
    /// let stuck = tokio::spawn(stuck);
    /// tokio::task::yield_now().await;
    /// assert_eq!(scope.tasks()[0].name(), "GET /");
    /// # stuck.abort();
    /// # }
    /// ```
    pub struct TrackedRequest<F> {
        #[pin]
        inner: Option<Inner<F>>,
        unit: Option<Unit>,
    }

    impl<F> PinnedDrop for TrackedRequest<F> {
        fn drop(this: Pin<&mut Self>) {
            // The server let the request go (the client left): its handler is dropped
            // before its entry, and a panic in that drop is the request's failure.
            let this = this.project();
            drop_handler(this.inner, this.unit);
        }
    }
}

/// Drops the handler's future (inside the request's scope: `Scoped`), as a request ends
/// or is let go. A panic in that drop is the request's failure, as one in its poll is
/// (the request's guard is held here, not on the context stack, so the wrapper cannot
/// count it); the panic then goes on.
fn drop_handler<F>(inner: Pin<&mut Option<Inner<F>>>, unit: &mut Option<Unit>) {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut inner = inner;
        inner.set(None);
    }));
    if let Err(payload) = dropped {
        if let Some(mut unit) = unit.take() {
            unit.guard.panicked(&*payload);
        }
        std::panic::resume_unwind(payload)
    }
}

impl<F, R, E> Future for TrackedRequest<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    R: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            // Polled after it finished (a contract breach of the caller's): stay pending.
            return Poll::Pending;
        };
        // A handler that panics is a failed request, reported as a task's panic is; the
        // panic then goes on to the server as it would without the layer.
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match inner.project() {
                InnerProj::Plain { fut } => fut.poll(cx),
                InnerProj::Tracked { fut } => fut.poll(cx),
            }));
        let polled = match polled {
            Ok(polled) => polled,
            Err(payload) => {
                if let Some(mut unit) = this.unit.take() {
                    unit.guard.panicked(&*payload);
                }
                std::panic::resume_unwind(payload)
            }
        };
        match polled {
            Poll::Ready(result) => {
                drop_handler(this.inner, this.unit);
                let result = result.map(|mut res| {
                    if this.unit.as_ref().is_some_and(Unit::closing) {
                        close_connection(&mut res);
                    }
                    res
                });
                if let Some(mut unit) = this.unit.take() {
                    unit.guard.finish(TaskOutcome::Completed);
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !this.unit.as_mut().is_some_and(|u| u.is_cut(cx)) {
                    return Poll::Pending;
                }
                // Dropped inside its scope (`Scoped`), then the entry goes, counted as
                // cancelled: the drain deadline cut it.
                drop_handler(this.inner, this.unit);
                this.unit.take();
                Poll::Ready(Ok(cut_response()))
            }
        }
    }
}

fn close_connection<R>(res: &mut Response<R>) {
    res.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
}

/// What a client gets for a request cut at the drain deadline.
fn cut_response<R: Default>() -> Response<R> {
    let mut res = Response::new(R::default());
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    close_connection(&mut res);
    res
}

/// A readiness endpoint as a service: `200 ready` while the scope is ready, `503
/// shutting down` from the first signal on (before any `delay`), never cached, and
/// with `connection: close` once not ready. Mount it on the route the load balancer's
/// health check asks for.
///
/// ```
/// use axum::{Router, body::Body, http::Request};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = sundown::Shutdown::new();
/// let mut app: Router = Router::new()
///     .route_service("/ready", sundown::http::Readiness::of(&scope));
/// let probe = || Request::get("/ready").body(Body::empty()).unwrap();
/// assert_eq!(app.call(probe()).await.unwrap().status(), 200);
/// scope.trigger("SIGTERM");
/// assert_eq!(app.call(probe()).await.unwrap().status(), 503);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Readiness {
    scope: Option<Shutdown>,
}

/// A [`Readiness`] service for the ambient scope (outside any scope: always ready).
/// With axum: `Router::new().route_service("/ready", sundown::http::readiness())`.
///
/// ```
/// use axum::Router;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let scope = sundown::Shutdown::new();
/// # scope.enter(async {
/// let app: Router = Router::new().route_service("/ready", sundown::http::readiness());
/// # let _ = app;
/// # }).await;
/// # }
/// ```
pub fn readiness() -> Readiness {
    Readiness {
        scope: ambient::current_scope(),
    }
}

impl Readiness {
    /// A readiness service for `scope`.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// assert_eq!(sundown::http::Readiness::of(&scope).response().status(), 200);
    /// ```
    pub fn of(scope: &Shutdown) -> Self {
        Readiness {
            scope: Some(scope.clone()),
        }
    }

    /// The response a probe gets now.
    ///
    /// ```
    /// let scope = sundown::Shutdown::new();
    /// scope.trigger("stop");
    /// let res = sundown::http::Readiness::of(&scope).response();
    /// assert_eq!(res.status(), 503);
    /// assert_eq!(res.body(), "shutting down\n");
    /// ```
    pub fn response(&self) -> Response<String> {
        readiness_of(self.scope.as_ref().is_none_or(Shutdown::is_ready))
    }
}

impl<B> Service<Request<B>> for Readiness {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.response()))
    }
}

/// The readiness response for the ambient scope, from [`is_ready`](crate::is_ready):
/// for hyper's `service_fn`, or any handler that answers the probe itself.
///
/// ```
/// // in a hyper service: `if req.uri().path() == "/ready" { return Ok(ready_response()) }`
/// let res = sundown::http::ready_response();
/// assert_eq!(res.status(), 200);
/// assert_eq!(res.body(), "ready\n");
/// ```
pub fn ready_response() -> Response<String> {
    readiness_of(crate::is_ready())
}

fn readiness_of(ready: bool) -> Response<String> {
    let (status, body) = if ready {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    };
    let mut res = Response::new(body.to_owned());
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !ready {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}
