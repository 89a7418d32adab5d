//! The reclaim pseudo-lock (kernel: `fs_reclaim_acquire()`, `might_alloc()`,
//! `memalloc_nofs_save()`).
//!
//! An allocation that may reclaim memory may end up evicting buffers, and eviction waits on
//! their fences. The validator models this as a pseudo-lock: [`might_reclaim`] (call it where
//! an allocator may evict) acquires and releases it; an eviction path runs inside a
//! [`reclaim_scope`], holding it. Priming orders reclaim before fence waits, so a reclaiming
//! allocation inside a signalling section closes a cycle.
//!
//! # Rules
//! * No reclaiming allocation inside a signalling section ([`Kind::ReclaimInSignalling`]).
//! * No reclaiming allocation inside a reclaim scope (recursive reclaim); a
//!   [`no_reclaim_scope`] (kernel: `memalloc_nofs_save`) turns allocations inside it into
//!   non-reclaiming ones.
//!
//! [`Kind::ReclaimInSignalling`]: crate::Kind::ReclaimInSignalling

use crate::class::Mode;
use crate::held::{self, Acquire};
use std::cell::Cell;
use std::marker::PhantomData;

pub use crate::well_known::RECLAIM;

std::thread_local! {
    /// Depth of no-reclaim scopes on this thread.
    static NO_RECLAIM: Cell<u32> = const { Cell::new(0) };
}

/// Annotates an allocation that may reclaim (kernel: `might_alloc(GFP_KERNEL)`).
#[inline]
pub fn might_reclaim() {
    if !held::is_enabled() || NO_RECLAIM.with(Cell::get) > 0 {
        return;
    }
    held::acquire(&RECLAIM, Mode::Exclusive, Acquire::default());
    held::release(&RECLAIM, 0);
}

/// A reclaim (eviction) path; ends when dropped. Not `Send`.
#[must_use = "the scope ends when the guard is dropped"]
#[derive(Debug)]
pub struct ReclaimScope {
    recorded: bool,
    _not_send: PhantomData<*const ()>,
}

/// Enters a reclaim path (kernel: `fs_reclaim_acquire()`), e.g. an evicting allocator's slow
/// path or a shrinker.
#[inline]
pub fn reclaim_scope() -> ReclaimScope {
    let recorded = held::is_enabled();
    if recorded {
        held::acquire(&RECLAIM, Mode::Exclusive, Acquire::default());
    }
    ReclaimScope {
        recorded,
        _not_send: PhantomData,
    }
}

impl Drop for ReclaimScope {
    #[inline]
    fn drop(&mut self) {
        if self.recorded {
            held::release(&RECLAIM, 0);
        }
    }
}

/// A scope in which allocations do not reclaim; ends when dropped. Not `Send`.
#[must_use = "the scope ends when the guard is dropped"]
#[derive(Debug)]
pub struct NoReclaimScope {
    _not_send: PhantomData<*const ()>,
}

/// Makes allocations on this thread non-reclaiming until the guard drops (kernel:
/// `memalloc_nofs_save()`); nests.
pub fn no_reclaim_scope() -> NoReclaimScope {
    NO_RECLAIM.with(|c| c.set(c.get() + 1));
    NoReclaimScope {
        _not_send: PhantomData,
    }
}

impl Drop for NoReclaimScope {
    fn drop(&mut self) {
        NO_RECLAIM.with(|c| c.set(c.get().saturating_sub(1)));
    }
}
