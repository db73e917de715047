//! `#[cancel_safe]`: the body stops at its next await when its scope is cancelled, runs the
//! optional cleanup, and the function returns `Err(Cancelled.into())`.

use crate::args::{self, CancelArgs, DEFAULT_CLEANUP_TIMEOUT_MS};
use crate::expand_common::{
    default_krate, duration_tokens, fake_return_edge, outer_and_inner, reported_at, return_type,
};
use crate::signature;
use crate::spawn_rewrite::{SpawnRewriter, respan};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, TraitItemFn};

/// Expands `#[cancel_safe(args)] item`. On any error the function is emitted unchanged
/// next to the errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let (parsed, mut errors) = args::parse_cancel(args);
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            match syn::parse2::<TraitItemFn>(item.clone()) {
                Ok(TraitItemFn {
                    default: None,
                    semi_token: Some(semi),
                    sig,
                    ..
                }) => errors.error_spanned(
                    semi,
                    format!(
                        "`#[cancel_safe]` needs the function's body: put it on each \
                         implementation of `{}`, not on the trait's declaration",
                        sig.ident
                    ),
                ),
                _ => errors.error_spanned(
                    &item,
                    "`#[cancel_safe]` can only be applied to an `async fn`",
                ),
            }
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    signature::check_cancel(&function.sig, &mut errors);
    if !errors.is_empty() {
        let errors = errors.to_compile_errors();
        return quote!(#function #errors);
    }
    expand_checked(function, parsed)
}

fn expand_checked(function: ItemFn, config: CancelArgs) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        mut block,
    } = function;
    // `default` (specialization) stays where the user wrote it.
    let defaultness = modifiers.defaultness;
    let CancelArgs {
        cleanup,
        timeout,
        token,
        krate,
    } = config;
    // The body's inner attributes (`#![allow(..)]`) stay inside the function.
    let (attrs, inner_attrs) = outer_and_inner(attrs);
    let krate = krate.unwrap_or_else(default_krate);
    let name = &sig.ident;
    let name_text = name.to_string();
    let mut rewriter = SpawnRewriter::new(&krate, name_text.clone());
    rewriter.visit_block(&mut block);

    let (ret, ret_span) = return_type(&sig);
    let fake_return = fake_return_edge(&ret, ret_span);
    // The return type is given one span here and in `cancelled_error` below, so a missing
    // `From<Cancelled>` is reported once, at the return type, instead of twice.
    let ret_once = respan(ret.clone(), ret_span);
    let assert_cancellable = quote_spanned! {ret_span=>
        #krate::__private::assert_cancellable::<#ret_once>();
    };
    let caller = respan(quote!(::core::panic::Location::caller()), name.span());
    let cleanup_timeout =
        duration_tokens(timeout.map_or(DEFAULT_CLEANUP_TIMEOUT_MS, |setting| setting.value));
    let has_cleanup = cleanup.is_some();
    let choose_token = match &token {
        None => quote! {
            let __sundown_token = #krate::__private::TokenChoice::Ambient;
        },
        Some(expr) => {
            // Bound by `let` so a temporary token lives as long as the call; reported at
            // the user's expression when it is not a token.
            let at_token = reported_at(expr.span());
            let krate = respan(quote!(#krate), at_token);
            quote_spanned! {at_token=>
                let __sundown_token_source = &(#expr);
                let __sundown_token = #krate::__private::TokenChoice::Given(
                    #krate::__private::TokenSource::token_ref(__sundown_token_source),
                );
            }
        }
    };
    let run_cleanup = cleanup.map(|mut cleanup| {
        rewriter.visit_expr(&mut cleanup);
        // Everything done with the cleanup is reported at the user's expression, so a
        // cleanup that is not a future gives errors there and nowhere else.
        let at_cleanup = reported_at(cleanup.span());
        let krate = respan(quote!(#krate), at_cleanup);
        quote_spanned! {at_cleanup=>
            let __sundown_cleanup = #cleanup;
            let __sundown_classify =
                #krate::__classify!(#krate::__private::probe_future(&__sundown_cleanup));
            let __sundown_cancel = __sundown_cancel
                .run_cleanup(__sundown_cleanup, __sundown_classify)
                .await;
        }
    });
    // Reported at the return type like `assert_cancellable`, so an error type without
    // `From<Cancelled>` is reported there and nowhere else.
    let cancelled_error = quote_spanned! {ret_span=>
        ::core::result::Result::Err(::core::convert::From::from(__sundown_cancel.into_error()))
    };

    quote! {
        #(#attrs)*
        #vis #defaultness #sig {
            #(#inner_attrs)*
            #assert_cancellable
            // Built once at compile time: a call pays nothing for it.
            static __SUNDOWN_SITE: #krate::__private::CancelSite = #krate::__private::CancelSite::new(
                #name_text,
                #caller,
                #cleanup_timeout,
                #has_cleanup,
            );
            #choose_token
            let __sundown_exit = #krate::__private::cancel_safe_body(
                &__SUNDOWN_SITE,
                __sundown_token,
                async {
                    #fake_return
                    #block
                },
            )
            .await;
            match __sundown_exit {
                #krate::__private::BodyExit::Finished(__sundown_value) => __sundown_value,
                #krate::__private::BodyExit::Cancelled(__sundown_cancel) => {
                    #run_cleanup
                    #cancelled_error
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expand;
    use quote::quote;

    #[test]
    fn crate_override_replaces_every_runtime_path() {
        let expanded = expand(
            quote!(
                crate = "renamed",
                cleanup = conn.close(),
                token = conn.token()
            ),
            quote!(
                async fn poll(conn: &Conn) -> Result<(), E> {
                    tokio::spawn(work());
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(
            expanded.contains("renamed :: __private :: cancel_safe_body"),
            "{expanded}"
        );
        assert!(!expanded.contains("sundown ::"), "{expanded}");
    }

    #[test]
    fn signature_is_kept() {
        let expanded = expand(
            quote!(),
            quote!(
                pub(crate) async fn get<'a, T: Clone>(
                    &'a self,
                    x: impl AsRef<T>,
                ) -> Result<&'a T, E>
                where
                    T: Send,
                {
                    todo!()
                }
            ),
        )
        .to_string();
        assert!(
            expanded.starts_with(
                "pub (crate) async fn get < 'a , T : Clone > (& 'a self , x : impl AsRef < T > ,) \
                 -> Result < & 'a T , E > where T : Send , {"
            ),
            "{expanded}"
        );
        assert!(expanded.contains("TokenChoice :: Ambient"), "{expanded}");
        assert!(expanded.contains("from_millis (5000u64)"), "{expanded}");
        assert!(expanded.contains(", false ,"), "{expanded}");
    }

    #[test]
    fn errors_leave_the_function_unchanged() {
        let item = quote!(
            async fn flush() {}
        );
        let expanded = expand(quote!(), item.clone()).to_string();
        assert!(expanded.starts_with(&item.to_string()), "{expanded}");
        assert!(expanded.contains("compile_error"), "{expanded}");
        let expanded = expand(
            quote!(timeout = "1x"),
            quote!(
                async fn f() -> Result<(), E> {}
            ),
        )
        .to_string();
        assert!(!expanded.contains("cancel_safe_body"), "{expanded}");
        let declaration = quote!(
            async fn poll(&self) -> Result<(), E>;
        );
        let expanded = expand(quote!(), declaration).to_string();
        assert!(
            expanded.contains("not on the trait's declaration"),
            "{expanded}"
        );
    }

    /// Regression: `#![allow(..)]` at the top of the body was emitted before the function,
    /// where rustc rejects an inner attribute (found by the property tests).
    #[test]
    fn inner_attributes_of_the_body_stay_inside_the_function() {
        let expanded = expand(
            quote!(),
            quote!(
                #[inline]
                async fn poll() -> Result<(), E> {
                    #![allow(unused)]
                    Ok(())
                }
            ),
        );
        let file: syn::File =
            syn::parse2(expanded.clone()).unwrap_or_else(|e| panic!("{e}: {expanded}"));
        assert!(file.attrs.is_empty(), "{expanded}");
        assert!(
            expanded.to_string().starts_with(
                "# [inline] async fn poll () -> Result < () , E > { # ! [allow (unused)]"
            ),
            "{expanded}"
        );
    }
}
