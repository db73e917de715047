//! Function-signature checks for both attributes.

use crate::error::Errors;
use syn::{FnArg, PatType, PathArguments, ReturnType, Signature, Type};

/// Checks a `#[graceful_main]` signature; returns its `Shutdown` parameter, if any.
///
/// Accepted: `async fn NAME()` or `async fn NAME(PAT: Shutdown)`, returning nothing, `()`,
/// or anything else that is not obviously something other than a `Result`.
pub(crate) fn check_main<'a>(
    sig: &'a Signature,
    krate: &syn::Path,
    errors: &mut Errors,
) -> Option<&'a PatType> {
    if sig.asyncness.is_none() {
        errors.error_spanned(
            sig.fn_token,
            "`#[graceful_main]` needs an `async fn`: the `async` keyword is missing from the \
             function declaration",
        );
    }
    if let Some(token) = &sig.constness {
        errors.error_spanned(token, "a `#[graceful_main]` function cannot be `const`");
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        errors.error_spanned(token, "a `#[graceful_main]` function cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.error_spanned(
            abi,
            "a `#[graceful_main]` function cannot have an `extern` ABI",
        );
    }
    if !sig.generics.params.is_empty() {
        errors.error_spanned(
            &sig.generics,
            "a `#[graceful_main]` function cannot have generic parameters",
        );
    }
    if let Some(clause) = &sig.generics.where_clause {
        errors.error_spanned(
            clause,
            "a `#[graceful_main]` function cannot have a `where` clause",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.error_spanned(variadic, "a `#[graceful_main]` function cannot be variadic");
    }
    let mut scope_parameter = None;
    for (index, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => errors.error_spanned(
                receiver,
                "`#[graceful_main]` cannot be applied to a method: the program's entry point \
                 has no `self`; it may take one parameter of type `Shutdown`",
            ),
            FnArg::Typed(_) if index > 0 => errors.error_spanned(
                input,
                "a `#[graceful_main]` function takes at most one parameter, of type `Shutdown`",
            ),
            FnArg::Typed(typed) => {
                if is_shutdown(&typed.ty, krate) {
                    scope_parameter = Some(typed);
                } else {
                    errors.error_spanned(
                        &typed.ty,
                        "the parameter of a `#[graceful_main]` function must have type \
                         `Shutdown`: it receives the process scope",
                    );
                }
            }
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && !is_unit(ty)
        && is_obviously_not_result(ty)
    {
        errors.error_spanned(
            ty,
            "a `#[graceful_main]` function must return `()` or `Result<(), E>` where \
                 `E: Debug`",
        );
    }
    scope_parameter
}

/// The first of `attrs` whose path, as its segments' names, `matches`.
pub(crate) fn find_attribute(
    attrs: &[syn::Attribute],
    matches: impl Fn(&[String]) -> bool,
) -> Option<&syn::Attribute> {
    attrs.iter().find(|attr| {
        let segments: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        matches(&segments)
    })
}

/// `#[tokio::main]`, or `#[main]` imported from tokio.
pub(crate) fn is_tokio_main(path: &[String]) -> bool {
    matches!(path, [main] if main == "main")
        || matches!(path, [tokio, main] if tokio == "tokio" && main == "main")
}

/// A path that ends in `name`, however the attribute was imported.
pub(crate) fn ends_in(name: &str) -> impl Fn(&[String]) -> bool + '_ {
    move |path| path.last().is_some_and(|last| last == name)
}

/// Whether `item`'s tokens declare a function (`fn` before its first brace), so that an
/// item syn cannot parse is reported with syn's error rather than as "not a function".
pub(crate) fn declares_function(item: &proc_macro2::TokenStream) -> bool {
    item.clone()
        .into_iter()
        .take_while(|tree| {
            !matches!(tree, proc_macro2::TokenTree::Group(group)
                if group.delimiter() == proc_macro2::Delimiter::Brace)
        })
        .any(|tree| matches!(tree, proc_macro2::TokenTree::Ident(ident) if ident == "fn"))
}

/// Why `#[graceful_main]` and `#[tokio::main]` do not go together.
pub(crate) const WITH_TOKIO_MAIN: &str = "`#[graceful_main]` cannot be combined with \
    `#[tokio::main]`: it builds and runs the tokio runtime itself, so that the shutdown \
    deadlines are kept outside it; remove `#[tokio::main]` and give `flavor` and \
    `worker_threads` to `#[graceful_main]` instead";

/// Whether `block` is what `#[tokio::main]` made of an `async fn` (it builds a runtime
/// and calls `block_on`): `#[graceful_main]` was written below `#[tokio::main]`.
pub(crate) fn is_tokio_main_output(block: &syn::Block) -> bool {
    fn mentions(tokens: proc_macro2::TokenStream, found: &mut [bool; 2]) {
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(ident) if ident == "block_on" => found[0] = true,
                proc_macro2::TokenTree::Ident(ident) if ident == "Builder" => found[1] = true,
                proc_macro2::TokenTree::Group(group) => mentions(group.stream(), found),
                _ => {}
            }
        }
    }
    let mut found = [false; 2];
    mentions(quote::quote!(#block), &mut found);
    found == [true, true]
}

/// Checks a `#[cancel_safe]` signature.
///
/// Any `async fn` with a body is accepted — free function, method with any receiver,
/// trait-impl method, generic — as long as it can return a `Result`.
pub(crate) fn check_cancel(sig: &Signature, errors: &mut Errors) {
    if sig.asyncness.is_none() {
        errors.error_spanned(
            sig.fn_token,
            "`#[cancel_safe]` needs an `async fn`: the `async` keyword is missing from the \
             function declaration",
        );
    }
    const NEEDS_RESULT: &str = "cancellation needs a `Result` whose error type implements \
                                `From<sundown::Cancelled>`";
    match &sig.output {
        ReturnType::Default => errors.error_spanned(
            &sig.ident,
            format!(
                "a `#[cancel_safe]` function must return `Result<T, E>`: {NEEDS_RESULT}, and \
                 this function returns `()`"
            ),
        ),
        ReturnType::Type(_, ty) if is_obviously_not_result(ty) => errors.error_spanned(
            ty,
            format!("a `#[cancel_safe]` function must return `Result<T, E>`: {NEEDS_RESULT}"),
        ),
        ReturnType::Type(..) => {}
    }
}

/// Whether `ty` names the scope type: `Shutdown`, `sundown::Shutdown`,
/// `::sundown::Shutdown`, or `KRATE::Shutdown` for the crate path in use.
fn is_shutdown(ty: &Type, krate: &syn::Path) -> bool {
    let ty = peel(ty);
    let Type::Path(path) = ty else { return false };
    if path.qself.is_some()
        || path
            .path
            .segments
            .iter()
            .any(|segment| !matches!(segment.arguments, PathArguments::None))
    {
        return false;
    }
    let written: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let mut krate_path: Vec<String> = krate
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    krate_path.push("Shutdown".to_owned());
    written == ["Shutdown"] || written == ["sundown", "Shutdown"] || written == krate_path
}

fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => peel(&inner.elem),
        Type::Group(inner) => peel(&inner.elem),
        other => other,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(peel(ty), Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// Types that can be seen to be something other than a `Result` without type checking.
/// Anything else (a `Result`, an alias like `io::Result<()>`, a type parameter) passes,
/// and the type checker has the final word.
pub(crate) fn is_obviously_not_result(ty: &Type) -> bool {
    const NOT_RESULTS: &[&str] = &[
        "bool", "char", "str", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32",
        "u64", "u128", "usize", "f32", "f64", "String", "Option", "Vec", "Box", "ExitCode",
    ];
    match peel(ty) {
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Ptr(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Never(_)
        | Type::ImplTrait(_)
        | Type::TraitObject(_)
        | Type::FnPtr(_) => true,
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| NOT_RESULTS.contains(&last.ident.to_string().as_str())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{is_obviously_not_result, is_shutdown};
    use syn::parse_quote;

    #[test]
    fn shutdown_paths() {
        let default: syn::Path = parse_quote!(::sundown);
        let renamed: syn::Path = parse_quote!(::sundown_renamed);
        assert!(is_shutdown(&parse_quote!(Shutdown), &default));
        assert!(is_shutdown(&parse_quote!(sundown::Shutdown), &default));
        assert!(is_shutdown(&parse_quote!(::sundown::Shutdown), &default));
        assert!(is_shutdown(
            &parse_quote!(sundown_renamed::Shutdown),
            &renamed
        ));
        assert!(is_shutdown(
            &parse_quote!(::sundown_renamed::Shutdown),
            &renamed
        ));
        assert!(!is_shutdown(&parse_quote!(&Shutdown), &default));
        assert!(!is_shutdown(&parse_quote!(other::Shutdown), &default));
        assert!(!is_shutdown(&parse_quote!(Shutdown<T>), &default));
        assert!(!is_shutdown(&parse_quote!(CancellationToken), &default));
    }

    #[test]
    fn obvious_non_results() {
        for ty in [
            quote::quote!(()),
            quote::quote!(i32),
            quote::quote!(String),
            quote::quote!(Option<Result<(), E>>),
            quote::quote!(&'static str),
            quote::quote!(impl Sized),
            quote::quote!(std::process::ExitCode),
        ] {
            let parsed: syn::Type = syn::parse2(ty.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(is_obviously_not_result(&parsed), "{ty}");
        }
        for ty in [
            quote::quote!(Result<(), E>),
            quote::quote!(io::Result<()>),
            quote::quote!(anyhow::Result<()>),
            quote::quote!(MyResult),
            quote::quote!(R),
            quote::quote!(Self),
        ] {
            let parsed: syn::Type = syn::parse2(ty.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!is_obviously_not_result(&parsed), "{ty}");
        }
    }
}
