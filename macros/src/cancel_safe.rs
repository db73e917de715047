//! `#[cancel_safe]`: the body stops at its next await when its scope is cancelled, runs the
//! optional cleanup, and the function returns `Err(Cancelled.into())`.

use crate::args::{self, CancelArgs};
use crate::await_sites;
use crate::expand_common::{
    braces_as_generated, cancellable_assertion_type, default_krate, duration_tokens,
    erase_impl_trait, fake_return_edge, outer_and_inner, reported_at, return_type,
};
use crate::facts::DEFAULT_CLEANUP_TIMEOUT_MS;
use crate::signature;
use crate::spawn_rewrite::{SpawnRewriter, outer_attrs, paren_expr, respan, set_outer_attrs};
use crate::walk::{self, Visitor};
use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Block, Expr, ItemFn, Macro, ReturnType, TraitItemFn};

/// Expands `#[cancel_safe(args)] item`. On any error the function is emitted unchanged
/// next to the errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let (parsed, mut errors) = args::parse_cancel(args);
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
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
                // A function syn cannot read: its own error says where and why.
                _ if signature::declares_function(&item) => errors.push(error),
                _ => errors.error_spanned(
                    &item,
                    "`#[cancel_safe]` can only be applied to an `async fn`",
                ),
            }
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    if let Some(again) =
        signature::find_attribute(&function.attrs, signature::ends_in("cancel_safe"))
    {
        // The second would rewrite the first one's expansion.
        errors.error_spanned(
            again,
            "`#[cancel_safe]` is applied twice: remove one of them",
        );
    }
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
    let mut cleanup = cleanup;
    if let Some(cleanup) = &mut cleanup {
        rewriter.visit_expr(cleanup);
    }
    rewriter.warn_hidden_spawns(&mut block);

    let (ret, ret_span) = return_type(&sig);
    // `impl Trait` may only be written in the signature: where the expansion names the
    // return type, `_` lets the body decide it, and the assertion looks at the error only.
    let (ret, assertion) = match &sig.output {
        ReturnType::Type(_, ty) => {
            let mut named = (**ty).clone();
            erase_impl_trait(&mut named, &syn::parse_quote!(_));
            (quote!(#named), cancellable_assertion_type(ty))
        }
        ReturnType::Default => (ret, None),
    };
    let fake_return = fake_return_edge(&ret, ret_span);
    let (body, suspends) = body_tokens(&block, &krate, &fake_return);
    // The return type is given one span here and in `cancelled_error` below, so a missing
    // `From<Cancelled>` is reported once, at the return type, instead of twice.
    let ret_once = respan(ret.clone(), ret_span);
    let assert_cancellable = assertion.map(|assertion| {
        let assertion = respan(quote!(#assertion), ret_span);
        quote_spanned! {ret_span=>
            #krate::__private::assert_cancellable::<#assertion>();
        }
    });
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
    let run_cleanup = cleanup.map(|cleanup| {
        // Everything done with the cleanup is reported at the user's expression, so a
        // cleanup that is not a future gives errors there and nowhere else.
        let at_cleanup = reported_at(cleanup.span());
        let krate = respan(quote!(#krate), at_cleanup);
        // Not even evaluated for a call refused before its body ran: nothing to clean
        // up, and a cleanup written as a plain function call must not run its side
        // effects.
        quote_spanned! {at_cleanup=>
            let __sundown_cancel = if __sundown_cancel.body_ran() {
                let __sundown_cleanup = #cleanup;
                let __sundown_classify =
                    #krate::__classify!(#krate::__private::probe_future(&__sundown_cleanup));
                __sundown_cancel
                    .run_cleanup(__sundown_cleanup, __sundown_classify)
                    .await
            } else {
                __sundown_cancel
            };
        }
    });
    // Reported at the return type like `assert_cancellable`, so an error type without
    // `From<Cancelled>` is reported there and nowhere else.
    let cancelled_error = quote_spanned! {ret_span=>
        ::core::result::Result::Err(::core::convert::From::from(__sundown_cancel.into_error()))
    };

    // A body with no suspension point cannot be cut where it stands: it only needs the
    // level-triggered check before it runs, and no watcher (a call costs a load and a
    // branch).
    let (watcher, precheck) = if suspends {
        (
            quote! {
                let mut __sundown_watch = #krate::__private::Watcher::new(&__SUNDOWN_SITE, __sundown_token);
            },
            quote!(__sundown_watch.precheck()),
        )
    } else {
        (
            TokenStream::new(),
            quote!(#krate::__private::precheck(&__SUNDOWN_SITE, &__sundown_token)),
        )
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
            #watcher
            let __sundown_exit = '__sundown_body: {
                // The check is a statement of the block that holds the body: a body that is
                // one diverging expression (`unimplemented!()`, `return Ok(..)`) is then
                // not a sub-expression that diverges (clippy's `diverging_sub_expression`).
                let __sundown_value: #ret_once = {
                    if let ::core::option::Option::Some(__sundown_cancel) = #precheck {
                        break '__sundown_body ::core::result::Result::Err(__sundown_cancel);
                    }
                    #body
                };
                #[allow(unreachable_code)]
                break '__sundown_body ::core::result::Result::Ok(__sundown_value);
            };
            match __sundown_exit {
                ::core::result::Result::Ok(__sundown_value) => __sundown_value,
                ::core::result::Result::Err(__sundown_cancel) => {
                    #run_cleanup
                    #cancelled_error
                }
            }
        }
    }
}

/// The body as the function runs it. When every suspension point is in view, each
/// `.await` races the call's token where it stands and the body runs inline, in the
/// function's own state machine: a call that does not suspend pays a load and a branch.
/// When a macro call could hide an await (`select!`, `join!`, any macro not known to be
/// free of them), the whole body is one future raced against the token instead.
/// Also says whether the body has a suspension point at all.
fn body_tokens(block: &Block, krate: &syn::Path, fake_return: &TokenStream) -> (TokenStream, bool) {
    let mut block = block.clone();
    braces_as_generated(&mut block);
    let block = &block;
    let mut inline = block.clone();
    let mut points = SuspensionPoints {
        krate,
        hidden: false,
        nested: 0,
        texts: Vec::new(),
        count: 0,
    };
    walk::visit_block(&mut points, &mut inline);
    if !points.hidden {
        return (quote!(#inline), points.count > 0);
    }
    let mut whole = block.clone();
    crate::await_sites::AwaitSites::new(krate).visit_block(&mut whole);
    let point = suspension_point(
        krate,
        quote! {
            async {
                #fake_return
                #whole
            }
        },
        block.span(),
        Span::call_site(),
        quote!(::core::option::Option::None),
    );
    (point, true)
}

/// `base.await` where the body may stop: the value, or out of the body with the
/// cancellation.
fn suspension_point(
    krate: &syn::Path,
    base: TokenStream,
    span: Span,
    await_span: Span,
    site: TokenStream,
) -> TokenStream {
    let race = respan(quote!(#krate::__private::race), reported_at(span));
    // The call's parentheses and the `.await` are the user's too: an `EXPR` that is not
    // a future is reported at the user's code, not at the attribute.
    let mut args = Group::new(
        Delimiter::Parenthesis,
        quote!(#base, &mut __sundown_watch, #site),
    );
    args.set_span(reported_at(span));
    let dot_await = quote_spanned!(reported_at(await_span)=> .await);
    quote! {
        match #race #args #dot_await {
            ::core::result::Result::Ok(__sundown_ready) => __sundown_ready,
            ::core::result::Result::Err(__sundown_cancel) => {
                break '__sundown_body ::core::result::Result::Err(__sundown_cancel)
            }
        }
    }
}

/// Rewrites the body's own `.await`s into suspension points that record their site, and
/// notes whether any macro call could hold an await the rewrite cannot see. The awaits of
/// closures and async blocks inside the body are not suspension points of the body
/// (it awaits those blocks through one of its own): they only record their site.
struct SuspensionPoints<'a> {
    krate: &'a syn::Path,
    hidden: bool,
    /// How many closures or async blocks deep the walk is.
    nested: usize,
    /// The texts of the awaits being walked, outermost first.
    texts: Vec<String>,
    /// The body's own suspension points.
    count: usize,
}

/// Macros that never await on their own: with no `.await` in their input, they add no
/// suspension point.
const NO_AWAIT_MACROS: &[&str] = &[
    "anyhow",
    "assert",
    "assert_eq",
    "assert_ne",
    "bail",
    "cfg",
    "column",
    "compile_error",
    "concat",
    "dbg",
    "debug",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "ensure",
    "env",
    "eprint",
    "eprintln",
    "error",
    "file",
    "format",
    "format_args",
    "include_bytes",
    "include_str",
    "info",
    "json",
    "line",
    "matches",
    "module_path",
    "option_env",
    "panic",
    "pin",
    "print",
    "println",
    "stringify",
    "todo",
    "trace",
    "unimplemented",
    "unreachable",
    "vec",
    "warn",
    "write",
    "writeln",
];

/// The runtime's macros that a tracked spawn's rewrite writes (`KRATE::__classify!`),
/// which never await.
const OWN_MACROS: &[&str] = &["__classify", "__probe_argument"];

impl SuspensionPoints<'_> {
    fn is_own_macro(&self, mac: &Macro) -> bool {
        let krate = self.krate;
        let path = &mac.path;
        let path = quote!(#path).to_string();
        OWN_MACROS.iter().any(|name| {
            let name = syn::Ident::new(name, Span::call_site());
            quote!(#krate::#name).to_string() == path
        })
    }
}

fn mentions_await(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "await",
        TokenTree::Group(group) => mentions_await(&group.stream()),
        _ => false,
    })
}

impl Visitor for SuspensionPoints<'_> {
    fn enter_async(&mut self) {
        self.nested += 1;
    }

    fn leave_async(&mut self) {
        self.nested -= 1;
    }

    fn enter(&mut self, expr: &Expr) {
        if let Expr::Await(wait) = expr {
            let base = &wait.base;
            self.texts.push(await_sites::expr_text(quote!(#base)));
        }
    }

    fn expr(&mut self, expr: &mut Expr) {
        let Expr::Await(wait) = expr else { return };
        let text = self.texts.pop().unwrap_or_default();
        if self.nested > 0 {
            *expr = await_sites::recorded(self.krate, wait, &text);
            return;
        }
        self.count += 1;
        let base = &wait.base;
        let site = await_sites::site(self.krate, wait.await_token.span, &text);
        let site = quote!(::core::option::Option::Some(#site));
        let point = suspension_point(
            self.krate,
            quote!(#base),
            base.span(),
            wait.await_token.span,
            site,
        );
        let attrs = outer_attrs(expr);
        // In parentheses, not a block: the temporaries of `base` (`app.db()` in
        // `app.db().lock().await.push(1)`) live to the end of the user's statement, as
        // with a plain await, where a block's tail would drop them at its end.
        *expr = paren_expr(point);
        set_outer_attrs(expr, attrs);
    }

    fn macro_call(&mut self, mac: &mut Macro) {
        if self.nested > 0 {
            return;
        }
        let known = mac
            .path
            .segments
            .last()
            .is_some_and(|last| NO_AWAIT_MACROS.iter().any(|m| last.ident == m));
        if !(known || self.is_own_macro(mac)) || mentions_await(&mac.tokens) {
            self.hidden = true;
        }
    }

    fn verbatim(&mut self, tokens: &mut TokenStream) {
        // A tracked spawn: its argument's awaits are seen where they stand.
        if !walk::visit_verbatim(self, tokens) && self.nested == 0 {
            self.hidden = true;
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
                    conn.ready().await;
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(
            expanded.contains("renamed :: __private :: Watcher"),
            "{expanded}"
        );
        assert!(!expanded.contains("sundown ::"), "{expanded}");
    }

    fn expand_body(body: proc_macro2::TokenStream) -> String {
        expand(
            quote!(),
            quote!(
                async fn f() -> Result<(), E> { #body }
            ),
        )
        .to_string()
    }

    #[test]
    fn each_await_of_the_body_races_the_token_where_it_stands() {
        let expanded = expand_body(quote!(
            let a = read().await?;
            let b = async { inner().await };
            write(a, b.await).await.unwrap();
            Ok(())
        ));
        // Three suspension points of the body's own; the async block's await is its own.
        assert_eq!(
            expanded.matches(":: __private :: race (").count(),
            3,
            "{expanded}"
        );
        // The async block's await records its site, without racing the token.
        assert_eq!(
            expanded.matches(":: __private :: at (inner ()").count(),
            1,
            "{expanded}"
        );
        assert_eq!(
            expanded.matches(":: __private :: AwaitSite :: new").count(),
            4,
            "{expanded}"
        );
        assert!(!expanded.contains("async {  if false"), "{expanded}");
    }

    #[test]
    fn a_macro_that_may_await_makes_the_whole_body_one_raced_future() {
        for body in [
            quote!(tokio::select! { _ = a() => {} }; Ok(())),
            quote!(let (x, y) = tokio::join!(a(), b()); Ok(())),
            quote!(println!("{}", a().await); Ok(())),
        ] {
            let expanded = expand_body(body);
            assert_eq!(
                expanded.matches(":: __private :: race (").count(),
                1,
                "{expanded}"
            );
            assert!(
                expanded.contains(":: __private :: race (async {"),
                "{expanded}"
            );
        }
        let expanded = expand_body(quote!(println!("{}", a()); b().await; Ok(())));
        assert!(!expanded.contains("race (async"), "{expanded}");
    }

    /// Regression: the rewritten spawns of a body were tokens its walk could not see
    /// into, taken for a macro that may hide an await: a body that only spawned was raced
    /// whole behind a watcher, and the awaits of the blocks it spawned recorded no site.
    #[test]
    fn macros_that_never_await_leave_a_body_without_suspension_points() {
        for body in [
            quote!(anyhow::ensure!(n > 0, "n is {}", n); Ok(n)),
            quote!(if n == 0 { anyhow::bail!("empty") } Ok(n)),
            quote!(let v = serde_json::json!({ "n": n }); Ok(v)),
            quote!(let p = env!("CARGO_PKG_NAME"); Ok(p.len())),
            quote!(let f = std::pin::pin!(work()); Ok(f.is_terminated())),
            quote!(if cfg!(debug_assertions) {
                Ok(line!())
            } else {
                Ok(0)
            }),
        ] {
            let expanded = expand_body(body);
            assert!(!expanded.contains("Watcher"), "{expanded}");
        }
        // With an await in its input, the same macro is a suspension point.
        let expanded = expand_body(quote!(anyhow::ensure!(ready().await, "no"); Ok(())));
        assert!(expanded.contains("Watcher"), "{expanded}");
    }

    #[test]
    fn a_spawn_is_not_a_suspension_point() {
        for body in [
            quote!(tokio::spawn(work()); Ok(())),
            quote!(let h = tokio::spawn(async move { tick().await }); drop(h); Ok(())),
            quote!(spawn(work()); Ok(())),
            quote!(handle.spawn(work()); Ok(())),
            quote!(let hs: Vec<_> = fs.into_iter().map(tokio::spawn).collect(); Ok(hs)),
            quote!(tokio::task::spawn_blocking(compute); Ok(())),
            quote!(let f = async { tokio::spawn(work()) }; Ok(f)),
        ] {
            let expanded = expand_body(body);
            assert!(!expanded.contains("Watcher"), "{expanded}");
            assert!(
                expanded.contains(":: __private :: precheck (& __SUNDOWN_SITE"),
                "{expanded}"
            );
        }
        // An await in the spawned block is the block's: recorded, not raced.
        let expanded = expand_body(quote!(tokio::spawn(async move { tick().await }); Ok(())));
        assert_eq!(
            expanded.matches(":: __private :: at (tick ()").count(),
            1,
            "{expanded}"
        );
        // An await in a spawn's argument is the body's own: a suspension point, inline.
        let expanded = expand_body(quote!(tokio::spawn(serve(accept().await)); Ok(())));
        assert_eq!(
            expanded.matches(":: __private :: race (").count(),
            1,
            "{expanded}"
        );
        assert!(!expanded.contains("race (async"), "{expanded}");
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
        assert!(!expanded.contains("Watcher"), "{expanded}");
        let declaration = quote!(
            async fn poll(&self) -> Result<(), E>;
        );
        let expanded = expand(quote!(), declaration).to_string();
        assert!(
            expanded.contains("not on the trait's declaration"),
            "{expanded}"
        );
    }

    /// Regression: syn's error for a function it cannot read was replaced by "can only
    /// be applied to an `async fn`", which said nothing of what was wrong.
    #[test]
    fn a_function_syn_cannot_read_gets_syns_error() {
        for expand in [expand, crate::graceful_main::expand] {
            let expanded =
                expand(quote!(), quote!(async fn poll(x: ) -> Result<(), E> {})).to_string();
            assert!(!expanded.contains("can only be applied"), "{expanded}");
            assert!(expanded.contains("compile_error"), "{expanded}");
            let expanded = expand(
                quote!(),
                quote!(
                    struct NotAFunction;
                ),
            )
            .to_string();
            assert!(expanded.contains("can only be applied"), "{expanded}");
        }
    }

    /// Regression: `#[cancel_safe]` written twice expanded the expansion, and the user got
    /// a borrow error (E0499) about generated code.
    #[test]
    fn applied_twice_is_an_error_that_says_so() {
        let expanded = expand(
            quote!(),
            quote!(
                #[sundown::cancel_safe]
                async fn poll() -> Result<(), E> {
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(expanded.contains("applied twice"), "{expanded}");
        assert!(!expanded.contains("Watcher"), "{expanded}");
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
