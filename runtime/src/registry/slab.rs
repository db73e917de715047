//! The registry's storage: shards of slots written without a lock.
//!
//! Every field of a slot is an atomic, so a spawn, a task's end and a snapshot never
//! wait for one another:
//!
//! - **One spawning thread per shard at a time.** A spawn *claims* a shard (one
//!   compare-and-swap on a flag only spawners touch, normally the same thread's, so the
//!   line stays in its cache), takes a free slot from the shard's own free list, fills
//!   the slot and publishes it with one release store of its *word* (generation, live
//!   bit, state), and gives the claim back. The claim covers no code but the
//!   registry's: a spawn nested in another (a task dropped inside `tokio::spawn`, whose
//!   `Drop` spawns) never waits for a claim its own thread holds.
//! - **The abort handle comes after the word.** The word is published with
//!   `HANDLE_PENDING`; the spawner clears it once `tokio::spawn` has returned and the
//!   handle is in the slot. Until then the slot is the spawner's too: if the task ends
//!   first, the slot goes back to the free list only when both the ending thread and
//!   the spawner are done with it (the last one frees it), so it cannot be reused
//!   under the spawner's feet. An abort that finds the handle still to come leaves a
//!   bit in the word; the spawner sees it as it clears its own and aborts the task.
//! - **Any thread ends a task.** Removal retires the word (live bit off, generation
//!   advanced) with one compare-and-swap, takes the abort handle, counts the outcome and
//!   pushes the slot onto the shard's *remote* free list (a stack of slot indices that
//!   only grows by pushes and is emptied whole, so it has no ABA problem). The claimant
//!   takes that whole list when its own is empty.
//! - **Snapshots read like a sequence lock.** A reader loads the word, the fields, then
//!   the word again, and keeps the slot only when the same generation was live both
//!   times: a task alive for the whole snapshot is always in it, and a slot being reused
//!   meanwhile is skipped, never shown half-written.
//! - **Slots never move.** A shard's slots live in chunks of 128 (5 KiB), each
//!   allocated once by the claimant when the shard first needs it, and found through a
//!   directory of `OnceLock`s in pages that double in size (1, 2, 4, … chunks). No spawn
//!   allocates more than one chunk and, once per doubling, one directory page (the first
//!   version doubled the slot pages themselves: the spawn that crossed a million live
//!   tasks initialised 40 MB).
//!
//! The abort handle is the one field that is not a number: it sits in an
//! `AtomicCell<Option<AbortHandle>>`, which for a pointer-sized value is a plain atomic
//! swap (checked by a test), taken out whole by whoever needs it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

use crossbeam_utils::atomic::AtomicCell;
use tokio::task::AbortHandle;

/// No slot: the end of a free list.
pub(super) const NIL: u32 = u32::MAX;

/// Slots in a chunk.
const CHUNK: usize = 128;
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();
/// Directory page `p` holds `1 << p` chunks; enough pages for every `u32` index.
const DIR_PAGES: usize = (u32::BITS - CHUNK_BITS + 1) as usize;

// The word: bit 0 live, bits 1–2 the state, bit 3 propagating a cancellation, bit 4 the
// name is owned (kept in the shard's name table), bit 5 the abort handle is still to
// come, bit 6 the ending thread is still clearing a retired slot, bit 7 an abort was
// asked for while the handle was still to come, bits 16–31 the generation.
pub(super) const LIVE: u64 = 1;
const STATE_SHIFT: u32 = 1;
const STATE_MASK: u64 = 0b11 << STATE_SHIFT;
pub(super) const PROPAGATING: u64 = 1 << 3;
pub(super) const OWNED_NAME: u64 = 1 << 4;
/// The spawner has yet to store the abort handle (or say there is none). In a retired
/// word: the spawner has yet to let go of the slot.
const HANDLE_PENDING: u64 = 1 << 5;
/// In a retired word: the ending thread has yet to let go of the slot.
const ENDING: u64 = 1 << 6;
/// `abort_all` found the entry with its handle still to come: the spawner aborts the
/// task when it stores the handle.
const ABORT_ASKED: u64 = 1 << 7;
const GEN_SHIFT: u32 = 16;

pub(super) fn generation(word: u64) -> u16 {
    (word >> GEN_SHIFT) as u16
}

pub(super) fn state_bits(word: u64) -> u8 {
    ((word & STATE_MASK) >> STATE_SHIFT) as u8
}

pub(super) fn with_state(word: u64, state: u8) -> u64 {
    (word & !STATE_MASK) | ((u64::from(state) << STATE_SHIFT) & STATE_MASK)
}

pub(super) fn live_word(generation: u16, state: u8, flags: u64) -> u64 {
    with_state(
        (u64::from(generation) << GEN_SHIFT) | LIVE | (flags & (PROPAGATING | OWNED_NAME)),
        state,
    )
}

fn retired_word(generation: u16) -> u64 {
    u64::from(generation) << GEN_SHIFT
}

/// One task's entry. 40 bytes.
pub(super) struct Slot {
    pub(super) word: AtomicU64,
    /// The await chain the task is pending on (written by the task itself).
    pub(super) chain: AtomicU64,
    pub(super) abort: AtomicCell<Option<AbortHandle>>,
    /// The interned spawn site.
    pub(super) site: AtomicU32,
    /// Spawn time on the coarse clock.
    pub(super) started: AtomicU32,
    /// When the current poll began on the coarse clock, or 0 (written by the task).
    pub(super) poll: AtomicU32,
    /// The next slot of the free list this one is on.
    next: AtomicU32,
}

impl Slot {
    fn new() -> Self {
        Slot {
            word: AtomicU64::new(0),
            chain: AtomicU64::new(0),
            abort: AtomicCell::new(None),
            site: AtomicU32::new(0),
            started: AtomicU32::new(0),
            poll: AtomicU32::new(0),
            next: AtomicU32::new(NIL),
        }
    }
}

/// What a reader copied out of a live slot.
#[derive(Clone, Copy)]
pub(super) struct Read {
    pub(super) word: u64,
    pub(super) site: u32,
    pub(super) started: u32,
    pub(super) chain: u64,
    pub(super) poll: u32,
}

/// How many entries ended, written by whichever thread ends a task: one count of all
/// (`SeqCst`: see [`Registry::remove`](super::Registry::remove)), and the failed and
/// cancelled ones apart (counted first, so the completed ones, the rest, are never
/// over-counted while a task is ending).
#[derive(Default)]
pub(super) struct Counts {
    ended: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

/// A shard's counts, read at one moment.
pub(super) struct Counted {
    pub(super) live: u64,
    pub(super) completed: u64,
    pub(super) failed: u64,
    pub(super) cancelled: u64,
}

// What the claimant writes, and what the ending threads write, on separate lines.
#[repr(align(128))]
struct OwnerSide {
    claimed: AtomicBool,
    /// Head of the claimant's free list.
    free: AtomicU32,
    /// Slots handed out so far (indices below it exist).
    used: AtomicU32,
    /// Entries ever filled: the live count is this minus the ended ones, so a spawn
    /// writes no line that the ending threads write.
    inserted: AtomicU64,
}

#[repr(align(128))]
struct EndingSide {
    /// Head of the list of slots freed by other threads.
    remote: AtomicU32,
    counts: Counts,
}

pub(super) struct Shard {
    owner: OwnerSide,
    ending: EndingSide,
    directory: [OnceLock<DirectoryPage>; DIR_PAGES],
}

/// One page of the directory: a `OnceLock` per chunk.
type DirectoryPage = Box<[OnceLock<Box<[Slot]>>]>;

/// `index` → (directory page, chunk in it, slot in the chunk).
#[inline]
fn locate(index: u32) -> (usize, usize, usize) {
    let chunk = (index as usize >> CHUNK_BITS) + 1;
    let page = (usize::BITS - 1 - chunk.leading_zeros()) as usize;
    (page, chunk - (1 << page), index as usize & (CHUNK - 1))
}

impl Shard {
    pub(super) fn new() -> Self {
        Shard {
            owner: OwnerSide {
                claimed: AtomicBool::new(false),
                free: AtomicU32::new(NIL),
                used: AtomicU32::new(0),
                inserted: AtomicU64::new(0),
            },
            ending: EndingSide {
                remote: AtomicU32::new(NIL),
                counts: Counts::default(),
            },
            directory: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    #[inline]
    pub(super) fn slot(&self, index: u32) -> Option<&Slot> {
        let (page, chunk, offset) = locate(index);
        self.directory
            .get(page)?
            .get()?
            .get(chunk)?
            .get()?
            .get(offset)
    }

    /// Counts an ended entry (`failed` or `cancelled`, else completed); returns how
    /// many entries the shard has ended, this one included.
    pub(super) fn count_ended(&self, failed: bool, cancelled: bool) -> u64 {
        let c = &self.ending.counts;
        if failed {
            c.failed.fetch_add(1, Ordering::Release);
        } else if cancelled {
            c.cancelled.fetch_add(1, Ordering::Release);
        }
        c.ended.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(super) fn inserted(&self) -> u64 {
        self.owner.inserted.load(Ordering::Acquire)
    }

    pub(super) fn counted(&self) -> Counted {
        let c = &self.ending.counts;
        let ended = c.ended.load(Ordering::SeqCst);
        let failed = c.failed.load(Ordering::Acquire);
        let cancelled = c.cancelled.load(Ordering::Acquire);
        Counted {
            live: self.inserted().saturating_sub(ended),
            completed: ended.saturating_sub(failed + cancelled),
            failed,
            cancelled,
        }
    }

    /// Counts a filled entry (the caller holds the claim).
    #[inline]
    pub(super) fn count_inserted(&self) {
        let n = self.owner.inserted.load(Ordering::Relaxed);
        self.owner.inserted.store(n + 1, Ordering::Release);
    }

    /// Entries alive: the ended ones are read first, so every entry they count was
    /// counted as inserted by then, and the difference is never negative.
    pub(super) fn live_count(&self) -> u64 {
        let ended = self.ending.counts.ended.load(Ordering::SeqCst);
        self.inserted().saturating_sub(ended)
    }

    /// Tries to become this shard's one spawning thread.
    #[inline]
    pub(super) fn try_claim(&self) -> bool {
        self.owner
            .claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    pub(super) fn release(&self) {
        self.owner.claimed.store(false, Ordering::Release);
    }

    /// A free slot and its index; the caller holds the claim.
    pub(super) fn take_free(&self) -> Option<(u32, &Slot)> {
        let mut head = self.owner.free.load(Ordering::Relaxed);
        if head == NIL {
            // The slots other threads freed, all at once.
            head = self.ending.remote.swap(NIL, Ordering::Acquire);
        }
        if head != NIL {
            let slot = self.slot(head)?;
            self.owner
                .free
                .store(slot.next.load(Ordering::Relaxed), Ordering::Relaxed);
            return Some((head, slot));
        }
        let index = self.owner.used.load(Ordering::Relaxed);
        if index == NIL {
            return None;
        }
        let (page, chunk, offset) = locate(index);
        let slots = self
            .directory
            .get(page)?
            .get_or_init(|| (0..1usize << page).map(|_| OnceLock::new()).collect())
            .get(chunk)?
            .get_or_init(|| (0..CHUNK).map(|_| Slot::new()).collect());
        self.owner.used.store(index + 1, Ordering::Release);
        Some((index, slots.get(offset)?))
    }

    /// The ending thread is done with the slot it retired (`last`, its last live word):
    /// frees it, unless the spawner has yet to settle the entry (then the spawner will).
    pub(super) fn ended(&self, index: u32, slot: &Slot, last: u64) {
        if last & HANDLE_PENDING != 0
            && slot.word.fetch_and(!ENDING, Ordering::AcqRel) & HANDLE_PENDING != 0
        {
            return;
        }
        self.push_remote(index, slot);
    }

    /// The spawner of entry `generation` stores its abort handle (`None`: it has none)
    /// and lets go of the slot. When the task has ended already, the handle is dropped
    /// here, and the slot freed if the ending thread is done with it too.
    pub(super) fn settle(
        &self,
        index: u32,
        slot: &Slot,
        generation_: u16,
        handle: Option<AbortHandle>,
    ) {
        if let Some(handle) = handle {
            drop(slot.abort.swap(Some(handle)));
        }
        let mut word = slot.word.load(Ordering::Acquire);
        while word & LIVE != 0 && generation(word) == generation_ {
            // An abort was asked for: taken back and aborted while the slot is still
            // held (once the bit is cleared, the task may end and the slot go to
            // another task, whose handle this swap would take).
            if word & ABORT_ASKED != 0
                && let Some(handle) = slot.abort.swap(None)
            {
                handle.abort();
            }
            match slot.word.compare_exchange_weak(
                word,
                word & !(HANDLE_PENDING | ABORT_ASKED),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
        // Ended first: whichever of the two swaps came later found the handle.
        drop(slot.abort.swap(None));
        if slot.word.fetch_and(!HANDLE_PENDING, Ordering::AcqRel) & ENDING == 0 {
            self.push_remote(index, slot);
        }
    }

    /// Pushes a retired slot onto the remote free list (any thread).
    fn push_remote(&self, index: u32, slot: &Slot) {
        let mut head = self.ending.remote.load(Ordering::Relaxed);
        loop {
            slot.next.store(head, Ordering::Relaxed);
            match self.ending.remote.compare_exchange_weak(
                head,
                index,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Slots handed out so far.
    #[cfg(test)]
    pub(super) fn slots_used(&self) -> u32 {
        self.owner.used.load(Ordering::Acquire)
    }

    /// The live slots, each read consistently (see the module docs).
    pub(super) fn live(&self) -> impl Iterator<Item = (u32, &Slot, Read)> {
        let used = self.owner.used.load(Ordering::Acquire);
        (0..used).filter_map(move |i| {
            let slot = self.slot(i)?;
            Some((i, slot, slot.read()?))
        })
    }
}

impl Slot {
    /// The slot's fields if it is live, read as one (a sequence-lock read).
    pub(super) fn read(&self) -> Option<Read> {
        let word = self.word.load(Ordering::Acquire);
        if word & LIVE == 0 {
            return None;
        }
        let read = Read {
            word,
            site: self.site.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
            chain: self.chain.load(Ordering::Relaxed),
            poll: self.poll.load(Ordering::Relaxed),
        };
        fence(Ordering::Acquire);
        let again = self.word.load(Ordering::Relaxed);
        (again & LIVE != 0 && generation(again) == generation(word)).then_some(Read {
            // The state may have changed in between: the later one.
            word: again,
            ..read
        })
    }

    /// The generation [`fill`](Self::fill) will give this free slot's next entry.
    pub(super) fn next_generation(&self) -> u16 {
        generation(self.word.load(Ordering::Relaxed))
    }

    /// Fills a free slot for a new task and publishes it; returns its generation.
    pub(super) fn fill(&self, site: u32, started: u32, state: u8, flags: u64) -> u16 {
        let generation = generation(self.word.load(Ordering::Relaxed));
        // The sequence lock's writer side, paired with the reader's acquire fence: a
        // reader that sees any field written below also sees, when it loads the word
        // again, that the slot's previous entry was retired (this thread saw that
        // through the free list), so it drops what it read. Without it only the
        // hardware (x86, Arm's multi-copy atomicity) would keep the promise, not the
        // memory model; it costs nothing on x86.
        fence(Ordering::Release);
        self.site.store(site, Ordering::Relaxed);
        self.started.store(started, Ordering::Relaxed);
        self.chain.store(0, Ordering::Relaxed);
        self.poll.store(0, Ordering::Relaxed);
        self.word.store(
            live_word(generation, state, flags) | HANDLE_PENDING,
            Ordering::Release,
        );
        generation
    }

    /// Aborts the task of the live entry `generation`, taking its handle out of the
    /// slot: at once when the handle is there, else by asking its spawner, who is
    /// about to store it, to abort it then. False when it had no handle to come (an
    /// entry without a task to abort, or one whose handle was taken already) or ended.
    pub(super) fn abort(&self, generation_: u16) -> bool {
        if let Some(handle) = self.abort.swap(None) {
            handle.abort();
            return true;
        }
        // The spawner clears `HANDLE_PENDING` after storing the handle, with a
        // compare-and-swap this one is ordered with: either it sees the ask, or the
        // handle is in the slot by the time this fails.
        match self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w & LIVE != 0 && generation(w) == generation_ && w & HANDLE_PENDING != 0)
                    .then_some(w | ABORT_ASKED)
            }) {
            Ok(_) => true,
            Err(w) if w & LIVE != 0 && generation(w) == generation_ => {
                match self.abort.swap(None) {
                    Some(handle) => {
                        handle.abort();
                        true
                    }
                    None => false,
                }
            }
            Err(_) => false,
        }
    }

    /// Changes the word of the live entry `generation`; `None` when it is gone.
    pub(super) fn update(&self, generation_: u16, f: impl Fn(u64) -> u64) -> Option<u64> {
        self.word
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| {
                (w & LIVE != 0 && generation(w) == generation_).then(|| f(w))
            })
            .ok()
    }

    /// The live entry's word, if `generation` is live.
    pub(super) fn word_of(&self, generation_: u16) -> Option<u64> {
        let w = self.word.load(Ordering::Acquire);
        (w & LIVE != 0 && generation(w) == generation_).then_some(w)
    }

    /// Retires the live entry `generation`: returns its last word, or `None` when it
    /// was not live. The caller then hands the slot to [`Shard::ended`].
    pub(super) fn retire(&self, generation_: u16) -> Option<u64> {
        let retired = retired_word(generation_.wrapping_add(1));
        // First guess the usual word (running, no flags, handle stored): one
        // compare-and-swap, with no load before it to fetch the line in shared state
        // first.
        let mut word = live_word(generation_, 0, 0);
        loop {
            // Ending before the spawner settled: the slot stays held by both.
            let next = if word & HANDLE_PENDING != 0 {
                retired | HANDLE_PENDING | ENDING
            } else {
                retired
            };
            match self
                .word
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(w) => return Some(w),
                Err(now) if now & LIVE != 0 && generation(now) == generation_ => word = now,
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_pages_double_and_cover_every_index() {
        assert_eq!(locate(0), (0, 0, 0));
        assert_eq!(locate(127), (0, 0, 127));
        assert_eq!(locate(128), (1, 0, 0));
        assert_eq!(locate(3 * 128 - 1), (1, 1, 127));
        assert_eq!(locate(3 * 128), (2, 0, 0));
        let (page, chunk, offset) = locate(NIL - 1);
        assert!(page < DIR_PAGES && chunk < 1 << page && offset < CHUNK);
    }

    #[test]
    fn a_slot_is_forty_bytes_and_its_abort_cell_a_plain_atomic() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
        assert!(AtomicCell::<Option<AbortHandle>>::is_lock_free());
    }

    #[test]
    fn words_keep_state_flags_and_generation_apart() {
        let w = live_word(7, 3, PROPAGATING | OWNED_NAME);
        assert_eq!((generation(w), state_bits(w)), (7, 3));
        assert_ne!(w & LIVE, 0);
        assert_eq!(state_bits(with_state(w, 1)), 1);
        assert_eq!(generation(with_state(w, 1)), 7);
        assert_eq!(generation(retired_word(u16::MAX.wrapping_add(1))), 0);
    }

    #[test]
    fn free_lists_hand_slots_back() {
        let s = Shard::new();
        assert!(s.try_claim());
        assert!(!s.try_claim(), "one claimant at a time");
        let (a, sa) = s.take_free().unwrap();
        let (b, _) = s.take_free().unwrap();
        assert_eq!((a, b), (0, 1));
        let g = sa.fill(0, 0, 0, 0);
        s.settle(a, sa, g, None);
        let last = sa.retire(g).unwrap();
        assert!(sa.retire(g).is_none(), "retired once");
        s.ended(a, sa, last);
        let (c, sc) = s.take_free().unwrap();
        assert_eq!(c, a, "the remote list is taken when the own list is empty");
        assert_eq!(sc.fill(0, 0, 0, 0), g.wrapping_add(1));
        s.release();
        assert!(s.try_claim());
    }

    #[test]
    fn a_slot_whose_task_ends_before_it_is_settled_is_freed_once_by_the_last() {
        let s = Shard::new();
        assert!(s.try_claim());
        for spawner_last in [true, false] {
            let (a, sa) = s.take_free().unwrap();
            let g = sa.fill(0, 0, 0, 0);
            let last = sa.retire(g).unwrap();
            if spawner_last {
                s.ended(a, sa, last);
                assert_eq!(s.take_free().unwrap().0, a + 1, "held by the spawner");
                s.settle(a, sa, g, None);
            } else {
                s.settle(a, sa, g, None);
                assert_eq!(s.take_free().unwrap().0, a + 1, "held by the ending thread");
                s.ended(a, sa, last);
            }
            assert_eq!(s.take_free().unwrap().0, a, "freed by the last one");
            assert_ne!(s.take_free().unwrap().0, a, "and only once");
        }
    }
}
