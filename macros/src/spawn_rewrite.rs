//! Tracked spawning: `tokio::spawn`, `tokio::task::spawn` and
//! `tokio::task::spawn_blocking` inside an annotated function become sundown's tracked
//! spawns. Shared by both attributes.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Block, Expr, ExprBlock, ExprCall, Pat, Stmt, token};

use crate::walk::{self, Visitor};

/// Which tokio function a call spawns through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpawnKind {
    Future,
    Blocking,
}

/// Rewrites the tracked-spawn calls of one annotated function.
pub(crate) struct SpawnRewriter<'a> {
    krate: &'a syn::Path,
    /// The annotated function's name, for tasks the spawned expression cannot name.
    enclosing: String,
}

impl<'a> SpawnRewriter<'a> {
    pub(crate) fn new(krate: &'a syn::Path, enclosing: String) -> Self {
        Self { krate, enclosing }
    }

    /// Replaces the spawn call `expr` (of `kind`) with its tracked form. Its arguments
    /// must have been visited already.
    fn rewrite(&self, expr: &mut Expr, kind: SpawnKind, detached: bool) {
        let Expr::Call(call) = expr else { return };
        let Some(spawned) = call.args.first() else {
            return;
        };
        let name = task_name(spawned, &self.enclosing);
        let krate = self.krate;
        // The call into the runtime carries the user's span, so `#[track_caller]` reports
        // the user's line; the locals keep the expansion's span.
        let site = call.span();
        let (probe, tracked, local) = match kind {
            SpawnKind::Future => (
                quote!(probe_future),
                quote!(spawn_tracked),
                quote!(__sundown_future),
            ),
            SpawnKind::Blocking => (
                quote!(probe_fn),
                quote!(spawn_blocking_tracked),
                quote!(__sundown_function),
            ),
        };
        let callee = respan(quote!(#krate::__private::#tracked), site);
        let arguments = quote!(#name, #detached, #local, __sundown_classify);
        let tracked_call = quote_spanned!(site=> #callee(#arguments));
        let statements = quote! {
            let #local = #spawned;
            let __sundown_classify =
                #krate::__classify!(#krate::__private::#probe(&#local));
            #tracked_call
        };
        *expr = block_expr(statements);
    }
}

impl SpawnRewriter<'_> {
    /// Rewrites the tracked-spawn calls of `block`.
    pub(crate) fn visit_block(&mut self, block: &mut Block) {
        walk::visit_block(self, block);
    }

    /// Rewrites the tracked-spawn calls of `expr`, `expr` itself included.
    pub(crate) fn visit_expr(&mut self, expr: &mut Expr) {
        walk::visit_expr(self, expr);
    }
}

impl Visitor for SpawnRewriter<'_> {
    fn stmt(&mut self, stmt: &mut Stmt) -> bool {
        let Some((expr, kind)) = detached_spawn(stmt) else {
            return false;
        };
        if let Expr::Call(call) = expr {
            for argument in &mut call.args {
                walk::visit_expr(self, argument);
            }
        }
        self.rewrite(expr, kind, true);
        true
    }

    fn expr(&mut self, expr: &mut Expr) {
        if let Some(kind) = spawn_kind(expr) {
            self.rewrite(expr, kind, false);
        }
    }
}

/// The spawn call of a statement that discards the handle where it is made:
/// `tokio::spawn(x);`, `let _ = tokio::spawn(x);` or `drop(tokio::spawn(x));`.
fn detached_spawn(stmt: &mut Stmt) -> Option<(&mut Expr, SpawnKind)> {
    let expr = match stmt {
        Stmt::Expr(expr, Some(_)) => {
            if is_drop_call(expr) {
                drop_argument(expr)?
            } else {
                expr
            }
        }
        Stmt::Local(local) if discards(&local.pat) => match &mut local.init {
            Some(init) if init.diverge.is_none() => &mut *init.expr,
            _ => return None,
        },
        _ => return None,
    };
    let kind = spawn_kind(expr)?;
    Some((expr, kind))
}

/// The argument of `drop(arg)` (`std::mem::drop`, `core::mem::drop`).
fn drop_argument(expr: &mut Expr) -> Option<&mut Expr> {
    match expr {
        Expr::Call(call) => call.args.first_mut(),
        _ => None,
    }
}

/// Whether `expr` is `drop(arg)` (`std::mem::drop`, `core::mem::drop`).
fn is_drop_call(expr: &Expr) -> bool {
    let Expr::Call(ExprCall { func, args, .. }) = expr else {
        return false;
    };
    let Expr::Path(path) = &**func else {
        return false;
    };
    let names: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    args.len() == 1
        && path.qself.is_none()
        && matches!(names.as_slice(), ["drop"] | ["std" | "core", "mem", "drop"])
}

fn discards(pat: &Pat) -> bool {
    match pat {
        Pat::Wild(_) => true,
        Pat::Type(typed) => discards(&typed.pat),
        Pat::Paren(paren) => discards(&paren.pat),
        _ => false,
    }
}

/// Whether `expr` is a one-argument call of a spawn function this crate tracks.
pub(crate) fn spawn_kind(expr: &Expr) -> Option<SpawnKind> {
    let Expr::Call(ExprCall { func, args, .. }) = expr else {
        return None;
    };
    let Expr::Path(path) = &**func else {
        return None;
    };
    if path.qself.is_some() || args.len() != 1 {
        return None;
    }
    let mut segments = Vec::new();
    for segment in &path.path.segments {
        if !segment.arguments.is_none() {
            return None;
        }
        segments.push(segment.ident.to_string());
    }
    match segments.as_slice() {
        [tokio, spawn] if tokio == "tokio" && spawn == "spawn" => Some(SpawnKind::Future),
        [tokio, task, spawn] if tokio == "tokio" && task == "task" => match spawn.as_str() {
            "spawn" => Some(SpawnKind::Future),
            "spawn_blocking" => Some(SpawnKind::Blocking),
            _ => None,
        },
        _ => None,
    }
}

/// The name a spawned task is reported under.
///
/// A call is named after its callee (`poll_feed(x)` → `poll_feed`, `worker::run(x)` →
/// `worker::run`), a method call after its method (`server.run()` → `run`), a path after
/// itself (`spawn_blocking(compute)` → `compute`); anything else after the enclosing
/// function: `main::{async block}`, `main::{closure}`, `main::{task}`.
pub(crate) fn task_name(spawned: &Expr, enclosing: &str) -> String {
    match spawned {
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) if path.qself.is_none() => path_name(&path.path),
            _ => format!("{enclosing}::{{task}}"),
        },
        Expr::MethodCall(call) => call.method.to_string(),
        Expr::Path(path) if path.qself.is_none() => path_name(&path.path),
        Expr::Async(_) => format!("{enclosing}::{{async block}}"),
        Expr::Closure(_) => format!("{enclosing}::{{closure}}"),
        Expr::Paren(inner) => task_name(&inner.expr, enclosing),
        Expr::Group(inner) => task_name(&inner.expr, enclosing),
        _ => format!("{enclosing}::{{task}}"),
    }
}

fn path_name(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// `{ tokens }` as an expression that replaces another. A block expression, not verbatim
/// tokens: syn then knows the replacement is block-like and parenthesizes it where a
/// block would end the statement (`tokio::spawn(x) == y;` at the start of a statement).
pub(crate) fn block_expr(tokens: TokenStream) -> Expr {
    Expr::Block(ExprBlock {
        attrs: Vec::new(),
        label: None,
        block: Block {
            brace_token: token::Brace::default(),
            stmts: vec![Stmt::Expr(Expr::Verbatim(tokens), None)],
        },
    })
}

/// Gives every token of `tokens` the span `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                tree = TokenTree::Group(respanned);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{SpawnKind, SpawnRewriter, spawn_kind, task_name};
    use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
    use quote::quote;
    use syn::parse::Parser;
    use syn::punctuated::Punctuated;
    use syn::{Expr, Lit, Token, parse_quote};

    /// `(name, detached, blocking)` of every tracked spawn in the rewritten function.
    fn tracked_spawns(function: syn::ItemFn) -> Vec<(String, bool, bool)> {
        let mut function = function;
        let krate: syn::Path = parse_quote!(::sundown);
        let mut rewriter = SpawnRewriter::new(&krate, function.sig.ident.to_string());
        rewriter.visit_block(&mut function.block);
        // Re-parse: the rewrite must still be a function.
        let reparsed: syn::ItemFn =
            syn::parse2(quote!(#function)).unwrap_or_else(|e| panic!("rewrite is not Rust: {e}"));
        let mut found = Vec::new();
        collect_tracked(quote!(#reparsed), &mut found);
        found
    }

    /// The tracked calls of `tokens`, in the order they are written, found in the tokens
    /// rather than by walking the syntax tree, so that they do not depend on the walk
    /// being tested. A tracked call's arguments hold no call, so the written order is the
    /// order in which the rewrite makes them.
    fn collect_tracked(tokens: TokenStream, found: &mut Vec<(String, bool, bool)>) {
        let mut trees = tokens.into_iter();
        while let Some(tree) = trees.next() {
            let ident = match tree {
                TokenTree::Group(group) => {
                    collect_tracked(group.stream(), found);
                    continue;
                }
                TokenTree::Ident(ident) => ident,
                TokenTree::Punct(_) | TokenTree::Literal(_) => continue,
            };
            let blocking = match ident.to_string().as_str() {
                "spawn_tracked" => false,
                "spawn_blocking_tracked" => true,
                _ => continue,
            };
            let Some(TokenTree::Group(args)) = trees.next() else {
                panic!("{ident} is not called");
            };
            assert_eq!(args.delimiter(), Delimiter::Parenthesis);
            let args = Punctuated::<Expr, Token![,]>::parse_terminated
                .parse2(args.stream())
                .unwrap_or_else(|e| panic!("unexpected arguments: {e}"));
            let args: Vec<&Expr> = args.iter().collect();
            let (Expr::Lit(name), Expr::Lit(detached)) = (args[0], args[1]) else {
                panic!("unexpected arguments");
            };
            let (Lit::Str(name), Lit::Bool(detached)) = (&name.lit, &detached.lit) else {
                panic!("unexpected literals");
            };
            found.push((name.value(), detached.value, blocking));
        }
    }

    fn spawned(name: &str, detached: bool) -> (String, bool, bool) {
        (name.to_owned(), detached, false)
    }

    #[test]
    fn recognises_the_tokio_spawn_paths() {
        let cases: [(Expr, Option<SpawnKind>); 9] = [
            (parse_quote!(tokio::spawn(x)), Some(SpawnKind::Future)),
            (parse_quote!(::tokio::spawn(x)), Some(SpawnKind::Future)),
            (parse_quote!(tokio::task::spawn(x)), Some(SpawnKind::Future)),
            (
                parse_quote!(::tokio::task::spawn(x)),
                Some(SpawnKind::Future),
            ),
            (
                parse_quote!(tokio::task::spawn_blocking(f)),
                Some(SpawnKind::Blocking),
            ),
            (
                parse_quote!(::tokio::task::spawn_blocking(f)),
                Some(SpawnKind::Blocking),
            ),
            (parse_quote!(spawn(x)), None),
            (parse_quote!(tokio::task::spawn_local(x)), None),
            (parse_quote!(other::spawn(x)), None),
        ];
        for (expr, expected) in cases {
            assert_eq!(spawn_kind(&expr), expected, "{}", quote!(#expr));
        }
        assert_eq!(spawn_kind(&parse_quote!(tokio::spawn(x, y))), None);
        assert_eq!(spawn_kind(&parse_quote!(tokio::spawn::<F>(x))), None);
        assert_eq!(spawn_kind(&parse_quote!(<T>::spawn(x))), None);
    }

    #[test]
    fn names_come_from_the_spawned_expression() {
        let name = |expr: Expr| task_name(&expr, "main");
        assert_eq!(name(parse_quote!(poll_feed(x))), "poll_feed");
        assert_eq!(name(parse_quote!(worker::run(x, y))), "worker::run");
        assert_eq!(name(parse_quote!(::app::worker::run())), "app::worker::run");
        assert_eq!(name(parse_quote!(Vec::<u8>::new())), "Vec::new");
        assert_eq!(name(parse_quote!(server.run())), "run");
        assert_eq!(
            name(parse_quote!(self.listener.accept_loop(4))),
            "accept_loop"
        );
        assert_eq!(name(parse_quote!(compute)), "compute");
        assert_eq!(name(parse_quote!((poll_feed(x)))), "poll_feed");
        assert_eq!(name(parse_quote!(async move { 1 })), "main::{async block}");
        assert_eq!(name(parse_quote!(async { 1 })), "main::{async block}");
        assert_eq!(name(parse_quote!(move || 1)), "main::{closure}");
        assert_eq!(name(parse_quote!(make().await)), "main::{task}");
        assert_eq!(name(parse_quote!((factories[0])())), "main::{task}");
    }

    #[test]
    fn statements_that_drop_the_handle_are_detached() {
        let spawns = tracked_spawns(parse_quote! {
            async fn main() {
                tokio::spawn(a());
                let _ = tokio::spawn(b());
                let _: JoinHandle<()> = ::tokio::task::spawn(c());
                let handle = tokio::spawn(d());
                let _handle = tokio::spawn(e());
                tokio::spawn(f()).await.ok();
                handles.push(tokio::spawn(g()));
                tokio::spawn(h())
            }
        });
        assert_eq!(
            spawns,
            [
                spawned("a", true),
                spawned("b", true),
                spawned("c", true),
                spawned("d", false),
                spawned("e", false),
                spawned("f", false),
                spawned("g", false),
                spawned("h", false),
            ]
        );
    }

    #[test]
    fn dropping_the_handle_in_the_statement_is_detached() {
        let spawns = tracked_spawns(parse_quote! {
            async fn main() {
                drop(tokio::spawn(a()));
                std::mem::drop(tokio::spawn(b()));
                ::core::mem::drop(tokio::task::spawn_blocking(c));
                let kept = drop(tokio::spawn(d()));
                other::drop(tokio::spawn(e()));
            }
        });
        let detached: Vec<(String, bool)> = spawns.into_iter().map(|(n, d, _)| (n, d)).collect();
        let expected = [
            ("a", true),
            ("b", true),
            ("c", true),
            ("d", false),
            ("e", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|&(n, d)| (n.to_owned(), d)).collect();
        assert_eq!(detached, expected);
    }

    #[test]
    fn blocking_spawns_are_tracked_too() {
        let spawns = tracked_spawns(parse_quote! {
            async fn run() {
                tokio::task::spawn_blocking(compute);
                let sum = tokio::task::spawn_blocking(move || 1 + 1).await;
            }
        });
        assert_eq!(
            spawns,
            [
                ("compute".to_owned(), true, true),
                ("run::{closure}".to_owned(), false, true),
            ]
        );
    }

    #[test]
    fn descends_into_closures_and_async_blocks_but_not_nested_items() {
        let spawns = tracked_spawns(parse_quote! {
            async fn main() {
                let start = || { tokio::spawn(in_closure()); };
                let fut = async { let _ = tokio::spawn(in_block()); };
                tokio::spawn(async {
                    tokio::spawn(nested());
                });
                fn helper() { tokio::spawn(in_item()); }
                impl Server { fn start(&self) { tokio::spawn(in_impl()); } }
                if ready { tokio::spawn(in_branch()) } else { tokio::spawn(other_branch()) };
            }
        });
        assert_eq!(
            spawns,
            [
                spawned("in_closure", true),
                spawned("in_block", true),
                spawned("nested", true),
                spawned("main::{async block}", true),
                spawned("in_branch", false),
                spawned("other_branch", false),
            ]
        );
    }

    /// `(name, detached)` of every tracked spawn once `body` is rewritten as the body of
    /// `async fn main`.
    fn spawns_in(body: &TokenStream) -> Vec<(String, bool)> {
        tracked_spawns(parse_quote!(async fn main() { #body }))
            .into_iter()
            .map(|(name, detached, blocking)| {
                assert!(!blocking, "{name} is a blocking spawn");
                (name, detached)
            })
            .collect()
    }

    #[test]
    fn descends_into_every_expression_that_holds_code() {
        let cases: Vec<(TokenStream, &[(&str, bool)])> = vec![
            // Closures, async blocks and async closures.
            (quote!(let f = |x| tokio::spawn(a(x));), &[("a", false)]),
            (
                quote!(let f = move || { tokio::spawn(a()); };),
                &[("a", true)],
            ),
            (
                quote!(let f = async move { tokio::spawn(a()) };),
                &[("a", false)],
            ),
            (
                quote!(let f = async || { let _ = tokio::spawn(a()); };),
                &[("a", true)],
            ),
            // Match: scrutinee, guards, arm bodies.
            (
                quote! {
                    match tokio::spawn(a()).await {
                        Ok(x) if tokio::spawn(b()).is_finished() => tokio::spawn(c()),
                        Ok(_) | Err(_) if ready => { tokio::spawn(d()); }
                        _ => {}
                    }
                },
                &[("a", false), ("b", false), ("c", false), ("d", true)],
            ),
            // If, else if, else, if let.
            (
                quote! {
                    if tokio::spawn(a()).is_finished() {
                        tokio::spawn(b());
                    } else if let Ok(x) = tokio::spawn(c()).await {
                        tokio::spawn(d())
                    } else {
                        tokio::spawn(e());
                    }
                },
                &[
                    ("a", false),
                    ("b", true),
                    ("c", false),
                    ("d", false),
                    ("e", true),
                ],
            ),
            // Loops: conditions, iterated expressions, bodies, break values.
            (
                quote! {
                    while tokio::spawn(a()).is_finished() { tokio::spawn(b()); }
                    while let Some(x) = next(tokio::spawn(c())) { tokio::spawn(d()); }
                    for x in tokio::spawn(e()).await { tokio::spawn(f()); }
                    let v = loop { tokio::spawn(g()); break tokio::spawn(h()); };
                },
                &[
                    ("a", false),
                    ("b", true),
                    ("c", false),
                    ("d", true),
                    ("e", false),
                    ("f", true),
                    ("g", true),
                    ("h", false),
                ],
            ),
            // Labelled blocks and their break values.
            (
                quote! {
                    let v = 'done: {
                        tokio::spawn(a());
                        if ready { break 'done tokio::spawn(b()); }
                        tokio::spawn(c())
                    };
                },
                &[("a", true), ("b", false), ("c", false)],
            ),
            // let-else: the initializer and the else block.
            (
                quote! {
                    let Some(x) = wrap(tokio::spawn(a())) else {
                        tokio::spawn(b());
                        return;
                    };
                },
                &[("a", false), ("b", true)],
            ),
            // Method calls: receiver, then arguments.
            (
                quote!(tokio::spawn(a()).abort_handle().attach(tokio::spawn(b()), x);),
                &[("a", false), ("b", false)],
            ),
            // Struct fields and the base after `..`.
            (
                quote!(let s = S { x: tokio::spawn(a()), y, ..tokio::spawn(b()).into() };),
                &[("a", false), ("b", false)],
            ),
            // Tuples, arrays, repeats, indexing, fields.
            (
                quote! {
                    let t = (tokio::spawn(a()), [tokio::spawn(b()), x]);
                    let r = [tokio::spawn(c()); { tokio::spawn(d()); 1 }];
                    let i = tokio::spawn(e()).results()[tokio::spawn(f()).id()];
                    let f = tokio::spawn(g()).0;
                },
                &[
                    ("a", false),
                    ("b", false),
                    ("c", false),
                    ("d", true),
                    ("e", false),
                    ("f", false),
                    ("g", false),
                ],
            ),
            // `?`, `.await`, try blocks.
            (
                quote! {
                    tokio::spawn(a()).await?;
                    let x = try { tokio::spawn(b()).await? };
                },
                &[("a", false), ("b", false)],
            ),
            // Unsafe and const blocks.
            (
                quote! {
                    unsafe { tokio::spawn(a()); }
                    let f = const { || { tokio::spawn(b()); } };
                },
                &[("a", true), ("b", true)],
            ),
            // Operators, references, casts, ranges, assignments, parentheses, callees.
            (
                quote! {
                    let n = !tokio::spawn(a()).is_finished() && tokio::spawn(b()).is_finished();
                    let r = &mut tokio::spawn(c());
                    let p = &raw const tokio::spawn(d());
                    let c = tokio::spawn(e()) as Handle;
                    let r = tokio::spawn(f())..tokio::spawn(g());
                    *slot(tokio::spawn(h())) = tokio::spawn(i());
                    let p = (tokio::spawn(j()));
                    make(tokio::spawn(k()))(x);
                },
                &[
                    ("a", false),
                    ("b", false),
                    ("c", false),
                    ("d", false),
                    ("e", false),
                    ("f", false),
                    ("g", false),
                    ("h", false),
                    ("i", false),
                    ("j", false),
                    ("k", false),
                ],
            ),
            // An invisible group, as a `macro_rules!` expansion leaves around an `$e:expr`.
            (
                {
                    let spawn = quote!(tokio::spawn(a()));
                    let group = Group::new(Delimiter::None, spawn);
                    quote!(let h = #group;)
                },
                &[("a", false)],
            ),
            // Return and yield values.
            (
                quote! {
                    if done { return tokio::spawn(a()); }
                    yield tokio::spawn(b());
                },
                &[("a", false), ("b", false)],
            ),
            // A spawn inside a spawn: the inner one first.
            (
                quote!(let h = tokio::spawn(run(tokio::spawn(a())));),
                &[("a", false), ("run", false)],
            ),
        ];
        for (body, expected) in cases {
            let expected: Vec<(String, bool)> = expected
                .iter()
                .map(|&(name, detached)| (name.to_owned(), detached))
                .collect();
            assert_eq!(spawns_in(&body), expected, "{body}");
        }
    }

    #[test]
    fn nested_items_and_macro_input_are_left_alone() {
        let spawns = spawns_in(&quote! {
            fn inner() { tokio::spawn(in_fn()); }
            const C: () = { tokio::spawn(in_const()); };
            static S: () = { tokio::spawn(in_static()); };
            mod m { fn f() { tokio::spawn(in_mod()); } }
            trait T { fn f() { tokio::spawn(in_trait()); } }
            impl S { fn f() { tokio::spawn(in_impl()); } }
            let f = || {
                fn inner() { tokio::spawn(in_fn_in_closure()); }
                tokio::spawn(in_closure());
            };
            async {
                struct Local;
                impl Local { fn f() { tokio::spawn(in_impl_in_block()); } }
                tokio::spawn(in_block());
            };
            println!("{:?}", tokio::spawn(in_macro()));
            let v = vec![tokio::spawn(in_vec())];
        });
        assert_eq!(
            spawns,
            [
                ("in_closure".to_owned(), true),
                ("in_block".to_owned(), true),
            ]
        );
    }

    /// Regression: a spawn at the start of a statement and followed by an operator
    /// (`tokio::spawn(x) == y;`) became a block that ended the statement, leaving `== y`
    /// as a syntax error (found by the property tests).
    #[test]
    fn spawn_at_the_start_of_a_statement_followed_by_an_operator() {
        let spawns = tracked_spawns(parse_quote! {
            async fn main() {
                tokio::spawn(a()) == x;
                tokio::spawn(b()) as u8;
                let h = tokio::spawn(c()) else { return };
                match x { _ => tokio::spawn(d()) == y }
            }
        });
        assert_eq!(
            spawns,
            [
                spawned("a", false),
                spawned("b", false),
                spawned("c", false),
                spawned("d", false),
            ]
        );
    }
}
