//! Spawn sites as 4-byte ids, so a registry slot stores a task's location and name
//! in one atomic.
//!
//! A site is a task's `&'static Location` and, when its name is static (a literal given
//! to `spawn_named`, or the future's type name), that name. Sites are interned once per
//! process in an append-only table: a program has as many as it has spawn lines, not
//! as many as it spawns tasks. Each thread keeps a small direct-mapped cache from the
//! site's addresses to its id, so a spawn looks its site up without a lock; the table's
//! lock is taken on a cache miss (a spawn line's first spawn on a thread) and when a
//! snapshot turns ids back into names.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The static part of a task's identity.
#[derive(Clone, Copy, Debug)]
pub(super) struct Site {
    pub(super) location: &'static Location<'static>,
    /// `None`: the name is owned (kept beside the slot) or missing.
    pub(super) name: Option<&'static str>,
    /// The name is a type name, shortened when shown.
    pub(super) of_type: bool,
}

/// What identifies a site without reading it: its addresses (and the name's length
/// and kind, as two static names may share an address).
type Addr = (usize, usize, usize);

fn addr(site: &Site) -> Addr {
    let (ptr, len) = site.name.map_or((0, 0), |n| (n.as_ptr() as usize, n.len()));
    (
        std::ptr::from_ref(site.location) as usize,
        ptr,
        (len << 1) | usize::from(site.of_type),
    )
}

#[derive(Default)]
struct Table {
    ids: HashMap<Addr, u32>,
    sites: Vec<Site>,
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    // Every mutation is one push and one insert of plain values: a panic (allocation)
    // leaves it consistent, so poisoning is ignored.
    TABLE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const CACHE: usize = 64;
const EMPTY: (Addr, u32) = ((0, 0, 0), 0);

thread_local! {
    static CACHED: [Cell<(Addr, u32)>; CACHE] = const { [const { Cell::new(EMPTY) }; CACHE] };
}

/// The id of `site`, interned on first use.
#[inline]
pub(super) fn intern(site: Site) -> u32 {
    let key = addr(&site);
    let slot = ((key.0 >> 3) ^ (key.1 >> 1) ^ key.2) % CACHE;
    let cached = CACHED.try_with(|c| c[slot].get()).unwrap_or(EMPTY);
    if cached.0 == key {
        return cached.1;
    }
    let id = intern_slow(site, key);
    let _ = CACHED.try_with(|c| c[slot].set((key, id)));
    id
}

#[cold]
fn intern_slow(site: Site, key: Addr) -> u32 {
    let mut t = table();
    if let Some(id) = t.ids.get(&key) {
        return *id;
    }
    let id = u32::try_from(t.sites.len()).unwrap_or(u32::MAX);
    t.sites.push(site);
    t.ids.insert(key, id);
    id
}

/// Reads sites back, holding the table for the reader's whole snapshot.
pub(super) struct Sites(MutexGuard<'static, Table>);

impl Sites {
    pub(super) fn read() -> Self {
        Sites(table())
    }

    pub(super) fn get(&self, id: u32) -> Option<Site> {
        self.0.sites.get(id as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_id_per_site_and_back() {
        let here = Location::caller();
        let there = Location::caller();
        let a = intern(Site {
            location: here,
            name: Some("a"),
            of_type: false,
        });
        let a_again = intern(Site {
            location: here,
            name: Some("a"),
            of_type: false,
        });
        let typed = intern(Site {
            location: here,
            name: Some("a"),
            of_type: true,
        });
        let unnamed = intern(Site {
            location: there,
            name: None,
            of_type: false,
        });
        assert_eq!(a, a_again);
        assert_ne!(a, typed, "a type name is shown shortened: another site");
        assert_ne!(a, unnamed);
        let sites = Sites::read();
        let back = sites.get(a).unwrap();
        assert_eq!((back.name, back.location.line()), (Some("a"), here.line()));
        assert!(sites.get(typed).unwrap().of_type);
        assert_eq!(sites.get(unnamed).unwrap().name, None);
    }
}
