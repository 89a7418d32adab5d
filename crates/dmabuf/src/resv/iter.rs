//! Lock-free iteration over a reservation object's fences (kernel:
//! `dma_resv_iter_first_unlocked` / `dma_resv_iter_next_unlocked`).
//!
//! # Rules
//! * Signalled fences are skipped; each yielded fence is a counted handle.
//! * A walk reads one published state of the object, taken when it yields its first fence:
//!   it sees every fence of that state that is still unsignalled when reached, and none of a
//!   later one. A writer never makes it start over (the kernel's walk restarts when the
//!   list is replaced under it), so a walk ends after as many steps as that state had fences.
//! * A walk started over ([`UnlockedIter::force_restart`]) reads the state current then, and
//!   [`UnlockedIter::is_restarted`] is true for the fence it then yields: callers that
//!   accumulate must throw away what they collected. The first fence of a walk counts as
//!   restarted, as in the kernel.
//! * The walk's state is copied out (one allocation, a counted handle per unsignalled fence)
//!   so that no reader protection is held while the caller runs.

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
    /// The rest of the walk's snapshot; `None` before the walk (re)starts.
    entries: Option<std::vec::IntoIter<(Fence, Usage)>>,
    /// The next fence yielded is the first of a (re)started walk.
    fresh: bool,
    restarted: bool,
    restarts: u64,
    current_usage: Usage,
}

impl<'a> UnlockedIter<'a> {
    pub(crate) fn new(resv: &'a Resv, usage: Usage) -> Self {
        UnlockedIter {
            resv,
            query: usage,
            entries: None,
            fresh: false,
            restarted: false,
            restarts: 0,
            current_usage: usage,
        }
    }

    /// Whether the walk started over before yielding the last fence (kernel:
    /// `dma_resv_iter_is_restarted`): true for the first fence of a walk.
    pub fn is_restarted(&self) -> bool {
        self.restarted
    }

    /// The usage of the last fence yielded (kernel: `dma_resv_iter_usage`).
    pub fn usage(&self) -> Usage {
        self.current_usage
    }

    /// How many times this walk started over ([`force_restart`](Self::force_restart)): a
    /// writer never makes it start over, since the walk reads one snapshot.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Forces the next call to start over on the object's current state, as if the set had
    /// changed (tests exercise callers' restart handling with it, as st-dma-resv corrupts its
    /// cursor).
    pub fn force_restart(&mut self) {
        if self.entries.take().is_some() {
            self.restarts += 1;
        }
    }
}

impl Iterator for UnlockedIter<'_> {
    type Item = Fence;

    fn next(&mut self) -> Option<Fence> {
        let entries = self.entries.get_or_insert_with(|| {
            self.fresh = true;
            self.resv.snapshot(self.query).into_iter()
        });
        // Signalled since the snapshot (or only now found so by polling): skipped.
        let (fence, usage) = entries.find(|(f, _)| !f.is_signaled())?;
        self.restarted = std::mem::take(&mut self.fresh);
        self.current_usage = usage;
        Some(fence)
    }
}

impl std::fmt::Debug for UnlockedIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedIter")
            .field("query", &self.query)
            .field("left", &self.entries.as_ref().map(ExactSizeIterator::len))
            .field("restarted", &self.restarted)
            .field("restarts", &self.restarts)
            .finish()
    }
}
