//! Property tests: whatever tokens an attribute is given, its expansion returns instead of
//! panicking, and what it returns is items (the expansion, or the function as written) or
//! carries a `compile_error!`, never tokens that are neither.
//!
//! `cargo test -p sundown-macros` runs `DEFAULT_CASES` cases per property. For a long run,
//! set the number of cases per property (there are four properties):
//!
//! ```text
//! SUNDOWN_PROPTEST_CASES=250000 cargo test -p sundown-macros --release proptest
//! ```

mod generate;

use crate::{cancel_safe, graceful_main};
use generate::{attribute_arguments, edits, function_text, lex, mutate, token_trees};
use proc_macro2::{TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Cases per property when `SUNDOWN_PROPTEST_CASES` is not set: enough to catch a
/// regression, few enough for a debug-mode `cargo test`.
const DEFAULT_CASES: u32 = 2048;

fn config() -> Config {
    let cases = std::env::var("SUNDOWN_PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        // Each bug found gets a named regression test instead of a seed file.
        failure_persistence: None,
        // Every choice between alternatives seeds an RNG for the ones not taken; ChaCha made
        // that a fifth of the run.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    }
}

type Expand = fn(TokenStream, TokenStream) -> TokenStream;

const ATTRIBUTES: [(&str, Expand); 2] = [
    ("graceful_main", graceful_main::expand),
    ("cancel_safe", cancel_safe::expand),
];

/// Functions both attributes accept, so that random arguments reach every setting's
/// expansion instead of stopping at a signature error.
const ACCEPTED_FUNCTIONS: &[&str] = &[
    "async fn main(shutdown: Shutdown) -> anyhow::Result<()> { tokio::spawn(work()); Ok(()) }",
    "pub async fn run(scope: ::sundown::Shutdown) -> Result<(), Cancelled> { \
     let _ = tokio::task::spawn_blocking(move || compute(1)); Ok(()) }",
    "async fn serve() -> io::Result<()> { let h = ::tokio::spawn(async { 1 }); h.await?; Ok(()) }",
    "#[allow(unused)] async fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "async fn start() -> Result<impl Display, Cancelled> { spawn(work()); \
     let v = vec![task::spawn(a()), tokio::spawn::<F>(b())]; \
     Handle::current().spawn(c()); let (x,) = tokio::join!(tokio::spawn(d())); \
     let all: Vec<_> = fs.into_iter().map(tokio::spawn).collect(); \
     tokio::spawn(async { loop {} }); m!(tokio::spawn(e())); Ok(1) }",
];

/// Runs both attributes on `args` and `item` and checks what they return.
fn check_expansions(args: &TokenStream, item: &TokenStream) -> Result<(), TestCaseError> {
    let item_is_function = syn::parse2::<syn::ItemFn>(item.clone()).is_ok();
    let written_errors = compile_errors_in(args) + compile_errors_in(item);
    for (attribute, expand) in ATTRIBUTES {
        let output = catch_unwind(AssertUnwindSafe(|| expand(args.clone(), item.clone())))
            .map_err(|payload| {
                TestCaseError::fail(format!(
                    "#[{attribute}] panicked: {}\nargs: {args}\nitem: {item}",
                    panic_message(&*payload)
                ))
            })?;
        let items = parse_items(&output);
        let reported = compile_errors_in(&output) > written_errors;
        prop_assert!(
            items.is_ok() || reported,
            "#[{attribute}] returned neither items nor an error: {:?}\nargs: {args}\n\
             item: {item}\noutput: {output}",
            items.err()
        );
        // A function that parses is emitted (expanded, or as written next to the errors),
        // so the output must be items whatever the arguments were.
        prop_assert!(
            !item_is_function || items.is_ok(),
            "#[{attribute}] on a function returned tokens that are not items: {:?}\n\
             args: {args}\nitem: {item}\noutput: {output}",
            items.err()
        );
        prop_assert!(
            item_is_function || reported,
            "#[{attribute}] on something that is not a function reported no error\n\
             args: {args}\nitem: {item}\noutput: {output}"
        );
    }
    Ok(())
}

/// Parses tokens returned at item position: items only, no inner attributes (which would
/// apply to the enclosing module, or be rejected).
fn parse_items(tokens: &TokenStream) -> Result<(), String> {
    let file: syn::File = syn::parse2(tokens.clone()).map_err(|error| error.to_string())?;
    if file.attrs.is_empty() {
        Ok(())
    } else {
        Err("an inner attribute at item position".to_owned())
    }
}

/// How many `compile_error` identifiers `tokens` holds, at any depth.
fn compile_errors_in(tokens: &TokenStream) -> usize {
    tokens
        .clone()
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(ident) if ident == "compile_error" => 1,
            TokenTree::Group(group) => compile_errors_in(&group.stream()),
            _ => 0,
        })
        .sum()
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}

/// A struct literal spawned through a proof or a receiver: the argument is a `match`
/// scrutinee in the expansion, where a bare struct literal does not parse (found by the
/// property tests).
#[test]
fn a_struct_literal_spawned_through_a_proof_or_a_receiver_expands_to_items() {
    let function = "async fn main() { handle.spawn(S { a: 1 }); pool::spawn(S { a: 1 }); \
                    let h: JoinHandle<u8> = pool::spawn(S { a: 1 }); }";
    if let Err(error) = check_expansions(&TokenStream::new(), &lex(function)) {
        panic!("{error}");
    }
}

#[test]
fn accepted_functions_expand_without_errors() {
    for function in ACCEPTED_FUNCTIONS {
        for (attribute, expand) in ATTRIBUTES {
            let output = expand(TokenStream::new(), lex(function));
            assert_eq!(
                compile_errors_in(&output),
                0,
                "#[{attribute}] rejects {function}: {output}"
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// (a) Random arguments on functions both attributes accept.
    #[test]
    fn proptest_random_arguments(
        args in attribute_arguments(),
        function in select(ACCEPTED_FUNCTIONS),
    ) {
        check_expansions(&args, &lex(function))?;
    }

    /// (b) Functions composed from the grammar's pieces, with random arguments.
    #[test]
    fn proptest_composed_functions(
        args in attribute_arguments(),
        function in function_text(),
    ) {
        check_expansions(&args, &lex(&function))?;
    }

    /// (b) Composed functions with tokens dropped, duplicated, swapped, inserted, grouped
    /// and ungrouped.
    #[test]
    fn proptest_mutated_functions(
        args in attribute_arguments(),
        function in function_text(),
        edits in edits(),
    ) {
        check_expansions(&args, &mutate(lex(&function), &edits))?;
    }

    /// Fully random token trees as both arguments and item.
    #[test]
    fn proptest_random_token_trees(args in token_trees(), item in token_trees()) {
        check_expansions(&args, &item)?;
    }
}
