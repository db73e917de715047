//! Inputs for the property tests: attribute arguments and function items composed from the
//! pieces people write (and mistype), fully random token trees, and mutations of functions.
//!
//! Everything is built from text that lexes, or from token trees, so every input is one
//! the compiler could hand to an attribute (`Delimiter::None` groups are what a
//! `macro_rules!` fragment such as `$value:expr` arrives as).

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::args::{CANCEL_KEYS, MAIN_KEYS};

/// Lexes text built by these generators, all of which lexes by construction.
pub(super) fn lex(text: &str) -> TokenStream {
    text.parse()
        .unwrap_or_else(|error| panic!("generated text does not lex: {error:?}\n{text}"))
}

fn lexed(text: &'static str) -> TokenStream {
    lex(text)
}

fn group(delimiter: Delimiter, stream: TokenStream) -> TokenStream {
    TokenStream::from(TokenTree::Group(Group::new(delimiter, stream)))
}

fn concat(parts: impl IntoIterator<Item = TokenStream>) -> TokenStream {
    let mut all = TokenStream::new();
    for part in parts {
        all.extend(part);
    }
    all
}

/// `depth` levels of `grow` over `leaf`, each level choosing between a leaf and a grown
/// value of the level below. Built once per test: proptest's `prop_recursive` rebuilds its
/// levels for every case, which made generation most of a case's time.
fn nested<T: std::fmt::Debug + 'static>(
    leaf: BoxedStrategy<T>,
    depth: usize,
    grow: impl Fn(BoxedStrategy<T>) -> BoxedStrategy<T>,
) -> BoxedStrategy<T> {
    let mut level = leaf.clone();
    for _ in 0..depth {
        level = prop_oneof![1 => leaf.clone(), 1 => grow(level)].boxed();
    }
    level
}

// ---------------------------------------------------------------------------------------
// Attribute arguments
// ---------------------------------------------------------------------------------------

const MISSPELLED_KEYS: &[&str] = &[
    "timout",
    "Timeout",
    "TIMEOUT",
    "time_out",
    "dealy",
    "signal",
    "dump_signals",
    "dump-signal",
    "on_failure",
    "exit_code",
    "flavour",
    "workers",
    "worker_thread",
    "krate",
    "r#timeout",
    "clean_up",
    "tokens",
    "self",
    "Self",
    "super",
    "_",
    "r#type",
    "async",
    "fn",
    "main",
    "a::b",
    "::timeout",
    "é",
    "délai",
    "x",
];

/// Contents of string literals: durations, signal names, choices and crate paths, valid
/// and not.
const STRINGS: &[&str] = &[
    "9s",
    "250ms",
    "1m30s",
    "1m1s1ms",
    "0s",
    "0ms",
    "",
    "9",
    "9sec",
    "1.5s",
    "1,5s",
    "-1s",
    "30s1m",
    "1s2s",
    "ms",
    "s5",
    "1h",
    "9S",
    " 9s",
    "1m 30s",
    "9s\n",
    "\u{ff19}s",
    "9\u{15b}",
    "99999999999999999999s",
    "307445734561825861m",
    "18446744073709551615ms",
    "18446744073709551s",
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGKILL",
    "SIGSTOP",
    "SIGSEGV",
    "SIGABRT",
    "sigterm",
    "sigkill",
    "TERM",
    "term",
    "SIG",
    "SIGTERM ",
    "CTRL_C",
    "CTRL_BREAK",
    "\u{df}",
    "\u{131}",
    "log",
    "shutdown",
    "code",
    "signal",
    "signals",
    "multi_thread",
    "current_thread",
    "multi-thread",
    "Log",
    "::sundown",
    "sundown",
    "sundown_renamed",
    "::sundown_renamed",
    "crate",
    "self",
    "super",
    "Self",
    "$crate",
    "crate::sundown",
    "::crate",
    "::self",
    "self::x",
    "::",
    "a::",
    "a b",
    "1",
    "r#try",
    "r#crate",
    "r#self",
    "<T>::x",
    "a::<T>",
    "a<T>",
    "::a::b::c",
    "sundown::Shutdown",
    "\"",
    "\\",
    "(",
    "{}",
    "/* */",
    "//",
    "a.b",
    "'a",
];

/// Up to three `<digits><unit>` parts, with units valid or not and numbers that overflow.
fn duration_like() -> impl Strategy<Value = String> {
    let digits = vec(b'0'..=b'9', 0..23).prop_map(|digits| digits.into_iter().map(char::from));
    let unit = select(&["ms", "s", "m", "h", "S", "\u{b5}s", ""][..]);
    vec((digits, unit), 1..4).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(digits, unit)| digits.chain(unit.chars()))
            .collect()
    })
}

/// String-literal forms a value may be written in.
fn string_literal() -> impl Strategy<Value = TokenStream> {
    let contents = prop_oneof![
        4 => select(STRINGS).prop_map(str::to_owned),
        1 => duration_like(),
        1 => vec(b' '..=b'~', 0..12).prop_map(|bytes| bytes.into_iter().map(char::from).collect()),
    ];
    (contents, 0..8_u8).prop_map(|(text, form)| {
        let literal = match form {
            0 if !text.contains('"') => format!("r\"{text}\""),
            1 if !text.contains('"') => format!("r#\"{text}\"#"),
            2 if text.chars().all(|c| c.is_ascii_graphic() || c == ' ') => format!("b{text:?}"),
            3 if !text.contains('\0') => format!("c{text:?}"),
            4 => format!("{text:?}suffix"),
            _ => format!("{text:?}"),
        };
        lex(&literal)
    })
}

const OTHER_VALUES: &[&str] = &[
    "9",
    "9s",
    "250ms",
    "1m",
    "0",
    "4",
    "4usize",
    "4u8",
    "4i32",
    "-1",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "0x10",
    "0b1",
    "1e3",
    "1.5",
    "1.5s",
    "4_000",
    "'c'",
    "b'c'",
    "true",
    "SIGTERM",
    "conn.close()",
    "self.flush()",
    "session.flush().await",
    "async { flush().await }",
    "async move { tokio::spawn(work()); }",
    "async { let _ = tokio::task::spawn_blocking(|| 1); }",
    "|| conn.close()",
    "move || async {}",
    "async || x",
    "async move |x| x",
    "tokio::spawn(work())",
    "shutdown.token()",
    "&token",
    "Shutdown::current().token()",
    "x",
    "self",
    "{ 1 }",
    "(1)",
    "()",
    "a::b",
    "::sundown",
    "todo!()",
    "vec![tokio::spawn(x)]",
    "if a { b } else { c }",
    "match x { _ => y }",
    "loop {}",
    "return",
    "x?",
    "..",
    "a = b",
    "a == b",
    "&mut x",
    "*x",
    "[\"SIGTERM\", \"SIGINT\"]",
    "[]",
    "[\"SIGTERM\",]",
    "[\"SIGKILL\", 1, \"sigint\"]",
    "[\"SIGUSR1\"; 2]",
    "[[\"SIGTERM\"]]",
    "\"9s\" \"1s\"",
    "'a",
    "#",
    "r#async",
];

/// A value: a string literal, another expression, or an array of values, sometimes wrapped
/// in the invisible group a `macro_rules!` fragment arrives in.
fn value() -> impl Strategy<Value = TokenStream> {
    let leaf = prop_oneof![
        3 => string_literal(),
        2 => select(OTHER_VALUES).prop_map(lexed),
    ];
    let nested = nested(leaf.boxed(), 3, |inner| {
        prop_oneof![
            vec((inner.clone(), select(&[",", ",", ",", "", ";"][..])), 0..5).prop_map(
                |elements| {
                    group(
                        Delimiter::Bracket,
                        concat(elements.into_iter().map(|(e, sep)| concat([e, lex(sep)]))),
                    )
                }
            ),
            inner.clone().prop_map(|e| group(Delimiter::Parenthesis, e)),
            inner.prop_map(|e| group(Delimiter::None, e)),
        ]
        .boxed()
    });
    (nested, 0..6_u8).prop_map(|(tokens, wrap)| {
        if wrap == 0 {
            group(Delimiter::None, tokens)
        } else {
            tokens
        }
    })
}

fn key() -> impl Strategy<Value = TokenStream> {
    prop_oneof![
        // Every key either attribute accepts (the lists the parser itself checks against).
        4 => select(
            MAIN_KEYS
                .iter()
                .chain(CANCEL_KEYS)
                .copied()
                .collect::<Vec<_>>()
        )
        .prop_map(lexed),
        1 => select(MISSPELLED_KEYS).prop_map(lexed),
    ]
}

const STRAY: &[&str] = &[
    "=", "==", ",", ";", ":", "::", ".", "#", "!", "?", "&", "*", "-", "@", "$", "=>", "->", "..",
    "'a", "<", ">", "|", "~",
];

/// One argument-like piece: `key = value` most of the time, or a part of one.
fn argument_piece() -> impl Strategy<Value = TokenStream> {
    let piece = prop_oneof![
        12 => (key(), value()).prop_map(|(k, v)| concat([k, lex("="), v])),
        1 => key(),
        1 => key().prop_map(|k| concat([k, lex("=")])),
        1 => value().prop_map(|v| concat([lex("="), v])),
        1 => value(),
        1 => (key(), value()).prop_map(|(k, v)| concat([k, v])),
        1 => (key(), value()).prop_map(|(k, v)| concat([k, lex(":"), v])),
        1 => select(STRAY).prop_map(lexed),
    ];
    nested(piece.boxed(), 2, |inner| {
        (
            vec(inner, 0..4),
            select(
                &[
                    Delimiter::Parenthesis,
                    Delimiter::Bracket,
                    Delimiter::Brace,
                    Delimiter::None,
                ][..],
            ),
        )
            .prop_map(|(pieces, delimiter)| group(delimiter, separated(pieces, &[","])))
            .boxed()
    })
}

fn separated(pieces: Vec<TokenStream>, separators: &[&str]) -> TokenStream {
    let mut all = TokenStream::new();
    for (index, piece) in pieces.into_iter().enumerate() {
        if index > 0 {
            all.extend(lex(separators[index % separators.len()]));
        }
        all.extend(piece);
    }
    all
}

/// Attribute arguments: pieces separated by commas, with stray or missing separators in
/// random places and an optional trailing comma.
pub(super) fn attribute_arguments() -> impl Strategy<Value = TokenStream> {
    let separator = prop_oneof![
        12 => Just(","),
        1 => Just(""),
        1 => Just(",,"),
        1 => Just(";"),
        1 => Just("="),
        1 => Just("::"),
    ];
    (vec((argument_piece(), separator), 0..6), any::<bool>()).prop_map(|(pieces, trailing)| {
        let count = pieces.len();
        let mut all = TokenStream::new();
        for (index, (piece, separator)) in pieces.into_iter().enumerate() {
            all.extend(piece);
            if index + 1 < count || trailing {
                all.extend(lex(separator));
            }
        }
        all
    })
}

// ---------------------------------------------------------------------------------------
// Function items
// ---------------------------------------------------------------------------------------

const OUTER_ATTRIBUTES: &[&str] = &[
    "",
    "",
    "",
    "#[inline] ",
    "#[doc = \"x\"] ",
    "/// Docs.\n",
    "#[allow(unused)] ",
    "#[cfg(test)] ",
    "#[must_use] #[allow(dead_code)] ",
    "#[tokio::main] ",
    "#[cancel_safe] ",
];

const VISIBILITIES: &[&str] = &[
    "",
    "",
    "pub ",
    "pub(crate) ",
    "pub(super) ",
    "pub(in crate::a) ",
    "pub(self) ",
];

const QUALIFIERS: &[&str] = &[
    "async ",
    "async ",
    "async ",
    "async ",
    "",
    "const ",
    "async unsafe ",
    "unsafe ",
    "async extern \"C\" ",
    "extern ",
    "const async ",
    "async const ",
    "safe ",
];

const NAMES: &[&str] = &[
    "main",
    "main",
    "poll",
    "run",
    "r#try",
    "r#async",
    "_x",
    "\u{f1}ame",
    "main2",
    "Main",
    "f",
];

const GENERICS: &[&str] = &[
    "",
    "",
    "",
    "<T>",
    "<'a>",
    "<'a, T: Clone + 'a>",
    "<const N: usize>",
    "<T = u8>",
    "<F: Fn() -> R, R>",
    "<'a: 'b, 'b>",
    "<T: ?Sized>",
    "<>",
];

const RECEIVERS: &[&str] = &[
    "self",
    "&self",
    "&mut self",
    "mut self",
    "self: Box<Self>",
    "&'a self",
    "self: &Self",
    "self: ::core::pin::Pin<&mut Self>",
    "&'a mut self",
];

const PATTERNS: &[&str] = &[
    "x",
    "shutdown",
    "scope",
    "mut x",
    "_",
    "(a, b)",
    "S { a, .. }",
    "[a, b]",
    "&x",
    "ref x",
    "Wrapper(x)",
    "#[allow(unused)] x",
    "r#in",
    "_scope",
    "x @ _",
];

const TYPES: &[&str] = &[
    "Shutdown",
    "sundown::Shutdown",
    "::sundown::Shutdown",
    "::sundown_renamed::Shutdown",
    "&Shutdown",
    "Shutdown<T>",
    "(Shutdown)",
    "u8",
    "impl Fn()",
    "&'a str",
    "Vec<T>",
    "(u8, u16)",
    "()",
    "[u8; 4]",
    "fn() -> u8",
    "Box<dyn Error>",
    "!",
    "_",
    "<T as Trait>::X",
    "Option<&mut T>",
    "&Session",
    "Arc<Counters>",
    "impl AsRef<T>",
    "dyn Trait",
    "*const u8",
    "Self",
];

const RETURN_TYPES: &[&str] = &[
    "",
    "",
    "-> ()",
    "-> (())",
    "-> Result<(), E>",
    "-> Result<u32, Cancelled>",
    "-> anyhow::Result<()>",
    "-> io::Result<u8>",
    "-> ::core::result::Result<T, Box<dyn ::std::error::Error + Send + Sync>>",
    "-> impl Future<Output = ()>",
    "-> &'a str",
    "-> (u8, Result<(), E>)",
    "-> !",
    "-> Self",
    "-> T",
    "-> Option<()>",
    "-> Box<dyn Error>",
    "-> (Result<(), E>)",
    "-> ExitCode",
    "-> std::process::ExitCode",
    "-> i32",
    "-> String",
    "-> <T as Tr>::Out",
    "-> [u8; 3]",
    "-> fn() -> u8",
    "-> dyn Tr",
    "-> _",
    "-> Result",
    "-> Result<Result<(), E>, E>",
    "-> Outcome<T>",
];

const WHERE_CLAUSES: &[&str] = &[
    "",
    "",
    "",
    "where T: Send",
    "where Self: Sized,",
    "where for<'b> F: Fn(&'b u8)",
    "where",
];

const EXPR_LEAVES: &[&str] = &[
    "x",
    "1",
    "\"s\"",
    "()",
    "self",
    "work()",
    "work(x, y)",
    "worker::run(x)",
    "server.run()",
    "Ok(())",
    "Err(e)",
    "Shutdown::current()",
    "todo!()",
    "compute",
    "std::future::pending()",
    "tokio::time::sleep(d)",
    "async {}",
    "|| 1",
    "(factories[0])()",
    "make().await",
    "Vec::<u8>::new()",
    "<T>::new()",
    "::tokio::spawn",
    "tokio::spawn",
    "S { a: 1 }",
    "'a: loop { break 'a; }",
    "break",
    "continue",
    "return",
    "..",
    "_",
];

const SPAWNS: &[&str] = &[
    "tokio::spawn",
    "tokio::spawn",
    "::tokio::spawn",
    "tokio::task::spawn",
    "::tokio::task::spawn",
    "tokio::task::spawn_blocking",
    "::tokio::task::spawn_blocking",
    "tokio::task::spawn_local",
    "tokio::spawn::<F>",
    "spawn",
    "sundown::spawn",
    "<tokio>::spawn",
    // Forms decided by type: imports, renames, module paths, receivers.
    "task::spawn",
    "rt::spawn_blocking",
    "go::spawn::<F>",
    "std::thread::spawn",
    "(spawn)",
    "Handle::current().spawn",
    "handle.spawn",
    "self.rt.spawn",
    "builder().spawn",
];

/// Expressions, built from statements, closures, async blocks and spawns.
fn expression() -> BoxedStrategy<String> {
    let leaf = select(EXPR_LEAVES).prop_map(str::to_owned);
    nested(leaf.boxed(), 4, |inner| {
        let block = statements(inner.clone());
        prop_oneof![
            6 => (select(SPAWNS), inner.clone()).prop_map(|(spawn, e)| format!("{spawn}({e})")),
            1 => (select(SPAWNS), inner.clone(), inner.clone())
                .prop_map(|(spawn, a, b)| format!("{spawn}({a}, {b})")),
            1 => select(SPAWNS).prop_map(|spawn| format!("{spawn}()")),
            1 => inner.clone().prop_map(|e| format!("tokio::task::spawn_blocking(move || {e})")),
            2 => block.clone().prop_map(|b| format!("async {{ {b} }}")),
            2 => block.clone().prop_map(|b| format!("async move {{ {b} }}")),
            1 => inner.clone().prop_map(|e| format!("|| {e}")),
            1 => inner.clone().prop_map(|e| format!("move |x| {e}")),
            1 => block.clone().prop_map(|b| format!("async || {{ {b} }}")),
            2 => inner.clone().prop_map(|e| format!("{e}.await")),
            2 => inner.clone().prop_map(|e| format!("{e}?")),
            1 => inner.clone().prop_map(|e| format!("return {e}")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}.method({b})")),
            1 => inner.clone().prop_map(|e| format!("f({e})")),
            1 => inner.clone().prop_map(|e| format!("({e})")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}, {b})")),
            1 => inner.clone().prop_map(|e| format!("[{e}; 2]")),
            1 => inner.clone().prop_map(|e| format!("{e} as u8")),
            1 => inner.clone().prop_map(|e| format!("{e}..")),
            1 => (inner.clone(), select(&["==", "+", "&&", "=", "+=", "..", "<", "|"][..]), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            1 => (select(&["!", "-", "&", "&mut ", "*"][..]), inner.clone())
                .prop_map(|(op, e)| format!("{op}{e}")),
            2 => (inner.clone(), block.clone(), block.clone())
                .prop_map(|(c, a, b)| format!("if {c} {{ {a} }} else {{ {b} }}")),
            1 => (inner.clone(), block.clone())
                .prop_map(|(c, a)| format!("if let Some(x) = {c} {{ {a} }}")),
            1 => (inner.clone(), inner.clone()).prop_map(|(s, a)| format!("match {s} {{ _ => {a}, }}")),
            1 => inner.clone().prop_map(|e| format!("loop {{ break {e}; }}")),
            1 => (inner.clone(), block.clone()).prop_map(|(c, b)| format!("while {c} {{ {b} }}")),
            1 => (inner.clone(), block.clone()).prop_map(|(i, b)| format!("for x in {i} {{ {b} }}")),
            1 => block.clone().prop_map(|b| format!("{{ {b} }}")),
            1 => block.clone().prop_map(|b| format!("unsafe {{ {b} }}")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("{a}[{i}]")),
            1 => inner.clone().prop_map(|e| format!("{e}.field")),
            1 => inner.clone().prop_map(|e| format!("S {{ a: {e} }}")),
            1 => inner.clone().prop_map(|e| format!("m!({e})")),
            // Macro input the rewrite parses, or warns about.
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("vec![{a}, {b}]")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("vec![{a}; {b}]")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("tokio::join!({a}, {b})")),
            1 => inner.clone().prop_map(|e| format!("tokio::try_join!({e},)")),
            1 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, c, h)| {
                format!("tokio::select! {{ biased; x = {a}, if {c} => {h}, else => {{ {h} }} }}")
            }),
            1 => (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("assert!(matches!({a}, Ok(_)), \"{{}}\", {b})")),
            1 => inner.clone().prop_map(|e| format!("format!(\"{{x}}\", x = {e})")),
            1 => inner.clone().prop_map(|e| format!("info!(task = ?{e}, \"started\")")),
            1 => inner.clone().prop_map(|e| format!("{e}.map(tokio::spawn)")),
            1 => inner.clone().prop_map(|e| format!("const {{ {e} }}")),
        ]
        .boxed()
    })
}

/// A sequence of statements, optionally ending in a tail expression.
fn statements(expr: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let statement = prop_oneof![
        3 => expr.clone().prop_map(|e| format!("let _ = {e};")),
        2 => (select(PATTERNS), expr.clone()).prop_map(|(p, e)| format!("let {p} = {e};")),
        1 => (select(TYPES), expr.clone()).prop_map(|(t, e)| format!("let _: {t} = {e};")),
        1 => expr.clone().prop_map(|e| format!("let (_) = {e};")),
        1 => expr.clone().prop_map(|e| format!("let h = {e} else {{ return; }};")),
        1 => expr.clone().prop_map(|e| format!("let Some(x) = {e} else {{ return Ok(()) }};")),
        5 => expr.clone().prop_map(|e| format!("{e};")),
        1 => expr.clone().prop_map(|e| format!("fn helper() {{ {e}; }}")),
        1 => expr.clone().prop_map(|e| format!("impl S {{ async fn f(&self) {{ {e}; }} }}")),
        1 => Just("struct S;".to_owned()),
        1 => Just("use tokio::spawn;".to_owned()),
        1 => expr.clone().prop_map(|e| format!("println!(\"{{}}\", {e});")),
        1 => expr.clone().prop_map(|e| format!("tokio::select! {{ _ = {e} => {{}} }}")),
        1 => expr.clone().prop_map(|e| format!("vec![{e}];")),
        1 => Just(";".to_owned()),
        1 => expr.clone().prop_map(|e| format!("#[allow(unused)] let x = {e};")),
        1 => expr.clone().prop_map(|e| format!("#[rustfmt::skip] {e};")),
    ];
    (vec(statement, 0..4), proptest::option::weighted(0.3, expr))
        .prop_map(|(statements, tail)| {
            let mut text = statements.join(" ");
            if let Some(tail) = tail {
                text.push(' ');
                text.push_str(&tail);
            }
            text
        })
        .boxed()
}

/// The text of a function item composed from random pieces of the grammar. Most are
/// functions syn accepts; some combinations are not.
pub(super) fn function_text() -> impl Strategy<Value = String> {
    let parameters = vec(
        prop_oneof![
            1 => select(RECEIVERS).prop_map(str::to_owned),
            5 => (select(PATTERNS), select(TYPES)).prop_map(|(p, t)| format!("{p}: {t}")),
            1 => Just("...".to_owned()),
        ],
        0..3,
    )
    .prop_map(|parameters| parameters.join(", "));
    let body = (
        select(&["", "", "", "", "#![allow(unused)] ", "#![doc = \"x\"] "][..]),
        statements(expression()),
    )
        .prop_map(|(inner, statements)| format!("{{ {inner}{statements} }}"));
    (
        select(OUTER_ATTRIBUTES),
        select(VISIBILITIES),
        select(QUALIFIERS),
        select(NAMES),
        select(GENERICS),
        parameters,
        any::<bool>(),
        select(RETURN_TYPES),
        select(WHERE_CLAUSES),
        prop_oneof![12 => body, 1 => Just(";".to_owned())],
    )
        .prop_map(
            |(attrs, vis, qualifiers, name, generics, parameters, comma, ret, clause, body)| {
                let comma = if comma && !parameters.is_empty() {
                    ","
                } else {
                    ""
                };
                format!(
                    "{attrs}{vis}{qualifiers}fn {name}{generics}({parameters}{comma}) {ret} \
                     {clause} {body}"
                )
            },
        )
}

// ---------------------------------------------------------------------------------------
// Random token trees and mutations
// ---------------------------------------------------------------------------------------

const TOKENS: &[&str] = &[
    "fn",
    "async",
    "pub",
    "main",
    "self",
    "Self",
    "crate",
    "super",
    "const",
    "unsafe",
    "extern",
    "let",
    "return",
    "await",
    "move",
    "impl",
    "where",
    "struct",
    "mod",
    "use",
    "r#x",
    "r#fn",
    "tokio",
    "spawn",
    "task",
    "spawn_blocking",
    "sundown",
    "Shutdown",
    "Result",
    "timeout",
    "cleanup",
    "token",
    "signals",
    "_",
    "'a",
    "'static",
    "=",
    ",",
    ";",
    ":",
    "::",
    ".",
    "..",
    "...",
    "->",
    "=>",
    "#",
    "!",
    "?",
    "&",
    "&&",
    "*",
    "+",
    "-",
    "/",
    "%",
    "^",
    "|",
    "||",
    "<",
    ">",
    "<=",
    "@",
    "$",
    "~",
    "\"9s\"",
    "\"SIGTERM\"",
    "\"\"",
    "r\"x\"",
    "b\"x\"",
    "c\"x\"",
    "'c'",
    "b'c'",
    "1",
    "0",
    "9s",
    "1.5",
    "1e3",
    "0x1",
    "18446744073709551616",
    "\"s\"x",
    "tokio::spawn",
    "-1",
    "// comment\n",
    "/* comment */",
    "/// doc\n",
    "//! inner doc\n",
];

/// A random token tree, including invisible groups.
pub(super) fn token_trees() -> impl Strategy<Value = TokenStream> {
    let leaf = select(TOKENS).prop_map(lexed);
    nested(leaf.boxed(), 4, |inner| {
        prop_oneof![
            3 => vec(inner.clone(), 0..6).prop_map(concat),
            1 => (
                vec(inner, 0..6),
                select(&[Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace, Delimiter::None][..]),
            )
                .prop_map(|(trees, delimiter)| group(delimiter, concat(trees))),
        ]
        .boxed()
    })
}

/// One edit at a random place in a token tree: which group (in pre-order), where in it,
/// and what to do there.
#[derive(Clone, Debug)]
pub(super) struct Edit {
    group: usize,
    position: usize,
    other: usize,
    kind: u8,
}

pub(super) fn edits() -> impl Strategy<Value = Vec<Edit>> {
    vec(
        (any::<usize>(), any::<usize>(), any::<usize>(), 0..9_u8).prop_map(
            |(group, position, other, kind)| Edit {
                group,
                position,
                other,
                kind,
            },
        ),
        1..5,
    )
}

/// Applies `edits` to `tokens`: dropping, duplicating, swapping and inserting tokens,
/// changing or removing a group's delimiters, or grouping a run of tokens.
pub(super) fn mutate(tokens: TokenStream, edits: &[Edit]) -> TokenStream {
    let mut tokens = tokens;
    for edit in edits {
        let groups = count_groups(&tokens) + 1;
        let mut target = edit.group % groups;
        tokens = apply(tokens, &mut target, edit);
    }
    tokens
}

fn count_groups(tokens: &TokenStream) -> usize {
    tokens
        .clone()
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => 1 + count_groups(&group.stream()),
            _ => 0,
        })
        .sum()
}

/// Applies `edit` to the stream numbered `target` in pre-order (0 is `tokens` itself).
fn apply(tokens: TokenStream, target: &mut usize, edit: &Edit) -> TokenStream {
    if *target == 0 {
        *target = usize::MAX;
        return edit_stream(tokens.into_iter().collect(), edit)
            .into_iter()
            .collect();
    }
    *target -= 1;
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) if *target != usize::MAX => {
                let stream = apply(group.stream(), target, edit);
                let mut rebuilt = Group::new(group.delimiter(), stream);
                rebuilt.set_span(group.span());
                TokenTree::Group(rebuilt)
            }
            other => other,
        })
        .collect()
}

fn edit_stream(mut trees: Vec<TokenTree>, edit: &Edit) -> Vec<TokenTree> {
    let len = trees.len();
    if len == 0 {
        return lex(TOKENS[edit.other % TOKENS.len()]).into_iter().collect();
    }
    let at = edit.position % len;
    let other = edit.other % len;
    match edit.kind {
        0 => {
            trees.remove(at);
        }
        1 => {
            let copy = trees[at].clone();
            trees.insert(at, copy);
        }
        2 => trees.swap(at, other),
        3 => {
            let inserted = lex(TOKENS[edit.other % TOKENS.len()]);
            trees.splice(at..at, inserted);
        }
        4 => {
            let (low, high) = (at.min(other), at.max(other));
            let run: TokenStream = trees.drain(low..=high).collect();
            trees.insert(low, TokenTree::Group(Group::new(Delimiter::None, run)));
        }
        5 => {
            if let TokenTree::Group(group) = &trees[at] {
                let inner: Vec<TokenTree> = group.stream().into_iter().collect();
                trees.splice(at..=at, inner);
            }
        }
        6 => {
            if let TokenTree::Group(group) = &trees[at] {
                let delimiters = [
                    Delimiter::Parenthesis,
                    Delimiter::Bracket,
                    Delimiter::Brace,
                    Delimiter::None,
                ];
                let delimiter = delimiters[edit.other % delimiters.len()];
                trees[at] = TokenTree::Group(Group::new(delimiter, group.stream()));
            }
        }
        7 => {
            trees.truncate(at);
        }
        _ => {
            let moved = trees.remove(at);
            trees.insert(other.min(trees.len()), moved);
        }
    }
    trees
}
