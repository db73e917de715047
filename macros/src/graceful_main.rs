//! `#[graceful_main]`: turns an `async fn` into a synchronous entry point that runs it
//! under `__private::run_main`.

use crate::args::{self, ExitMode, FailurePolicy, Flavor, MainArgs};
use crate::entry::entry_body;
use crate::error::Errors;
use crate::expand_common::{default_krate, duration_tokens, outer_and_inner};
use crate::signature::{self, declares_function};
use crate::spawn_rewrite::respan;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{ItemFn, PatType};

/// Expands `#[graceful_main(args)] item`.
///
/// When only the arguments are wrong, the function is expanded with the default
/// configuration and the errors are appended, so the body keeps being checked and the
/// program keeps its entry point. When the signature is wrong, the function is emitted
/// unchanged next to the errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let (parsed, mut errors) = args::parse_main(args);
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            // A function syn cannot read: its own error says where and why.
            if declares_function(&item) {
                errors.push(error);
            } else {
                errors.error_spanned(
                    &item,
                    "`#[graceful_main]` can only be applied to an `async fn`",
                );
            }
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    let krate = parsed.krate.clone().unwrap_or_else(default_krate);
    let mut signature_errors = Errors::new();
    // Above `#[tokio::main]`, its attribute is among the function's; below it, the function
    // is what it made, no longer `async`: either way the two cannot be combined.
    if let Some(tokio_main) = signature::find_attribute(&function.attrs, signature::is_tokio_main) {
        signature_errors.error_spanned(tokio_main, signature::WITH_TOKIO_MAIN);
    } else if function.sig.asyncness.is_none() && signature::is_tokio_main_output(&function.block) {
        signature_errors.error_spanned(function.sig.fn_token, signature::WITH_TOKIO_MAIN);
    }
    if let Some(again) =
        signature::find_attribute(&function.attrs, signature::ends_in("graceful_main"))
    {
        signature_errors.error_spanned(
            again,
            "`#[graceful_main]` is applied twice: remove one of them",
        );
    }
    let scope_parameter = if signature_errors.is_empty() {
        signature::check_main(&function.sig, &krate, &mut signature_errors).cloned()
    } else {
        None
    };
    if !signature_errors.is_empty() {
        errors.absorb(signature_errors);
        let errors = errors.to_compile_errors();
        let unchanged = unchanged(function);
        return quote!(#unchanged #errors);
    }
    let config = if errors.is_empty() {
        parsed
    } else {
        MainArgs {
            krate: parsed.krate,
            ..MainArgs::default()
        }
    };
    let expanded = expand_checked(function, scope_parameter.as_ref(), &config, &krate);
    let errors = errors.to_compile_errors();
    quote!(#expanded #errors)
}

/// The user's function as written. An `async fn main` is nested inside a plain `main` so
/// that the crate still has an entry point and the user sees only the attribute's errors.
fn unchanged(function: ItemFn) -> TokenStream {
    if function.sig.ident == "main" && function.sig.asyncness.is_some() {
        quote! {
            fn main() {
                #[allow(dead_code, unused_variables, clippy::all)]
                #function
            }
        }
    } else {
        quote!(#function)
    }
}

fn expand_checked(
    function: ItemFn,
    scope_parameter: Option<&PatType>,
    config: &MainArgs,
    krate: &syn::Path,
) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        // `default` cannot be written on an entry point; rustc rejects it before this runs.
        modifiers: _,
        sig,
        block,
    } = function;
    // The body's inner attributes (`#![allow(..)]`) stay inside the generated function.
    let (attrs, inner_attrs) = outer_and_inner(attrs);
    let name = &sig.ident;
    let name_text = name.to_string();
    let body = entry_body(krate, &name_text, &sig, *block);
    let (output_is_debug, run) = (body.output_is_debug, body.run);
    // The parameter keeps the type as written, so the user's `use sundown::Shutdown`
    // stays used.
    let bind_scope = match scope_parameter {
        Some(PatType { pat, ty, .. }) => quote!(let #pat: #ty = __sundown_scope;),
        None => quote!(let _ = __sundown_scope;),
    };
    let fields = config_fields(config, krate);
    // `#[track_caller]` on `run_main` reports the function's own line.
    let run_main = respan(quote!(#krate::__private::run_main), name.span());
    // The locals are interpolated: they keep the expansion's hygiene, not the name's
    // (which differs when the name comes from a `macro_rules!` caller's tokens).
    let (config, main) = (quote!(__sundown_config), quote!(__sundown_main));
    let call = quote_spanned!(name.span()=> #run_main(#config, #main));

    quote! {
        #(#attrs)*
        #vis fn #name() {
            #(#inner_attrs)*
            #output_is_debug
            #[allow(clippy::needless_update)]
            let __sundown_config = #krate::__private::MainConfig {
                name: #name_text,
                #(#fields,)*
                ..#krate::__private::MainConfig::DEFAULT
            };
            let __sundown_main = |__sundown_scope: #krate::Shutdown| async move {
                #bind_scope
                #run
            };
            #call
        }
    }
}

/// The `MainConfig` fields for the settings the user wrote; the rest come from `DEFAULT`.
fn config_fields(config: &MainArgs, krate: &syn::Path) -> Vec<TokenStream> {
    let mut fields = Vec::new();
    if let Some(timeout) = &config.timeout {
        let value = duration_tokens(timeout.value);
        fields.push(quote!(timeout: #value));
    }
    if let Some(delay) = &config.delay {
        let value = duration_tokens(delay.value);
        fields.push(quote!(delay: #value));
    }
    if let Some(signals) = &config.signals {
        let names = &signals.value;
        fields.push(quote!(signals: &[#(#names),*]));
    }
    if let Some(dump) = &config.dump_signal {
        let name = &dump.value;
        fields.push(quote!(dump_signal: ::core::option::Option::Some(#name)));
    }
    if let Some(policy) = &config.on_task_failure {
        let variant = match policy.value {
            FailurePolicy::Log => quote!(Log),
            FailurePolicy::Shutdown => quote!(Shutdown),
        };
        fields.push(quote!(on_task_failure: #krate::__private::FailurePolicy::#variant));
    }
    if let Some(exit) = &config.exit {
        let variant = match exit.value {
            ExitMode::Code => quote!(Code),
            ExitMode::Signal => quote!(Signal),
        };
        fields.push(quote!(exit: #krate::__private::ExitMode::#variant));
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
    if let Some(debug) = &config.debug {
        let on = debug.value;
        fields.push(quote!(debug: #on));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::expand;
    use quote::quote;

    fn idents(tokens: proc_macro2::TokenStream, out: &mut Vec<String>) {
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(ident) => out.push(ident.to_string()),
                proc_macro2::TokenTree::Group(group) => idents(group.stream(), out),
                _ => {}
            }
        }
    }

    fn expanded_idents(
        args: proc_macro2::TokenStream,
        item: proc_macro2::TokenStream,
    ) -> Vec<String> {
        let mut out = Vec::new();
        idents(expand(args, item), &mut out);
        out
    }

    #[test]
    fn crate_override_replaces_every_runtime_path() {
        let idents = expanded_idents(
            quote!(crate = "::renamed", timeout = "3s"),
            quote!(
                async fn main(scope: Shutdown) {
                    tokio::spawn(work());
                }
            ),
        );
        assert!(idents.iter().any(|i| i == "renamed"));
        assert!(!idents.iter().any(|i| i == "sundown"), "{idents:?}");
    }

    #[test]
    fn only_written_settings_are_emitted() {
        let idents = expanded_idents(
            quote!(timeout = "3s"),
            quote!(
                async fn main() {}
            ),
        );
        assert!(idents.iter().any(|i| i == "timeout"));
        for absent in [
            "delay",
            "signals",
            "dump_signal",
            "flavor",
            "worker_threads",
            "exit",
        ] {
            assert!(!idents.iter().any(|i| i == absent), "{absent} emitted");
        }
        assert!(idents.iter().any(|i| i == "DEFAULT"));
    }

    #[test]
    fn argument_errors_still_expand_with_the_defaults() {
        let expanded = expand(
            quote!(timout = "3s"),
            quote!(
                async fn main() {}
            ),
        )
        .to_string();
        assert!(expanded.contains("run_main"), "{expanded}");
        assert!(expanded.contains("compile_error"), "{expanded}");
        assert!(!expanded.contains("timeout :"), "{expanded}");
    }

    #[test]
    fn signature_errors_keep_the_function_and_an_entry_point() {
        let expanded = expand(
            quote!(),
            quote!(
                async fn main<T>() {}
            ),
        )
        .to_string();
        assert!(!expanded.contains("run_main"), "{expanded}");
        assert!(expanded.starts_with("fn main () {"), "{expanded}");
        assert!(expanded.contains("async fn main < T > ()"), "{expanded}");
        let expanded = expand(
            quote!(),
            quote!(
                fn main() {}
            ),
        )
        .to_string();
        assert!(expanded.starts_with("fn main () { }"), "{expanded}");
        let expanded = expand(
            quote!(),
            quote!(
                struct NotAFunction;
            ),
        )
        .to_string();
        assert!(expanded.starts_with("struct NotAFunction ;"), "{expanded}");
        assert!(
            expanded.contains("can only be applied to an `async fn`"),
            "{expanded}"
        );
    }

    /// Regression: `#![allow(..)]` at the top of the body was emitted before the generated
    /// `fn main`, where rustc rejects an inner attribute (found by the property tests).
    #[test]
    fn inner_attributes_of_the_body_stay_inside_the_function() {
        let expanded = expand(
            quote!(),
            quote!(
                async fn main() -> Result<(), E> {
                    #![allow(unused)]
                }
            ),
        );
        let file: syn::File =
            syn::parse2(expanded.clone()).unwrap_or_else(|e| panic!("{e}: {expanded}"));
        assert!(file.attrs.is_empty(), "{expanded}");
        assert!(
            expanded
                .to_string()
                .starts_with("fn main () { # ! [allow (unused)]"),
            "{expanded}"
        );
    }
}
