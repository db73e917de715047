//! The body both entry-point attributes (`#[graceful_main]`, `#[sundown::test]`) run:
//! the user's block with its awaits recorded and its spawns tracked, awaited behind a
//! fake return edge, its output classified for the exit code or the verdict.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Block, Signature};

use crate::await_sites::AwaitSites;
use crate::expand_common::{braces_as_generated, fake_return_edge, return_type};
use crate::spawn_rewrite::{SpawnRewriter, respan};

/// What an entry point generates around the user's body.
pub(crate) struct EntryBody {
    /// Items and a statement, at the top of the generated function: the output must be
    /// printable (`Error: {:?}`, as std's `Termination`), reported at the return type.
    pub(crate) output_is_debug: TokenStream,
    /// Statements inside the scope's closure: they run the body and end with its
    /// classified outcome (`__private::TaskOutcome`).
    pub(crate) run: TokenStream,
}

/// Rewrites `block` (awaits first: the spawn rewrite hands spawned futures on as
/// tokens) and wraps it.
pub(crate) fn entry_body(
    krate: &syn::Path,
    name: &str,
    sig: &Signature,
    mut block: Block,
) -> EntryBody {
    AwaitSites::new(krate).visit_block(&mut block);
    let mut rewriter = SpawnRewriter::new(krate, name.to_owned());
    rewriter.visit_block(&mut block);
    rewriter.warn_hidden_spawns(&mut block);
    braces_as_generated(&mut block);

    let (ret, ret_span) = return_type(sig);
    let fake_return = fake_return_edge(&ret, ret_span);
    let ret_once = respan(ret, ret_span);
    let check = quote_spanned! {ret_span=>
        __sundown_output_is_debug::<#ret_once>();
    };
    EntryBody {
        output_is_debug: quote! {
            fn __sundown_output_is_debug<T: ::core::fmt::Debug>() {}
            #check
        },
        run: quote! {
            let __sundown_body = async move {
                #fake_return
                #block
            };
            let __sundown_classify =
                #krate::__classify!(#krate::__private::probe_future(&__sundown_body));
            let __sundown_output = __sundown_body.await;
            #krate::__private::Classify::classify(__sundown_classify, &__sundown_output)
        },
    }
}
