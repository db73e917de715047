//! `#[graceful_main]` and `#[cancel_safe]` used through a dependency renamed in
//! `Cargo.toml` (`sundown_renamed = { package = "sundown", .. }`), with
//! `crate = "::sundown_renamed"`, inside a module whose items shadow every name the
//! expansion could take from the prelude, `std`, `core`, `tokio` or a crate called
//! `sundown`. It compiles only if the expansion reaches everything through absolute paths
//! and the crate path it was given.
#![deny(warnings, clippy::all, clippy::pedantic)]
#![forbid(unsafe_code)]

pub mod shadowed {
    //! The annotated functions, among items named like the prelude and the crates.

    use ::core::sync::atomic::{AtomicU32, Ordering};
    use ::sundown_renamed::{Cancelled, cancel_safe, graceful_main};

    /// Shadows the prelude's `Result`.
    pub struct Result;
    /// Shadows the prelude's `Option`.
    pub struct Option;
    /// Shadows the prelude's `Some`.
    pub struct Some;
    /// Shadows the prelude's `None`.
    pub struct None;
    /// Shadows the prelude's `Box`.
    pub struct Box;
    /// Shadows the prelude's `Future`.
    pub struct Future;
    /// Shadows the prelude's `From`.
    pub struct From;
    /// Shadows the prelude's `Send`.
    pub struct Send;
    /// Shadows the prelude's `Vec`.
    pub struct Vec;
    /// Shadows `core::time::Duration` for code that would use it unqualified.
    pub struct Duration;
    /// Shadows `core::panic::Location` for code that would use it unqualified.
    pub struct Location;

    /// Shadows the prelude's `Ok`.
    #[allow(non_snake_case)]
    pub fn Ok() {}

    /// Shadows the prelude's `Err`.
    #[allow(non_snake_case)]
    pub fn Err() {}

    /// Shadows the prelude's `drop`.
    pub fn drop() {}

    /// Shadows `std` for paths written without a leading `::`.
    pub mod std {}

    /// Shadows `core` for paths written without a leading `::`.
    pub mod core {}

    /// Shadows the crate's default name, which is not a dependency here anyway.
    pub mod sundown {}

    /// Shadows the renamed crate for paths written without a leading `::`.
    pub mod sundown_renamed {}

    /// A local `tokio` whose functions generated code must not call.
    pub mod tokio {
        /// Not `tokio::spawn`.
        pub fn spawn() {}

        /// Not `tokio::task`.
        pub mod task {
            /// Not `tokio::task::spawn_blocking`.
            pub fn spawn_blocking() {}
        }
    }

    /// What a function's result is here: the real `Result`, written in full.
    pub type Outcome<T> = ::core::result::Result<T, Cancelled>;

    /// Counts what calls of [`watch`] did.
    #[derive(Debug, Default)]
    pub struct Journal {
        /// Bodies that started.
        pub started: AtomicU32,
        /// Cleanups that ran.
        pub cleaned_up: AtomicU32,
    }

    impl Journal {
        async fn clean_up(&self) {
            ::tokio::task::yield_now().await;
            self.cleaned_up.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits for ever; only cancellation ends it, as a tracked task named `heartbeat`.
    ///
    /// # Errors
    ///
    /// `Cancelled` when its scope shuts down.
    #[cancel_safe(crate = "::sundown_renamed")]
    pub async fn heartbeat() -> Outcome<()> {
        ::core::future::pending().await
    }

    /// Starts a tracked `heartbeat`, computes on a tracked blocking thread, then waits
    /// until it is cancelled; the cleanup records that it ran.
    ///
    /// # Errors
    ///
    /// `Cancelled` when its scope shuts down, after the cleanup.
    #[cancel_safe(crate = "::sundown_renamed", cleanup = journal.clean_up(), timeout = "1s")]
    pub async fn watch(journal: &Journal) -> Outcome<u32> {
        journal.started.fetch_add(1, Ordering::SeqCst);
        self::tokio::spawn();
        self::tokio::task::spawn_blocking();
        ::tokio::spawn(heartbeat());
        let sum = ::tokio::task::spawn_blocking(|| 2 + 2)
            .await
            .unwrap_or_default();
        ::core::future::pending::<()>().await;
        Outcome::Ok(sum)
    }

    /// Takes its cancellation token from an expression instead of the ambient scope.
    ///
    /// # Errors
    ///
    /// `Cancelled` when `scope` shuts down.
    #[cancel_safe(crate = "::sundown_renamed", token = scope.token())]
    pub async fn with_token(scope: &::sundown_renamed::Shutdown) -> Outcome<()> {
        Outcome::Ok(())
    }

    /// An entry point that the tests never call: running it would run a whole program.
    /// Compiling it is the point.
    #[graceful_main(
        crate = "::sundown_renamed",
        timeout = "2s",
        delay = "1s",
        signals = ["SIGTERM", "SIGINT"],
        dump_signal = "SIGUSR1",
        on_task_failure = "shutdown",
        exit = "signal",
        flavor = "multi_thread",
        worker_threads = 2
    )]
    pub async fn program(scope: ::sundown_renamed::Shutdown) -> Outcome<()> {
        with_token(&scope).await?;
        ::tokio::spawn(heartbeat());
        let journal = Journal::default();
        watch(&journal).await?;
        Outcome::Ok(())
    }

    /// The smallest entry point: no parameter, no return type; its spawns are written in
    /// each form the attributes track: imported, on a handle, in macro input, as a value.
    #[graceful_main(crate = "::sundown_renamed")]
    pub async fn unit_program() {
        use ::tokio::task as runtime_tasks;
        ::tokio::task::spawn_blocking(|| 1);
        runtime_tasks::spawn(heartbeat());
        runtime_tasks::spawn_blocking(|| 2);
        ::tokio::runtime::Handle::current().spawn(heartbeat());
        let handles = ::std::vec![
            ::tokio::spawn(heartbeat()),
            runtime_tasks::spawn(heartbeat())
        ];
        let _ = ::tokio::join!(::tokio::spawn(heartbeat()));
        let _: ::std::vec::Vec<_> = handles.into_iter().map(::tokio::spawn).collect();
    }
}
