//! Durations as people write them (`"9s"`, `"250ms"`, `"1m30s"`), for
//! `SUNDOWN_TIMEOUT`, and as the log prints them.

use std::fmt;
use std::time::Duration;

/// Parses `ms`, `s` and `m` units, combinable in decreasing order (`"1m30s"`,
/// `"2s500ms"`). Whitespace around the value is allowed; nothing else is.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: expected a value like \"9s\", \"250ms\" or \"1m30s\"".into());
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    let mut last_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration: expected a number followed by `ms`, `s` or `m`"
            ));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let (unit_ms, rank, len) = if rest.starts_with("ms") {
            (1, 0, 2)
        } else if rest.starts_with('s') {
            (1_000, 1, 1)
        } else if rest.starts_with('m') {
            (60_000, 2, 1)
        } else {
            return Err(format!(
                "`{text}` has a number without a unit: use `ms`, `s` or `m`"
            ));
        };
        if rank >= last_rank {
            return Err(format!(
                "`{text}`: units must each appear once, largest first (like \"1m30s\")"
            ));
        }
        last_rank = rank;
        rest = &rest[len..];
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
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
            let secs = d.as_secs_f64();
            if ms % 1_000 == 0 {
                write!(f, "{}s", d.as_secs())
            } else {
                write!(f, "{secs:.2}s")
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
        assert_eq!(parse(" 2s500ms "), Ok(Duration::from_millis(2_500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "9",
            "s",
            "9h",
            "1s1m",
            "1s1s",
            "-1s",
            "1.5s",
            "abc",
            "99999999999999999999s",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(parse("9").unwrap_err().contains("without a unit"));
        assert!(parse("1s1m").unwrap_err().contains("largest first"));
    }

    #[test]
    fn prints_short_forms() {
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Human(Duration::from_secs(9)).to_string(), "9s");
        assert_eq!(Human(Duration::from_millis(1_250)).to_string(), "1.25s");
        assert_eq!(Human(Duration::from_secs(185)).to_string(), "3m05s");
    }
}
