//! Pieces both expansions share.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, GenericArgument, PathArguments, ReturnType, Signature, Type};

/// The runtime crate's path when `crate = "..."` is not given.
pub(crate) fn default_krate() -> syn::Path {
    syn::parse_quote!(::sundown)
}

/// A span that resolves like generated code (so lints treat it as the macro's) but is
/// reported at `user`'s position (so type errors point at the user's tokens).
pub(crate) fn reported_at(user: Span) -> Span {
    Span::call_site().located_at(user)
}

/// Makes the body's own braces the macro's for lints, still reported at the user's
/// braces. Put inside generated code, a one-line body's braces are the tail of a block,
/// and `unused_braces` calls them unnecessary (with a fix that is not Rust); an
/// `#[allow]` around the body instead would also hide the user's own unnecessary braces
/// and breaks under `#![forbid(unused_braces)]`.
pub(crate) fn braces_as_generated(block: &mut syn::Block) {
    let span = block.brace_token.span.join();
    block.brace_token = syn::token::Brace(reported_at(span));
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

/// `ty` with every `impl Trait` in it replaced by `with`. An `impl Trait` may only be
/// written in the signature; the expansion names the return type in a `let` and a
/// turbofish too, where `_` (let the body decide) or `()` (any type will do) stands in.
/// Returns whether anything was replaced.
pub(crate) fn erase_impl_trait(ty: &mut Type, with: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => {
            *ty = with.clone();
            true
        }
        Type::Path(path) => {
            let mut erased = false;
            if let Some(qself) = &mut path.qself {
                erased |= erase_impl_trait(&mut qself.ty, with);
            }
            erase_in_path(&mut path.path, with) | erased
        }
        // `dyn Iterator<Item = impl Display>`
        Type::TraitObject(object) => object.bounds.iter_mut().fold(false, |erased, bound| {
            let here = match bound {
                syn::TypeParamBound::Trait(bound) => erase_in_path(&mut bound.path, with),
                _ => false,
            };
            here | erased
        }),
        Type::Tuple(tuple) => tuple.elems.iter_mut().fold(false, |erased, inner| {
            erase_impl_trait(inner, with) | erased
        }),
        Type::Array(array) => erase_impl_trait(&mut array.elem, with),
        Type::Slice(slice) => erase_impl_trait(&mut slice.elem, with),
        Type::Reference(reference) => erase_impl_trait(&mut reference.elem, with),
        Type::Ptr(pointer) => erase_impl_trait(&mut pointer.elem, with),
        Type::Paren(paren) => erase_impl_trait(&mut paren.elem, with),
        Type::Group(group) => erase_impl_trait(&mut group.elem, with),
        _ => false,
    }
}

/// [`erase_impl_trait`] in a path's generic arguments, associated types included
/// (`Iterator<Item = impl Display>`).
fn erase_in_path(path: &mut syn::Path, with: &Type) -> bool {
    let mut erased = false;
    for segment in &mut path.segments {
        if let PathArguments::AngleBracketed(arguments) = &mut segment.arguments {
            for argument in &mut arguments.args {
                match argument {
                    GenericArgument::Type(inner) => erased |= erase_impl_trait(inner, with),
                    GenericArgument::AssocType(assoc) => {
                        erased |= erase_impl_trait(&mut assoc.ty, with);
                    }
                    _ => {}
                }
            }
        }
    }
    erased
}

/// The type `assert_cancellable` is given: the return type with each `impl Trait` of the
/// `Ok` side made `()`, since only the error type is checked. `None` when an
/// `impl Trait` is elsewhere (the conversion of the error is then the only check).
pub(crate) fn cancellable_assertion_type(ret: &Type) -> Option<Type> {
    let mut ty = ret.clone();
    let unit: Type = syn::parse_quote!(());
    if let Type::Path(path) = &mut ty
        && path.qself.is_none()
        && let Some(last) = path.path.segments.last_mut()
        && let PathArguments::AngleBracketed(arguments) = &mut last.arguments
        && let Some(GenericArgument::Type(ok)) = arguments.args.first_mut()
    {
        erase_impl_trait(ok, &unit);
    }
    let mut rest = ty.clone();
    (!erase_impl_trait(&mut rest, &unit)).then_some(ty)
}

#[cfg(test)]
mod tests {
    use super::{cancellable_assertion_type, erase_impl_trait};
    use quote::quote;
    use syn::{Type, parse_quote};

    fn erased(ty: Type) -> String {
        let mut ty = ty;
        erase_impl_trait(&mut ty, &parse_quote!(_));
        quote!(#ty).to_string()
    }

    #[test]
    fn impl_trait_is_erased_wherever_it_is_nested() {
        assert_eq!(
            erased(parse_quote!(Result<impl Display, E>)),
            "Result < _ , E >"
        );
        assert_eq!(
            erased(parse_quote!(io::Result<(impl Fn() -> u8, Vec<impl Debug>)>)),
            "io :: Result < (_ , Vec < _ >) >"
        );
        assert_eq!(erased(parse_quote!(Result<u8, E>)), "Result < u8 , E >");
        assert_eq!(
            erased(parse_quote!(
                Result<Box<dyn Iterator<Item = impl Display> + Send>, E>
            )),
            "Result < Box < dyn Iterator < Item = _ > + Send > , E >"
        );
    }

    #[test]
    fn only_the_error_type_is_asserted() {
        let assertion =
            |ty: Type| cancellable_assertion_type(&ty).map(|ty| quote!(#ty).to_string());
        assert_eq!(
            assertion(parse_quote!(Result<impl Display, E>)).as_deref(),
            Some("Result < () , E >")
        );
        assert_eq!(
            assertion(parse_quote!(Result<Vec<u8>, E>)).as_deref(),
            Some("Result < Vec < u8 > , E >")
        );
        assert_eq!(
            assertion(parse_quote!(Result<u8, impl From<Cancelled>>)),
            None
        );
    }
}
