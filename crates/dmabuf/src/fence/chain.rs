//! Fence chains: one timeline point per node (kernel: `dma_fence_chain`).
//!
//! A node holds one contained fence and a link to its predecessor. A node signals once its own
//! fence and every predecessor's have. Walking a chain skips — and unlinks, "garbage
//! collecting" — predecessors whose fences have signalled, so a long-lived timeline holds only
//! its pending points.
//!
//! # Rules
//! * Context and seqno as the kernel assigns them: a node extending a chain at a later seqno
//!   joins its predecessor's context (and remembers `prev_seqno`); otherwise it starts a fresh
//!   context, never going backwards in seqno. Seqnos compare as 64-bit numbers.
//! * A node never contains another chain node ([`Error::ContainerMember`]).
//! * Only one callback is armed per waited-on head at a time; when it fires the walk re-arms on
//!   the next pending fence.
//! * Dropping a chain of any length uses constant stack: the drop unlinks predecessors it holds
//!   the last reference to, one at a time.
//!
//! # Differences from the kernel
//! * The `prev` link is a small mutex-protected slot rather than an RCU pointer updated by
//!   cmpxchg; the walk does the same compare-and-replace under it.
//! * Re-arming happens straight from the contained fence's callback (no irq_work).
//!
//! Kernel: `drivers/dma-buf/dma-fence-chain.c`; suite: `tests/st_dma_fence_chain.rs`.

use super::Fence;
use super::core::{self, Container, Names, SetError};
use crate::error::{Error, Result};
use crate::sync::{Arc, Mutex};
use crate::time::MonotonicTime;
use std::num::NonZeroU64;
use std::sync::Arc as StdArc;
use std::sync::OnceLock;

static CHAIN_NAMES: OnceLock<StdArc<Names>> = OnceLock::new();

/// A chain node's own state.
pub(crate) struct ChainState {
    /// The predecessor, or `None` at the start / once everything before was collected.
    prev: Mutex<Option<Fence>>,
    /// The predecessor's seqno when it was on the same context, else 0.
    prev_seqno: u64,
    /// The contained fence.
    fence: Fence,
}

fn state(f: &Fence) -> Option<&ChainState> {
    match f.0.container.as_deref() {
        Some(Container::Chain(c)) => Some(c),
        _ => None,
    }
}

impl Drop for ChainState {
    fn drop(&mut self) {
        // Unlink predecessors we hold the last reference to, iteratively: a recursive drop of
        // a long chain would overflow the stack (see `docs::kernel_bugs`).
        let mut next = self.prev.lock().take();
        while let Some(mut prev) = next {
            next = match Arc::get_mut(&mut prev.0) {
                Some(inner) => match inner.container.as_deref_mut() {
                    Some(Container::Chain(pc)) => pc.prev.lock().take(),
                    _ => None,
                },
                None => None,
            };
            // `prev` now has no predecessor of its own: dropping it is shallow.
            drop(prev);
        }
    }
}

/// Moves from `fence` to the next predecessor whose contained fence is still pending,
/// unlinking signalled ones on the way (kernel: `dma_fence_chain_walk()`).
///
/// `None` at the end of the chain, or if `fence` is not a chain node.
#[doc(alias = "dma_fence_chain_walk")]
pub fn walk(fence: Fence) -> Option<Fence> {
    let c = state(&fence)?;
    loop {
        let prev = c.prev.lock().clone()?;
        let replacement = match state(&prev) {
            Some(pc) => {
                if !pc.fence.is_signaled() {
                    return Some(prev);
                }
                pc.prev.lock().clone()
            }
            None => {
                if !prev.is_signaled() {
                    return Some(prev);
                }
                None
            }
        };
        let mut slot = c.prev.lock();
        let old = if slot.as_ref().is_some_and(|p| p.ptr_eq(&prev)) {
            std::mem::replace(&mut *slot, replacement)
        } else {
            // Somebody else collected it first; look again.
            None
        };
        drop(slot);
        drop(old);
    }
}

/// Iterates a chain from `head`: the head itself, then [`walk`] after walk (kernel:
/// `dma_fence_chain_for_each()`). A non-chain `head` yields just itself.
pub fn iter(head: &Fence) -> ChainIter {
    ChainIter {
        cur: Some(head.clone()),
        started: false,
    }
}

/// Iterator returned by [`iter`].
#[derive(Debug)]
pub struct ChainIter {
    cur: Option<Fence>,
    started: bool,
}

impl Iterator for ChainIter {
    type Item = Fence;

    fn next(&mut self) -> Option<Fence> {
        if self.started {
            let cur = self.cur.take()?;
            self.cur = walk(cur);
        }
        self.started = true;
        self.cur.clone()
    }
}

/// Arms one callback on the first pending contained fence from `head` backwards; `false` if
/// every one has signalled.
pub(crate) fn enable(head: &Fence) -> bool {
    for node in iter(head) {
        let h = head.clone();
        let armed = node.contained().add_callback(move |_| {
            if !enable(&h) {
                core::signal(&h, SetError::Keep, None);
            }
        });
        if armed.is_ok() {
            return true;
        }
    }
    false
}

/// Polls a chain: complete iff every contained fence still linked has signalled. O(length).
pub(crate) fn poll(head: &Fence) -> Option<SetError> {
    iter(head)
        .all(|node| node.contained().is_signaled())
        .then_some(SetError::Keep)
}

/// Forwards a deadline to every pending contained fence.
pub(crate) fn set_deadline(head: &Fence, deadline: MonotonicTime) {
    for node in iter(head) {
        node.contained().set_deadline(deadline);
    }
}

impl Fence {
    /// A new timeline point after `prev`, containing `fence`, at `seqno` (kernel:
    /// `dma_fence_chain_init()`).
    ///
    /// If `prev` is a chain node and `seqno` is later than its seqno, the node joins `prev`'s
    /// context; otherwise it gets a fresh context and seqno `max(prev.seqno, seqno)`.
    ///
    /// # Errors
    /// [`Error::ContainerMember`] (`EINVAL`) if `fence` is itself a chain node.
    ///
    /// ```
    /// use dmabuf::fence::{Fence, FenceContext};
    /// let ctx = FenceContext::new("doc", "chain");
    /// let (a, fa) = ctx.next_fence();
    /// let (b, fb) = ctx.next_fence();
    /// let p1 = Fence::new_chain(None, fa, 1).unwrap();
    /// let p2 = Fence::new_chain(Some(p1.clone()), fb, 2).unwrap();
    /// assert_eq!(p2.context(), p1.context());
    /// b.signal();
    /// assert!(!p2.is_signaled()); // point 1 still pending
    /// a.signal();
    /// assert!(p2.is_signaled());
    /// ```
    #[doc(alias = "dma_fence_chain_init")]
    pub fn new_chain(prev: Option<Fence>, fence: Fence, seqno: u64) -> Result<Fence> {
        if fence.is_chain() {
            return Err(Error::ContainerMember);
        }
        let (context, seqno, prev_seqno) = match &prev {
            Some(p) if p.is_chain() && seqno > p.seqno() => (p.context(), seqno, p.seqno()),
            Some(p) if p.is_chain() => (new_context(), seqno.max(p.seqno()), 0),
            _ => (new_context(), seqno, 0),
        };
        let state = ChainState {
            prev: Mutex::new(prev),
            prev_seqno,
            fence,
        };
        let names = core::static_names(&CHAIN_NAMES, "dma_fence_chain", "unbound");
        Ok(core::new_inner(
            context,
            names,
            seqno,
            true,
            None,
            Some(Box::new(Container::Chain(state))),
        ))
    }

    /// The fence a chain node contains, or the fence itself if it is not a chain node (kernel:
    /// `dma_fence_chain_contained()`).
    #[doc(alias = "dma_fence_chain_contained")]
    pub fn contained(&self) -> &Fence {
        state(self).map_or(self, |c| &c.fence)
    }

    /// The seqno of the predecessor on the same context (0 if none or not a chain node).
    pub fn chain_prev_seqno(&self) -> u64 {
        state(self).map_or(0, |c| c.prev_seqno)
    }

    /// The current predecessor link of a chain node (kernel: `dma_fence_chain_get_prev()`).
    pub fn chain_prev(&self) -> Option<Fence> {
        state(self).and_then(|c| c.prev.lock().clone())
    }

    /// Finds the chain node whose completion implies timeline point `seqno` (kernel:
    /// `dma_fence_chain_find_seqno()`).
    ///
    /// Seqno 0 is the head itself. `Ok(None)` means everything up to `seqno` has already
    /// signalled and been collected.
    ///
    /// # Errors
    /// [`Error::SeqnoNotInChain`] (`EINVAL`) if `self` is not a chain node or `seqno` is later
    /// than its own.
    #[doc(alias = "dma_fence_chain_find_seqno")]
    pub fn find_seqno(&self, seqno: u64) -> Result<Option<Fence>> {
        if seqno == 0 {
            return Ok(Some(self.clone()));
        }
        if !self.is_chain() || self.seqno() < seqno {
            return Err(Error::SeqnoNotInChain { seqno });
        }
        let ctx = self.context();
        // `walk` by hand rather than `iter`: one reference taken per step instead of two.
        let mut node = self.clone();
        loop {
            if node.context() != ctx || !node.is_chain() || node.chain_prev_seqno() < seqno {
                return Ok(Some(node));
            }
            match walk(node) {
                Some(prev) => node = prev,
                None => return Ok(None),
            }
        }
    }
}

fn new_context() -> u64 {
    super::alloc_contexts(NonZeroU64::MIN)
}
