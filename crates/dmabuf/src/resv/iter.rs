//! Lock-free iteration over a reservation object's fences (kernel:
//! `dma_resv_iter_first_unlocked` / `dma_resv_iter_next_unlocked`).
//!
//! # Rules (as the kernel)
//! * Signalled fences are skipped; each yielded fence is a counted handle.
//! * When the set changed under the walk (a new table, or an entry replaced in place), the
//!   walk restarts from the beginning and [`UnlockedIter::is_restarted`] is true for the
//!   fence it then yields: callers that accumulate must throw away what they collected.
//! * The first fence of a walk counts as restarted.

use super::table::Table;
use super::{Resv, Usage};
use crate::fence::Fence;
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
    table: Option<Arc<Table>>,
    seq: u64,
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
            seq: 0,
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
        self.table = None;
    }

    /// Starts over: the current table, a stable sequence count, index 0.
    fn restart(&mut self) {
        if self.table.is_some() {
            self.restarts += 1;
        }
        loop {
            let seq = self.resv.seq.load(Ordering::SeqCst);
            if seq.is_multiple_of(2) {
                self.seq = seq;
                break;
            }
            std::hint::spin_loop();
        }
        self.table = Some(self.resv.current_table());
        self.idx = 0;
        self.restarted = true;
    }

    /// Whether the set is still the one this walk started on.
    fn unchanged(&self, table: &Arc<Table>) -> bool {
        self.resv.seq.load(Ordering::SeqCst) == self.seq
            && Arc::ptr_eq(table, &self.resv.table.load())
    }
}

impl Iterator for UnlockedIter<'_> {
    type Item = Fence;

    fn next(&mut self) -> Option<Fence> {
        if self.table.is_some() {
            self.restarted = false;
        }
        loop {
            let Some(table) = self.table.clone() else {
                self.restart();
                continue;
            };
            if self.idx >= table.len() {
                if self.unchanged(&table) {
                    return None;
                }
                self.table = None;
                continue;
            }
            let entry = table.get(self.idx);
            if !self.unchanged(&table) {
                self.table = None;
                continue;
            }
            self.idx += 1;
            match entry {
                Some((f, u)) if u <= self.query && !f.is_signaled() => {
                    self.current_usage = u;
                    return Some(f);
                }
                _ => {}
            }
        }
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
