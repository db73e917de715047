//! Await sites: each `.await` the attributes see is made to record where it is when it
//! returns `Pending`, for the task table's "waiting at" column.
//!
//! `EXPR.await` becomes `KRATE::__private::at(EXPR, { static SITE; &SITE }).await`:
//! a `static` per `.await` (its `file:line:col` and the expression's text, built at
//! compile time), and a wrapper that notes the site in a thread-local when `EXPR` is
//! pending. Closures and async blocks written in the body are walked too: they are the
//! bodies of the tasks it spawns.

use crate::error::Errors;
use crate::expand_common::{default_krate, reported_at};
use crate::spawn_rewrite::respan;
use crate::walk::{self, Visitor};
use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Block, Expr, ExprAwait};

/// The longest expression text a site keeps; longer ones are cut with `…`.
const TEXT_CHARS: usize = 60;

/// The expression as a person writes it: tokens joined without the spaces
/// `to_string` puts around `.`, `::`, brackets and commas.
pub(crate) fn expr_text(tokens: TokenStream) -> String {
    let mut out = String::new();
    write_tokens(tokens, &mut out);
    let out = out.trim().to_owned();
    match out.char_indices().nth(TEXT_CHARS) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out,
    }
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
    let mut glue = true;
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => (" { ", " }"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(g.stream(), out);
                out.push_str(close);
                glue = false;
            }
            TokenTree::Punct(p) => {
                let c = p.as_char();
                match c {
                    '.' | ':' | '<' | '>' | '&' | '!' | '?' | '\'' => out.push(c),
                    ',' | ';' => {
                        out.push(c);
                        out.push(' ');
                    }
                    _ => {
                        if !out.ends_with(' ') {
                            out.push(' ');
                        }
                        out.push(c);
                        if p.spacing() == proc_macro2::Spacing::Alone {
                            out.push(' ');
                        }
                    }
                }
                glue = true;
            }
            other => {
                if !glue && !out.ends_with(' ') && !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&other.to_string());
                glue = false;
            }
        }
    }
}

/// `{ static __SUNDOWN_AWAIT: AwaitSite = …; &__SUNDOWN_AWAIT }`: the site of an
/// `.await` at `at`, awaiting `text`.
pub(crate) fn site(krate: &syn::Path, at: Span, text: &str) -> TokenStream {
    let caller = respan(quote!(::core::panic::Location::caller()), at);
    quote! {
        {
            static __SUNDOWN_AWAIT: #krate::__private::AwaitSite =
                #krate::__private::AwaitSite::new(#caller, #text);
            &__SUNDOWN_AWAIT
        }
    }
}

/// `EXPR.await` recorded: `at(EXPR, SITE).await`.
pub(crate) fn recorded(krate: &syn::Path, wait: &ExprAwait, text: &str) -> Expr {
    let base = &wait.base;
    let site = site(krate, wait.await_token.span, text);
    let at = respan(quote!(#krate::__private::at), wait.await_token.span);
    // The call's parentheses too: an `EXPR` that is not a future is reported at the
    // user's code, not at the attribute.
    let mut args = Group::new(Delimiter::Parenthesis, quote!(#base, #site));
    args.set_span(reported_at(base.span()));
    let mut recorded: Expr = syn::parse_quote!(#at #args.await);
    if let Expr::Await(new) = &mut recorded {
        // `#[cfg(..)] x.await;` stays compiled out.
        new.attrs = wait.attrs.clone();
        // An await where none is allowed (in a closure that is not `async`) is reported
        // at the user's `.await`, not at the attribute.
        let at_await = reported_at(wait.await_token.span);
        new.dot_token.span = reported_at(wait.dot_token.span);
        new.await_token.span = at_await;
    }
    recorded
}

/// Makes every `.await` of a body record its site (closures and async blocks too).
pub(crate) struct AwaitSites<'a> {
    krate: &'a syn::Path,
    /// The texts of the awaits being walked, outermost first.
    texts: Vec<String>,
}

impl<'a> AwaitSites<'a> {
    pub(crate) fn new(krate: &'a syn::Path) -> Self {
        AwaitSites {
            krate,
            texts: Vec::new(),
        }
    }

    pub(crate) fn visit_block(&mut self, block: &mut Block) {
        walk::visit_block(self, block);
    }
}

impl Visitor for AwaitSites<'_> {
    fn enter(&mut self, expr: &Expr) {
        if let Expr::Await(wait) = expr {
            let base = &wait.base;
            self.texts.push(expr_text(quote!(#base)));
        }
    }

    fn expr(&mut self, expr: &mut Expr) {
        let Expr::Await(wait) = expr else { return };
        let text = self.texts.pop().unwrap_or_default();
        *expr = recorded(self.krate, wait, &text);
    }

    /// A tracked spawn (`#[cancel_safe]` rewrites spawns first): the awaits of what it
    /// spawns record their sites too.
    fn verbatim(&mut self, tokens: &mut TokenStream) {
        walk::visit_verbatim(self, tokens);
    }
}

/// Expands `#[sundown::track_awaits(args)] item`: the function's awaits record their
/// sites, and nothing else changes. On an error the function is emitted unchanged next
/// to it.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let krate = parse_args(args, &mut errors);
    let mut function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(error) => {
            if crate::signature::declares_function(&item) {
                errors.push(error);
            } else {
                errors.error_spanned(
                    &item,
                    "`#[track_awaits]` can only be applied to an `async fn`",
                );
            }
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    if function.sig.asyncness.is_none() {
        errors.error_spanned(
            function.sig.fn_token,
            "`#[track_awaits]` can only be applied to an `async fn`: it records where the \
             function's `.await`s wait",
        );
    }
    if !errors.is_empty() {
        let errors = errors.to_compile_errors();
        return quote!(#function #errors);
    }
    let krate = krate.unwrap_or_else(default_krate);
    AwaitSites::new(&krate).visit_block(&mut function.block);
    quote!(#function)
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> Option<syn::Path> {
    use syn::parse::Parser;
    let pairs =
        match syn::punctuated::Punctuated::<crate::args::RawArg, syn::Token![,]>::parse_terminated
            .parse2(args)
        {
            Ok(pairs) => pairs,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
    let mut krate = None;
    for pair in pairs {
        match (pair.key.to_string().as_str(), &pair.value) {
            ("crate", Some(value)) => krate = crate::args::crate_path(value, errors),
            _ => errors.error_spanned(
                &pair,
                format!(
                    "unknown argument `{}` for `#[track_awaits]`; the only argument is `crate`",
                    pair.key
                ),
            ),
        }
    }
    krate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_as_written() {
        assert_eq!(expr_text(quote!(pool.acquire())), "pool.acquire()");
        assert_eq!(
            expr_text(quote!(self.db.get(&key, 3))),
            "self.db.get(&key, 3)"
        );
        assert_eq!(
            expr_text(quote!(std::future::pending::<()>())),
            "std::future::pending::<()>()"
        );
        assert_eq!(expr_text(quote!(rx.recv())), "rx.recv()");
        assert_eq!(expr_text(quote!(a + b)), "a + b");
        let long = expr_text(quote!(very_long_function_name(
            with_a_long_argument,
            and_another_one,
            and_more_still
        )));
        assert!(long.ends_with('…') && long.chars().count() == TEXT_CHARS + 1);
    }

    #[test]
    fn every_await_records_its_site_with_its_own_text() {
        let krate = default_krate();
        let mut block: Block = syn::parse_quote!({
            let x = outer(inner().await).await;
            tokio::spawn(async move { rx.recv().await });
            let f = |c| async move { c.close().await };
        });
        AwaitSites::new(&krate).visit_block(&mut block);
        let text = quote!(#block).to_string();
        assert_eq!(text.matches(":: __private :: at (").count(), 4, "{text}");
        for t in [
            "\"inner()\"",
            "\"outer(inner().await)\"",
            "\"rx.recv()\"",
            "\"c.close()\"",
        ] {
            assert!(text.contains(t), "{t} in {text}");
        }
    }

    #[test]
    fn a_plain_fn_is_an_error() {
        let out = expand(
            quote!(),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(
            out.contains("can only be applied to an `async fn`"),
            "{out}"
        );
        let out = expand(
            quote!(crate = "x", level = 1),
            quote!(
                async fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("unknown argument `level`"), "{out}");
    }
}
