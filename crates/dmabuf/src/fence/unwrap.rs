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
//! * Merge never panics, whatever the seqnos: on a 32-bit wrapping timeline, where two points
//!   half the circle apart are not ordered, it sorts by a total order of its own and then
//!   applies the timeline's.
//! * Every leaf signalled: a new private stub fence (driver and timeline "stub", context 0,
//!   signalled without error) stamped with the latest leaf's timestamp, as the kernel's
//!   `dma_fence_allocate_private_stub()`; an error a signalled leaf carried is not kept.
//!   One pending leaf: that fence itself, without allocating.
//!
//! # Differences from the kernel
//! * A merge of no fences at all returns the shared [`Fence::stub`] without allocating; the
//!   kernel allocates a private stub stamped 0. (A sync file merge always has inputs.)
//! * The leaves of one 32-bit timeline that span half the circle or more have no latest
//!   point; the kernel keeps whichever its sort puts first, here the merge keeps the two or
//!   three points that between them are the same as or later than every such leaf, so the
//!   result still waits for all its inputs. Inputs within half the circle keep one point per
//!   context, as in the kernel.
//!
//! Kernel: `drivers/dma-buf/dma-fence-unwrap.c`; suite: `tests/st_dma_fence_unwrap.rs`.

use super::{Fence, alloc_contexts, chain};
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
    dedup(&mut all);
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

/// The merge result when nothing is pending: a private stub with the latest leaf's timestamp
/// (kernel: `dma_fence_allocate_private_stub()`), or the shared stub for no leaves at all.
fn settled(latest: Option<Fence>) -> Fence {
    match latest {
        None => Fence::stub(),
        Some(l) => Fence::signaled_stub(l.timestamp().unwrap_or_default()),
    }
}

/// Sorts `fences` by context and keeps, per context, the latest point (kernel:
/// `dma_fence_dedup_array()`).
///
/// The sort key is a total order of its own (context, seqno mode, seqno with the later first
/// where seqnos are ordered), so the sort cannot meet an inconsistent comparison; the kernel's
/// `fence_cmp()` compares with `dma_fence_is_later()`, which is no total order on a 32-bit
/// timeline. Which fences stand for the others is then chosen per context with the timeline's
/// own order (see [`cover`]).
fn dedup(fences: &mut Vec<Fence>) {
    fences.sort_unstable_by(order);
    let wrapping_repeat = fences
        .windows(2)
        .any(|w| w[0].context() == w[1].context() && !(w[0].is_seqno64() && w[1].is_seqno64()));
    if !wrapping_repeat {
        // Every repeated context is a 64-bit timeline: its first fence is its latest.
        fences.dedup_by(|later_in_vec, kept| later_in_vec.context() == kept.context());
        return;
    }
    let mut keep = Vec::with_capacity(fences.len());
    for group in
        fences.chunk_by(|a, b| a.context() == b.context() && a.is_seqno64() == b.is_seqno64())
    {
        cover(group, &mut keep);
    }
    let mut flags = keep.into_iter();
    fences.retain(|_| flags.next().unwrap_or(true));
}

/// Pushes, for each fence of `group` (one context, sorted by [`order`]), whether it is kept:
/// every fence dropped is the same point as, or earlier than, one kept.
///
/// On a 64-bit timeline that is the first fence alone. On a 32-bit wrapping one, a point is
/// later than those up to 2^31 − 1 behind it. The group is walked backwards round the circle
/// from its latest point (the one just before the widest gap between neighbours): a fence is
/// dropped while the last kept one is later or the same point, else kept. Inputs within half
/// the circle (every real timeline) keep one fence, as the kernel does; wider ones keep the
/// two or three needed so that nothing an input waited for is lost.
fn cover(group: &[Fence], keep: &mut Vec<bool>) {
    let start = keep.len();
    keep.resize(start + group.len(), false);
    let keep = &mut keep[start..];
    if group[0].is_seqno64() || group.len() == 1 {
        keep[0] = true;
        return;
    }
    // Seqnos descend through the group, so the gap below entry i is key(i) - key(i + 1),
    // and the one from the last round to the first is what is left of the circle.
    let key = |i: usize| group[i].seqno() as u32;
    let n = group.len();
    let gap = |i: usize| key(i).wrapping_sub(key((i + 1) % n));
    let widest = (0..n).max_by_key(|&i| gap(i)).unwrap_or(n - 1);
    // The latest point is just below the widest gap (the first entry if that gap wraps).
    let latest = (widest + 1) % n;
    let mut anchor = key(latest);
    keep[latest] = true;
    for step in 1..n {
        let i = (latest + step) % n;
        if anchor.wrapping_sub(key(i)) > i32::MAX as u32 {
            // Half the circle or more behind the last kept point: not covered by it.
            anchor = key(i);
            keep[i] = true;
        }
    }
}

/// Context ascending, then seqno mode, then within a context the later seqno first: on a
/// 64-bit timeline the larger, on a 32-bit one the larger low 32 bits (a total order, unlike
/// the timeline's own; [`cover`] applies that one).
fn order(a: &Fence, b: &Fence) -> Ordering {
    // Contexts differ in all but a few comparisons: decide on them before reading anything
    // else of either fence.
    a.context().cmp(&b.context()).then_with(|| {
        let rest = |f: &Fence| {
            let seqno = if f.is_seqno64() {
                f.seqno()
            } else {
                u64::from(f.seqno() as u32)
            };
            (f.is_seqno64(), std::cmp::Reverse(seqno))
        };
        rest(a).cmp(&rest(b))
    })
}
