//! Looking through containers, and merging fences (kernel: `dma_fence_unwrap_for_each()`,
//! `dma_fence_unwrap_merge()`).
//!
//! [`leaves`] visits the leaf fences of a fence: the fence itself, an array's members, or a
//! chain's contained fences (and their members when those are arrays). [`merge`] builds one
//! fence that signals when all its inputs have, as flat and small as possible.
//!
//! # Rules
//! * Merge output is flat (never a container of containers), deduplicated by context keeping
//!   the latest seqno, without already-signalled leaves, ordered by context.
//! * No pending leaf: an already-signalled fence (the stub, or a signalled input) — no array.
//!   One pending leaf: that fence itself. Neither case allocates.
//!
//! # Differences from the kernel
//! * When every leaf had signalled the kernel allocates a private stub stamped with the latest
//!   leaf timestamp; here the signalled leaf with that timestamp is returned as is (same
//!   status, same timestamp, no allocation), unless it carries an error, which the merge must
//!   not invent: then a private stub is made.
//!
//! Kernel: `drivers/dma-buf/dma-fence-unwrap.c`; suite: `tests/st_dma_fence_unwrap.rs`.

use super::{Fence, alloc_contexts, chain, seqno_is_later};
use std::cmp::Ordering;
use std::num::NonZeroU64;

/// Iterates the leaves of `fence` (kernel: `dma_fence_unwrap_for_each()`).
///
/// Walking a chain collects its signalled nodes, so those may be skipped.
///
/// ```
/// use dmabuf::fence::{Fence, FenceContext, unwrap::leaves, alloc_contexts};
/// use std::num::NonZeroU64;
/// let ctx = FenceContext::new("doc", "unwrap");
/// let (_a, fa) = ctx.next_fence();
/// let (_b, fb) = ctx.next_fence();
/// let array = Fence::new_array(vec![fa.clone(), fb.clone()], alloc_contexts(NonZeroU64::MIN), 1).unwrap();
/// let chain = Fence::new_chain(None, array, 1).unwrap();
/// let found: Vec<_> = leaves(&chain).collect();
/// assert!(found[0].ptr_eq(&fa) && found[1].ptr_eq(&fb));
/// ```
#[doc(alias = "dma_fence_unwrap_for_each")]
pub fn leaves(fence: &Fence) -> Leaves {
    Leaves {
        nodes: chain::iter(fence),
        cur: None,
        idx: 0,
    }
}

/// Iterator returned by [`leaves`].
#[derive(Debug)]
pub struct Leaves {
    nodes: chain::ChainIter,
    /// The current node's contained fence.
    cur: Option<Fence>,
    /// Next member index when `cur` is an array.
    idx: usize,
}

impl Iterator for Leaves {
    type Item = Fence;

    fn next(&mut self) -> Option<Fence> {
        loop {
            if let Some(c) = &self.cur {
                match c.array_members() {
                    Some(members) => {
                        if let Some(m) = members.get(self.idx) {
                            self.idx += 1;
                            return Some(m.clone());
                        }
                        self.cur = None;
                    }
                    None => return self.cur.take(),
                }
            }
            let node = self.nodes.next()?;
            self.cur = Some(node.contained().clone());
            self.idx = 0;
        }
    }
}

/// Merges `fences` into one fence that signals when all of them have (kernel:
/// `dma_fence_unwrap_merge()`).
///
/// ```
/// use dmabuf::fence::{FenceContext, unwrap::{merge, leaves}};
/// let a = FenceContext::new("doc", "a");
/// let b = FenceContext::new("doc", "b");
/// let (_s1, a1) = a.next_fence();
/// let (_s2, a2) = a.next_fence();
/// let (_s3, b1) = b.next_fence();
/// let m = merge(&[a1, b1.clone(), a2.clone()]);
/// let l: Vec<_> = leaves(&m).collect();
/// assert_eq!(l.len(), 2); // a1 dropped: a2 is later on the same context
/// assert!(l[0].ptr_eq(&a2) && l[1].ptr_eq(&b1));
/// assert!(merge(&[b1.clone()]).ptr_eq(&b1)); // one pending: itself
/// ```
#[doc(alias = "dma_fence_unwrap_merge")]
pub fn merge(fences: &[Fence]) -> Fence {
    // Pass 1, allocation-free: count pending leaves, remember the first, and the latest
    // signalled leaf. Leaves are visited by reference: a handle is taken only when kept.
    let mut pending = 0usize;
    let mut single: Option<Fence> = None;
    let mut latest: Option<Fence> = None;
    for f in fences {
        for_each_leaf(f, &mut |leaf| {
            if leaf.is_signaled() {
                keep_latest(&mut latest, leaf);
            } else {
                pending += 1;
                if single.is_none() {
                    single = Some(leaf.clone());
                }
            }
        });
    }
    match (pending, single) {
        (0, _) => return settled(latest),
        (1, Some(s)) => return s,
        _ => {}
    }
    // Pass 2: collect, sort by context (latest seqno first within one), keep one per context.
    let mut all: Vec<Fence> = Vec::with_capacity(pending);
    for f in fences {
        for_each_leaf(f, &mut |leaf| {
            if !leaf.is_signaled() {
                all.push(leaf.clone());
            } else {
                // Signalled since pass 1: its timestamp still counts.
                keep_latest(&mut latest, leaf);
            }
        });
    }
    all.sort_unstable_by(order);
    all.dedup_by(|later_in_vec, kept| later_in_vec.context() == kept.context());
    match all.len() {
        0 => settled(latest),
        1 => all.pop().unwrap_or_else(Fence::stub),
        _ => {
            let ctx = alloc_contexts(NonZeroU64::MIN);
            // Members are leaves by construction.
            Fence::array_of_leaves(all, ctx, 1)
        }
    }
}

/// Calls `visit` with every leaf of `fence`, as [`leaves`] yields them, but by reference: plain
/// fences and array members cost no reference count; only chain nodes are walked by handle.
fn for_each_leaf(fence: &Fence, visit: &mut impl FnMut(&Fence)) {
    if fence.is_chain() {
        for node in chain::iter(fence) {
            visit_contained(node.contained(), visit);
        }
    } else {
        visit_contained(fence, visit);
    }
}

fn visit_contained(fence: &Fence, visit: &mut impl FnMut(&Fence)) {
    match fence.array_members() {
        Some(members) => members.iter().for_each(visit),
        None => visit(fence),
    }
}

/// Keeps the signalled leaf with the latest timestamp.
fn keep_latest(latest: &mut Option<Fence>, leaf: &Fence) {
    if latest
        .as_ref()
        .is_none_or(|l| leaf.timestamp() > l.timestamp())
    {
        *latest = Some(leaf.clone());
    }
}

/// The merge result when nothing is pending.
fn settled(latest: Option<Fence>) -> Fence {
    match latest {
        None => Fence::stub(),
        Some(l) if l.error().is_none() => l,
        Some(l) => Fence::signaled_stub(l.timestamp().unwrap_or_default()),
    }
}

/// Context ascending; within a context the later seqno first (kernel: `fence_cmp`).
fn order(a: &Fence, b: &Fence) -> Ordering {
    a.context().cmp(&b.context()).then_with(|| {
        if seqno_is_later(a.is_seqno64(), a.seqno(), b.seqno()) {
            Ordering::Less
        } else if a.seqno() == b.seqno() {
            Ordering::Equal
        } else {
            Ordering::Greater
        }
    })
}
