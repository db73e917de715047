//! Tracked spawning, shared by both attributes. Inside an annotated function:
//!
//! - `tokio::spawn`, `tokio::task::spawn` and `tokio::task::spawn_blocking` written in full
//!   (called, with or without a turbofish, or passed as a value: `.map(tokio::spawn)`)
//!   become sundown's tracked spawns;
//! - any other call of a path ending in `spawn` or `spawn_blocking` (an import, a rename,
//!   `task::spawn`) is tracked when its type is tokio's function, and otherwise called as
//!   written with a deprecation warning at the user's span (`sundown::spawn` and
//!   `sundown::spawn_blocking`, tracked by themselves, are left as written);
//! - `receiver.spawn(x)` is tracked when the receiver is a tokio `Handle`;
//! - the input of macros whose grammar is expressions (`vec!`, `join!`, `select!` arms,
//!   `assert!`, the formatting macros…) is parsed and rewritten the same way; a spawn in
//!   the input of any other macro gets the warning.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Block, Expr, ExprBlock, ExprCall, ExprMethodCall, GenericArgument, Macro, Pat, PathArguments,
    Stmt, Token, Type, token,
};

use crate::walk::{self, Visitor};

/// Which tokio function a call spawns through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpawnKind {
    Future,
    Blocking,
}

/// What the syntax of a call shows about the spawn it makes.
#[derive(Clone)]
pub(crate) enum SpawnSite {
    /// tokio's function by its full path; the type its turbofish gives the argument, if any.
    Tokio(SpawnKind, Option<Box<Type>>),
    /// Another path ending in `spawn` / `spawn_blocking`: tokio's only if its type says so.
    Unproven(SpawnKind),
    /// `receiver.spawn(x)`: tracked if the receiver is a tokio `Handle`.
    Method,
}

/// Rewrites the tracked-spawn calls of one annotated function.
pub(crate) struct SpawnRewriter<'a> {
    krate: &'a syn::Path,
    /// The annotated function's name, for tasks the spawned expression cannot name.
    enclosing: String,
    /// Where a spawn sits in a macro's input that the rewrite cannot parse.
    hidden_spawns: Vec<Span>,
    /// The bindings named `spawn` or `spawn_blocking` that the function's own code
    /// makes, by block, innermost and latest last, each with whether it is a closure or
    /// a function: a call of one is the user's own (a spawn inside it is rewritten where
    /// it is written), never tokio's function, so it is left as written, without the
    /// warning for a spawn that cannot be proven. A later binding of another kind
    /// (`let spawn = tokio::spawn;`) shadows it.
    local_callees: Vec<Vec<(String, bool)>>,
}

impl<'a> SpawnRewriter<'a> {
    pub(crate) fn new(krate: &'a syn::Path, enclosing: String) -> Self {
        Self {
            krate,
            enclosing,
            hidden_spawns: Vec::new(),
            local_callees: Vec::new(),
        }
    }

    /// Replaces the spawn call `expr` (made at `site`) with its tracked form. Its
    /// arguments must have been visited already.
    fn rewrite(&self, expr: &mut Expr, site: SpawnSite, detached: bool) {
        self.rewrite_declared(expr, site, detached, None);
    }

    /// As `rewrite`, for a spawn whose handle's output type the user declared.
    fn rewrite_declared(
        &self,
        expr: &mut Expr,
        site: SpawnSite,
        detached: bool,
        declared: Option<&Type>,
    ) {
        if matches!(site, SpawnSite::Unproven(_)) && self.calls_a_local_callee(expr) {
            return;
        }
        let in_parentheses = matches!(site, SpawnSite::Unproven(_) | SpawnSite::Method);
        let replacement = match (&*expr, site) {
            (Expr::Call(call), SpawnSite::Tokio(kind, ascribed)) => {
                let Some(spawned) = call.args.first() else {
                    return;
                };
                let name = task_name(spawned, &self.enclosing);
                self.tracked(
                    kind,
                    quote!(#spawned),
                    (ascribed.as_deref(), declared),
                    &name,
                    detached,
                    (call.span(), call.paren_token.span.join()),
                )
            }
            (Expr::Call(call), SpawnSite::Unproven(kind)) => {
                self.proven_or_warned(call, kind, detached, declared)
            }
            (Expr::MethodCall(call), SpawnSite::Method) => self.through_receiver(call, detached),
            _ => return,
        };
        let attrs = outer_attrs(expr);
        // A `match` (see `through_receiver`) goes in parentheses rather than a block: a
        // block would end the scrutinee's temporaries at its end.
        *expr = if in_parentheses {
            paren_expr(replacement)
        } else {
            block_expr(replacement)
        };
        set_outer_attrs(expr, attrs);
    }

    /// The tracked spawn of `spawned` (tokens of an expression), reported at `site`.
    fn tracked(
        &self,
        kind: SpawnKind,
        spawned: TokenStream,
        (ascribed, declared): (Option<&Type>, Option<&Type>),
        name: &str,
        detached: bool,
        (site, end): (Span, Span),
    ) -> TokenStream {
        let krate = self.krate;
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
        // An output type the user declared for the handle is given to the probe, which is
        // resolved before the declaration is reached.
        let probe = match (declared, kind) {
            (Some(output), SpawnKind::Future) => quote!(probe_future_as::<#output, _>),
            (Some(output), SpawnKind::Blocking) => quote!(probe_fn_as::<#output, _>),
            (None, _) => probe,
        };
        // The call into the runtime carries the user's spans, from the callee to the
        // closing parenthesis: `#[track_caller]` reports the user's line, and an argument
        // that cannot be spawned (a future that is not `Send`) is reported over the user's
        // whole call, as it is for `tokio::spawn`. The locals keep the expansion's span.
        let callee = respan(quote!(#krate::__private::#tracked), site);
        // Interpolated, so the local keeps the expansion's hygiene even where the user's
        // tokens come from a `macro_rules!` caller's.
        let classify = quote!(__sundown_classify);
        let mut arguments = Group::new(
            Delimiter::Parenthesis,
            quote_spanned!(site=> #name, #detached, #local, #classify),
        );
        arguments.set_span(end);
        let tracked_call = quote!(#callee #arguments);
        let ascription = ascribed.map(|ty| quote!(: #ty));
        // A blocking closure goes through `blocking_task` first, spanned at the user's
        // call: one that is not `Send` is reported at the closure, not the attribute.
        let spawned = match kind {
            SpawnKind::Blocking => {
                let check = respan(quote!(#krate::__private::blocking_task), site);
                let mut argument = Group::new(Delimiter::Parenthesis, spawned);
                argument.set_span(end);
                quote!(#check #argument)
            }
            SpawnKind::Future => spawned,
        };
        quote! {
            let #local #ascription = #spawned;
            let __sundown_classify =
                #krate::__classify!(#krate::__private::#probe(&#local));
            #tracked_call
        }
    }

    /// `path(x)` for a path that ends like tokio's function but may not be it: the proof
    /// (see `__private::spawn_proof`) tracks it when its type is tokio's, and otherwise
    /// calls it as written through a deprecated method, the warning at the user's callee.
    fn proven_or_warned(
        &self,
        call: &ExprCall,
        kind: SpawnKind,
        detached: bool,
        declared: Option<&Type>,
    ) -> TokenStream {
        let krate = self.krate;
        let callee = &call.func;
        let Some(argument) = call.args.first() else {
            return quote!(#call);
        };
        let name = task_name(argument, &self.enclosing);
        let (method, local, (tokio_function, sundown_function), (proven, own, unproven)) =
            match kind {
                SpawnKind::Future => (
                    "spawn_future",
                    quote!(__sundown_future),
                    (quote!(tokio_spawn), quote!(sundown_spawn)),
                    (
                        quote!(ProvenTokioSpawn),
                        quote!(SundownSpawn),
                        quote!(UnprovenSpawn),
                    ),
                ),
                SpawnKind::Blocking => (
                    "spawn_function",
                    quote!(__sundown_function),
                    (quote!(tokio_spawn_blocking), quote!(sundown_spawn_blocking)),
                    (
                        quote!(ProvenTokioSpawnBlocking),
                        quote!(SundownSpawnBlocking),
                        quote!(UnprovenSpawnBlocking),
                    ),
                ),
            };
        // The method's name carries the exact span of the user's callee: the deprecation
        // lint reports there, and `#[track_caller]` gives the user's line.
        let at = last_segment_span(callee).unwrap_or_else(|| callee.span());
        let method = syn::Ident::new(method, at);
        let site = call.span();
        // The locals are interpolated, so they keep the expansion's hygiene (written in
        // `quote_spanned!` they would take the user's, which differs from the `let`s'
        // when the user's tokens come from a `macro_rules!` caller's). The callee, a path,
        // is named where it is used, not moved into a local: a local closure called
        // `spawn` may be `FnMut` or not `Copy`, and is called again after.
        let probe_local = quote!(__sundown_argument_probe);
        // An output type the user declared for the handle decides the classifier (the
        // future's own output may still be unknown when the classifier is checked);
        // otherwise the argument's probe, taken before the argument is moved.
        let (probe, classify) = match declared {
            Some(output) => (
                None,
                quote! {
                    move || #krate::__classify!(#krate::__private::probe_declared::<#output>())
                },
            ),
            None => (
                Some(quote! {
                    let #probe_local = #krate::__private::probe_argument(&#local);
                }),
                quote! {
                    move || #krate::__classify!(#krate::__probe_argument!(#probe_local))
                },
            ),
        };
        let proof = quote_spanned! {site=>
            (&&&#krate::__private::SpawnProof::new(
                &#callee,
                #krate::__private::#tokio_function,
                #krate::__private::#sundown_function,
            ))
        };
        let dispatch = quote_spanned! {site=>
            #proof.#method(
                #name,
                #detached,
                #local,
                |#local| #callee(#local),
                #classify,
            )
        };
        quote! {
            // A tuple: a struct literal cannot be a bare scrutinee.
            match (#argument,) {
                (#local,) => {
                    #probe
                    #[allow(unused_imports)]
                    use #krate::__private::{#proven as _, #own as _, #unproven as _};
                    #dispatch
                }
            }
        }
    }

    /// `receiver.spawn(x)`: a tracked task on the receiver when it is a tokio `Handle`,
    /// the call as written otherwise.
    fn through_receiver(&self, call: &ExprMethodCall, detached: bool) -> TokenStream {
        let krate = self.krate;
        let Some(argument) = call.args.first() else {
            return quote!(#call);
        };
        let name = task_name(argument, &self.enclosing);
        let receiver = &call.receiver;
        let method = &call.method;
        // A place is read again where it is used, so it is neither moved nor borrowed
        // longer than in the user's call; a temporary is made once, into a local.
        // What is bound is bound by a `match`, whose scrutinee's temporaries live to the
        // end of the user's statement, as in the user's call (a `let` would end them
        // at the expansion's end: `Plan::default().spawn(1).spawn(2)` borrows one).
        let (bind, receiver) = if is_place(receiver) {
            (Vec::new(), quote!(#receiver))
        } else if let Some(projected) = projected(receiver) {
            // A field or element (`sets[next()]`, `state.lock().unwrap().tasks`,
            // `app.handles()[i]`) of a place or of a temporary: a temporary is bound,
            // then each computed index, once, in order, and the field named on them
            // (moving it out of a guard or a reference would not compile).
            let mut bind: Vec<_> = projected
                .temporary
                .map(|root| (quote!(mut __sundown_receiver), root))
                .into_iter()
                .collect();
            bind.extend(projected.indexes);
            (bind, projected.place)
        } else {
            (
                vec![(quote!(mut __sundown_receiver), quote!(#receiver))],
                quote!(__sundown_receiver),
            )
        };
        let site = call.span();
        // Interpolated locals keep the expansion's hygiene (see `proven_or_warned`).
        let (future, probe_local) = (quote!(__sundown_future), quote!(__sundown_argument_probe));
        let dispatch = quote_spanned! {site=>
            (&&#krate::__private::SpawnReceiver::of(&#receiver)).spawn_through(
                #name,
                #detached,
                #future,
                |#future| #receiver.#method(#future),
                move || #krate::__classify!(#krate::__probe_argument!(#probe_local)),
            )
        };
        // A tuple even with nothing bound but the argument: a struct literal cannot be a
        // bare scrutinee.
        let (patterns, values): (Vec<_>, Vec<_>) = bind.into_iter().unzip();
        let (patterns, values) = (
            quote!((#(#patterns,)* #future,)),
            quote!((#(#values,)* #argument,)),
        );
        quote! {
            match #values {
                #[allow(unused_mut)]
                #patterns => {
                    let #probe_local = #krate::__private::probe_argument(&#future);
                    #[allow(unused_imports)]
                    use #krate::__private::{TokioHandleSpawn as _, UntrackedReceiver as _};
                    #dispatch
                }
            }
        }
    }

    /// `tokio::spawn` (in full) passed as a value, as in `.map(tokio::spawn)`: a closure
    /// that makes the tracked spawn.
    fn tracked_function(&self, kind: SpawnKind, ascribed: Option<&Type>, site: Span) -> Expr {
        // The parameter and its uses carry the user's path's span, so a closure that is
        // not `Send` is reported there, not at the attribute (both have it, so they have
        // the same hygiene even when the path comes from a `macro_rules!`).
        let local = respan(quote!(__sundown_argument), site);
        let name = format!("{}::{{task}}", self.enclosing);
        let body = self.tracked(
            kind,
            local.clone(),
            (ascribed, None),
            &name,
            false,
            (site, site),
        );
        let closure = quote!(|#local| { #body });
        Expr::Verbatim(closure)
    }

    /// Puts the warnings for spawns hidden in macro input at the top of `block`: each
    /// calls a deprecated function with the span of the user's `spawn`.
    pub(crate) fn warn_hidden_spawns(&self, block: &mut Block) {
        let warnings = self.hidden_spawn_warnings();
        block.stmts.splice(0..0, warnings);
    }

    fn hidden_spawn_warnings(&self) -> Vec<Stmt> {
        let krate = self.krate;
        self.hidden_spawns
            .iter()
            .filter_map(|&at| {
                let function = syn::Ident::new("spawn_in_macro_is_not_tracked", at);
                // Parsed, not verbatim: a call `#[cancel_safe]` can see has no await.
                let call = syn::parse2(quote_spanned!(at=> #krate::__private::#function()));
                call.ok().map(|call| Stmt::Expr(call, Some(Token![;](at))))
            })
            .collect()
    }
}

impl SpawnRewriter<'_> {
    /// Whether `expr` calls, by its bare name, a closure or function the function's own
    /// code defines in a block that encloses it.
    fn calls_a_local_callee(&self, expr: &Expr) -> bool {
        let Expr::Call(call) = expr else {
            return false;
        };
        let Expr::Path(path) = &*call.func else {
            return false;
        };
        let Some(name) = path.path.get_ident().map(ToString::to_string) else {
            return false;
        };
        self.local_callees
            .iter()
            .rev()
            .flat_map(|scope| scope.iter().rev())
            .find(|(local, _)| *local == name)
            .is_some_and(|&(_, own)| own)
    }

    /// `let spawn = |..| ..;`: walks the closure, then notes the name, which is in scope
    /// from the next statement on (in its own initializer, `spawn` is still the outer
    /// one). False when `stmt` is not such a binding.
    fn local_closure(&mut self, stmt: &mut Stmt) -> bool {
        let Stmt::Local(local) = stmt else {
            return false;
        };
        let mut pat = &local.pat;
        while let Pat::Type(typed) = pat {
            pat = &typed.pat;
        }
        let Pat::Ident(binding) = pat else {
            // A pattern (`let (spawn, n) = ..;`) binds what the macro cannot see: any
            // spawn-like name in it shadows a closure noted before.
            let mut names = Vec::new();
            spawn_like_bindings(pat, &mut names);
            if let Some(scope) = self.local_callees.last_mut() {
                scope.extend(names.into_iter().map(|name| (name, false)));
            }
            return false;
        };
        if !is_spawn_like(&binding.ident) {
            return false;
        }
        let name = binding.ident.to_string();
        let closure = matches!(&local.init, Some(init) if matches!(&*init.expr, Expr::Closure(_)));
        if let Some(init) = local.init.as_mut().filter(|_| closure) {
            walk::visit_expr(self, &mut init.expr);
            if let Some((_, diverge)) = &mut init.diverge {
                walk::visit_expr(self, diverge);
            }
        }
        // Any other binding of the name shadows a closure noted before (its own
        // initializer is walked as usual, where the name is still the outer one).
        if let Some(scope) = self.local_callees.last_mut() {
            scope.push((name, closure));
        }
        closure
    }

    /// Rewrites the tracked-spawn calls of `block`.
    pub(crate) fn visit_block(&mut self, block: &mut Block) {
        walk::visit_block(self, block);
    }

    /// Rewrites the tracked-spawn calls of `expr`, `expr` itself included.
    pub(crate) fn visit_expr(&mut self, expr: &mut Expr) {
        walk::visit_expr(self, expr);
    }

    /// Rewrites a macro's input when its grammar is known to be expressions; otherwise
    /// notes every spawn-like call in it for a warning.
    fn rewrite_macro_input(&mut self, mac: &mut Macro) {
        let Some(last) = mac.path.segments.last() else {
            return;
        };
        let grammar = MacroGrammar::of(&last.ident.to_string());
        let rewritten = match grammar {
            Some(grammar) => grammar.rewrite(self, mac.tokens.clone()),
            None => None,
        };
        match rewritten {
            Some(tokens) => mac.tokens = tokens,
            None => collect_spawn_like(&mac.tokens, &mut self.hidden_spawns),
        }
    }
}

/// Whether `name` is one a spawn call ends in.
fn is_spawn_like(name: &syn::Ident) -> bool {
    name == "spawn" || name == "spawn_blocking"
}

/// The spawn-like names `pat` binds, anywhere in it.
fn spawn_like_bindings(pat: &Pat, out: &mut Vec<String>) {
    let mut each = |pats: &mut dyn Iterator<Item = &Pat>| {
        pats.for_each(|p| spawn_like_bindings(p, out));
    };
    match pat {
        Pat::Ident(binding) => {
            if is_spawn_like(&binding.ident) {
                out.push(binding.ident.to_string());
            }
            if let Some((_, sub)) = &binding.subpat {
                spawn_like_bindings(sub, out);
            }
        }
        Pat::Tuple(tuple) => each(&mut tuple.elems.iter()),
        Pat::TupleStruct(tuple) => each(&mut tuple.elems.iter()),
        Pat::Slice(slice) => each(&mut slice.elems.iter()),
        Pat::Or(or) => each(&mut or.cases.iter()),
        Pat::Struct(fields) => each(&mut fields.fields.iter().map(|f| &*f.pat)),
        Pat::Type(typed) => spawn_like_bindings(&typed.pat, out),
        Pat::Paren(paren) => spawn_like_bindings(&paren.pat, out),
        Pat::Reference(reference) => spawn_like_bindings(&reference.pat, out),
        _ => {}
    }
}

impl Visitor for SpawnRewriter<'_> {
    fn enter_block(&mut self, block: &Block) {
        // A function item is in scope in its whole block, before it too.
        let functions = block
            .stmts
            .iter()
            .filter_map(|stmt| match stmt {
                Stmt::Item(syn::Item::Fn(f)) if is_spawn_like(&f.sig.ident) => {
                    Some((f.sig.ident.to_string(), true))
                }
                _ => None,
            })
            .collect();
        self.local_callees.push(functions);
    }

    fn leave_block(&mut self) {
        self.local_callees.pop();
    }

    fn stmt(&mut self, stmt: &mut Stmt) -> bool {
        if self.local_closure(stmt) {
            return true;
        }
        if binds_a_function(stmt) {
            // `let f = tokio::spawn;`: a function value whose argument type is only
            // known where it is called; left as written (and untracked), like a
            // parenthesized callee.
            return true;
        }
        if let Some((expr, site, declared, detached)) = declared_spawn(stmt) {
            if let Expr::Call(call) = expr {
                for argument in &mut call.args {
                    walk::visit_expr(self, argument);
                }
            }
            self.rewrite_declared(expr, site, detached, Some(&declared));
            return true;
        }
        let Some((expr, site)) = detached_spawn(stmt) else {
            return false;
        };
        match expr {
            Expr::Call(call) => {
                for argument in &mut call.args {
                    walk::visit_expr(self, argument);
                }
            }
            Expr::MethodCall(call) => {
                walk::visit_expr(self, &mut call.receiver);
                for argument in &mut call.args {
                    walk::visit_expr(self, argument);
                }
            }
            _ => {}
        }
        self.rewrite(expr, site, true);
        true
    }

    fn expr(&mut self, expr: &mut Expr) {
        if let Some(site) = spawn_site(expr) {
            self.rewrite(expr, site, false);
        } else if let Expr::Path(path) = expr
            && path.qself.is_none()
            && let Some((kind, ascribed)) = tokio_function(&path.path)
        {
            *expr = self.tracked_function(kind, ascribed.as_deref(), path.span());
        }
    }

    fn macro_call(&mut self, mac: &mut Macro) {
        self.rewrite_macro_input(mac);
    }
}

/// How a macro's input is written, for the macros whose input is expressions.
#[derive(Clone, Copy)]
enum MacroGrammar {
    /// Comma-separated expressions: `join!`, `assert!`, `println!`, `vec![a, b]`…
    Expressions,
    /// `vec![a, b]` or `vec![x; n]`.
    Vec,
    /// `select! { pat = fut (, if cond)? => handler, ... (else => expr)? }`.
    Select,
    /// `matches!(expr, pattern)`: an expression, then tokens kept as written.
    LeadingExpression,
}

/// Macros whose input is expressions, by the last segment of their path (so
/// `tokio::join!` and `futures::join!` alike).
const EXPRESSION_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "eprint",
    "eprintln",
    "format",
    "format_args",
    "join",
    "panic",
    "print",
    "println",
    "todo",
    "try_join",
    "unimplemented",
    "unreachable",
    "write",
    "writeln",
];

impl MacroGrammar {
    fn of(name: &str) -> Option<Self> {
        match name {
            "vec" => Some(MacroGrammar::Vec),
            "select" => Some(MacroGrammar::Select),
            "matches" => Some(MacroGrammar::LeadingExpression),
            _ if EXPRESSION_MACROS.contains(&name) => Some(MacroGrammar::Expressions),
            _ => None,
        }
    }

    /// The input with its spawns rewritten, or `None` when it does not parse.
    fn rewrite(self, rewriter: &mut SpawnRewriter<'_>, tokens: TokenStream) -> Option<TokenStream> {
        match self {
            MacroGrammar::Expressions => rewrite_expressions(rewriter, tokens),
            MacroGrammar::Vec => {
                let repeated = |input: ParseStream<'_>| {
                    let element: Expr = input.parse()?;
                    let semi: Token![;] = input.parse()?;
                    let length: Expr = input.parse()?;
                    Ok((element, semi, length))
                };
                match repeated.parse2(tokens.clone()) {
                    Ok((mut element, semi, mut length)) => {
                        rewriter.visit_expr(&mut element);
                        rewriter.visit_expr(&mut length);
                        Some(quote!(#element #semi #length))
                    }
                    Err(_) => rewrite_expressions(rewriter, tokens),
                }
            }
            MacroGrammar::LeadingExpression => {
                let leading = |input: ParseStream<'_>| {
                    let first: Expr = input.parse()?;
                    let rest: TokenStream = input.parse()?;
                    Ok((first, rest))
                };
                let (mut first, rest) = leading.parse2(tokens).ok()?;
                rewriter.visit_expr(&mut first);
                Some(quote!(#first #rest))
            }
            MacroGrammar::Select => {
                let mut branches = select_branches.parse2(tokens).ok()?;
                for branch in &mut branches.branches {
                    if let Some(future) = &mut branch.future {
                        rewriter.visit_expr(future);
                    }
                    if let Some((_, _, condition)) = &mut branch.condition {
                        rewriter.visit_expr(condition);
                    }
                    rewriter.visit_expr(&mut branch.handler);
                }
                Some(branches.into_token_stream())
            }
        }
    }
}

fn rewrite_expressions(
    rewriter: &mut SpawnRewriter<'_>,
    tokens: TokenStream,
) -> Option<TokenStream> {
    let mut expressions = Punctuated::<Expr, Token![,]>::parse_terminated
        .parse2(tokens)
        .ok()?;
    for expression in &mut expressions {
        rewriter.visit_expr(expression);
    }
    Some(expressions.into_token_stream())
}

/// The input of `select!`, kept as written apart from its expressions.
struct SelectInput {
    biased: Option<TokenStream>,
    branches: Vec<SelectBranch>,
}

struct SelectBranch {
    /// `pat =`, or `else` for the else branch (which has no future).
    head: TokenStream,
    future: Option<Expr>,
    condition: Option<(Token![,], Token![if], Expr)>,
    arrow: Token![=>],
    handler: Expr,
    comma: Option<Token![,]>,
}

fn select_branches(input: ParseStream<'_>) -> syn::Result<SelectInput> {
    let biased = if input.peek(syn::Ident) && input.peek2(Token![;]) {
        let fork = input.fork();
        let word: syn::Ident = fork.parse()?;
        if word == "biased" {
            let word: syn::Ident = input.parse()?;
            let semi: Token![;] = input.parse()?;
            Some(quote!(#word #semi))
        } else {
            None
        }
    } else {
        None
    };
    let mut branches = Vec::new();
    while !input.is_empty() {
        let (head, future, condition) = if input.peek(Token![else]) {
            let word: Token![else] = input.parse()?;
            (quote!(#word), None, None)
        } else {
            let pattern = Pat::parse_multi_with_leading_vert(input)?;
            let eq: Token![=] = input.parse()?;
            let future: Expr = input.parse()?;
            let condition = if input.peek(Token![,]) && input.peek2(Token![if]) {
                Some((input.parse()?, input.parse()?, input.parse()?))
            } else {
                None
            };
            (quote!(#pattern #eq), Some(future), condition)
        };
        let arrow: Token![=>] = input.parse()?;
        let handler: Expr = input.parse()?;
        let comma: Option<Token![,]> = input.parse()?;
        let block_like = matches!(handler, Expr::Block(_));
        if comma.is_none() && !block_like && !input.is_empty() {
            return Err(input.error("expected `,` after a `select!` branch"));
        }
        branches.push(SelectBranch {
            head,
            future,
            condition,
            arrow,
            handler,
            comma,
        });
    }
    Ok(SelectInput { biased, branches })
}

impl ToTokens for SelectInput {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.biased.to_tokens(tokens);
        for branch in &self.branches {
            branch.head.to_tokens(tokens);
            branch.future.to_tokens(tokens);
            if let Some((comma, word, condition)) = &branch.condition {
                comma.to_tokens(tokens);
                word.to_tokens(tokens);
                condition.to_tokens(tokens);
            }
            branch.arrow.to_tokens(tokens);
            branch.handler.to_tokens(tokens);
            branch.comma.to_tokens(tokens);
        }
    }
}

/// Notes the spawn-like calls in tokens the rewrite cannot parse: `spawn(` or
/// `spawn_blocking(` (also with a turbofish), not after a `.` (a method of anything).
fn collect_spawn_like(tokens: &TokenStream, found: &mut Vec<Span>) {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    for (index, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) => collect_spawn_like(&group.stream(), found),
            TokenTree::Ident(ident) if ident == "spawn" || ident == "spawn_blocking" => {
                let after_dot = index > 0
                    && matches!(&trees[index - 1], TokenTree::Punct(p) if p.as_char() == '.');
                let called = match trees.get(index + 1) {
                    Some(TokenTree::Group(args)) => args.delimiter() == Delimiter::Parenthesis,
                    Some(TokenTree::Punct(p)) => p.as_char() == ':',
                    _ => false,
                };
                if called && !after_dot {
                    found.push(ident.span());
                }
            }
            _ => {}
        }
    }
}

/// The statement's spawn when it discards the handle where it is made:
/// `tokio::spawn(x);`, `let _ = tokio::spawn(x);` or `drop(tokio::spawn(x));`.
fn detached_spawn(stmt: &mut Stmt) -> Option<(&mut Expr, SpawnSite)> {
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
    let site = spawn_site(expr)?;
    Some((expr, site))
}

/// The spawn of `let h: JoinHandle<O> = tokio::spawn(x);` (or of a path the proof
/// decides), with the output type `O` the user declared, and whether the handle is
/// discarded (`let _`).
fn declared_spawn(stmt: &mut Stmt) -> Option<(&mut Expr, SpawnSite, Type, bool)> {
    let Stmt::Local(local) = stmt else {
        return None;
    };
    let Pat::Type(typed) = &local.pat else {
        return None;
    };
    let Type::Path(handle) = &*typed.ty else {
        return None;
    };
    let last = handle.path.segments.last()?;
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let output = match (last.ident == "JoinHandle", arguments.args.first()) {
        (true, Some(GenericArgument::Type(output))) if arguments.args.len() == 1 => output.clone(),
        _ => return None,
    };
    let detached = discards(&typed.pat);
    let init = local.init.as_mut().filter(|init| init.diverge.is_none())?;
    match spawn_site(&init.expr)? {
        site @ (SpawnSite::Tokio(..) | SpawnSite::Unproven(_)) => {
            Some((&mut *init.expr, site, output, detached))
        }
        SpawnSite::Method => None,
    }
}

/// `let f = PATH;`, a function bound by name: its calls are the user's own.
fn binds_a_function(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else {
        return false;
    };
    matches!(&local.init, Some(init) if init.diverge.is_none()
        && matches!(&*init.expr, Expr::Path(p) if p.qself.is_none()))
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

/// What kind of spawn `expr` is, if it is a one-argument call that spawns.
pub(crate) fn spawn_site(expr: &Expr) -> Option<SpawnSite> {
    match expr {
        Expr::Call(ExprCall { func, args, .. }) if args.len() == 1 => {
            let Expr::Path(path) = &**func else {
                return None;
            };
            if path.qself.is_some() {
                return None;
            }
            if let Some((kind, ascribed)) = tokio_function(&path.path) {
                return Some(SpawnSite::Tokio(kind, ascribed));
            }
            let segments: Vec<String> = path
                .path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect();
            let kind = match segments.last().map(String::as_str) {
                Some("spawn") => SpawnKind::Future,
                Some("spawn_blocking") => SpawnKind::Blocking,
                _ => return None,
            };
            // `std::thread::spawn` and `thread::spawn` start threads, not tasks;
            // `sundown::spawn` and `sundown::spawn_blocking` are tracked by themselves.
            let thread = segments.len() >= 2 && segments[segments.len() - 2] == "thread";
            let sundowns = segments.len() == 2 && segments[0] == "sundown";
            // A closure cannot be a future, and tokio's `spawn_blocking` takes one of no
            // arguments: such a call is not tokio's (nor sundown's), and is left as
            // written, untouched, so the closure's types come from the callee as usual.
            let not_a_task = args.first().is_some_and(|argument| match argument {
                Expr::Closure(closure) => kind == SpawnKind::Future || !closure.inputs.is_empty(),
                _ => false,
            });
            (!thread && !sundowns && !not_a_task).then_some(SpawnSite::Unproven(kind))
        }
        Expr::MethodCall(call)
            if call.method == "spawn" && call.args.len() == 1 && call.turbofish.is_none() =>
        {
            Some(SpawnSite::Method)
        }
        _ => None,
    }
}

/// Whether `path` is one of tokio's spawn functions written in full, and the type of its
/// argument the turbofish gives, if any.
fn tokio_function(path: &syn::Path) -> Option<(SpawnKind, Option<Box<Type>>)> {
    let segments: Vec<&syn::PathSegment> = path.segments.iter().collect();
    let (last, before) = segments.split_last()?;
    if before.iter().any(|segment| !segment.arguments.is_none()) {
        return None;
    }
    let names: Vec<String> = before.iter().map(|s| s.ident.to_string()).collect();
    let kind = match (names.as_slice(), last.ident.to_string().as_str()) {
        ([tokio], "spawn") if tokio == "tokio" => SpawnKind::Future,
        ([tokio, task], "spawn") if tokio == "tokio" && task == "task" => SpawnKind::Future,
        ([tokio, task], "spawn_blocking") if tokio == "tokio" && task == "task" => {
            SpawnKind::Blocking
        }
        _ => return None,
    };
    let ascribed = match &last.arguments {
        PathArguments::None => None,
        PathArguments::AngleBracketed(arguments) => match arguments.args.first() {
            Some(GenericArgument::Type(ty)) => Some(Box::new(ty.clone())),
            _ => None,
        },
        PathArguments::Parenthesized(_) => return None,
    };
    Some((kind, ascribed))
}

/// Whether `expr` names a place (a variable, a field, an element, a dereference) rather
/// than making a value.
fn is_place(expr: &Expr) -> bool {
    match expr {
        Expr::Path(_) => true,
        Expr::Field(field) => is_place(&field.base),
        // Read twice, the index is computed twice: a place only when that is nothing.
        Expr::Index(index) => {
            is_place(&index.expr) && matches!(&*index.index, Expr::Lit(_) | Expr::Path(_))
        }
        Expr::Unary(unary) => matches!(unary.op, syn::UnOp::Deref(_)) && is_place(&unary.expr),
        Expr::Paren(paren) => is_place(&paren.expr),
        Expr::Group(group) => is_place(&group.expr),
        _ => false,
    }
}

/// A receiver that is a field or element of something (see [`projected`]).
struct Projected {
    /// The temporary the chain starts from, made first; `None` when it starts from a
    /// place, which is named again.
    temporary: Option<TokenStream>,
    /// Each computed index, as a local and its expression, in the order they are made.
    indexes: Vec<(TokenStream, TokenStream)>,
    /// The receiver, with locals for the temporary and the computed indexes.
    place: TokenStream,
}

/// `expr` as fields, elements and dereferences of a root (`sets[next()]`,
/// `state.lock().unwrap().tasks`, `app.handles()[i]`). `None` when `expr` is none of
/// these, or no index is computed and its root is a place (it is a place then).
fn projected(expr: &Expr) -> Option<Projected> {
    type Indexes = Vec<(TokenStream, TokenStream)>;
    /// The chain's root and `expr` as tokens, the root named by `__sundown_receiver`
    /// when it is a temporary.
    fn inner(expr: &Expr, indexes: &mut Indexes) -> Option<(Expr, TokenStream)> {
        let base = |e: &Expr, indexes: &mut Indexes| {
            inner(e, indexes).or_else(|| {
                let named = if is_place(e) {
                    quote!(#e)
                } else {
                    quote!(__sundown_receiver)
                };
                Some((e.clone(), named))
            })
        };
        match expr {
            Expr::Field(field) => {
                let (root, base) = base(&field.base, indexes)?;
                let member = &field.member;
                Some((root, quote!(#base.#member)))
            }
            Expr::Index(index) => {
                let (root, base) = base(&index.expr, indexes)?;
                let at = &index.index;
                if matches!(&**at, Expr::Lit(_)) {
                    return Some((root, quote!(#base[#at])));
                }
                // Computed (a variable too, which might be moved by a later index):
                // once, into a local, after the temporary and the indexes before it.
                let local = quote::format_ident!("__sundown_index{}", indexes.len());
                indexes.push((quote!(#local), quote!(#at)));
                Some((root, quote!(#base[#local])))
            }
            Expr::Unary(unary) if matches!(unary.op, syn::UnOp::Deref(_)) => {
                let (root, base) = base(&unary.expr, indexes)?;
                Some((root, quote!((*#base))))
            }
            Expr::Paren(paren) => inner(&paren.expr, indexes),
            Expr::Group(group) => inner(&group.expr, indexes),
            _ => None,
        }
    }
    let mut indexes = Vec::new();
    let (root, place) = inner(expr, &mut indexes)?;
    let temporary = (!is_place(&root)).then(|| quote!(#root));
    (temporary.is_some() || !indexes.is_empty()).then_some(Projected {
        temporary,
        indexes,
        place,
    })
}

fn last_segment_span(callee: &Expr) -> Option<Span> {
    match callee {
        Expr::Path(path) => path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.span()),
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

/// The attributes written on an expression (`#[cfg(..)] tokio::spawn(x);`): a rewrite
/// keeps them on its replacement, so a spawn compiled out stays compiled out.
pub(crate) fn outer_attrs(expr: &mut Expr) -> Vec<syn::Attribute> {
    match expr {
        Expr::Call(e) => std::mem::take(&mut e.attrs),
        Expr::MethodCall(e) => std::mem::take(&mut e.attrs),
        Expr::Await(e) => std::mem::take(&mut e.attrs),
        _ => Vec::new(),
    }
}

/// Puts `attrs` back on a replacement made by [`block_expr`].
pub(crate) fn set_outer_attrs(expr: &mut Expr, attrs: Vec<syn::Attribute>) {
    match expr {
        Expr::Block(block) => block.attrs = attrs,
        Expr::Paren(paren) => paren.attrs = attrs,
        _ => {}
    }
}

/// `(tokens)` as an expression that replaces another: verbatim tokens in parentheses,
/// which stay one expression wherever they are put.
pub(crate) fn paren_expr(tokens: TokenStream) -> Expr {
    Expr::Paren(syn::ExprParen {
        attrs: Vec::new(),
        paren_token: token::Paren::default(),
        expr: Box::new(Expr::Verbatim(tokens)),
    })
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
    use super::{SpawnRewriter, SpawnSite, spawn_site, task_name};
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
            // Tracked spawns by path, and dispatched ones (by the callee's or the
            // receiver's type), which carry the name and detachment the same way.
            let blocking = match ident.to_string().as_str() {
                "spawn_tracked" | "spawn_future" | "spawn_through" => false,
                "spawn_blocking_tracked" | "spawn_function" => true,
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

    /// What `spawn_site` makes of `expr`, as text.
    fn site(expr: Expr) -> String {
        match spawn_site(&expr) {
            None => "none".to_owned(),
            Some(SpawnSite::Tokio(kind, None)) => format!("tokio {kind:?}"),
            Some(SpawnSite::Tokio(kind, Some(ty))) => format!("tokio {kind:?} as {}", quote!(#ty)),
            Some(SpawnSite::Unproven(kind)) => format!("unproven {kind:?}"),
            Some(SpawnSite::Method) => "method".to_owned(),
        }
    }

    #[test]
    fn recognises_every_spawn_form() {
        let cases: [(Expr, &str); 20] = [
            (parse_quote!(tokio::spawn(x)), "tokio Future"),
            (parse_quote!(::tokio::spawn(x)), "tokio Future"),
            (parse_quote!(tokio::task::spawn(x)), "tokio Future"),
            (
                parse_quote!(::tokio::task::spawn_blocking(f)),
                "tokio Blocking",
            ),
            (parse_quote!(tokio::spawn::<F>(x)), "tokio Future as F"),
            (
                parse_quote!(tokio::task::spawn_blocking::<F, R>(f)),
                "tokio Blocking as F",
            ),
            (parse_quote!(spawn(x)), "unproven Future"),
            (parse_quote!(task::spawn(x)), "unproven Future"),
            (parse_quote!(go::<F>(x)), "none"),
            (parse_quote!(rt::spawn_blocking(f)), "unproven Blocking"),
            (parse_quote!(std::thread::spawn(f)), "none"),
            // sundown's own spawns track themselves: not flagged as untracked.
            (parse_quote!(sundown::spawn(x)), "none"),
            (parse_quote!(::sundown::spawn_blocking(f)), "none"),
            (parse_quote!(app::sundown::spawn(x)), "unproven Future"),
            (parse_quote!(thread::spawn(f)), "none"),
            (parse_quote!(tokio::task::spawn_local(x)), "none"),
            (parse_quote!(Handle::current().spawn(x)), "method"),
            (parse_quote!(handle.spawn(x)), "method"),
            (parse_quote!(tokio::spawn(x, y)), "none"),
            (parse_quote!(<T>::spawn(x)), "none"),
        ];
        for (expr, expected) in cases {
            let written = quote!(#expr).to_string();
            assert_eq!(site(expr), expected, "{written}");
        }
        assert_eq!(site(parse_quote!((spawn)(x))), "none");
        assert_eq!(site(parse_quote!(handle.spawn(x, y))), "none");
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

    /// Regression: `let h: JoinHandle<anyhow::Result<()>> = tokio::spawn(async { Ok(()) })`
    /// did not compile: the probe, resolved before the declaration, took the error type
    /// for a `std::error::Error`.
    #[test]
    fn a_declared_output_type_is_given_to_the_probe() {
        let function: syn::ItemFn = parse_quote! {
            async fn main() {
                let h: JoinHandle<anyhow::Result<()>> = tokio::spawn(async { Ok(()) });
                let _: tokio::task::JoinHandle<u8> = tokio::task::spawn_blocking(f);
                let v: Vec<u8> = tokio::spawn(x);
            }
        };
        let mut function = function;
        let krate: syn::Path = parse_quote!(::sundown);
        SpawnRewriter::new(&krate, "main".to_owned()).visit_block(&mut function.block);
        let written = quote!(#function).to_string();
        assert!(
            written.contains("probe_future_as :: < anyhow :: Result < () > , _ >"),
            "{written}"
        );
        assert!(written.contains("probe_fn_as :: < u8 , _ >"), "{written}");
        assert_eq!(written.matches("_as ::").count(), 2, "{written}");
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

    /// A closure or function named `spawn` that the function defines is the user's own:
    /// its calls are left as written (no proof, no warning), in the blocks where it is
    /// in scope only; in its own initializer, outside its block, and once another
    /// binding shadows it, `spawn` is another one, which the proof still decides.
    #[test]
    fn a_local_closure_or_function_named_spawn_is_called_as_written() {
        let spawns = tracked_spawns(parse_quote! {
            async fn main() {
                let spawn = |f| spawn(f);
                spawn(first);
                {
                    fn spawn_blocking(n: u32) -> u32 { n }
                    spawn_blocking(second);
                    let spawn_blocking = |n: u32| n;
                    spawn_blocking(third);
                }
                spawn_blocking(fourth);
                let spawn = tokio::spawn;
                spawn(fifth);
                let spawn: fn(u32) -> u32 = move |n| n;
                spawn(sixth);
                let (spawn, _) = (|n: u32| n, 0);
                spawn(seventh);
            }
        });
        assert_eq!(
            spawns,
            [
                // In the closure's own initializer: the outer `spawn`.
                ("f".to_owned(), false, false),
                // Outside the block that defined the local ones.
                ("fourth".to_owned(), true, true),
                // A later binding of another kind shadows the closure.
                ("fifth".to_owned(), true, false),
                // A closure bound with its type is the user's own too (`sixth` is not
                // here); one bound by a pattern is not seen, and the proof decides.
                ("seventh".to_owned(), true, false),
            ]
        );
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
        });
        assert_eq!(
            spawns,
            [
                ("in_closure".to_owned(), true),
                ("in_block".to_owned(), true),
            ]
        );
    }

    #[test]
    fn spawns_through_imports_handles_and_values_are_dispatched() {
        let spawns = spawns_in(&quote! {
            spawn(imported());
            let h = task::spawn(module());
            let r = go::spawn(renamed());
            let h = tokio::runtime::Handle::current().spawn(on_handle());
            handle.spawn(on_place());
            let v: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
            let t = tokio::spawn::<Fut>(typed());
        });
        assert_eq!(
            spawns,
            [
                ("imported".to_owned(), true),
                ("module".to_owned(), false),
                ("renamed".to_owned(), false),
                ("on_handle".to_owned(), false),
                ("on_place".to_owned(), true),
                ("main::{task}".to_owned(), false),
                ("typed".to_owned(), false),
            ]
        );
    }

    #[test]
    fn macro_input_that_is_expressions_is_rewritten() {
        let spawns = spawns_in(&quote! {
            println!("{:?} {x}", tokio::spawn(in_println()), x = tokio::spawn(named()));
            let v = vec![tokio::spawn(in_vec()), spawn(imported())];
            let r = vec![tokio::spawn(repeated()); 2];
            let (a, b) = tokio::join!(tokio::spawn(first()), tokio::spawn(second()));
            let c = tokio::try_join!(tokio::spawn(tried()));
            assert!(matches!(tokio::spawn(matched()).await, Ok(_)), "{:?}", tokio::spawn(message()));
            tokio::select! {
                biased;
                Ok(x) = tokio::spawn(raced()), if tokio::spawn(guard()).is_finished() => {
                    tokio::spawn(handled());
                }
                _ = rx.recv() => tokio::spawn(expression()).abort(),
                else => { tokio::spawn(otherwise()); }
            }
        });
        let names: Vec<&str> = spawns.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "in_println",
                "named",
                "in_vec",
                "imported",
                "repeated",
                "first",
                "second",
                "tried",
                "matched",
                "message",
                "raced",
                "guard",
                "handled",
                "expression",
                "otherwise",
            ]
        );
    }

    /// A spawn in a macro whose input is not expressions is not rewritten: a warning
    /// statement names it, at the user's `spawn`.
    #[test]
    fn spawns_in_other_macros_are_warned_about() {
        let mut function: syn::ItemFn = parse_quote! {
            async fn main() {
                my_macro!(tokio::spawn(a()); spawn_blocking::<F>(f));
                info!(task = ?tokio::spawn(b()), "started");
                other!(builder.spawn(c()), (spawn)(d()), spawned(e()));
            }
        };
        let krate: syn::Path = parse_quote!(::sundown);
        let mut rewriter = SpawnRewriter::new(&krate, "main".to_owned());
        rewriter.visit_block(&mut function.block);
        rewriter.warn_hidden_spawns(&mut function.block);
        let written = quote!(#function).to_string();
        assert_eq!(
            written.matches("spawn_in_macro_is_not_tracked ()").count(),
            3,
            "{written}"
        );
        assert!(
            written.contains("my_macro ! (tokio :: spawn (a ())"),
            "{written}"
        );
        assert!(!written.contains("spawn_tracked"), "{written}");
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
