//! Attribute macros for `sundown`. Use them through the `sundown` crate.
//! (Placeholder entry points; the implementation lands on its own branch.)

use proc_macro::TokenStream;

/// See `sundown::graceful_main`.
#[proc_macro_attribute]
pub fn graceful_main(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// See `sundown::cancel_safe`.
#[proc_macro_attribute]
pub fn cancel_safe(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
