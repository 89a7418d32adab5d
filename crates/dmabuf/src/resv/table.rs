//! The fence table of a reservation object: fixed-capacity slots that readers walk without
//! the lock (kernel: `struct dma_resv_list` under RCU).
//!
//! The writer (holding the reservation lock) fills a slot before publishing the new length,
//! replaces entries in place under a sequence count, and swaps in a larger table when a
//! reservation needs room. Readers load the table through `arc-swap` (so a table lives as long
//! as anybody walks it, as RCU grace periods do in the kernel) and restart when the table was
//! swapped or the sequence count moved.
//!
//! # Differences from the kernel
//! * The kernel packs the usage into the fence pointer's low bits so an entry is read in one
//!   load; here fence and usage are two words, so an in-place replacement bumps a sequence
//!   count and concurrent readers restart.

use super::Usage;
use crate::fence::Fence;
use crate::fence::core::Inner;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// One entry: a fence and its usage.
pub(crate) struct Slot {
    fence: ArcSwapOption<Inner>,
    usage: AtomicU8,
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
            slots: (0..capacity)
                .map(|_| Slot {
                    fence: ArcSwapOption::empty(),
                    usage: AtomicU8::new(Usage::Bookkeep as u8),
                })
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The entry at `i` (`i < len`); `None` only if a racing reader sees a slot mid-update,
    /// which its sequence check then catches.
    pub(crate) fn get(&self, i: usize) -> Option<(Fence, Usage)> {
        let slot = &self.slots[i];
        let usage = Usage::from_raw(slot.usage.load(Ordering::SeqCst));
        slot.fence.load_full().map(|inner| (Fence(inner), usage))
    }

    /// Writer only: sets entry `i`.
    pub(crate) fn set(&self, i: usize, fence: &Fence, usage: Usage) {
        let slot = &self.slots[i];
        slot.fence.store(Some(Arc::clone(&fence.0)));
        slot.usage.store(usage as u8, Ordering::SeqCst);
    }

    /// Writer only: appends an entry; the caller checked there is room.
    pub(crate) fn push(&self, fence: &Fence, usage: Usage) {
        let n = self.len.load(Ordering::Relaxed);
        self.set(n, fence, usage);
        // The entry is complete before readers can see it.
        self.len.store(n + 1, Ordering::Release);
    }

    /// Writer only: the entries, in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Fence, Usage)> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
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
