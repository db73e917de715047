//! Attribute arguments: parsed into a configuration that keeps spans, then checked
//! against each other. Every mistake is recorded; none stops the others from being found.

use crate::error::{Errors, code_list};
use crate::facts::{self, DEFAULT_MAIN_TIMEOUT_MS, DEFAULT_SIGNALS, SIGNALS};
use crate::suggest::{did_you_mean, suggestion_suffix};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

/// One `key = value` pair as written, before its value is understood.
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    eq: Option<Token![=]>,
    pub(crate) value: Option<Expr>,
}

impl RawArg {
    fn name(&self) -> String {
        self.key.unraw().to_string()
    }
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword, so the key is parsed with `parse_any`.
        let key = input.call(Ident::parse_any)?;
        if input.peek(Token![::]) {
            return Err(input.error(
                "expected `=` after the argument name; arguments are `name = value` pairs",
            ));
        }
        let (eq, value) = if input.peek(Token![=]) {
            (Some(input.parse()?), Some(input.parse()?))
        } else {
            (None, None)
        };
        if !input.is_empty() && !input.peek(Token![,]) {
            return Err(input.error("expected `,` between arguments"));
        }
        Ok(RawArg { key, eq, value })
    }
}

impl ToTokens for RawArg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        self.eq.to_tokens(tokens);
        self.value.to_tokens(tokens);
    }
}

/// A setting the user wrote, with the tokens of its `name = value` pair for later errors.
pub(crate) struct Setting<T> {
    pub(crate) value: T,
    pub(crate) pair: TokenStream,
}

/// How a failed tracked task is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailurePolicy {
    Log,
    Shutdown,
}

/// How the process ends after a signal-initiated shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitMode {
    Code,
    Signal,
}

/// Which tokio runtime runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    MultiThread,
    CurrentThread,
}

/// The arguments of `#[graceful_main]`. Absent settings take the runtime's defaults.
#[derive(Default)]
pub(crate) struct MainArgs {
    pub(crate) timeout: Option<Setting<u64>>,
    pub(crate) delay: Option<Setting<u64>>,
    pub(crate) signals: Option<Setting<Vec<String>>>,
    pub(crate) dump_signal: Option<Setting<String>>,
    pub(crate) on_task_failure: Option<Setting<FailurePolicy>>,
    pub(crate) exit: Option<Setting<ExitMode>>,
    pub(crate) flavor: Option<Setting<Flavor>>,
    pub(crate) worker_threads: Option<Setting<usize>>,
    pub(crate) debug: Option<Setting<bool>>,
    pub(crate) krate: Option<syn::Path>,
}

/// The arguments of `#[cancel_safe]`.
#[derive(Default)]
pub(crate) struct CancelArgs {
    pub(crate) cleanup: Option<Expr>,
    pub(crate) timeout: Option<Setting<u64>>,
    pub(crate) token: Option<Expr>,
    pub(crate) krate: Option<syn::Path>,
}

pub(crate) const MAIN_KEYS: &[&str] = &[
    "timeout",
    "delay",
    "signals",
    "dump_signal",
    "on_task_failure",
    "exit",
    "flavor",
    "worker_threads",
    "debug",
    "crate",
];

pub(crate) const CANCEL_KEYS: &[&str] = &["cleanup", "timeout", "token", "crate"];

const UNCATCHABLE_SIGNALS: &[&str] = &["SIGKILL", "SIGSTOP"];

const FAULT_SIGNALS: &[&str] = &[
    "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP", "SIGSYS", "SIGABRT",
];

const WINDOWS_EVENTS: &[&str] = &[
    "CTRL_C",
    "CTRL_BREAK",
    "CTRL_CLOSE",
    "CTRL_LOGOFF",
    "CTRL_SHUTDOWN",
];

/// Splits the attribute's tokens into `name = value` pairs.
fn parse_pairs(args: TokenStream) -> syn::Result<Vec<RawArg>> {
    let pairs = Punctuated::<RawArg, Token![,]>::parse_terminated.parse2(args)?;
    Ok(pairs.into_iter().collect())
}

/// Reports unknown, repeated and valueless keys, and hands every other pair to `interpret`
/// in source order, so errors come out in the order they are written.
pub(crate) fn for_each_known(
    pairs: Vec<RawArg>,
    attribute: &str,
    keys: &[&str],
    other: (&str, &[&str]),
    errors: &mut Errors,
    mut interpret: impl FnMut(RawArg, &mut Errors),
) {
    let mut seen: Vec<String> = Vec::new();
    for pair in pairs {
        let name = pair.name();
        if !keys.contains(&name.as_str()) {
            let (other_attribute, other_keys) = other;
            let message = if other_keys.contains(&name.as_str()) {
                format!(
                    "`{name}` is an argument of `#[{other_attribute}]`, not of `#[{attribute}]` \
                     (valid arguments: {})",
                    code_list(keys)
                )
            } else {
                format!(
                    "unknown argument `{name}`{} (valid arguments: {})",
                    suggestion_suffix(&name, keys),
                    code_list(keys)
                )
            };
            errors.error_spanned(&pair, message);
            continue;
        }
        if seen.contains(&name) {
            errors.error_spanned(&pair, format!("duplicate argument `{name}`"));
            continue;
        }
        seen.push(name.clone());
        if pair.value.is_none() {
            errors.error_spanned(
                &pair,
                format!(
                    "argument `{name}` needs a value: `{name} = {}`",
                    example(&name)
                ),
            );
            continue;
        }
        interpret(pair, errors);
    }
}

/// How each argument is written, for messages that show the expected form.
fn example(key: &str) -> &'static str {
    match key {
        "timeout" => "\"9s\"",
        "delay" => "\"5s\"",
        "signals" => "[\"SIGINT\", \"SIGTERM\"]",
        "dump_signal" => "\"SIGUSR1\"",
        "on_task_failure" => "\"log\"",
        "exit" => "\"code\"",
        "flavor" => "\"multi_thread\"",
        "worker_threads" => "4",
        "start_paused" | "debug" => "true",
        "crate" => "\"::sundown\"",
        "cleanup" => "conn.close()",
        "token" => "my_token",
        _ => "...",
    }
}

/// Parses and checks the arguments of `#[graceful_main]`.
pub(crate) fn parse_main(args: TokenStream) -> (MainArgs, Errors) {
    let mut errors = Errors::new();
    let mut parsed = MainArgs::default();
    let pairs = match parse_pairs(args) {
        Ok(pairs) => pairs,
        Err(error) => {
            errors.push(error);
            return (parsed, errors);
        }
    };
    let interpret = |pair: RawArg, errors: &mut Errors| {
        let name = pair.name();
        let pair_tokens = pair.to_token_stream();
        let Some(value) = &pair.value else { return };
        match name.as_str() {
            "timeout" => {
                parsed.timeout =
                    duration_value(&name, value, false, errors).map(setting_of(&pair_tokens));
            }
            "delay" => {
                parsed.delay =
                    duration_value(&name, value, true, errors).map(setting_of(&pair_tokens));
            }
            "signals" => parsed.signals = signal_list(value, errors).map(setting_of(&pair_tokens)),
            "dump_signal" => {
                parsed.dump_signal = string_value(&name, value, errors)
                    .and_then(|lit| signal_name(&lit, errors))
                    .map(setting_of(&pair_tokens));
            }
            "on_task_failure" => {
                parsed.on_task_failure = choice(
                    &name,
                    value,
                    &[
                        ("log", FailurePolicy::Log),
                        ("shutdown", FailurePolicy::Shutdown),
                    ],
                    errors,
                )
                .map(setting_of(&pair_tokens));
            }
            "exit" => {
                parsed.exit = choice(
                    &name,
                    value,
                    &[("code", ExitMode::Code), ("signal", ExitMode::Signal)],
                    errors,
                )
                .map(setting_of(&pair_tokens));
            }
            "flavor" => {
                parsed.flavor = choice(
                    &name,
                    value,
                    &[
                        ("multi_thread", Flavor::MultiThread),
                        ("current_thread", Flavor::CurrentThread),
                    ],
                    errors,
                )
                .map(setting_of(&pair_tokens));
            }
            "worker_threads" => {
                parsed.worker_threads = worker_threads(value, errors).map(setting_of(&pair_tokens));
            }
            "debug" => {
                parsed.debug = crate::test_attr::bool_value(&name, value, errors)
                    .map(setting_of(&pair_tokens));
            }
            "crate" => parsed.krate = crate_path(value, errors),
            _ => {}
        }
    };
    for_each_known(
        pairs,
        "graceful_main",
        MAIN_KEYS,
        ("cancel_safe", CANCEL_KEYS),
        &mut errors,
        interpret,
    );
    check_main_combinations(&parsed, &mut errors);
    (parsed, errors)
}

/// Wraps a checked value with the tokens of the pair it was written in.
pub(crate) fn setting_of<T>(pair: &TokenStream) -> impl Fn(T) -> Setting<T> + '_ {
    move |value| Setting {
        value,
        pair: pair.clone(),
    }
}

/// Checks the arguments of `#[graceful_main]` against each other.
fn check_main_combinations(parsed: &MainArgs, errors: &mut Errors) {
    if let (Some(threads), Some(flavor)) = (&parsed.worker_threads, &parsed.flavor)
        && flavor.value == Flavor::CurrentThread
    {
        errors.error_spanned(
            &threads.pair,
            "`worker_threads` cannot be used with `flavor = \"current_thread\"`, which runs \
                 everything on the main thread; remove `worker_threads` or use \
                 `flavor = \"multi_thread\"`",
        );
    }
    if let Some(delay) = &parsed.delay {
        let (timeout, timeout_origin) = match &parsed.timeout {
            Some(timeout) => (timeout.value, "`timeout`".to_owned()),
            None => (
                DEFAULT_MAIN_TIMEOUT_MS,
                format!(
                    "the default `timeout` ({})",
                    show_millis(DEFAULT_MAIN_TIMEOUT_MS)
                ),
            ),
        };
        if delay.value >= timeout {
            errors.error_spanned(
                &delay.pair,
                format!(
                    "`delay` ({}) must be shorter than {timeout_origin}: the delay is spent \
                     inside the shutdown budget, which must leave time to cancel and drain",
                    show_millis(delay.value)
                ),
            );
        }
    }
    if let (Some(dump), Some(signals)) = (&parsed.dump_signal, &parsed.signals) {
        if signals.value.contains(&dump.value) {
            errors.error_spanned(
                &dump.pair,
                format!(
                    "`{}` cannot both start a shutdown and dump the task table; choose another \
                     `dump_signal` or remove it from `signals`",
                    dump.value
                ),
            );
        }
    } else if let Some(dump) = &parsed.dump_signal
        && DEFAULT_SIGNALS.contains(&dump.value.as_str())
    {
        errors.error_spanned(
            &dump.pair,
            format!(
                "`{}` starts a shutdown by default, so it cannot also dump the task table; \
                     use `dump_signal = \"SIGUSR1\"` or list the shutdown signals in `signals`",
                dump.value
            ),
        );
    }
}

/// Parses and checks the arguments of `#[cancel_safe]`.
pub(crate) fn parse_cancel(args: TokenStream) -> (CancelArgs, Errors) {
    let mut errors = Errors::new();
    let mut parsed = CancelArgs::default();
    let pairs = match parse_pairs(args) {
        Ok(pairs) => pairs,
        Err(error) => {
            errors.push(error);
            return (parsed, errors);
        }
    };
    let interpret = |pair: RawArg, errors: &mut Errors| {
        let name = pair.name();
        let pair_tokens = pair.to_token_stream();
        let Some(value) = pair.value else { return };
        match name.as_str() {
            "cleanup" => {
                if let Some(value) = cleanup_expr(value, errors) {
                    parsed.cleanup = Some(value);
                }
            }
            "timeout" => {
                parsed.timeout =
                    duration_value(&name, &value, false, errors).map(|value| Setting {
                        value,
                        pair: pair_tokens,
                    });
            }
            "token" => parsed.token = Some(value),
            "crate" => parsed.krate = crate_path(&value, errors),
            _ => {}
        }
    };
    for_each_known(
        pairs,
        "cancel_safe",
        CANCEL_KEYS,
        ("graceful_main", MAIN_KEYS),
        &mut errors,
        interpret,
    );
    (parsed, errors)
}

/// A cleanup is a future; a closure is the most likely slip, so it is caught here.
fn cleanup_expr(value: Expr, errors: &mut Errors) -> Option<Expr> {
    if let Expr::Closure(closure) = &value {
        let suggestion = if closure.asyncness.is_some() || matches!(*closure.body, Expr::Async(_)) {
            "write the `async` block itself: `cleanup = async { ... }`"
        } else {
            "call the function that returns the future: `cleanup = conn.close()`"
        };
        errors.error_spanned(
            &value,
            format!("`cleanup` must be a future, not a closure; {suggestion}"),
        );
        return None;
    }
    Some(value)
}

fn show_millis(millis: u64) -> String {
    match millis {
        0 => "0s".to_owned(),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

/// The string literal a key expects, or an error on the value.
fn string_value(key: &str, value: &Expr, errors: &mut Errors) -> Option<LitStr> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = value
    {
        return Some(lit.clone());
    }
    errors.error_spanned(value, expected_string(key, value));
    None
}

fn expected_string(key: &str, value: &Expr) -> String {
    // `timeout = 9s` lexes as the integer `9` with suffix `s`: show it quoted.
    if let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    {
        let written = int.to_string();
        if facts::parse_millis(&written).is_ok() {
            return format!("durations are string literals: write `{key} = \"{written}\"`");
        }
    }
    format!(
        "`{key}` expects a string literal: `{key} = {}`",
        example(key)
    )
}

pub(crate) fn duration_value(
    key: &str,
    value: &Expr,
    zero_allowed: bool,
    errors: &mut Errors,
) -> Option<u64> {
    let lit = string_value(key, value, errors)?;
    let parsed = if zero_allowed {
        facts::parse_millis(&lit.value())
    } else {
        facts::parse_budget_millis(key, &lit.value())
    };
    match parsed {
        Ok(millis) => Some(millis),
        Err(message) => {
            errors.error_spanned(&lit, message);
            None
        }
    }
}

pub(crate) fn choice<T: Copy>(
    key: &str,
    value: &Expr,
    choices: &[(&str, T)],
    errors: &mut Errors,
) -> Option<T> {
    let lit = string_value(key, value, errors)?;
    let written = lit.value();
    if let Some((_, choice)) = choices.iter().find(|(name, _)| *name == written) {
        return Some(*choice);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let quoted: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    let expected = code_list(&quoted).replace(" and ", " or ");
    let suggestion = did_you_mean(&written, &names)
        .map(|name| format!(": did you mean `\"{name}\"`?"))
        .unwrap_or_default();
    errors.error_spanned(
        &lit,
        format!("`{key}` must be {expected}, found `\"{written}\"`{suggestion}"),
    );
    None
}

pub(crate) fn worker_threads(value: &Expr, errors: &mut Errors) -> Option<usize> {
    let parsed = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) if matches!(int.suffix(), "" | "usize") => int.base10_parse::<usize>().ok(),
        _ => None,
    };
    match parsed {
        Some(0) => {
            errors.error_spanned(value, "`worker_threads` must be at least 1");
            None
        }
        Some(threads) => Some(threads),
        None => {
            errors.error_spanned(
                value,
                "`worker_threads` expects a positive integer literal: `worker_threads = 4`",
            );
            None
        }
    }
}

fn signal_list(value: &Expr, errors: &mut Errors) -> Option<Vec<String>> {
    let Expr::Array(array) = value else {
        errors.error_spanned(
            value,
            "`signals` expects an array of signal names: `signals = [\"SIGINT\", \"SIGTERM\"]`",
        );
        return None;
    };
    if array.elems.is_empty() {
        errors.error_spanned(
            value,
            format!(
                "`signals` must name at least one signal; the supported signals are {}",
                code_list(SIGNALS)
            ),
        );
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    let mut all_valid = true;
    for element in &array.elems {
        let Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) = element
        else {
            errors.error_spanned(
                element,
                "expected a signal name as a string literal, like `\"SIGTERM\"`",
            );
            all_valid = false;
            continue;
        };
        let Some(name) = signal_name(lit, errors) else {
            all_valid = false;
            continue;
        };
        if names.contains(&name) {
            errors.error_spanned(lit, format!("`{name}` is listed twice in `signals`"));
            all_valid = false;
            continue;
        }
        names.push(name);
    }
    all_valid.then_some(names)
}

/// Checks one signal name; the error explains why a known but unusable signal is refused.
fn signal_name(lit: &LitStr, errors: &mut Errors) -> Option<String> {
    let name = lit.value();
    if SIGNALS.contains(&name.as_str()) {
        return Some(name);
    }
    let message = if UNCATCHABLE_SIGNALS.contains(&name.as_str()) {
        format!("`{name}` cannot be caught or handled, so it cannot start a graceful shutdown")
    } else if FAULT_SIGNALS.contains(&name.as_str()) {
        format!("`{name}` reports a fault in the program and cannot start a graceful shutdown")
    } else if WINDOWS_EVENTS.contains(&name.as_str()) {
        format!(
            "`{name}` is a Windows console event, which is always handled; `signals` lists Unix \
             signals"
        )
    } else {
        let upper = name.to_ascii_uppercase();
        let suggestion = if upper != name && SIGNALS.contains(&upper.as_str()) {
            format!(": did you mean `{upper}`?")
        } else if SIGNALS.contains(&format!("SIG{upper}").as_str()) {
            format!(": did you mean `SIG{upper}`?")
        } else {
            suggestion_suffix(&name, SIGNALS)
        };
        format!(
            "unsupported signal `{name}`{suggestion} (supported signals: {})",
            code_list(SIGNALS)
        )
    };
    errors.error_spanned(lit, message);
    None
}

pub(crate) fn crate_path(value: &Expr, errors: &mut Errors) -> Option<syn::Path> {
    let lit = string_value("crate", value, errors)?;
    match lit.parse_with(syn::Path::parse_mod_style) {
        Ok(mut path) => {
            // Resolve like the rest of the expansion, but point errors at the literal.
            let span = Span::call_site().located_at(lit.span());
            for segment in &mut path.segments {
                segment.ident.set_span(span);
            }
            if let Some(colon) = &mut path.leading_colon {
                colon.spans = [span, span];
            }
            for punct in path.segments.pairs_mut() {
                if let syn::punctuated::Pair::Punctuated(_, colon) = punct {
                    colon.spans = [span, span];
                }
            }
            Some(path)
        }
        Err(_) => {
            errors.error_spanned(
                &lit,
                format!(
                    "`crate` expects the path of the `sundown` crate, like `\"::sundown\"`, found \
                     `\"{}\"`",
                    lit.value()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ExitMode, FailurePolicy, Flavor, parse_cancel, parse_main};
    use quote::quote;

    fn main_errors(args: proc_macro2::TokenStream) -> Vec<String> {
        parse_main(args).1.messages()
    }

    fn cancel_errors(args: proc_macro2::TokenStream) -> Vec<String> {
        parse_cancel(args).1.messages()
    }

    #[test]
    fn accepts_every_main_option() {
        let (parsed, errors) = parse_main(quote!(
            timeout = "1m30s",
            delay = "5s",
            signals = ["SIGTERM", "SIGHUP"],
            dump_signal = "SIGUSR1",
            on_task_failure = "shutdown",
            exit = "signal",
            flavor = "multi_thread",
            worker_threads = 4,
            crate = "::sundown_renamed",
        ));
        assert!(errors.is_empty(), "{:?}", errors.messages());
        assert_eq!(parsed.timeout.map(|s| s.value), Some(90_000));
        assert_eq!(parsed.delay.map(|s| s.value), Some(5_000));
        assert_eq!(
            parsed.signals.map(|s| s.value),
            Some(vec!["SIGTERM".to_owned(), "SIGHUP".to_owned()])
        );
        assert_eq!(
            parsed.dump_signal.map(|s| s.value).as_deref(),
            Some("SIGUSR1")
        );
        assert_eq!(
            parsed.on_task_failure.map(|s| s.value),
            Some(FailurePolicy::Shutdown)
        );
        assert_eq!(parsed.exit.map(|s| s.value), Some(ExitMode::Signal));
        assert_eq!(parsed.flavor.map(|s| s.value), Some(Flavor::MultiThread));
        assert_eq!(parsed.worker_threads.map(|s| s.value), Some(4));
        let krate = parsed.krate.map(|path| quote!(#path).to_string());
        assert_eq!(krate.as_deref(), Some(":: sundown_renamed"));
    }

    #[test]
    fn empty_arguments_are_fine() {
        assert!(main_errors(quote!()).is_empty());
        assert!(cancel_errors(quote!()).is_empty());
        assert!(main_errors(quote!(timeout = "9s",)).is_empty());
    }

    #[test]
    fn every_argument_error_is_reported() {
        let errors = main_errors(quote!(
            timout = "20s",
            signals = ["SIGTERM", "SIGKILL", "sigint", "TERM", "SIGSEGV"],
            delay = 9s,
            exit = "signals",
            exit = "code",
            flavor = "current_thread",
            worker_threads = 2,
        ));
        let expected = [
            "unknown argument `timout`: did you mean `timeout`?",
            "`SIGKILL` cannot be caught",
            "unsupported signal `sigint`: did you mean `SIGINT`?",
            "unsupported signal `TERM`: did you mean `SIGTERM`?",
            "`SIGSEGV` reports a fault",
            "durations are string literals: write `delay = \"9s\"`",
            "duplicate argument `exit`",
            "`exit` must be `\"code\"` or `\"signal\"`, found `\"signals\"`: did you mean `\"signal\"`?",
            "`worker_threads` cannot be used with `flavor = \"current_thread\"`",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for start in expected {
            assert!(
                errors.iter().any(|e| e.starts_with(start)),
                "no error starting with {start:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn delay_must_leave_time_in_the_budget() {
        let errors = main_errors(quote!(timeout = "5s", delay = "5s"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("`delay` (5s) must be shorter than `timeout`"));
        let errors = main_errors(quote!(delay = "10s"));
        assert!(
            errors[0].contains("the default `timeout` (9s)"),
            "{errors:?}"
        );
        assert!(main_errors(quote!(delay = "0s")).is_empty());
        assert!(main_errors(quote!(delay = "8s999ms")).is_empty());
    }

    #[test]
    fn zero_is_only_a_valid_delay() {
        assert_eq!(
            main_errors(quote!(timeout = "0s")),
            ["`timeout` must be longer than zero"]
        );
        assert_eq!(
            cancel_errors(quote!(timeout = "0ms")),
            ["`timeout` must be longer than zero"]
        );
    }

    #[test]
    fn signal_lists_are_checked() {
        assert!(
            main_errors(quote!(signals = []))[0].starts_with("`signals` must name at least one")
        );
        assert!(
            main_errors(quote!(signals = "SIGTERM"))[0].starts_with("`signals` expects an array")
        );
        assert!(main_errors(quote!(signals = ["SIGTERM", "SIGTERM"]))[0].contains("listed twice"));
        assert!(main_errors(quote!(signals = ["CTRL_C"]))[0].contains("Windows console event"));
        assert!(main_errors(quote!(dump_signal = "SIGTERM"))[0].contains("starts a shutdown"));
        assert!(
            main_errors(quote!(signals = ["SIGUSR1"], dump_signal = "SIGUSR1"))[0]
                .contains("cannot both start a shutdown")
        );
        assert!(main_errors(quote!(signals = ["SIGUSR1"], dump_signal = "SIGTERM")).is_empty());
    }

    #[test]
    fn values_of_the_wrong_kind() {
        assert!(main_errors(quote!(worker_threads = 0))[0].contains("at least 1"));
        assert!(main_errors(quote!(worker_threads = "four"))[0].contains("positive integer"));
        assert!(main_errors(quote!(crate = "not a path"))[0].starts_with("`crate` expects"));
        assert!(main_errors(quote!(timeout = 9))[0].starts_with("`timeout` expects a string"));
        assert!(main_errors(quote!(flavor))[0].starts_with("argument `flavor` needs a value"));
    }

    #[test]
    fn arguments_of_the_other_attribute_are_named_as_such() {
        let errors = main_errors(quote!(cleanup = conn.close()));
        assert!(errors[0].starts_with("`cleanup` is an argument of `#[cancel_safe]`"));
        let errors = cancel_errors(quote!(signals = ["SIGTERM"]));
        assert!(errors[0].starts_with("`signals` is an argument of `#[graceful_main]`"));
    }

    #[test]
    fn cancel_safe_arguments() {
        let (parsed, errors) = parse_cancel(quote!(
            cleanup = self.flush(),
            timeout = "250ms",
            token = shutdown.token(),
            crate = "sundown",
        ));
        assert!(errors.is_empty(), "{:?}", errors.messages());
        assert!(parsed.cleanup.is_some() && parsed.token.is_some() && parsed.krate.is_some());
        assert_eq!(parsed.timeout.map(|s| s.value), Some(250));
        let errors = cancel_errors(quote!(
            cleanup = || conn.close(),
            clean_up = x,
            token = a,
            token = b
        ));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("`cleanup` must be a future, not a closure"));
        assert!(errors[1].starts_with("unknown argument `clean_up`: did you mean `cleanup`?"));
        assert_eq!(errors[2], "duplicate argument `token`");
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert_eq!(main_errors(quote!(timeout "9s")).len(), 1);
        assert_eq!(main_errors(quote!(a::b = "9s")).len(), 1);
    }
}
