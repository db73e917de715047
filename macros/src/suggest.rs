//! "Did you mean" suggestions for misspelled argument keys, values and signal names.

/// Edit distance between `a` and `b`, counted in characters: insertions, deletions,
/// substitutions, and swaps of two adjacent characters (the most common typo) each cost 1.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // distances[i][j]: distance between the first i characters of a and the first j of b.
    let mut distances = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in distances.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in distances[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = distances[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution
                .min(distances[i - 1][j] + 1)
                .min(distances[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(distances[i - 2][j - 2] + 1);
            }
            distances[i][j] = best;
        }
    }
    distances[a.len()][b.len()]
}

/// The candidate `input` was most likely meant to be, if one is close enough.
///
/// A candidate that differs only in case, or in `-` versus `_`, always matches; otherwise
/// the edit distance must be at most a third of the input's length (at least 1), as
/// rustc does for its own suggestions.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let normalized = normalize(input);
    if let Some(exact) = candidates.iter().find(|c| normalize(c) == normalized) {
        return Some(exact);
    }
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&normalized, &normalize(c)), *c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// `": did you mean `x`?"` when a candidate is close to `input`, or nothing.
pub(crate) fn suggestion_suffix(input: &str, candidates: &[&str]) -> String {
    did_you_mean(input, candidates)
        .map(|s| format!(": did you mean `{s}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{did_you_mean, edit_distance};

    #[test]
    fn distance_counts_single_character_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("timeout", "timeout"), 0);
        assert_eq!(edit_distance("timout", "timeout"), 1);
        assert_eq!(edit_distance("tiemout", "timeout"), 1);
        assert_eq!(edit_distance("dealy", "delay"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("délai", "delai"), 1);
    }

    #[test]
    fn suggests_the_closest_candidate() {
        let keys = ["timeout", "delay", "signals", "dump_signal", "crate"];
        assert_eq!(did_you_mean("timout", &keys), Some("timeout"));
        assert_eq!(did_you_mean("signal", &keys), Some("signals"));
        assert_eq!(did_you_mean("dump_signals", &keys), Some("dump_signal"));
        assert_eq!(did_you_mean("dealy", &keys), Some("delay"));
        assert_eq!(did_you_mean("krate", &keys), Some("crate"));
    }

    #[test]
    fn case_and_dashes_do_not_hide_a_match() {
        let signals = ["SIGINT", "SIGTERM"];
        assert_eq!(did_you_mean("sigterm", &signals), Some("SIGTERM"));
        assert_eq!(
            did_you_mean("dump-signal", &["dump_signal"]),
            Some("dump_signal")
        );
    }

    #[test]
    fn distant_inputs_get_no_suggestion() {
        let keys = ["timeout", "delay", "signals"];
        assert_eq!(did_you_mean("workers", &keys), None);
        assert_eq!(did_you_mean("x", &keys), None);
        assert_eq!(did_you_mean("", &keys), None);
    }
}
