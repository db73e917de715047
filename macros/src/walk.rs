//! The walk over an annotated function's body that both rewrites use (tracked spawns,
//! `#[cancel_safe]` suspension points).
//!
//! The traversal: every expression of the body that holds code, each one's parts before
//! itself, so a spawn's arguments are rewritten before the spawn. Nested items are not
//! part of the annotated function's body and are skipped; a macro's input is tokens, not
//! expressions, and is handed to the visitor whole. Of the expressions inside patterns, types and
//! attributes only a match arm's guard runs as the function's code, and only it is
//! visited; the others (array lengths, const arguments, const patterns, attribute values)
//! are evaluated while compiling, if at all.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Block, Expr, Macro, Pat, Stmt};

/// What a walk does at each node it reaches.
pub(crate) trait Visitor {
    /// Whether closures' bodies and async blocks are walked (they are code of their own,
    /// run when called or awaited).
    fn enters_async(&self) -> bool {
        true
    }

    /// A statement, before its parts: `true` when the visitor dealt with all of it.
    fn stmt(&mut self, _stmt: &mut Stmt) -> bool {
        false
    }

    /// An expression, before its parts (as written, before any of them is rewritten).
    fn enter(&mut self, _expr: &Expr) {}

    /// An expression, after its parts.
    fn expr(&mut self, _expr: &mut Expr) {}

    /// The walk goes into a closure's body or an async block (when `enters_async`)...
    fn enter_async(&mut self) {}

    /// ...and comes back out of it.
    fn leave_async(&mut self) {}

    /// A block's statements are about to be walked...
    fn enter_block(&mut self, _block: &Block) {}

    /// ...and were.
    fn leave_block(&mut self) {}

    /// A macro call, whose input is tokens the walk does not see into (a visitor may
    /// parse and rewrite them).
    fn macro_call(&mut self, _mac: &mut Macro) {}

    /// Tokens syn did not parse, or that an earlier rewrite left as tokens (a tracked
    /// spawn); see [`visit_verbatim`].
    fn verbatim(&mut self, _tokens: &mut TokenStream) {}
}

/// Walks tokens an earlier rewrite left as tokens (a tracked spawn, whose argument is the
/// user's code), read back as the statements of a block and written back as the walk
/// left them. `false` when they do not read as statements (tokens syn did not parse):
/// the caller treats them as unseen.
pub(crate) fn visit_verbatim<V: Visitor + ?Sized>(v: &mut V, tokens: &mut TokenStream) -> bool {
    let Ok(mut block) = syn::parse2::<Block>(quote!({ #tokens })) else {
        return false;
    };
    visit_block(v, &mut block);
    let stmts = &block.stmts;
    *tokens = quote!(#(#stmts)*);
    true
}

/// Walks the statements of `block`.
pub(crate) fn visit_block<V: Visitor + ?Sized>(v: &mut V, block: &mut Block) {
    v.enter_block(block);
    for stmt in &mut block.stmts {
        visit_stmt(v, stmt);
    }
    v.leave_block();
}

/// Walks `expr`'s parts, then hands `expr` itself to the visitor.
pub(crate) fn visit_expr<V: Visitor + ?Sized>(v: &mut V, expr: &mut Expr) {
    v.enter(expr);
    visit_children(v, expr);
    v.expr(expr);
}

fn visit_stmt<V: Visitor + ?Sized>(v: &mut V, stmt: &mut Stmt) {
    if v.stmt(stmt) {
        return;
    }
    match stmt {
        Stmt::Local(local) => {
            if let Some(init) = &mut local.init {
                visit_expr(v, &mut init.expr);
                if let Some((_, diverge)) = &mut init.diverge {
                    visit_expr(v, diverge);
                }
            }
        }
        Stmt::Expr(expr, _) => visit_expr(v, expr),
        Stmt::Macro(m) => v.macro_call(&mut m.mac),
        Stmt::Item(_) => {}
    }
}

fn visit_exprs<'e, V: Visitor + ?Sized>(v: &mut V, exprs: impl IntoIterator<Item = &'e mut Expr>) {
    for e in exprs {
        visit_expr(v, e);
    }
}

fn visit_optional<V: Visitor + ?Sized>(v: &mut V, e: Option<&mut Box<Expr>>) {
    if let Some(e) = e {
        visit_expr(v, e);
    }
}

/// Visits the sub-expressions and blocks of `expr`, in the order they are written.
fn visit_children<V: Visitor + ?Sized>(v: &mut V, e: &mut Expr) {
    match e {
        Expr::Array(array) => visit_exprs(v, &mut array.elems),
        Expr::Assign(assign) => {
            visit_expr(v, &mut assign.left);
            visit_expr(v, &mut assign.right);
        }
        Expr::Async(b) if v.enters_async() => {
            v.enter_async();
            visit_block(v, &mut b.block);
            v.leave_async();
        }
        Expr::Await(wait) => visit_expr(v, &mut wait.base),
        Expr::Binary(binary) => {
            visit_expr(v, &mut binary.left);
            visit_expr(v, &mut binary.right);
        }
        Expr::Block(block) => visit_block(v, &mut block.block),
        Expr::Break(jump) => visit_optional(v, jump.expr.as_mut()),
        Expr::Call(call) => {
            // A callee that is a path is part of the call, which the visitor sees whole
            // (`tokio::spawn` called is not `tokio::spawn` passed as a value); so is a
            // parenthesized path, `(tokio::spawn)(x)`, the way to call a function as
            // written.
            let path_callee = match &*call.func {
                Expr::Path(_) => true,
                Expr::Paren(paren) => matches!(*paren.expr, Expr::Path(_)),
                _ => false,
            };
            if !path_callee {
                visit_expr(v, &mut call.func);
            }
            visit_exprs(v, &mut call.args);
        }
        Expr::Cast(cast) => visit_expr(v, &mut cast.expr),
        Expr::Closure(closure) if v.enters_async() => {
            v.enter_async();
            visit_expr(v, &mut closure.body);
            v.leave_async();
        }
        Expr::Const(block) => visit_block(v, &mut block.block),
        Expr::Field(field) => visit_expr(v, &mut field.base),
        Expr::ForLoop(each) => {
            visit_expr(v, &mut each.expr);
            visit_block(v, &mut each.body);
        }
        Expr::Group(group) => visit_expr(v, &mut group.expr),
        Expr::If(branch) => {
            visit_expr(v, &mut branch.cond);
            visit_block(v, &mut branch.then_branch);
            if let Some((_, otherwise)) = &mut branch.else_branch {
                visit_expr(v, otherwise);
            }
        }
        Expr::Index(index) => {
            visit_expr(v, &mut index.expr);
            visit_expr(v, &mut index.index);
        }
        Expr::Let(binding) => visit_expr(v, &mut binding.expr),
        Expr::Loop(repeat) => visit_block(v, &mut repeat.body),
        Expr::Match(choice) => {
            visit_expr(v, &mut choice.expr);
            for arm in &mut choice.arms {
                // A guard is part of the arm's pattern: `Some(x) if ready(x) =>`.
                if let Pat::Guard(guarded) = &mut arm.pat {
                    visit_expr(v, &mut guarded.guard);
                }
                visit_expr(v, &mut arm.body);
            }
        }
        Expr::MethodCall(call) => {
            visit_expr(v, &mut call.receiver);
            visit_exprs(v, &mut call.args);
        }
        Expr::Paren(paren) => visit_expr(v, &mut paren.expr),
        Expr::Range(range) => {
            visit_optional(v, range.start.as_mut());
            visit_optional(v, range.end.as_mut());
        }
        Expr::RawAddr(address) => visit_expr(v, &mut address.expr),
        Expr::Reference(reference) => visit_expr(v, &mut reference.expr),
        Expr::Repeat(repeat) => {
            visit_expr(v, &mut repeat.expr);
            visit_expr(v, &mut repeat.len);
        }
        Expr::Return(jump) => visit_optional(v, jump.expr.as_mut()),
        Expr::Struct(construct) => {
            visit_exprs(v, construct.fields.iter_mut().map(|field| &mut field.expr));
            visit_optional(v, construct.rest.as_mut());
        }
        Expr::Try(question) => visit_expr(v, &mut question.expr),
        Expr::TryBlock(block) => visit_block(v, &mut block.block),
        Expr::Tuple(tuple) => visit_exprs(v, &mut tuple.elems),
        Expr::Unary(unary) => visit_expr(v, &mut unary.expr),
        Expr::Unsafe(block) => visit_block(v, &mut block.block),
        Expr::While(repeat) => {
            visit_expr(v, &mut repeat.cond);
            visit_block(v, &mut repeat.body);
        }
        Expr::Yield(jump) => visit_optional(v, jump.expr.as_mut()),
        // Tokens, not expressions: the visitor sees them whole.
        Expr::Macro(m) => v.macro_call(&mut m.mac),
        Expr::Verbatim(tokens) => v.verbatim(tokens),
        // Nothing inside (`continue`, `_`, literals, paths).
        Expr::Continue(_) | Expr::Infer(_) | Expr::Lit(_) | Expr::Path(_) => {}
        _ => {}
    }
}
