//! Lock-free iteration over a reservation object's fences (kernel:
//! `dma_resv_iter_first_unlocked` / `dma_resv_iter_next_unlocked`).
//!
//! # Rules (as the kernel)
//! * Signalled fences are skipped; each yielded fence is a counted handle.
//! * When the set changed under the walk (a new table), the walk restarts from the beginning and [`UnlockedIter::is_restarted`] is true for the
//!   fence it then yields: callers that accumulate must throw away what they collected.
//! * The first fence of a walk counts as restarted.

use super::table::Table;
use super::{Resv, Usage};
use crate::fence::Fence;
use arc_swap::Guard;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Iterator returned by [`Resv::iter_unlocked`].
///
/// ```
/// use dmabuf::fence::FenceContext;
/// use dmabuf::resv::{Resv, Usage};
/// let r = Resv::new();
/// let (_s, f) = FenceContext::new("drv", "tl").next_fence();
/// {
///     let mut g = r.lock_single();
///     g.reserve_fences(1).unwrap();
///     g.add_fence(&f, Usage::Read);
/// }
/// let mut seen = Vec::new();
/// let mut it = r.iter_unlocked(Usage::Read);
/// while let Some(fence) = it.next() {
///     if it.is_restarted() {
///         seen.clear();
///     }
///     seen.push((fence, it.usage()));
/// }
/// assert_eq!(seen.len(), 1);
/// assert!(seen[0].0.ptr_eq(&f) && seen[0].1 == Usage::Read);
/// ```
pub struct UnlockedIter<'a> {
    resv: &'a Resv,
    query: Usage,
    /// The table being walked, held without touching its reference count.
    table: Option<Guard<Arc<Table>>>,
    generation: u64,
    idx: usize,
    restarted: bool,
    current_usage: Usage,
    restarts: u64,
}

impl<'a> UnlockedIter<'a> {
    pub(crate) fn new(resv: &'a Resv, usage: Usage) -> Self {
        UnlockedIter {
            resv,
            query: usage,
            table: None,
            generation: 0,
            idx: 0,
            restarted: false,
            current_usage: usage,
            restarts: 0,
        }
    }

    /// Whether the walk started over before yielding the last fence (kernel:
    /// `dma_resv_iter_is_restarted`).
    pub fn is_restarted(&self) -> bool {
        self.restarted
    }

    /// The usage of the last fence yielded (kernel: `dma_resv_iter_usage`).
    pub fn usage(&self) -> Usage {
        self.current_usage
    }

    /// How many times this walk started over because a writer changed the set.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Forces the next call to start over, as if the set had changed (tests exercise
    /// callers' restart handling with it, as st-dma-resv corrupts its cursor).
    pub fn force_restart(&mut self) {
        self.generation = self.generation.wrapping_sub(1);
    }

    /// Starts over: the current table, index 0.
    fn restart(&mut self, walked: bool) -> Guard<Arc<Table>> {
        if walked {
            self.restarts += 1;
        }
        // Generation first: a swap after this load is seen by the next check.
        self.generation = self.resv.generation.load(Ordering::SeqCst);
        self.idx = 0;
        self.restarted = true;
        self.resv.table.load()
    }

    /// Whether the table is still the one this walk started on.
    fn unchanged(&self) -> bool {
        self.resv.generation.load(Ordering::SeqCst) == self.generation
    }
}

impl Iterator for UnlockedIter<'_> {
    type Item = Fence;

    fn next(&mut self) -> Option<Fence> {
        let mut table = match self.table.take() {
            Some(t) => {
                self.restarted = false;
                t
            }
            None => self.restart(false),
        };
        let found = loop {
            if self.idx >= table.len() {
                if self.unchanged() {
                    break None;
                }
                table = self.restart(true);
                continue;
            }
            let entry = table.get(self.idx, self.query);
            if !self.unchanged() {
                table = self.restart(true);
                continue;
            }
            self.idx += 1;
            if let Some((f, u)) = entry
                && !f.is_signaled()
            {
                self.current_usage = u;
                break Some(f);
            }
        };
        self.table = Some(table);
        found
    }
}

impl std::fmt::Debug for UnlockedIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedIter")
            .field("query", &self.query)
            .field("idx", &self.idx)
            .field("restarted", &self.restarted)
            .field("restarts", &self.restarts)
            .finish()
    }
}
