//! The attributes' expansions use absolute paths only: they compile next to user code that
//! shadows the prelude, `std`, `core` and `tokio`, and they pass clippy's pedantic lints.
#![deny(warnings, clippy::all, clippy::pedantic)]

/// Names that shadow what generated code must not depend on.
mod shadowing {
    #![allow(dead_code, non_camel_case_types, clippy::pedantic)]

    pub struct Result;
    pub struct Option;
    pub struct Box;
    pub struct Future;
    pub struct Duration;
    pub struct Location;
    pub struct From;
    pub struct Shutdown;
    pub struct Ok;
    pub struct Err;
    pub struct Some;
    pub struct None;
    pub struct core;
    pub struct std;
    pub struct sundown;
    pub fn drop() {}
    pub fn assert_cancellable() {}
}

mod tokio {
    //! A local `tokio` whose `spawn` must not be reached by generated code.
    pub fn spawn(_: u8) {}
}

mod user {
    // Everything above shadows the prelude and the crates in this module.
    #[allow(unused_imports, clippy::wildcard_imports)]
    use super::shadowing::*;
    use ::sundown::{Cancelled, cancel_safe, graceful_main};

    type Outcome<T> = ::core::result::Result<T, Cancelled>;

    #[derive(Debug)]
    pub struct Session {
        pub flushed: bool,
    }

    impl Session {
        async fn flush(&mut self) {
            ::tokio::task::yield_now().await;
            self.flushed = true;
        }

        #[cancel_safe(cleanup = self.flush(), timeout = "1s")]
        pub async fn get(&mut self) -> Outcome<u32> {
            Outcome::Ok(7)
        }
    }

    /// The local `tokio::spawn` is left alone (in parentheses, which says so without the
    /// warning a callee that is not tokio's gets); `::tokio::spawn` is tracked.
    #[cancel_safe]
    pub async fn fan_out(session: &Session) -> Outcome<bool> {
        (super::tokio::spawn)(1);
        let handle = ::tokio::spawn(async { 1_u8 });
        let _ = handle.await;
        Outcome::Ok(session.flushed)
    }

    /// A body that only spawns: no suspension point of its own, the spawned block's
    /// await recorded.
    #[cancel_safe]
    pub async fn launch() -> Outcome<()> {
        ::core::mem::drop(::tokio::spawn(async {
            ::tokio::task::yield_now().await;
        }));
        Outcome::Ok(())
    }

    #[cancel_safe(token = scope.token())]
    pub async fn with_token(scope: &::sundown::Shutdown) -> Outcome<()> {
        Outcome::Ok(())
    }

    /// Never called: a second entry point would run a whole program.
    #[graceful_main(timeout = "2s", signals = ["SIGTERM"], flavor = "current_thread")]
    pub async fn program(scope: ::sundown::Shutdown) -> ::core::result::Result<(), Cancelled> {
        let mut session = Session { flushed: false };
        let got = session.get().await?;
        assert_eq!(got, 7);
        fan_out(&session).await?;
        with_token(&scope).await?;
        ::core::mem::drop(::tokio::task::spawn_blocking(|| 1 + 1));
        ::core::result::Result::Ok(())
    }

    #[graceful_main]
    pub async fn unit_program() {}
}

#[test]
fn cancel_safe_functions_run_like_the_plain_functions_outside_a_scope() {
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("no tokio runtime: {error}"));
    runtime.block_on(async {
        let mut session = user::Session { flushed: false };
        assert_eq!(session.get().await.ok(), Some(7));
        assert!(!session.flushed);
        assert_eq!(user::fan_out(&session).await.ok(), Some(false));
        assert_eq!(user::launch().await.ok(), Some(()));
    });
    let entry_points: [fn(); 2] = [user::program, user::unit_program];
    assert_eq!(entry_points.len(), 2);
}
