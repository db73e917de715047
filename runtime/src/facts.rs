//! What the attributes and the runtime must agree on: the duration grammar, the signal
//! names, the default budgets.
//!
//! One source, in two places. `sundown-macros` owns this file (`macros/src/facts.rs`) and
//! `sundown` carries a byte-for-byte copy (`runtime/src/facts.rs`), because neither crate
//! can reach the other's: a proc-macro crate exports nothing but macros, and a published
//! crate cannot include a file outside its own directory. `ui-tests/tests/shared_facts.rs`
//! fails when the copies differ, and each crate's tests check what it builds on these
//! facts (the runtime maps every signal name; its default configuration uses the
//! defaults here). Edit this file, then copy it over the other.
//!
//! A duration is one or more `<digits><unit>` parts with units `m`, `s` and `ms`, each
//! unit at most once and from the largest to the smallest, so a literal reads one way. No
//! spaces, no fractions, no other units, lowercase only: `SUNDOWN_TIMEOUT` at run time
//! accepts exactly what `timeout = "..."` accepts at compile time.
// Each crate uses part of what is here.
#![allow(dead_code)]

/// The shutdown budget when `timeout` is not given: inside Docker's 10 s stop window and
/// Kubernetes' 30 s grace period.
pub(crate) const DEFAULT_MAIN_TIMEOUT_MS: u64 = 9_000;

/// The bound on a `#[cancel_safe]` cleanup when its `timeout` is not given.
pub(crate) const DEFAULT_CLEANUP_TIMEOUT_MS: u64 = 5_000;

/// The signals that start a shutdown when `signals` is not given.
pub(crate) const DEFAULT_SIGNALS: &[&str] = &["SIGINT", "SIGTERM"];

/// The signal names `signals` and `dump_signal` accept; the runtime maps every one.
pub(crate) const SIGNALS: &[&str] = &[
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
];

/// Parses a shutdown budget or cleanup bound (`key` names the setting): a duration
/// longer than zero, in whole milliseconds.
pub(crate) fn parse_budget_millis(key: &str, text: &str) -> Result<u64, String> {
    match parse_millis(text)? {
        0 => Err(format!("`{key}` must be longer than zero")),
        millis => Ok(millis),
    }
}

/// Parses a duration literal into whole milliseconds.
///
/// The error is a complete message for the user, without the literal's position.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err(format!("empty duration; {}", EXPECTED));
    }
    if text.trim() != text || text.contains(char::is_whitespace) {
        return Err(format!(
            "invalid duration `{text}`: remove the spaces; {EXPECTED}"
        ));
    }
    let mut rest = text;
    let mut total: u64 = 0;
    let mut previous_unit: Option<Unit> = None;
    while !rest.is_empty() {
        let digits_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after_digits) = rest.split_at(digits_len);
        if digits.is_empty() {
            return Err(format!("invalid duration `{text}`: {EXPECTED}"));
        }
        if after_digits.starts_with(['.', ',']) {
            return Err(format!(
                "invalid duration `{text}`: fractions are not supported, combine units instead \
                 (`\"1s500ms\"` rather than `\"1.5s\"`)"
            ));
        }
        let unit_len = after_digits
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after_digits.len());
        let (unit_text, after_unit) = after_digits.split_at(unit_len);
        let unit = match unit_text {
            "ms" => Unit::Millis,
            "s" => Unit::Seconds,
            "m" => Unit::Minutes,
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: `{digits}` has no unit; write `\"{digits}s\"` or \
                     `\"{digits}ms\"`"
                ));
            }
            other if ["ms", "s", "m"].contains(&other.to_ascii_lowercase().as_str()) => {
                return Err(format!(
                    "invalid duration `{text}`: units are lowercase, write `{}`",
                    other.to_ascii_lowercase()
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}`; {EXPECTED}"
                ));
            }
        };
        if let Some(previous) = previous_unit {
            if unit == previous {
                return Err(format!(
                    "invalid duration `{text}`: the unit `{}` appears twice",
                    unit.suffix()
                ));
            }
            if unit > previous {
                return Err(format!(
                    "invalid duration `{text}`: write units from the largest to the smallest \
                     (`m`, then `s`, then `ms`)"
                ));
            }
        }
        previous_unit = Some(unit);
        let part = digits
            .parse::<u64>()
            .ok()
            .and_then(|value| value.checked_mul(unit.millis()))
            .and_then(|millis| total.checked_add(millis));
        total = part.ok_or_else(|| format!("duration `{text}` is too large"))?;
        rest = after_unit;
    }
    Ok(total)
}

const EXPECTED: &str =
    "expected a number followed by `ms`, `s` or `m`, like `\"9s\"`, `\"250ms\"` or `\"1m30s\"`";

/// Units, ordered from the smallest to the largest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Unit {
    Millis,
    Seconds,
    Minutes,
}

impl Unit {
    fn millis(self) -> u64 {
        match self {
            Unit::Millis => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::Minutes => "m",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_budget_millis, parse_millis};

    fn err(text: &str) -> String {
        match parse_millis(text) {
            Ok(millis) => panic!("`{text}` parsed as {millis} ms"),
            Err(message) => message,
        }
    }

    #[test]
    fn single_units() {
        assert_eq!(parse_millis("9s"), Ok(9_000));
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("2m"), Ok(120_000));
        assert_eq!(parse_millis("0s"), Ok(0));
        assert_eq!(parse_millis("0ms"), Ok(0));
        assert_eq!(parse_millis("007s"), Ok(7_000));
    }

    #[test]
    fn combined_units() {
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("1s500ms"), Ok(1_500));
        assert_eq!(parse_millis("1m1s1ms"), Ok(61_001));
        assert_eq!(parse_millis("1m250ms"), Ok(60_250));
        assert_eq!(parse_millis("90s"), Ok(90_000));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(err("9").contains("`9` has no unit"));
        assert!(err("1m30").contains("`30` has no unit"));
        assert!(err("9sec").contains("unknown unit `sec`"));
        assert!(err("1h").contains("unknown unit `h`"));
        assert!(err("9S").contains("units are lowercase, write `s`"));
        assert!(err("1M30S").contains("units are lowercase, write `m`"));
        assert!(err("5MS").contains("units are lowercase, write `ms`"));
        assert!(err("s").contains("expected a number"));
        assert!(err("ms5").contains("expected a number"));
    }

    #[test]
    fn rejects_malformed_literals() {
        assert!(err("").contains("empty duration"));
        assert!(err(" 9s").contains("spaces"));
        assert!(err("1m 30s").contains("spaces"));
        assert!(err("1.5s").contains("fractions are not supported"));
        assert!(err("-1s").contains("expected a number"));
        assert!(err("30s1m").contains("largest to the smallest"));
        assert!(err("1s2s").contains("appears twice"));
    }

    #[test]
    fn rejects_overflow() {
        assert!(err("99999999999999999999s").contains("too large"));
        assert!(err("307445734561825861m").contains("too large"));
    }

    #[test]
    fn messages_name_the_literal_and_the_accepted_form() {
        let message = err("9sec");
        assert!(message.starts_with("invalid duration `9sec`"), "{message}");
        assert!(message.contains("`ms`, `s` or `m`"), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }

    /// Regression: the run-time parser took `0s` as a budget the attribute refuses, and
    /// said "has a number without a unit" of `1.5s`, `1h` and `5S`.
    #[test]
    fn budgets_are_refused_with_what_is_wrong() {
        assert_eq!(parse_budget_millis("timeout", "9s"), Ok(9_000));
        assert_eq!(
            parse_budget_millis("timeout", "0s"),
            Err("`timeout` must be longer than zero".to_owned())
        );
        assert!(parse_budget_millis("timeout", "0m0s0ms").is_err());
        for (text, what) in [
            ("1.5s", "fractions are not supported"),
            ("1h", "unknown unit `h`"),
            ("5S", "units are lowercase"),
            (" 9s", "remove the spaces"),
        ] {
            let message = parse_budget_millis("timeout", text).unwrap_err();
            assert!(message.contains(what), "{text}: {message}");
            assert!(!message.contains("without a unit"), "{text}: {message}");
        }
    }

    #[test]
    fn defaults_are_accepted_values() {
        assert!(
            super::DEFAULT_SIGNALS
                .iter()
                .all(|s| super::SIGNALS.contains(s))
        );
        const { assert!(super::DEFAULT_CLEANUP_TIMEOUT_MS > 0 && super::DEFAULT_MAIN_TIMEOUT_MS > 0) };
    }
}
