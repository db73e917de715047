//! Pieces both expansions share.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, ReturnType, Signature};

/// The runtime crate's path when `crate = "..."` is not given.
pub(crate) fn default_krate() -> syn::Path {
    syn::parse_quote!(::sundown)
}

/// A span that resolves like generated code (so lints treat it as the macro's) but is
/// reported at `user`'s position (so type errors point at the user's tokens).
pub(crate) fn reported_at(user: Span) -> Span {
    Span::call_site().located_at(user)
}

/// The function's return type as tokens, `()` when none is written, and where to report
/// errors about it.
pub(crate) fn return_type(sig: &Signature) -> (TokenStream, Span) {
    match &sig.output {
        ReturnType::Default => (quote!(()), reported_at(sig.ident.span())),
        ReturnType::Type(_, ty) => (quote!(#ty), reported_at(ty.span())),
    }
}

/// Splits a function's attributes into the outer ones (`#[...]` before it) and the inner
/// ones (`#![...]` at the top of its body), which syn keeps in one list. Emitting an inner
/// attribute before the function would apply it to the enclosing module, or be rejected.
pub(crate) fn outer_and_inner(attrs: Vec<Attribute>) -> (Vec<Attribute>, Vec<Attribute>) {
    attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer))
}

/// `Duration::from_millis(millis)` through an absolute path.
pub(crate) fn duration_tokens(millis: u64) -> TokenStream {
    quote!(::core::time::Duration::from_millis(#millis))
}

/// The "fake return edge": an unreachable `return` of a value of the declared return type,
/// so the async block holding the body gets that type. `?` then converts errors as in the
/// original function, and mismatches are reported against the user's signature.
pub(crate) fn fake_return_edge(ret: &TokenStream, span: Span) -> TokenStream {
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable,
            clippy::used_underscore_binding
        )]
        if false {
            let __sundown_fake_return: #ret = loop {};
            return __sundown_fake_return;
        }
    }
}
