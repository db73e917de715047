//! From asyncio: the classic shutdown and diagnosis mistakes, and what sundown does
//! about each. Every example here runs as a test.
//!
//! | lesson (asyncio) | sundown |
//! |---|---|
//! | `create_task` and forget: the task is destroyed while pending | spawns inside the attributes are rewritten to tracked ones; [`spawn`](crate::spawn) elsewhere; the drain waits for them; untracked tasks still alive at exit are counted and reported |
//! | `except Exception` swallows `CancelledError` | [`#[cancel_safe]`](crate::cancel_safe) returns `Err(Cancelled)`, and it is level-triggered: every later call returns it again, so a swallowing loop cannot keep going |
//! | an `aiohttp.ClientSession` never closed | [`on_close`](crate::on_close) hooks, run last-registered-first after the tasks stopped; `cleanup =` for per-call resources |
//! | no signal handling: SIGTERM kills mid-write | [`#[graceful_main]`](crate::graceful_main) handles SIGINT/SIGTERM (or your list), a second signal forces, a third kills |
//! | steps in the wrong order (closing the session before the tasks using it stopped) | the sequence is fixed: readiness, delay, cancel, drain, abort, close hooks, report |
//! | `wait_for(gather(...), timeout)` and hope | one budget with a deadline per step, kept by threads outside the runtime |
//! | dumping pending tasks to see what hangs | the straggler table (name, `file:line`, age, state) and `dump_signal` |
//! | a `TaskTracker` with stats and failure callbacks | [`Shutdown::stats`](crate::Shutdown::stats), [`Shutdown::tasks`](crate::Shutdown::tasks), failures reported with name and spawn location |
//! | deadlocks (nested semaphores, lock order, pool exhaustion) found with named timeouts | [`deadline`](crate::deadline): the error names the operation and the bound |
//! | background failures that vanish | panics and detached `Err`s are reported, counted, and make the exit code 1 (`on_task_failure = "shutdown"` stops the program) |
//! | nested `asyncio.run` for a sub-system | [`Shutdown::child`](crate::Shutdown::child): a scope shut down on its own, on the same runtime |
//! | `task.cancel()` is not guaranteed | cancellation is cooperative first, then stragglers are aborted; what still does not stop is reported as blocking, and the process exits anyway |
//! | an `Event` checked by the loop, then await the task | [`requested`](crate::requested) / [`is_requested`](crate::is_requested) in the loop; the drain awaits the task |
//!
//! # A task you forgot is still waited for
//!
//! ```
//! use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let scope = sundown::Shutdown::new();
//! scope.enter(async {
//!     // fire and forget: nobody keeps the handle, sundown keeps the task
//!     sundown::spawn_named("audit log", async {
//!         sundown::requested().await;
//!         tokio::time::sleep(Duration::from_millis(200)).await; // write the last entries
//!     });
//! }).await;
//! let report = scope.shutdown(Duration::from_secs(5)).await;
//! assert_eq!(report.stats().completed, 1);  // it finished: it was not destroyed pending
//! assert!(report.stragglers().is_empty());
//! # }
//! ```
//!
//! # A swallowed cancellation does not keep a loop alive
//!
//! ```
//! use std::time::Duration;
//! use sundown::{cancel_safe, Cancelled};
//!
//! #[cancel_safe]
//! async fn fetch(n: u32) -> Result<u32, Cancelled> {
//!     tokio::time::sleep(Duration::from_millis(100)).await;
//!     Ok(n)
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let scope = sundown::Shutdown::new();
//! let worker = scope.spawn(async {
//!     let mut swallowed = 0;
//!     for n in 0.. {
//!         match fetch(n).await {
//!             Ok(_) => {}
//!             // the mistake: treat cancellation like any error and carry on
//!             Err(_) if swallowed < 100 => swallowed += 1,
//!             Err(_) => break,
//!         }
//!     }
//!     swallowed
//! });
//! tokio::time::sleep(Duration::from_millis(250)).await;
//! let report = scope.shutdown(Duration::from_secs(1)).await;
//! // every call after the request returned Cancelled at once, without sleeping:
//! // the loop ran out of patience in no time and the drain did not wait for it
//! assert_eq!(worker.await.unwrap(), 100);
//! assert!(report.stragglers().is_empty());
//! # }
//! ```
//!
//! # Sessions are closed, after the tasks that use them
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let scope = sundown::Shutdown::new();
//! let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
//! scope.on_close("db pool", async move { l1.lock().unwrap().push("db pool closed") });
//! scope.on_close("http session", async move { l2.lock().unwrap().push("session closed") });
//! let s = scope.clone();
//! scope.spawn_named("poller", async move {
//!     s.requested().await;
//!     l3.lock().unwrap().push("poller stopped");
//! });
//! scope.shutdown(Duration::from_secs(5)).await;
//! assert_eq!(*log.lock().unwrap(), ["poller stopped", "session closed", "db pool closed"]);
//! # }
//! ```
//!
//! # A deadlock becomes a log line
//!
//! ```
//! use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let pool = tokio::sync::Semaphore::new(1);
//! let _outer = pool.acquire().await.unwrap();
//! // a nested acquire on an exhausted pool would wait forever
//! let err = sundown::deadline("inner pool permit", Duration::from_secs(2), pool.acquire())
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "\"inner pool permit\" timed out after 2s");
//! # }
//! ```
//!
//! # Background failures are counted and shape the exit code
//!
//! ```
//! use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let scope = sundown::Shutdown::new();
//! scope.spawn_named("cache refresher", async { panic!("redis: connection refused") });
//! tokio::task::yield_now().await;
//! assert_eq!(scope.stats().failed, 1);
//! let report = scope.shutdown(Duration::from_secs(1)).await;
//! assert_eq!(report.failures()[0].task(), "cache refresher");
//! assert_eq!(report.exit_code(), 1);
//! # }
//! ```
//!
//! # Cancellation is not guaranteed: say who did not stop
//!
//! ```
//! use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let scope = sundown::Shutdown::new();
//! let s = scope.clone();
//! scope.spawn_named("cooperative", async move {
//!     while !s.is_requested() {                       // the Event checked by the loop
//!         tokio::time::sleep(Duration::from_millis(50)).await;
//!     }
//! });
//! scope.spawn_named("deaf", async {
//!     loop { tokio::time::sleep(Duration::from_millis(50)).await; } // never looks
//! });
//! let report = scope.shutdown(Duration::from_secs(2)).await;
//! let names: Vec<&str> = report.stragglers().iter().map(|t| t.name()).collect();
//! assert_eq!(names, ["deaf"]);
//! assert_eq!(report.exit_code(), 124);
//! # }
//! ```
