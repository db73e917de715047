//! `#[cancel_safe]` on the forms users write, under `#![deny(warnings)]` (and clippy's
//! default lints, which CI denies): bodies with no suspension point of their own (no
//! watcher, only the check before the body) and, for contrast, bodies with one. Each
//! runs normally when nothing is cancelled, and does not run at all when its scope or
//! its token is cancelled already (level-triggered).
#![deny(warnings)]

use std::cell::Cell;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sundown::{CancellationToken, Cancelled, Shutdown, cancel_safe};

thread_local! {
    /// How many bodies ran on this test's thread (the tests run on current-thread
    /// runtimes).
    static RAN: Cell<usize> = const { Cell::new(0) };
}

fn ran() {
    RAN.with(|r| r.set(r.get() + 1));
}

fn runs() -> usize {
    RAN.with(Cell::take)
}

#[derive(Debug)]
enum AppError {
    Cancelled(#[allow(dead_code)] Cancelled),
    Parse(#[allow(dead_code)] std::num::ParseIntError),
}

impl From<Cancelled> for AppError {
    fn from(c: Cancelled) -> Self {
        AppError::Cancelled(c)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(e: std::num::ParseIntError) -> Self {
        AppError::Parse(e)
    }
}

impl AppError {
    fn is_cancelled(&self) -> bool {
        matches!(self, AppError::Cancelled(_))
    }

    fn is_parse(&self) -> bool {
        matches!(self, AppError::Parse(_))
    }
}

// ---- Bodies with no suspension point of their own -------------------------------------

#[cancel_safe]
async fn loop_break(n: u32) -> Result<u32, Cancelled> {
    ran();
    let mut i = 0;
    loop {
        i += 1;
        if i >= n {
            break Ok(i * 2);
        }
    }
}

#[cancel_safe]
async fn labeled(n: u32) -> Result<u32, Cancelled> {
    ran();
    let v = 'found: {
        if n > 3 {
            break 'found n;
        }
        0
    };
    Ok(v)
}

#[cancel_safe]
async fn early_returns(n: u32) -> Result<u32, AppError> {
    ran();
    if n == 0 {
        return Ok(100);
    }
    if n == 1 {
        let Err(not_a_number) = "one".parse::<u32>() else {
            return Ok(1);
        };
        return Err(AppError::Parse(not_a_number));
    }
    Ok(n)
}

#[cancel_safe]
async fn parsed(text: &str) -> Result<u32, AppError> {
    ran();
    Ok(text.parse::<u32>()? + 1)
}

/// Builds a future with awaits of its own and returns it unawaited.
#[cancel_safe]
async fn builds_future(n: u32) -> Result<impl Future<Output = u32>, Cancelled> {
    ran();
    Ok(async move { std::future::ready(n).await + 1 })
}

/// Spawns a task with awaits of its own, and returns its handle.
#[cancel_safe]
async fn spawns(n: u32) -> Result<tokio::task::JoinHandle<u32>, Cancelled> {
    ran();
    Ok(tokio::spawn(async move {
        tokio::task::yield_now().await;
        n
    }))
}

/// Returns an async closure whose await is its own.
#[cancel_safe]
async fn async_closure(n: u32) -> Result<impl AsyncFn(u32) -> u32, Cancelled> {
    ran();
    Ok(async move |x: u32| std::future::ready(x + n).await)
}

/// An await compiled out: the body never suspends.
#[cancel_safe]
async fn await_compiled_out(n: u32) -> Result<u32, Cancelled> {
    ran();
    #[cfg(any())]
    std::future::pending::<()>().await;
    Ok(n)
}

/// Macros known not to await, without `.await` in their input.
#[cancel_safe]
async fn known_macros(n: u32) -> Result<String, Cancelled> {
    ran();
    let v = vec![n; 2];
    assert!(v.len() == 2, "{n}");
    debug_assert_eq!(v[0], n);
    Ok(format!("{v:?}"))
}

#[cancel_safe]
async fn generic<T, U>(t: T, u: U) -> Result<String, Cancelled>
where
    T: Display + Send,
    U: Into<String>,
{
    ran();
    Ok(format!("{t}{}", u.into()))
}

#[cancel_safe]
async fn shown(n: u32) -> Result<impl Display, Cancelled> {
    ran();
    Ok(n)
}

/// (Written as plain code, clippy would ask for the `return` to go.)
#[allow(clippy::needless_return)]
#[cancel_safe]
async fn only_a_return(n: u32) -> Result<u32, Cancelled> {
    return Ok(n + 1);
}

#[allow(clippy::needless_return)]
#[cancel_safe]
async fn only_an_awaited_return(n: u32) -> Result<u32, Cancelled> {
    return std::future::ready(Ok(n + 1)).await;
}

#[cancel_safe]
async fn stub() -> Result<u32, Cancelled> {
    unimplemented!("never runs in these tests")
}

#[cancel_safe]
async fn panics() -> Result<u32, Cancelled> {
    panic!("never runs in these tests")
}

#[cancel_safe(token = token)]
async fn with_token(token: &CancellationToken, n: u32) -> Result<u32, Cancelled> {
    ran();
    Ok(n)
}

#[cancel_safe(token = scope)]
async fn with_scope(scope: &Shutdown, n: u32) -> Result<u32, Cancelled> {
    ran();
    Ok(n)
}

#[cancel_safe(token = scope.clone())]
async fn with_temporary_scope(scope: &Shutdown, n: u32) -> Result<u32, Cancelled> {
    ran();
    Ok(n)
}

#[cancel_safe(token = CancellationToken::new())]
async fn with_fresh_token(n: u32) -> Result<u32, Cancelled> {
    ran();
    Ok(n)
}

// ---- Bodies with a suspension point (a watcher) ---------------------------------------

#[cancel_safe]
async fn awaits(n: u32) -> Result<u32, Cancelled> {
    ran();
    Ok(std::future::ready(n).await)
}

/// An await in a spawn's argument is a suspension point of the body.
#[cancel_safe]
async fn spawns_what_it_awaits(n: u32) -> Result<tokio::task::JoinHandle<u32>, Cancelled> {
    ran();
    Ok(tokio::spawn(std::future::ready(async move { n }).await))
}

/// A known macro given an `.await`: the whole body is raced.
#[cancel_safe]
async fn known_macro_with_await(n: u32) -> Result<String, Cancelled> {
    ran();
    Ok(format!("{}", std::future::ready(n).await))
}

macro_rules! twice {
    ($e:expr) => {
        $e * 2
    };
}

/// A macro that is not known never to await: the whole body is raced.
#[cancel_safe]
async fn unknown_macro(n: u32) -> Result<u32, Cancelled> {
    ran();
    Ok(twice!(n))
}

#[cancel_safe]
async fn joins(n: u32) -> Result<u32, Cancelled> {
    ran();
    let (a, b) = tokio::join!(std::future::ready(n), std::future::ready(1));
    Ok(a + b)
}

// ---- Methods and trait implementations ------------------------------------------------

struct Service {
    calls: AtomicUsize,
    token: CancellationToken,
    cleanups: AtomicUsize,
}

impl Service {
    fn new() -> Self {
        Service {
            calls: AtomicUsize::new(0),
            token: CancellationToken::new(),
            cleanups: AtomicUsize::new(0),
        }
    }

    #[cancel_safe]
    async fn by_ref(&self) -> Result<usize, Cancelled> {
        ran();
        Ok(self.calls.fetch_add(1, Ordering::SeqCst))
    }

    #[cancel_safe]
    async fn by_mut(&mut self) -> Result<usize, Cancelled> {
        ran();
        *self.calls.get_mut() += 1;
        Ok(*self.calls.get_mut())
    }

    #[cancel_safe]
    async fn by_arc(self: Arc<Self>) -> Result<usize, Cancelled> {
        ran();
        Ok(self.calls.load(Ordering::SeqCst))
    }

    #[cancel_safe(token = &self.token)]
    async fn own_token(&self) -> Result<usize, Cancelled> {
        ran();
        Ok(self.calls.fetch_add(1, Ordering::SeqCst))
    }

    #[cancel_safe(token = self.token.clone())]
    async fn own_token_cloned(&mut self) -> Result<usize, Cancelled> {
        ran();
        *self.calls.get_mut() += 1;
        Ok(*self.calls.get_mut())
    }

    /// A cleanup and a timeout on a body with no suspension point: the body cannot be
    /// cut, so the cleanup never runs (not when the call is refused either).
    #[cancel_safe(
        cleanup = async { self.cleanups.fetch_add(1, Ordering::SeqCst); },
        timeout = "1s"
    )]
    async fn with_cleanup(&self) -> Result<usize, Cancelled> {
        ran();
        Ok(self.calls.fetch_add(1, Ordering::SeqCst))
    }
}

trait Source {
    fn next(&self) -> impl Future<Output = Result<u32, AppError>> + Send;

    async fn peek(&self) -> Result<u32, AppError>;
}

impl Source for Service {
    #[cancel_safe]
    async fn next(&self) -> Result<u32, AppError> {
        ran();
        Ok(7)
    }

    #[cancel_safe(token = &self.token)]
    async fn peek(&self) -> Result<u32, AppError> {
        ran();
        Ok(8)
    }
}

/// Every free function above: `Ok` (`true`) or `Err(Cancelled)` (`false`), and what ran.
async fn call_each() -> Vec<(&'static str, bool)> {
    let scope_token = CancellationToken::new();
    let service = Arc::new(Service::new());
    let mut owned = Service::new();
    vec![
        ("loop_break", loop_break(3).await.is_ok()),
        ("labeled", labeled(5).await.is_ok()),
        ("early_returns", early_returns(7).await.is_ok()),
        ("parsed", parsed("41").await.is_ok()),
        ("builds_future", builds_future(1).await.is_ok()),
        ("spawns", spawns(1).await.is_ok()),
        ("async_closure", async_closure(1).await.is_ok()),
        ("await_compiled_out", await_compiled_out(1).await.is_ok()),
        ("known_macros", known_macros(1).await.is_ok()),
        ("generic", generic(1, "x").await.is_ok()),
        ("shown", shown(1).await.is_ok()),
        ("with_fresh_token", with_fresh_token(1).await.is_ok()),
        ("with_token", with_token(&scope_token, 1).await.is_ok()),
        ("awaits", awaits(1).await.is_ok()),
        (
            "spawns_what_it_awaits",
            spawns_what_it_awaits(1).await.is_ok(),
        ),
        (
            "known_macro_with_await",
            known_macro_with_await(1).await.is_ok(),
        ),
        ("unknown_macro", unknown_macro(1).await.is_ok()),
        ("joins", joins(1).await.is_ok()),
        ("by_ref", service.by_ref().await.is_ok()),
        ("by_mut", owned.by_mut().await.is_ok()),
        ("by_arc", service.clone().by_arc().await.is_ok()),
        ("own_token", service.own_token().await.is_ok()),
        ("own_token_cloned", owned.own_token_cloned().await.is_ok()),
        ("with_cleanup", service.with_cleanup().await.is_ok()),
        ("next", service.next().await.is_ok()),
        ("peek", service.peek().await.is_ok()),
    ]
}

#[tokio::test]
async fn every_form_runs_its_body_when_nothing_is_cancelled() {
    assert_eq!(loop_break(3).await, Ok(6));
    assert_eq!(labeled(5).await, Ok(5));
    assert_eq!(labeled(2).await, Ok(0));
    assert_eq!(early_returns(0).await.ok(), Some(100));
    assert!(early_returns(1).await.is_err_and(|e| e.is_parse()));
    assert_eq!(early_returns(9).await.ok(), Some(9));
    assert_eq!(parsed("41").await.ok(), Some(42));
    assert!(parsed("x").await.is_err_and(|e| e.is_parse()));
    let later = builds_future(1).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(later.await, 2);
    let handle = spawns(4).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(handle.await.ok(), Some(4));
    let add = async_closure(1).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(add(2).await, 3);
    assert_eq!(await_compiled_out(1).await, Ok(1));
    assert_eq!(known_macros(1).await.as_deref(), Ok("[1, 1]"));
    assert_eq!(generic(1, "x").await.as_deref(), Ok("1x"));
    assert_eq!(shown(3).await.map(|s| s.to_string()).as_deref(), Ok("3"));
    assert_eq!(only_a_return(1).await, Ok(2));
    assert_eq!(only_an_awaited_return(1).await, Ok(2));
    assert_eq!(awaits(2).await, Ok(2));
    let handle = spawns_what_it_awaits(5)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(handle.await.ok(), Some(5));
    assert_eq!(known_macro_with_await(2).await.as_deref(), Ok("2"));
    assert_eq!(unknown_macro(2).await, Ok(4));
    assert_eq!(joins(2).await, Ok(3));
    runs();

    // Outside any scope, and inside one that is not cancelled.
    let all = call_each().await;
    assert!(all.iter().all(|(_, ok)| *ok), "{all:?}");
    assert_eq!(runs(), all.len());
    let scope = Shutdown::new();
    let all = scope.enter(call_each()).await;
    assert!(all.iter().all(|(_, ok)| *ok), "{all:?}");
    assert_eq!(runs(), all.len());
    let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 0, "{report}");
}

#[tokio::test]
async fn no_form_runs_its_body_in_a_cancelled_scope() {
    let scope = Shutdown::new();
    scope.trigger("stop");
    let all = scope.enter(call_each()).await;
    // The token forms watch their own token, which nothing cancelled.
    let expected_ok = [
        "with_fresh_token",
        "with_token",
        "own_token",
        "own_token_cloned",
        "peek",
    ];
    for (name, ok) in &all {
        assert_eq!(*ok, expected_ok.contains(name), "{name}");
    }
    assert_eq!(runs(), expected_ok.len(), "only the token forms ran");

    // Bodies that would panic are not run either.
    assert!(scope.enter(stub()).await.is_err());
    assert!(scope.enter(panics()).await.is_err());
    assert!(scope.enter(only_a_return(1)).await.is_err());
    assert!(scope.enter(only_an_awaited_return(1)).await.is_err());
    assert!(
        scope
            .enter(early_returns(0))
            .await
            .is_err_and(|e| e.is_cancelled())
    );
    assert!(
        scope
            .enter(parsed("x"))
            .await
            .is_err_and(|e| e.is_cancelled())
    );
    assert_eq!(runs(), 0);

    // The scope given as the token, cancelled, from outside it.
    assert!(with_scope(&scope, 1).await.is_err());
    assert!(with_temporary_scope(&scope, 1).await.is_err());
    assert_eq!(runs(), 0);
    let live = Shutdown::new();
    assert_eq!(with_scope(&live, 1).await, Ok(1));
    assert_eq!(with_temporary_scope(&live, 1).await, Ok(1));
    assert_eq!(runs(), 2);
}

#[tokio::test]
async fn no_token_form_runs_its_body_once_its_token_is_cancelled() {
    let token = CancellationToken::new();
    token.cancel();
    assert!(with_token(&token, 1).await.is_err());
    let service = Service::new();
    service.token.cancel();
    assert!(service.own_token().await.is_err());
    assert!(service.peek().await.is_err_and(|e| e.is_cancelled()));
    let mut service = service;
    assert!(service.own_token_cloned().await.is_err());
    assert_eq!(runs(), 0);
    assert_eq!(service.calls.load(Ordering::SeqCst), 0);
    // The ambient scope is not what they watch.
    let scope = Shutdown::new();
    scope.trigger("stop");
    let fresh = Service::new();
    assert_eq!(scope.enter(fresh.own_token()).await, Ok(0));
    assert_eq!(runs(), 1);
}

#[tokio::test]
async fn a_refused_body_without_awaits_runs_no_cleanup() {
    let scope = Shutdown::new();
    let service = Service::new();
    assert_eq!(scope.enter(service.with_cleanup()).await, Ok(0));
    scope.trigger("stop");
    assert!(scope.enter(service.with_cleanup()).await.is_err());
    assert_eq!(runs(), 1);
    assert_eq!(service.cleanups.load(Ordering::SeqCst), 0);
    let report = scope.shutdown(std::time::Duration::from_secs(1)).await;
    assert_eq!(report.failure_count(), 0, "{report}");
    assert!(report.dropped_cleanups().is_empty(), "{report}");
}

/// The futures of bodies without a suspension point can be spawned on a multi-thread
/// runtime (they are `Send`), with and without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_awaits_are_send() {
    let scope = Shutdown::new();
    let service = Arc::new(Service::new());
    let s = service.clone();
    let got = scope
        .spawn(async move { (s.by_ref().await, s.own_token().await, s.next().await.ok()) })
        .await
        .ok();
    assert_eq!(got, Some((Ok(0), Ok(1), Some(7))));
    let token = CancellationToken::new();
    let got = scope
        .spawn(async move { with_token(&token, 5).await })
        .await
        .ok();
    assert_eq!(got, Some(Ok(5)));
}
