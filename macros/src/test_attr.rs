//! `#[sundown::test]`: `#[tokio::test]` whose body runs in a scope of its own, shut
//! down when the body returns, under `__private::run_test`.

use crate::args::{
    Flavor, MAIN_KEYS, RawArg, Setting, choice, crate_path, duration_value, for_each_known,
    setting_of, worker_threads,
};
use crate::entry::entry_body;
use crate::error::Errors;
use crate::expand_common::{default_krate, duration_tokens, outer_and_inner};
use crate::signature::is_obviously_not_result;
use crate::spawn_rewrite::respan;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{Expr, ExprLit, ItemFn, Lit, ReturnType, Type};

/// The arguments of `#[sundown::test]`: `#[tokio::test]`'s, plus the end-of-test budget.
#[derive(Default)]
pub(crate) struct TestArgs {
    pub(crate) flavor: Option<Setting<Flavor>>,
    pub(crate) worker_threads: Option<Setting<usize>>,
    pub(crate) start_paused: Option<Setting<bool>>,
    pub(crate) timeout: Option<Setting<u64>>,
    pub(crate) krate: Option<syn::Path>,
}

pub(crate) const TEST_KEYS: &[&str] = &[
    "flavor",
    "worker_threads",
    "start_paused",
    "timeout",
    "crate",
];

/// Parses and checks the arguments of `#[sundown::test]`.
pub(crate) fn parse_test(args: TokenStream) -> (TestArgs, Errors) {
    let mut errors = Errors::new();
    let mut parsed = TestArgs::default();
    let pairs = match syn::parse::Parser::parse2(
        syn::punctuated::Punctuated::<RawArg, syn::Token![,]>::parse_terminated,
        args,
    ) {
        Ok(pairs) => pairs.into_iter().collect(),
        Err(error) => {
            errors.push(error);
            return (parsed, errors);
        }
    };
    let interpret = |pair: RawArg, errors: &mut Errors| {
        let name = pair.key.unraw().to_string();
        let pair_tokens = pair.to_token_stream();
        let Some(value) = &pair.value else { return };
        match name.as_str() {
            "timeout" => {
                parsed.timeout =
                    duration_value(&name, value, false, errors).map(setting_of(&pair_tokens));
            }
            "flavor" => {
                parsed.flavor = choice(
                    &name,
                    value,
                    &[
                        ("current_thread", Flavor::CurrentThread),
                        ("multi_thread", Flavor::MultiThread),
                    ],
                    errors,
                )
                .map(setting_of(&pair_tokens));
            }
            "worker_threads" => {
                parsed.worker_threads = worker_threads(value, errors).map(setting_of(&pair_tokens));
            }
            "start_paused" => {
                parsed.start_paused =
                    bool_value(&name, value, errors).map(setting_of(&pair_tokens));
            }
            "crate" => parsed.krate = crate_path(value, errors),
            _ => {}
        }
    };
    for_each_known(
        pairs,
        "sundown::test",
        TEST_KEYS,
        ("graceful_main", MAIN_KEYS),
        &mut errors,
        interpret,
    );
    check_combinations(&parsed, &mut errors);
    (parsed, errors)
}

pub(crate) fn bool_value(key: &str, value: &Expr, errors: &mut Errors) -> Option<bool> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Bool(b), ..
    }) = value
    {
        return Some(b.value);
    }
    errors.error_spanned(
        value,
        format!("`{key}` expects `true` or `false`: `{key} = true`"),
    );
    None
}

/// As `#[tokio::test]`: one thread unless `flavor = "multi_thread"`, and tokio's paused
/// clock only on one thread.
fn check_combinations(parsed: &TestArgs, errors: &mut Errors) {
    let flavor = parsed
        .flavor
        .as_ref()
        .map_or(Flavor::CurrentThread, |f| f.value);
    if let Some(threads) = &parsed.worker_threads {
        if flavor == Flavor::CurrentThread {
            errors.error_spanned(
                &threads.pair,
                "`worker_threads` needs `flavor = \"multi_thread\"`: a `#[sundown::test]` runs \
                 on the test's thread unless told otherwise",
            );
        }
    }
    if let Some(paused) = &parsed.start_paused {
        if paused.value && flavor == Flavor::MultiThread {
            errors.error_spanned(
                &paused.pair,
                "`start_paused = true` needs the `current_thread` flavor: tokio's paused clock \
                 only works on a single-threaded runtime",
            );
        }
    }
}

/// Expands `#[sundown::test(args)] item`.
///
/// When only the arguments are wrong, the function is expanded with the default
/// configuration and the errors are appended. When the signature is wrong, the function
/// is emitted unchanged (and not as a test) next to the errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let (parsed, mut errors) = parse_test(args);
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            errors.error_spanned(
                &item,
                "`#[sundown::test]` can only be applied to an `async fn`",
            );
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    let krate = parsed.krate.clone().unwrap_or_else(default_krate);
    let mut signature_errors = Errors::new();
    check_signature(&function, &mut signature_errors);
    if !signature_errors.is_empty() {
        errors.absorb(signature_errors);
        let errors = errors.to_compile_errors();
        return quote! {
            #[allow(dead_code, unused_variables, clippy::all)]
            #function
            #errors
        };
    }
    let config = if errors.is_empty() {
        parsed
    } else {
        TestArgs {
            krate: parsed.krate,
            ..TestArgs::default()
        }
    };
    let expanded = expand_checked(function, &config, &krate);
    let errors = errors.to_compile_errors();
    quote!(#expanded #errors)
}

fn check_signature(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        errors.error_spanned(
            sig.fn_token,
            "`#[sundown::test]` needs an `async fn`: the `async` keyword is missing from the \
             function declaration",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.error_spanned(
            &sig.generics,
            "a `#[sundown::test]` function cannot have generic parameters",
        );
    }
    if let Some(first) = sig.inputs.first() {
        errors.error_spanned(
            first,
            "a `#[sundown::test]` function takes no parameters; its scope is \
             `sundown::Shutdown::current()`",
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        let unit = matches!(&**ty, Type::Tuple(t) if t.elems.is_empty());
        if !unit && is_obviously_not_result(ty) {
            errors.error_spanned(
                ty,
                "a `#[sundown::test]` function must return `()` or `Result<(), E>` where \
                 `E: Debug`",
            );
        }
    }
    for attr in &function.attrs {
        if attr.path().is_ident("test") {
            errors.error_spanned(
                attr,
                "`#[sundown::test]` already makes this function a test: remove this `#[test]`",
            );
        }
    }
}

fn expand_checked(function: ItemFn, config: &TestArgs, krate: &syn::Path) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        modifiers: _,
        sig,
        block,
    } = function;
    let (attrs, inner_attrs) = outer_and_inner(attrs);
    let name = &sig.ident;
    let name_text = name.to_string();
    let body = entry_body(krate, &name_text, &sig, *block);
    let (output_is_debug, run) = (body.output_is_debug, body.run);
    let mut fields = Vec::new();
    if let Some(timeout) = &config.timeout {
        let value = duration_tokens(timeout.value);
        fields.push(quote!(timeout: #value));
    }
    if let Some(flavor) = &config.flavor {
        let variant = match flavor.value {
            Flavor::MultiThread => quote!(MultiThread),
            Flavor::CurrentThread => quote!(CurrentThread),
        };
        fields.push(quote!(flavor: #krate::__private::Flavor::#variant));
    }
    if let Some(threads) = &config.worker_threads {
        let count = threads.value;
        fields.push(quote!(worker_threads: ::core::option::Option::Some(#count)));
    }
    // Spanned at the argument, so a tokio without `test-util` is reported there.
    let start_paused = match &config.start_paused {
        Some(Setting { value: true, pair }) => {
            let call = respan(
                quote!(__sundown_runtime.start_paused(true);),
                first_span(pair),
            );
            quote!(#call)
        }
        _ => quote!(),
    };
    let run_test = respan(quote!(#krate::__private::run_test), name.span());

    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            #(#inner_attrs)*
            #output_is_debug
            #[allow(clippy::needless_update)]
            let __sundown_config = #krate::__private::TestConfig {
                name: #name_text,
                #(#fields,)*
                ..#krate::__private::TestConfig::DEFAULT
            };
            #[allow(unused_mut)]
            let mut __sundown_runtime = #krate::__private::test_runtime(&__sundown_config);
            #start_paused
            let __sundown_test = |__sundown_scope: #krate::Shutdown| async move {
                let _ = __sundown_scope;
                #run
            };
            #run_test(__sundown_config, __sundown_runtime, __sundown_test)
        }
    }
}

fn first_span(tokens: &TokenStream) -> proc_macro2::Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(proc_macro2::Span::call_site, |t| t.span())
}

#[cfg(test)]
mod tests {
    use super::{expand, parse_test};
    use quote::quote;

    fn errors(args: proc_macro2::TokenStream) -> Vec<String> {
        parse_test(args).1.messages()
    }

    #[test]
    fn accepts_every_option() {
        let (parsed, errs) = parse_test(quote!(
            flavor = "current_thread",
            start_paused = true,
            timeout = "500ms",
            crate = "::renamed"
        ));
        assert!(errs.is_empty(), "{:?}", errs.messages());
        assert_eq!(parsed.timeout.map(|s| s.value), Some(500));
        assert_eq!(parsed.start_paused.map(|s| s.value), Some(true));
        assert!(errors(quote!(flavor = "multi_thread", worker_threads = 2)).is_empty());
        assert!(errors(quote!()).is_empty());
    }

    #[test]
    fn argument_errors_are_all_reported() {
        let errs = errors(quote!(
            worker_threads = 2,
            start_paused = "yes",
            timout = "1s",
            delay = "1s"
        ));
        let expected = [
            "`start_paused` expects `true` or `false`",
            "unknown argument `timout`: did you mean `timeout`?",
            "`delay` is an argument of `#[graceful_main]`, not of `#[sundown::test]`",
            "`worker_threads` needs `flavor = \"multi_thread\"`",
        ];
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
        for start in expected {
            assert!(
                errs.iter().any(|e| e.starts_with(start)),
                "{start:?} in {errs:#?}"
            );
        }
        assert!(
            errors(quote!(flavor = "multi_thread", start_paused = true))[0]
                .starts_with("`start_paused = true` needs the `current_thread` flavor")
        );
        assert_eq!(
            errors(quote!(timeout = "0s")),
            ["`timeout` must be longer than zero"]
        );
    }

    #[test]
    fn expands_to_a_test_that_runs_in_a_scope() {
        let expanded = expand(
            quote!(start_paused = true),
            quote!(
                #[should_panic]
                async fn leaks() -> anyhow::Result<()> {
                    tokio::spawn(work());
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(
            expanded.starts_with("# [:: core :: prelude :: v1 :: test] # [should_panic]"),
            "{expanded}"
        );
        for part in [
            "run_test",
            "spawn_tracked",
            "start_paused (true)",
            "TestConfig",
        ] {
            assert!(expanded.contains(part), "{part} in {expanded}");
        }
        assert!(!expanded.contains("compile_error"), "{expanded}");
    }

    #[test]
    fn signature_errors_keep_the_function_without_making_it_a_test() {
        let expanded = expand(
            quote!(),
            quote!(
                #[test]
                fn not_async(x: u32) -> u32 {
                    x
                }
            ),
        )
        .to_string();
        assert!(!expanded.contains("run_test"), "{expanded}");
        assert!(!expanded.contains("prelude :: v1 :: test"), "{expanded}");
        for message in [
            "needs an `async fn`",
            "takes no parameters",
            "must return `()` or `Result<(), E>`",
            "already makes this function a test",
        ] {
            assert!(expanded.contains(message), "{message} in {expanded}");
        }
    }
}
