//! The fence table of a reservation object: fixed-capacity slots that readers walk without
//! the lock (kernel: `struct dma_resv_list` under RCU).
//!
//! The writer (holding the reservation lock) fills a slot before publishing the new length,
//! replaces entries in place, and swaps in a larger table when a reservation needs room.
//! Readers load the table through `arc-swap` (so a table lives as long as anybody walks it,
//! as RCU grace periods do in the kernel) and restart only when the table was swapped.
//!
//! # Differences from the kernel
//! * The kernel packs the usage into the fence pointer's low bits so an entry is read in one
//!   load; here fence and usage are two words guarded by a per-slot sequence count, so a
//!   reader that meets a slot mid-replacement re-reads that slot (never the whole walk).

use super::Usage;
use crate::fence::Fence;
use crate::fence::core::Inner;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

/// One entry: a fence and its usage, and a sequence count that is odd while the writer
/// changes them.
pub(crate) struct Slot {
    seq: AtomicU32,
    fence: ArcSwapOption<Inner>,
    usage: AtomicU8,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            seq: AtomicU32::new(0),
            fence: ArcSwapOption::empty(),
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
                std::hint::spin_loop();
                continue;
            }
            let usage = Usage::from_raw(slot.usage.load(Ordering::SeqCst));
            let fence = if usage <= query {
                slot.fence.load_full()
            } else {
                None
            };
            if slot.seq.load(Ordering::SeqCst) == s1 {
                return fence.map(|inner| (Fence(inner), usage));
            }
        }
    }

    /// Writer only: sets entry `i`.
    pub(crate) fn set(&self, i: usize, fence: &Fence, usage: Usage) {
        let slot = &self.slots[i];
        slot.seq.fetch_add(1, Ordering::SeqCst);
        slot.fence.store(Some(Arc::clone(&fence.0)));
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
            let fence = slot.fence.load();
            fence.as_ref().is_some_and(|inner| {
                let usage = Usage::from_raw(slot.usage.load(Ordering::Relaxed));
                pick(Fence::from_inner_ref(inner), usage)
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
