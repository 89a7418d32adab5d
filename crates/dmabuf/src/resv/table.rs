//! The fence table of a reservation object: fixed-capacity slots that readers walk without
//! the lock (kernel: `struct dma_resv_list` under RCU).
//!
//! The writer (holding the reservation lock) fills a slot before publishing the new length,
//! replaces entries in place, and swaps in a larger table when a reservation needs room.
//! Readers load the table through `arc-swap` (so a table lives as long as anybody walks it,
//! as RCU grace periods do in the kernel) and restart only when the table was swapped
//! ([`PublishedTable`], [`Walk`]).
//!
//! Every atomic here comes from the crate's sync shim, so loom checks this code as it ships:
//! `tests::loom_resv` runs a reader against in-place replacement and appends, and against a
//! swap to a larger table.
//!
//! # Differences from the kernel
//! * The kernel packs the usage into the fence pointer's low bits so an entry is read in one
//!   load; here fence and usage are two words guarded by a per-slot sequence count, so a
//!   reader that meets a slot mid-replacement re-reads that slot (never the whole walk).

use super::Usage;
use crate::fence::{Fence, FenceSlot};
use crate::sync::{
    Arc, ArcGuard, AtomicArc, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, spin_hint,
};

/// One entry: a fence and its usage, and a sequence count that is odd while the writer
/// changes them.
pub(crate) struct Slot {
    seq: AtomicU32,
    fence: FenceSlot,
    usage: AtomicU8,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            seq: AtomicU32::new(0),
            fence: FenceSlot::empty(),
            usage: AtomicU8::new(Usage::Bookkeep as u8),
        }
    }
}

/// A table of entries; `len` of its `slots` are in use.
pub(crate) struct Table {
    slots: Box<[Slot]>,
    len: AtomicUsize,
}

impl Table {
    /// An empty table with room for `capacity` entries (the only allocation of the
    /// reservation object).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Table {
            slots: (0..capacity).map(|_| Slot::empty()).collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// [`with_capacity`](Self::with_capacity), or `None` if the slots cannot be allocated
    /// (their size overflows, or the allocator refuses) rather than a panic or an abort.
    pub(crate) fn try_with_capacity(capacity: usize) -> Option<Self> {
        let mut slots = Vec::new();
        slots.try_reserve_exact(capacity).ok()?;
        slots.extend((0..capacity).map(|_| Slot::empty()));
        Some(Table {
            slots: slots.into_boxed_slice(),
            len: AtomicUsize::new(0),
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The entry at `i` (`i < len`) if its usage is at most `query`, read consistently.
    /// Entries of a higher usage are passed over without taking a reference.
    pub(crate) fn get(&self, i: usize, query: Usage) -> Option<(Fence, Usage)> {
        let slot = &self.slots[i];
        loop {
            let s1 = slot.seq.load(Ordering::SeqCst);
            if s1 & 1 != 0 {
                spin_hint();
                continue;
            }
            let usage = Usage::from_raw(slot.usage.load(Ordering::SeqCst));
            let fence = if usage <= query {
                slot.fence.load()
            } else {
                None
            };
            if slot.seq.load(Ordering::SeqCst) == s1 {
                return fence.map(|f| (f, usage));
            }
        }
    }

    /// Writer only: sets entry `i`.
    pub(crate) fn set(&self, i: usize, fence: &Fence, usage: Usage) {
        let slot = &self.slots[i];
        slot.seq.fetch_add(1, Ordering::SeqCst);
        slot.fence.store(Some(fence));
        slot.usage.store(usage as u8, Ordering::SeqCst);
        slot.seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Writer only: appends an entry; the caller checked there is room.
    pub(crate) fn push(&self, fence: &Fence, usage: Usage) {
        let n = self.len.load(Ordering::Relaxed);
        self.set(n, fence, usage);
        // The entry is complete before readers can see it.
        self.len.store(n + 1, Ordering::Release);
    }

    /// Writer only: the index of the first entry `pick` chooses. Entries are looked at by
    /// reference: no fence's reference count is touched (only the writer changes slots, so no
    /// sequence check is needed).
    pub(crate) fn position(&self, mut pick: impl FnMut(&Fence, Usage) -> bool) -> Option<usize> {
        (0..self.len()).find(|&i| {
            let slot = &self.slots[i];
            slot.fence.peek(|fence| {
                fence.is_some_and(|f| pick(f, Usage::from_raw(slot.usage.load(Ordering::Relaxed))))
            })
        })
    }

    /// Writer only: the entries, in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Fence, Usage)> + '_ {
        (0..self.len()).filter_map(|i| self.get(i, Usage::Bookkeep))
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // Fences are released with the table, after the last reader let go of it.
        for s in self.slots.iter() {
            s.fence.store(None);
        }
    }
}

/// The table readers see, and a count of the swaps that replaced it (kernel: the
/// RCU-protected `dma_resv.fences` pointer).
///
/// The writer fills a new table before publishing it; a walk that sees the count move has
/// read a table that is no longer current and starts over.
pub(crate) struct PublishedTable {
    table: AtomicArc<Table>,
    /// Bumped after every swap; unlocked readers restart when it moves.
    generation: AtomicU64,
}

impl PublishedTable {
    /// An empty table with no room (allocates nothing but the empty table).
    pub(crate) fn new() -> Self {
        PublishedTable {
            table: AtomicArc::from_pointee(Table::with_capacity(0)),
            generation: AtomicU64::new(0),
        }
    }

    /// The current table, counted: the writer's view, and a snapshot for describing.
    pub(crate) fn current(&self) -> Arc<Table> {
        self.table.load_full()
    }

    /// Writer only: replaces the table (readers restart on seeing a new one).
    pub(crate) fn publish(&self, table: Table) {
        self.table.store(Arc::new(table));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The unsignalled entries with usage ≤ `query` and their usages, as one walk without
    /// the lock sees them: a walk that had to start over throws away what it collected
    /// (kernel: the callers of `dma_resv_iter_is_restarted()`).
    pub(crate) fn snapshot(&self, query: Usage) -> Vec<(Fence, Usage)> {
        let mut walk = Walk::new();
        let mut out = Vec::new();
        while let Some(entry) = walk.next(self, query) {
            if walk.is_restarted() {
                out.clear();
            }
            out.push(entry);
        }
        out
    }
}

/// A walk over the published table without the lock, yielding the unsignalled entries of
/// a usage or lower (kernel: `struct dma_resv_iter` in its unlocked form).
///
/// When the table is swapped under the walk, the walk starts over from the beginning and
/// [`is_restarted`](Self::is_restarted) is true for the entry it then yields; the first
/// entry of a walk counts as restarted.
pub(crate) struct Walk {
    /// The table being walked, held without touching its reference count.
    table: Option<ArcGuard<Arc<Table>>>,
    generation: u64,
    idx: usize,
    restarted: bool,
    restarts: u64,
}

impl Walk {
    /// A walk that has not started.
    pub(crate) fn new() -> Self {
        Walk {
            table: None,
            generation: 0,
            idx: 0,
            restarted: false,
            restarts: 0,
        }
    }

    /// Whether the walk started over before yielding the last entry.
    pub(crate) fn is_restarted(&self) -> bool {
        self.restarted
    }

    /// How many times this walk started over because the table was swapped.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Where the walk stands: the index of the next entry to look at.
    pub(crate) fn index(&self) -> usize {
        self.idx
    }

    /// Forces the next step to start over, as if the table had been swapped.
    pub(crate) fn force_restart(&mut self) {
        self.generation = self.generation.wrapping_sub(1);
    }

    /// Starts over: the current table, index 0.
    fn restart(&mut self, published: &PublishedTable, walked: bool) -> ArcGuard<Arc<Table>> {
        if walked {
            self.restarts += 1;
        }
        // Generation first: a swap after this load is seen by the next check.
        self.generation = published.generation.load(Ordering::SeqCst);
        self.idx = 0;
        self.restarted = true;
        published.table.load()
    }

    /// Whether the table is still the one this walk started on.
    fn unchanged(&self, published: &PublishedTable) -> bool {
        published.generation.load(Ordering::SeqCst) == self.generation
    }

    /// The next unsignalled entry with usage ≤ `query`, or `None` at the end of a table that
    /// is still current.
    pub(crate) fn next(
        &mut self,
        published: &PublishedTable,
        query: Usage,
    ) -> Option<(Fence, Usage)> {
        let mut table = match self.table.take() {
            Some(t) => {
                self.restarted = false;
                t
            }
            None => self.restart(published, false),
        };
        let found = loop {
            if self.idx >= table.len() {
                if self.unchanged(published) {
                    break None;
                }
                table = self.restart(published, true);
                continue;
            }
            let entry = table.get(self.idx, query);
            if !self.unchanged(published) {
                table = self.restart(published, true);
                continue;
            }
            self.idx += 1;
            if let Some((f, u)) = entry
                && !f.is_signaled()
            {
                break Some((f, u));
            }
        };
        self.table = Some(table);
        found
    }
}
