//! The registry's storage: shards of slots written without a lock.
//!
//! Every field of a slot is an atomic, so a spawn, a task's end and a snapshot never
//! wait for one another:
//!
//! - **One spawning thread per shard at a time.** A spawn *claims* a shard (one
//!   compare-and-swap on a flag only spawners touch, normally the same thread's, so the
//!   line stays in its cache), takes the next free slot at the shard's *cursor*, fills
//!   the slot and publishes it with one release store of its *word* (generation, live
//!   bit, state), and gives the claim back. The claim covers no code but the
//!   registry's: a spawn nested in another (a task dropped inside `tokio::spawn`, whose
//!   `Drop` spawns) never waits for a claim its own thread holds.
//! - **The abort handle comes after the word.** The word is published with
//!   `HANDLE_PENDING`; the spawner clears it once `tokio::spawn` has returned and the
//!   handle is in the slot. Until then the slot is the spawner's too: if the task ends
//!   first, the slot is free only once both the ending thread and the spawner are done
//!   with it (each clears its own bit), so it cannot be reused under the spawner's
//!   feet. An abort that finds the handle still to come leaves a bit in the word; the
//!   spawner sees it as it clears its own and aborts the task. An abort that finds the
//!   handle there holds the entry (`TAKING`) while it takes it, so the slot cannot go
//!   to the next task meanwhile, whose handle it would take.
//! - **Any thread ends a task.** Removal retires the word (live bit off, generation
//!   advanced, `ENDING` on) with one compare-and-swap, takes the abort handle, counts
//!   the outcome and clears `ENDING` with a plain store (an atomic and, when the
//!   spawner or an abort still holds the slot: the last to let go leaves it free).
//!   Nothing else is written: there is no free list.
//! - **Slots are reused in address order.** The cursor walks the shard's slots and
//!   wraps around; a spawn takes the first free one within a few steps, else a slot
//!   never used (a new chunk when the last is full). A free list hands back the slot
//!   freed last, whose line the thread that ended its task still holds, and the spawn
//!   stalls on it (reading the link, then the word); walking in order, each spawn's
//!   slot is the one after the last, which the processor's prefetcher has already
//!   fetched, and the task's end touches only its own slot, not a shared list head.
//!   The cost is a slot's space: the shard grows when the cursor finds only busy
//!   slots ahead, so it holds the most tasks live at once plus what that search
//!   leaves behind.
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

/// Not a slot index: a shard hands out at most this many slots.
pub(super) const NIL: u32 = u32::MAX;

/// Slots in a chunk.
pub(super) const CHUNK: usize = 128;
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();
/// Directory page `p` holds `1 << p` chunks; enough pages for every `u32` index.
const DIR_PAGES: usize = (u32::BITS - CHUNK_BITS + 1) as usize;

// The word: bit 0 live, bits 1–2 the state, bit 3 propagating a cancellation, bit 4 the
// name is owned (kept in the shard's name table), bit 5 the abort handle is still to
// come, bit 6 the ending thread is still clearing a retired slot, bit 7 an abort was
// asked for while the handle was still to come, bit 8 an abort is taking the handle,
// bits 16–31 the generation. A slot is free when bits 0, 5, 6 and 8 are all clear.
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
/// An abort is taking the entry's handle out: the slot is held (not reused) until it
/// is done, so the handle it takes is this entry's, never the next one's.
const TAKING: u64 = 1 << 8;
const GEN_SHIFT: u32 = 16;
/// The bits that keep a slot from being reused.
const BUSY: u64 = LIVE | HANDLE_PENDING | ENDING | TAKING;
/// Slots a spawn looks at from the cursor before it asks how many are free.
const PROBES: u32 = 4;
/// Spawns that take a never-used slot without looking, after one found the shard
/// three-quarters live.
const DENSE_SKIP: u32 = 32;

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

/// How many entries ended, by outcome, written by whichever thread ends a task: one
/// `SeqCst` add per ended entry (see [`Registry::remove`](super::Registry::remove) for
/// why `SeqCst`). Each count only grows, and none is derived by subtraction: the
/// completed ones were once the ended ones minus the others, and a read between a
/// task's two adds showed fewer completed tasks than had ever completed.
#[derive(Default)]
pub(super) struct Counts {
    completed: AtomicU64,
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
    /// The next slot to look at.
    cursor: AtomicU32,
    /// Spawns left that take a never-used slot without looking (see `take_free`).
    skip: AtomicU32,
    /// Slots handed out so far (indices below it exist).
    used: AtomicU32,
    /// Entries ever filled: the live count is this minus the ended ones, so a spawn
    /// writes no line that the ending threads write.
    inserted: AtomicU64,
}

#[repr(align(128))]
struct EndingSide {
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
                cursor: AtomicU32::new(0),
                skip: AtomicU32::new(0),
                used: AtomicU32::new(0),
                inserted: AtomicU64::new(0),
            },
            ending: EndingSide {
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

    /// Counts an ended entry (`failed` or `cancelled`, else completed).
    pub(super) fn count_ended(&self, failed: bool, cancelled: bool) {
        let c = &self.ending.counts;
        let count = if failed {
            &c.failed
        } else if cancelled {
            &c.cancelled
        } else {
            &c.completed
        };
        count.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn inserted(&self) -> u64 {
        self.owner.inserted.load(Ordering::Acquire)
    }

    /// The ended entries, by outcome.
    fn ended_counts(&self) -> (u64, u64, u64) {
        let c = &self.ending.counts;
        (
            c.completed.load(Ordering::SeqCst),
            c.failed.load(Ordering::SeqCst),
            c.cancelled.load(Ordering::SeqCst),
        )
    }

    /// The counts, each read once. The ended ones are read before the inserted ones, so
    /// every entry they count was counted as inserted by then, and the live count is
    /// never negative.
    pub(super) fn counted(&self) -> Counted {
        let (completed, failed, cancelled) = self.ended_counts();
        Counted {
            live: self
                .inserted()
                .saturating_sub(completed + failed + cancelled),
            completed,
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

    /// Entries alive (see [`counted`](Self::counted)).
    pub(super) fn live_count(&self) -> u64 {
        self.counted().live
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

    /// A free slot, its index and the generation its entry gets; the caller holds the
    /// claim.
    ///
    /// The first chunk is handed out in order. Then the first free slot from the cursor
    /// on (wrapping around): within [`PROBES`] steps, which is where it is when tasks
    /// end about as they were spawned; else, if at least a quarter of the shard's slots
    /// are free, anywhere in the rest of the lap (long-lived tasks hold a run of slots,
    /// which the cursor then steps over once per lap). Otherwise a slot never used: the
    /// shard grows only when it is three-quarters live, and the next [`DENSE_SKIP`]
    /// spawns do not look. So a shard never holds much more than 4/3 of its most live
    /// entries (`long_lived_entries_and_churn_do_not_grow_the_shard_without_bound`); the
    /// price is one spawn per lap that steps over a run of long-lived tasks.
    pub(super) fn take_free(&self) -> Option<(u32, &Slot, u16)> {
        let owner = &self.owner;
        let used = owner.used.load(Ordering::Relaxed);
        let skip = owner.skip.load(Ordering::Relaxed);
        if skip > 0 {
            owner.skip.store(skip - 1, Ordering::Relaxed);
            return self.take_new(used);
        }
        if (used as usize) < CHUNK {
            return self.take_new(used);
        }
        if let Some(found) = self.find_free(used, PROBES) {
            return Some(found);
        }
        let slots = u64::from(used);
        if slots.saturating_sub(self.live_count()) * 4 < slots {
            owner.skip.store(DENSE_SKIP, Ordering::Relaxed);
        } else if let Some(found) = self.find_free(used, used) {
            // Growing here instead would add slots on every lap that meets a run of
            // long-lived tasks: as many as laps, not as live tasks.
            return Some(found);
        }
        self.take_new(used)
    }

    /// The first free slot of the next `steps` at the cursor, which moves past it.
    #[inline]
    fn find_free(&self, used: u32, steps: u32) -> Option<(u32, &Slot, u16)> {
        let mut cursor = self.owner.cursor.load(Ordering::Relaxed);
        let mut found = None;
        for _ in 0..steps {
            if cursor >= used {
                cursor = 0;
            }
            let index = cursor;
            cursor += 1;
            let Some(slot) = self.slot(index) else {
                break;
            };
            // Acquire: the ending thread's last touch of the slot (taking its abort
            // handle) comes before the fill.
            let word = slot.word.load(Ordering::Acquire);
            if word & BUSY == 0 {
                found = Some((index, slot, generation(word)));
                break;
            }
        }
        self.owner.cursor.store(cursor, Ordering::Relaxed);
        found
    }

    /// The slot after the last one handed out, in a new chunk if need be.
    fn take_new(&self, used: u32) -> Option<(u32, &Slot, u16)> {
        if used == NIL {
            return None;
        }
        let (page, chunk, offset) = locate(used);
        let slots = self
            .directory
            .get(page)?
            .get_or_init(|| (0..1usize << page).map(|_| OnceLock::new()).collect())
            .get(chunk)?
            .get_or_init(|| (0..CHUNK).map(|_| Slot::new()).collect());
        self.owner.used.store(used + 1, Ordering::Release);
        Some((used, slots.get(offset)?, 0))
    }

    /// The ending thread is done with the slot it retired (`last`, its last live word):
    /// the slot is free from here, unless the spawner has yet to settle the entry (then
    /// it is once the spawner has).
    pub(super) fn ended(&self, slot: &Slot, last: u64) {
        if last & (HANDLE_PENDING | TAKING) != 0 {
            slot.word.fetch_and(!ENDING, Ordering::AcqRel);
        } else {
            // Nothing else writes a retired word: a plain release store, which the
            // next spawn of this slot acquires.
            slot.word.store(
                retired_word(generation(last).wrapping_add(1)),
                Ordering::Release,
            );
        }
    }

    /// The spawner of entry `generation` stores its abort handle (`None`: it has none)
    /// and lets go of the slot. When the task has ended already, the handle is dropped
    /// here, and the slot is free once the ending thread is done with it too.
    pub(super) fn settle(&self, slot: &Slot, generation_: u16, handle: Option<AbortHandle>) {
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
        slot.word.fetch_and(!HANDLE_PENDING, Ordering::AcqRel);
    }

    /// Slots handed out so far.
    #[cfg(test)]
    pub(super) fn slots_used(&self) -> u32 {
        self.owner.used.load(Ordering::Acquire)
    }

    /// Slots not free: live, or still held by a spawner or an ending thread.
    #[cfg(test)]
    pub(super) fn busy_slots(&self) -> usize {
        (0..self.slots_used())
            .filter_map(|i| self.slot(i))
            .filter(|s| s.word.load(Ordering::Acquire) & BUSY != 0)
            .count()
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

    /// Fills a free slot for a new entry of `generation` (the free word's) and
    /// publishes it.
    pub(super) fn fill(&self, generation: u16, site: u32, started: u32, state: u8, flags: u64) {
        // The sequence lock's writer side, paired with the reader's acquire fence: a
        // reader that sees any field written below also sees, when it loads the word
        // again, that the slot's previous entry was retired (this thread saw that
        // when it found the slot free), so it drops what it read. Without it only the
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
    }

    /// Aborts the task of the live entry `generation`, taking its handle out of the
    /// slot: at once when the handle is there, else by asking its spawner, who is
    /// about to store it, to abort it then. False when it had no handle to come (an
    /// entry without a task to abort, or one whose handle was taken already) or ended.
    ///
    /// The entry is held (`TAKING`) while its handle is taken: a caller that read the
    /// slot live a moment ago (`abort_all`'s sweep) may find its task ended and the
    /// slot given to the next spawn, whose handle it must not take.
    pub(super) fn abort(&self, generation_: u16) -> bool {
        // The spawner clears `HANDLE_PENDING` after storing the handle, with a
        // compare-and-swap this one is ordered with: either it sees the ask, or the
        // handle is in the slot by the time this succeeds.
        let held = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                if w & LIVE == 0 || generation(w) != generation_ || w & TAKING != 0 {
                    None
                } else if w & HANDLE_PENDING != 0 {
                    Some(w | ABORT_ASKED)
                } else {
                    Some(w | TAKING)
                }
            });
        match held {
            Ok(w) if w & HANDLE_PENDING != 0 => true,
            Ok(_) => {
                let handle = self.abort.swap(None);
                // Let go: if the task ended meanwhile, whichever of the two is last to
                // clear its bit leaves the slot free.
                self.word.fetch_and(!TAKING, Ordering::AcqRel);
                match handle {
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
    /// was not live. The slot stays busy (`ENDING`) until the caller, done with it,
    /// hands it to [`Shard::ended`].
    pub(super) fn retire(&self, generation_: u16) -> Option<u64> {
        let retired = retired_word(generation_.wrapping_add(1));
        // First guess the usual word (running, no flags, handle stored): one
        // compare-and-swap, with no load before it to fetch the line in shared state
        // first.
        let mut word = live_word(generation_, 0, 0);
        loop {
            // Ending before the spawner settled, or while an abort takes the handle:
            // the slot stays held by both.
            let next = retired | ENDING | (word & (HANDLE_PENDING | TAKING));
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

    /// Takes a slot, fills and settles it as a spawn does; returns its index, the slot
    /// and the generation.
    fn spawn_one(s: &Shard) -> (u32, &Slot, u16) {
        let (i, slot, g) = s.take_free().unwrap();
        slot.fill(g, 0, 0, 0, 0);
        s.count_inserted();
        s.settle(slot, g, None);
        (i, slot, g)
    }

    fn end(s: &Shard, slot: &Slot, g: u16) {
        let last = slot.retire(g).unwrap();
        s.count_ended(false, false);
        s.ended(slot, last);
    }

    #[test]
    fn slots_are_reused_in_address_order_once_the_first_chunk_is_used() {
        let s = Shard::new();
        assert!(s.try_claim());
        assert!(!s.try_claim(), "one claimant at a time");
        let (a, sa, g) = spawn_one(&s);
        assert_eq!((a, g), (0, 0));
        let last = sa.retire(g).unwrap();
        assert!(sa.retire(g).is_none(), "retired once");
        assert_eq!(
            s.busy_slots(),
            1,
            "busy until the ending thread is done with it"
        );
        s.count_ended(false, false);
        s.ended(sa, last);
        assert_eq!(s.busy_slots(), 0);
        // The rest of the first chunk first, never used.
        let live: Vec<_> = (1..CHUNK as u32)
            .map(|want| {
                let (i, slot, g) = spawn_one(&s);
                assert_eq!(i, want);
                (slot, g)
            })
            .collect();
        let (c, sc, gc) = spawn_one(&s);
        assert_eq!(c, a, "then the cursor wraps around to the freed slot");
        assert_eq!(gc, g.wrapping_add(1), "with a new generation");
        assert!(sc.retire(g).is_none(), "the old generation is not live");
        // Half the slots end (every other one): the cursor finds them in order.
        for (slot, g) in live.iter().step_by(2) {
            end(&s, slot, *g);
        }
        let found: Vec<u32> = (0..10).map(|_| spawn_one(&s).0).collect();
        assert_eq!(found, (1..20).step_by(2).collect::<Vec<u32>>());
        assert_eq!(
            s.slots_used(),
            CHUNK as u32,
            "no slot added while some are free"
        );
        s.release();
        assert!(s.try_claim());
    }

    #[test]
    fn a_run_of_long_lived_tasks_is_stepped_over_while_a_quarter_is_free() {
        let s = Shard::new();
        assert!(s.try_claim());
        let all: Vec<_> = (0..CHUNK).map(|_| spawn_one(&s)).collect();
        for &(_, slot, g) in &all[CHUNK / 2..] {
            end(&s, slot, g);
        }
        // The cursor is at slot 0, before 64 live slots: more than the probes.
        let (i, _, _) = spawn_one(&s);
        assert_eq!(i, CHUNK as u32 / 2, "the first free one past the run");
        assert_eq!(s.slots_used(), CHUNK as u32, "no slot added");
    }

    #[test]
    fn a_shard_three_quarters_live_grows_and_does_not_look_for_a_while() {
        let s = Shard::new();
        assert!(s.try_claim());
        let live: Vec<_> = (0..CHUNK).map(|_| spawn_one(&s)).collect();
        assert_eq!(spawn_one(&s).0, CHUNK as u32, "all live: a new slot");
        // A slot ends, but the next spawns take new slots without looking.
        let (_, slot, g) = live[5];
        end(&s, slot, g);
        for k in 0..DENSE_SKIP {
            assert_eq!(spawn_one(&s).0, CHUNK as u32 + 1 + k);
        }
        let (i, _, _) = spawn_one(&s);
        assert_eq!(i, 5, "then looks again and finds it");
    }

    #[test]
    fn a_slot_whose_task_ends_before_it_is_settled_is_freed_once_both_are_done() {
        let s = Shard::new();
        assert!(s.try_claim());
        for spawner_last in [true, false] {
            let (_, sa, g) = s.take_free().unwrap();
            sa.fill(g, 0, 0, 0, 0);
            let last = sa.retire(g).unwrap();
            assert_ne!(last & HANDLE_PENDING, 0);
            if spawner_last {
                s.ended(sa, last);
                assert_ne!(
                    sa.word.load(Ordering::Acquire) & BUSY,
                    0,
                    "held by the spawner"
                );
                s.settle(sa, g, None);
            } else {
                s.settle(sa, g, None);
                assert_ne!(
                    sa.word.load(Ordering::Acquire) & BUSY,
                    0,
                    "held by the ending thread"
                );
                s.ended(sa, last);
            }
            assert_eq!(
                sa.word.load(Ordering::Acquire) & BUSY,
                0,
                "free once both are done"
            );
            assert_eq!(
                generation(sa.word.load(Ordering::Acquire)),
                g.wrapping_add(1)
            );
        }
    }
}
