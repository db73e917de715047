//! Untracked tasks alive at exit: how many (tokio's count of alive tasks less sundown's),
//! and, where the program is built with `--cfg tokio_unstable`, where each was spawned,
//! from tokio's task hooks. The hooks cost a lock per spawn and per task end, for every
//! task of the runtime, so they are only installed in such builds.

use std::collections::BTreeMap;
use std::panic::Location;

/// Installs the spawn and terminate hooks that remember each live task's spawn
/// location (`tokio_unstable` builds only).
pub(super) fn install(builder: &mut tokio::runtime::Builder) {
    #[cfg(tokio_unstable)]
    {
        builder
            .on_task_spawn(|meta| {
                crate::sync::lock(&hooks::LIVE).insert(meta.id(), meta.spawned_at());
            })
            .on_task_terminate(|meta| {
                crate::sync::lock(&hooks::LIVE).remove(&meta.id());
            });
    }
    #[cfg(not(tokio_unstable))]
    let _ = builder;
}

#[cfg(tokio_unstable)]
mod hooks {
    use std::collections::HashMap;
    use std::panic::Location;
    use std::sync::{LazyLock, Mutex};

    pub(super) static LIVE: LazyLock<Mutex<HashMap<tokio::task::Id, &'static Location<'static>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
}

/// How many rows of spawn sites the exit line lists.
const SITES_SHOWN: usize = 10;

/// The lines that report `count` untracked tasks destroyed at exit.
pub(super) fn report(count: usize) -> String {
    let mut text = format!(
        "sundown: {count} untracked task(s) were still pending at exit and were destroyed \
         (spawned outside sundown's tracking: use sundown::spawn, or spawn inside a \
         #[graceful_main] or #[cancel_safe] body; a task another crate spawned, such as \
         a server's connection, ends with that crate's own shutdown or timeouts)"
    );
    #[cfg(tokio_unstable)]
    let sites = {
        let live: Vec<&'static Location<'static>> =
            crate::sync::lock(&hooks::LIVE).values().copied().collect();
        spawn_sites(live, own_sources())
    };
    #[cfg(not(tokio_unstable))]
    let sites: Vec<(String, usize)> = Vec::new();
    if sites.is_empty() {
        #[cfg(not(tokio_unstable))]
        text.push_str(
            "; build with RUSTFLAGS=\"--cfg tokio_unstable\" to see where each was spawned",
        );
        text.push('\n');
        return text;
    }
    text.push_str(", spawned at:\n");
    for (site, n) in sites.iter().take(SITES_SHOWN) {
        text.push_str(&format!("  {site}  x{n}\n"));
    }
    if sites.len() > SITES_SHOWN {
        text.push_str(&format!(
            "  … and {} more site(s)\n",
            sites.len() - SITES_SHOWN
        ));
    }
    text
}

/// The directory of sundown's own sources, as this build names them: tasks spawned from
/// there are sundown's (tracked tasks, hooks, the cancel task), not the user's.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn own_sources() -> &'static str {
    let here = file!();
    here.rfind("process").map_or(here, |i| &here[..i])
}

/// The spawn sites of `live` tasks outside `own` (sundown's sources), `file:line` with
/// how many tasks each, most first.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn spawn_sites(live: Vec<&'static Location<'static>>, own: &str) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in live {
        if !l.file().starts_with(own) {
            *counts
                .entry(format!("{}:{}", l.file(), l.line()))
                .or_default() += 1;
        }
    }
    let mut sites: Vec<(String, usize)> = counts.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    #[test]
    fn sites_outside_sundown_are_grouped_and_counted_most_first() {
        let a = here();
        let b = here();
        let sites = spawn_sites(vec![a, b, b, Location::caller()], "nowhere/");
        assert_eq!(sites.len(), 3);
        assert_eq!(sites[0], (format!("{}:{}", b.file(), b.line()), 2));
        let own = spawn_sites(vec![a, b], own_sources());
        assert!(own.is_empty(), "this file is sundown's own: {own:?}");
    }

    #[test]
    fn the_line_says_how_to_get_the_sites_when_it_cannot_name_them() {
        let text = report(3);
        assert!(text.starts_with("sundown: 3 untracked task(s)"), "{text}");
        #[cfg(not(tokio_unstable))]
        assert!(text.contains("--cfg tokio_unstable"), "{text}");
    }
}
