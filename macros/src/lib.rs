//! Attribute macros for `sundown`. Use them through the `sundown` crate, which documents
//! them: `sundown::graceful_main` and `sundown::cancel_safe`.
//!
//! This crate only parses, checks and expands. What the expansion calls lives in
//! `sundown::__private`; `EXPANSION.md` beside this crate is the contract between the two.
#![forbid(unsafe_code)]

mod args;
mod await_sites;
mod cancel_safe;
mod entry;
mod error;
mod expand_common;
mod facts;
mod graceful_main;
#[cfg(test)]
mod proptests;
mod signature;
#[cfg(test)]
mod snapshots;
mod spawn_rewrite;
mod suggest;
mod test_attr;
mod walk;

use proc_macro::TokenStream;

/// Runs an `async fn` as the program's entry point with graceful shutdown.
/// See `sundown::graceful_main`.
#[proc_macro_attribute]
pub fn graceful_main(args: TokenStream, item: TokenStream) -> TokenStream {
    graceful_main::expand(args.into(), item.into()).into()
}

/// Runs an `async fn` as a test in a scope of its own, failing it when the scope does
/// not shut down cleanly. See `sundown::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(args.into(), item.into()).into()
}

/// Makes an `async fn` return `Err(Cancelled)` promptly when its scope shuts down,
/// after running an optional cleanup. See `sundown::cancel_safe`.
#[proc_macro_attribute]
pub fn cancel_safe(args: TokenStream, item: TokenStream) -> TokenStream {
    cancel_safe::expand(args.into(), item.into()).into()
}

/// Makes a plain `async fn`'s awaits record where they wait, for the task table. See
/// `sundown::track_awaits`.
#[proc_macro_attribute]
pub fn track_awaits(args: TokenStream, item: TokenStream) -> TokenStream {
    await_sites::expand(args.into(), item.into()).into()
}
