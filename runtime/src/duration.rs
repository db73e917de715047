//! Durations as people write them (`"9s"`, `"250ms"`, `"1m30s"`), for
//! `SUNDOWN_TIMEOUT`, and as the log prints them.

// The copy of `macros/src/facts.rs` (see its first lines for why a copy).
#[path = "facts.rs"]
pub(crate) mod facts;

use std::fmt;
use std::time::Duration;

/// Parses a shutdown budget as `SUNDOWN_TIMEOUT` gives it: the grammar of the
/// attribute's `timeout = "..."`, refused with the same words (`facts` is the copy of the
/// macro crate's file that defines both).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    facts::parse_budget_millis("timeout", text).map(Duration::from_millis)
}

/// Prints a duration the short way: `1.25s`, `250ms`, `3m05s`.
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let ms = d.as_millis();
        if ms < 1_000 {
            if ms == 0 && d.as_micros() > 0 {
                return write!(f, "{}µs", d.as_micros());
            }
            write!(f, "{ms}ms")
        } else if ms < 60_000 {
            if ms.is_multiple_of(1_000) {
                write!(f, "{}s", d.as_secs())
            } else {
                // Cut, not rounded: 59.999 s is not "60.00s".
                let centis = ms / 10;
                write!(f, "{}.{:02}s", centis / 100, centis % 100)
            }
        } else {
            let secs = d.as_secs();
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("9s"), Ok(Duration::from_secs(9)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2s500ms"), Ok(Duration::from_millis(2_500)));
    }

    /// Regression: `SUNDOWN_TIMEOUT=0s` was accepted (a clean program then exited 124)
    /// while the attribute refuses `timeout = "0s"`; `1.5s`, `1h` and `5S` were all said
    /// to have "a number without a unit".
    #[test]
    fn refuses_what_the_attribute_refuses_with_the_same_words() {
        assert_eq!(
            parse("0s"),
            Err("`timeout` must be longer than zero".to_owned())
        );
        for (bad, what) in [
            ("1.5s", "fractions are not supported"),
            ("1h", "unknown unit `h`"),
            ("5S", "units are lowercase, write `s`"),
            ("9", "`9` has no unit"),
            (" 9s", "remove the spaces"),
            ("1s1m", "from the largest to the smallest"),
            ("", "empty duration"),
            ("99999999999999999999s", "too large"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(what), "{bad:?}: {err}");
        }
    }

    #[test]
    fn prints_short_forms() {
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Human(Duration::from_secs(9)).to_string(), "9s");
        assert_eq!(Human(Duration::from_millis(1_250)).to_string(), "1.25s");
        assert_eq!(Human(Duration::from_millis(59_999)).to_string(), "59.99s");
        assert_eq!(Human(Duration::from_millis(8_250)).to_string(), "8.25s");
        assert_eq!(Human(Duration::from_secs(185)).to_string(), "3m05s");
    }
}
