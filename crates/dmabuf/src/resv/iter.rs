//! Lock-free iteration over a reservation object's fences (kernel:
//! `dma_resv_iter_first_unlocked` / `dma_resv_iter_next_unlocked`).
//!
//! # Rules (as the kernel)
//! * Signalled fences are skipped; each yielded fence is a counted handle.
//! * When the set changed under the walk (a new table), the walk restarts from the beginning
//!   and [`UnlockedIter::is_restarted`] is true for the fence it then yields: callers that
//!   accumulate must throw away what they collected ([`Resv::snapshot`] does).
//! * The first fence of a walk counts as restarted.

use super::table::Walk;
use super::{Resv, Usage};
use crate::fence::Fence;

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
    walk: Walk,
    current_usage: Usage,
}

impl<'a> UnlockedIter<'a> {
    pub(crate) fn new(resv: &'a Resv, usage: Usage) -> Self {
        UnlockedIter {
            resv,
            query: usage,
            walk: Walk::new(),
            current_usage: usage,
        }
    }

    /// Whether the walk started over before yielding the last fence (kernel:
    /// `dma_resv_iter_is_restarted`).
    pub fn is_restarted(&self) -> bool {
        self.walk.is_restarted()
    }

    /// The usage of the last fence yielded (kernel: `dma_resv_iter_usage`).
    pub fn usage(&self) -> Usage {
        self.current_usage
    }

    /// How many times this walk started over because a writer changed the set.
    pub fn restarts(&self) -> u64 {
        self.walk.restarts()
    }

    /// Forces the next call to start over, as if the set had changed (tests exercise
    /// callers' restart handling with it, as st-dma-resv corrupts its cursor).
    pub fn force_restart(&mut self) {
        self.walk.force_restart();
    }
}

impl Iterator for UnlockedIter<'_> {
    type Item = Fence;

    fn next(&mut self) -> Option<Fence> {
        let (fence, usage) = self.walk.next(&self.resv.fences, self.query)?;
        self.current_usage = usage;
        Some(fence)
    }
}

impl std::fmt::Debug for UnlockedIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedIter")
            .field("query", &self.query)
            .field("idx", &self.walk.index())
            .field("restarted", &self.walk.is_restarted())
            .field("restarts", &self.walk.restarts())
            .finish()
    }
}
