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
//! * [`Fence::find_seqno`] answers what the kernel's walk answers; on a chain's newest node it
//!   gets there in logarithmic time (below).
//!
//! # Lookups
//! The kernel finds a point by walking from the head, a link at a time: O(n) for a point n
//! pending points down. Here the newest node of a chain (one that no node has been made on)
//! can keep an *index*: its predecessors on its own context, oldest first, with their seqnos,
//! in one array (a private module, `chain_index`).
//!
//! * A lookup loads the index without a lock (`arc-swap`), bisects it for the oldest
//!   predecessor at or after the point without touching a reference count, and then looks at
//!   that one node. If it is the point's own node (its predecessor's seqno is
//!   below the point) and its fence is pending, it is the answer. Otherwise the answer is the
//!   first pending node before it, which a [`walk`] from it finds. This is the kernel's
//!   answer because every node of the context that an index lacks has signalled: an index is
//!   made from the node's pending predecessors, and every node made since is added to it.
//! * A node gets an index when a lookup on it has walked four links: the lookup then walks
//!   the rest of the context once and indexes what is pending. Making a node on an indexed
//!   node moves the index to the new node and adds the old one, into room reserved when the
//!   index was made (twice its first size, plus 16). Once half of that room is used, a
//!   lookup copies the entries whose fences are still pending into a new index. An index
//!   that cannot take the old node (it is full, or the new node starts a context of its own)
//!   is handed on *retired*, answering nothing, so that making a node never drops a
//!   reference (the last one to a node would run that node's drop under whatever lock the
//!   caller holds); the next lookup that walks replaces it.
//! * Only a newest node has an index. A lookup on a node that has a successor walks, as the
//!   kernel's does; so does a lookup on a chain too short to have walked four links.
//! * Cost: a lookup through an index is O(log n) in its entries: at 4,096 pending points about
//!   twice a binary search of a `Vec<(u64, Fence)>` that answers a clone of the point's fence,
//!   three times one of a `Vec<u64>` (`BENCHMARKS.md`, "Chain lookups"). The index load is
//!   two atomic read-modify-writes of that, the price of only the newest node keeping an
//!   index (see "Memory"). Making a node on a chain node takes one atomic read-modify-write
//!   on the old node, and on an indexed one writes one slot. Making an index is one walk of
//!   the pending points, and a copy is made at most once per half-room of new points, so on a
//!   chain grown at its newest node both are O(1) a point made (a node made on an older node
//!   starts without an index, and makes its own if lookups on it walk). Both happen in
//!   lookups, never while a node is made.
//! * Memory: the allocation holding a node's chain state grows by 8 bytes, from 40 to 48
//!   (the index pointer and a word of marks, partly in what was padding): 176 bytes a node
//!   with its fence state (`tests/memory.rs`). An index takes 24 bytes a slot: up to 48 bytes
//!   a pending point when made, and nothing more for the nodes made on it until its room is
//!   used. Its entries are references: points that signal after it was made stay allocated
//!   until a lookup copies it or it is dropped: at most its room (2n + 16 nodes for an index
//!   made from n), and what their links still reach, which was pending when the index was
//!   made. A node gives its index up when a node is made on it, so a chain grown at its
//!   newest node keeps one index, however long its points stay pending.
//!
//! # Differences from the kernel
//! * The `prev` link is a small mutex-protected slot rather than an RCU pointer updated by
//!   cmpxchg; the walk does the same compare-and-replace under it.
//! * Re-arming happens straight from the contained fence's callback (no irq_work).
//! * `dma_fence_chain_find_seqno()` walks from the head and collects every signalled link it
//!   passes. A lookup through an index goes to the point's node at once and collects only the
//!   links its last walk passes (a lookup that walks collects as the kernel's; so do [`walk`],
//!   [`iter`], polls and waits). The answers are the same: `tests/chain_lookup.rs` checks them
//!   against the kernel's loop.
//!
//! Kernel: `drivers/dma-buf/dma-fence-chain.c`; suite: `tests/st_dma_fence_chain.rs`.

use super::Fence;
use super::chain_index::Index;
use super::core::{self, Container, Names, SetError};
use crate::error::{Error, Result};
use crate::sync::{Arc, AtomicOptionArc, AtomicU32, Mutex, Ordering};
use crate::time::MonotonicTime;
use std::num::NonZeroU64;
use std::sync::Arc as StdArc;
use std::sync::OnceLock;

static CHAIN_NAMES: OnceLock<StdArc<Names>> = OnceLock::new();

/// [`ChainState::marks`]: an index has been stored in the node (so an extension looks for
/// one to take).
const INDEXED: u32 = 1 << 0;
/// [`ChainState::marks`]: a successor has been made on the node (so no index is built for it).
const EXTENDED: u32 = 1 << 1;

/// Links a lookup walks after which the newest node gets an index.
const INDEX_AFTER_STEPS: usize = 4;

/// A chain node's own state.
pub(crate) struct ChainState {
    /// The predecessor, or `None` at the start / once everything before was collected.
    prev: Mutex<Option<Fence>>,
    /// The predecessor's seqno when it was on the same context, else 0.
    prev_seqno: u64,
    /// The contained fence.
    fence: Fence,
    /// The lookup index over the node's predecessors on its context (see the module's
    /// "Lookups"); handed to the successor made on the node.
    index: AtomicOptionArc<Index>,
    /// [`INDEXED`] and [`EXTENDED`]; both only ever set, by read-modify-writes, which is what
    /// keeps an index off a node that has a successor.
    marks: AtomicU32,
}

fn state(f: &Fence) -> Option<&ChainState> {
    match f.0.container.as_deref() {
        Some(Container::Chain(c)) => Some(c),
        _ => None,
    }
}

impl Drop for ChainState {
    fn drop(&mut self) {
        // The index first: it holds predecessors too, and the unlinking below takes only
        // those it holds the last reference to.
        drop(self.index.swap(None));
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
        let (context, seqno, prev_seqno, joins) = match &prev {
            Some(p) if p.is_chain() && seqno > p.seqno() => (p.context(), seqno, p.seqno(), true),
            Some(p) if p.is_chain() => (new_context(), seqno.max(p.seqno()), 0, false),
            _ => (new_context(), seqno, 0, false),
        };
        let index = prev.as_ref().and_then(|p| inherit_index(p, joins));
        let marks = if index.is_some() { INDEXED } else { 0 };
        let state = ChainState {
            prev: Mutex::new(prev),
            prev_seqno,
            fence,
            index: AtomicOptionArc::new(index),
            marks: AtomicU32::new(marks),
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
    /// The answer is the kernel's; a node that has an index finds it in logarithmic time
    /// (see the module's "Lookups").
    ///
    /// # Errors
    /// [`Error::SeqnoNotInChain`] (`EINVAL`) if `self` is not a chain node or `seqno` is later
    /// than its own.
    #[doc(alias = "dma_fence_chain_find_seqno")]
    pub fn find_seqno(&self, seqno: u64) -> Result<Option<Fence>> {
        if seqno == 0 {
            return Ok(Some(self.clone()));
        }
        let Some(c) = state(self).filter(|_| self.seqno() >= seqno) else {
            return Err(Error::SeqnoNotInChain { seqno });
        };
        if c.prev_seqno < seqno {
            // The point is this node's own: a walk's first look.
            return Ok(Some(self.clone()));
        }
        if c.marks.load(Ordering::Acquire) & INDEXED != 0
            && let Some(found) = find_indexed(self, c, seqno)
        {
            return Ok(found);
        }
        let ctx = self.context();
        // `walk` by hand rather than `iter`: one reference taken per step instead of two.
        let mut node = self.clone();
        let mut steps = 0;
        let found = loop {
            if node.context() != ctx || !node.is_chain() || node.chain_prev_seqno() < seqno {
                break Some(node);
            }
            match walk(node) {
                Some(prev) => node = prev,
                None => break None,
            }
            steps += 1;
        };
        if steps >= INDEX_AFTER_STEPS {
            build_index(self, c);
        }
        Ok(found)
    }
}

/// The index a successor of `prev` starts with: `prev`'s, taken from it, with `prev`
/// appended if the successor `joins` its context, retired otherwise (see `chain_index`).
/// Marks `prev` as extended either way.
fn inherit_index(prev: &Fence, joins: bool) -> Option<Arc<Index>> {
    let pc = state(prev)?;
    if pc.marks.fetch_or(EXTENDED, Ordering::AcqRel) & INDEXED == 0 {
        return None;
    }
    let taken = pc.index.swap(None)?;
    Some(if joins {
        Index::push(taken, prev)
    } else {
        Index::retire(taken)
    })
}

/// Gives `c`'s node `index`, unless a successor has been made on it (then it keeps none).
///
/// Whichever of this and [`inherit_index`] sets its mark second sees the other's: either
/// the successor took this index, or this call takes it back out.
fn install_index(c: &ChainState, index: Arc<Index>) {
    let old = c.index.swap(Some(index));
    if c.marks.fetch_or(INDEXED, Ordering::AcqRel) & EXTENDED != 0 {
        drop(c.index.swap(None));
    }
    drop(old);
}

/// Indexes `head`'s pending predecessors on its context (a walk of them all), unless a
/// successor has been made on it.
fn build_index(head: &Fence, c: &ChainState) {
    if c.marks.load(Ordering::Acquire) & EXTENDED != 0 {
        return;
    }
    let context = head.context();
    let mut nodes = Vec::new();
    let mut next = walk(head.clone());
    while let Some(node) = next {
        if node.context() != context || !node.is_chain() {
            break;
        }
        next = walk(node.clone());
        nodes.push(node);
    }
    nodes.reverse();
    install_index(c, Arc::new(Index::new(nodes)));
}

/// [`Fence::find_seqno`] of `seqno` (with `head.prev_seqno >= seqno`) through `head`'s
/// index; `None` if it has no current one.
fn find_indexed(head: &Fence, c: &ChainState, seqno: u64) -> Option<Option<Fence>> {
    let guard = c.index.load();
    let index = guard.as_ref().filter(|ix| ix.is_current())?;
    // The oldest indexed node at or after the point. Every node on the context between it
    // and the point that is not indexed has signalled: a walk had collected it when the index
    // was made, or its fence had signalled when the index was copied; every node made since
    // was added.
    let (node, is_answer) = match index.first_at_or_after(seqno) {
        // The point's own node, still pending: the walk would stop here.
        Some(e) if e.chain_prev_seqno() < seqno && !e.contained().is_signaled() => {
            (e.clone(), true)
        }
        // The point's own node, signalled; or a later node, whose predecessors down to and
        // including the point's have signalled: the answer is the first pending node before.
        Some(e) => (e.clone(), false),
        // Every indexed node is before the point, so every node from the head down to the
        // point's has signalled.
        None => (head.clone(), false),
    };
    if index.wants_compaction() && c.marks.load(Ordering::Acquire) & EXTENDED == 0 {
        let compacted = index.compact(|n| !n.contained().is_signaled_flag());
        install_index(c, Arc::new(compacted));
    }
    drop(guard);
    Some(if is_answer { Some(node) } else { walk(node) })
}

fn new_context() -> u64 {
    super::alloc_contexts(NonZeroU64::MIN)
}

/// Builds `head`'s index now, as a lookup that walked far enough would.
#[cfg(test)]
pub(crate) fn index_now(head: &Fence) {
    if let Some(c) = state(head) {
        build_index(head, c);
    }
}

/// The nodes of `node`'s index, oldest first, if it holds a current one.
#[cfg(test)]
pub(crate) fn indexed(node: &Fence) -> Option<Vec<Fence>> {
    let index = state(node)?.index.load_full()?;
    index.is_current().then(|| index.nodes().cloned().collect())
}

/// Whether `node` holds an index at all, current or retired.
#[cfg(test)]
pub(crate) fn holds_index(node: &Fence) -> bool {
    state(node).is_some_and(|c| c.index.load_full().is_some())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::fence::{FenceContext, Signaller};

    /// A chain of `n` pending points `1..=n` on one context: issuers, nodes (oldest first).
    fn chain_of(n: u64) -> (Vec<Signaller>, Vec<Fence>) {
        let ctx = FenceContext::new("test", "chain");
        let mut issuers = Vec::new();
        let mut nodes: Vec<Fence> = Vec::new();
        for seqno in 1..=n {
            let (issuer, fence) = ctx.next_fence();
            issuers.push(issuer);
            nodes.push(Fence::new_chain(nodes.last().cloned(), fence, seqno).unwrap());
        }
        (issuers, nodes)
    }

    fn same(a: &[Fence], b: &[Fence]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.ptr_eq(y))
    }

    #[test]
    fn a_lookup_that_walks_a_few_links_indexes_the_newest_node() {
        let (_issuers, nodes) = chain_of(20);
        let head = nodes.last().unwrap();
        // The point one link away: walked, no index.
        assert!(head.find_seqno(19).unwrap().unwrap().ptr_eq(&nodes[18]));
        assert!(indexed(head).is_none());
        // Far enough: indexed, every predecessor in order.
        assert!(head.find_seqno(2).unwrap().unwrap().ptr_eq(&nodes[1]));
        assert!(same(&indexed(head).unwrap(), &nodes[..19]));
        for (i, node) in nodes.iter().enumerate() {
            assert!(head.find_seqno(i as u64 + 1).unwrap().unwrap().ptr_eq(node));
        }
        // An older node is not indexed by lookups on it.
        assert!(nodes[15].find_seqno(1).unwrap().unwrap().ptr_eq(&nodes[0]));
        assert!(!holds_index(&nodes[15]));
    }

    #[test]
    fn the_index_moves_to_the_node_made_on_it_with_that_node_appended() {
        let (_issuers, mut nodes) = chain_of(8);
        let old_head = nodes.last().unwrap().clone();
        index_now(&old_head);
        let ctx = FenceContext::new("test", "more");
        let mut keep = Vec::new();
        for seqno in 9..=12 {
            let (issuer, fence) = ctx.next_fence();
            keep.push(issuer);
            nodes.push(Fence::new_chain(nodes.last().cloned(), fence, seqno).unwrap());
            assert!(
                !holds_index(&nodes[nodes.len() - 2]),
                "an extended node keeps its index"
            );
        }
        let head = nodes.last().unwrap();
        assert!(same(&indexed(head).unwrap(), &nodes[..11]));
        assert!(!holds_index(&old_head));
        // A second node made on an extended one (a fork) starts without one.
        let (_i, fence) = ctx.next_fence();
        let fork = Fence::new_chain(Some(nodes[9].clone()), fence, 20).unwrap();
        assert!(!holds_index(&fork));
        assert!(fork.find_seqno(1).unwrap().unwrap().ptr_eq(&nodes[0]));
    }

    #[test]
    fn a_node_on_another_context_carries_a_retired_index() {
        let (_issuers, nodes) = chain_of(8);
        let head = nodes.last().unwrap().clone();
        index_now(&head);
        // Out of order: a fresh context, whose lookups the old index cannot answer.
        let ctx = FenceContext::new("test", "ooo");
        let (_i, fence) = ctx.next_fence();
        let ooo = Fence::new_chain(Some(head.clone()), fence, 3).unwrap();
        assert_ne!(ooo.context(), head.context());
        assert!(holds_index(&ooo) && indexed(&ooo).is_none());
        assert!(!holds_index(&head));
        assert!(ooo.find_seqno(3).unwrap().unwrap().ptr_eq(&ooo));
    }

    #[test]
    fn a_full_index_is_retired_and_a_lookup_that_walks_builds_a_new_one() {
        let (_issuers, nodes) = chain_of(8);
        let mut tip = nodes.last().unwrap().clone();
        index_now(&tip);
        // Made with 7 entries: room for 2 * 7 + HEADROOM, so 23 more points fit.
        let room = 2 * 7 + super::super::chain_index::HEADROOM;
        let ctx = FenceContext::new("test", "full");
        let mut issuers = Vec::new();
        for seqno in 9..=(8 + room as u64 - 7) {
            let (issuer, fence) = ctx.next_fence();
            issuers.push(issuer);
            tip = Fence::new_chain(Some(tip), fence, seqno).unwrap();
        }
        assert_eq!(indexed(&tip).unwrap().len(), room);
        let (issuer, fence) = ctx.next_fence();
        issuers.push(issuer);
        tip = Fence::new_chain(Some(tip), fence, 8 + room as u64 - 6).unwrap();
        assert!(
            holds_index(&tip) && indexed(&tip).is_none(),
            "a full index is retired"
        );
        assert!(tip.find_seqno(1).unwrap().unwrap().ptr_eq(&nodes[0]));
        assert_eq!(indexed(&tip).unwrap().len(), room + 1);
    }

    #[test]
    fn a_lookup_compacts_an_index_half_full_of_signalled_points() {
        let (issuers, nodes) = chain_of(8);
        let mut tip = nodes.last().unwrap().clone();
        tip.find_seqno(1).unwrap();
        assert_eq!(indexed(&tip).unwrap().len(), 7);
        for issuer in issuers {
            issuer.signal();
        }
        let ctx = FenceContext::new("test", "compact");
        let mut keep = Vec::new();
        // Room is 7 + HEADROOM beyond the 7 entries: half of that is 11 more points.
        for seqno in 9..=19 {
            let (issuer, fence) = ctx.next_fence();
            keep.push(issuer);
            tip = Fence::new_chain(Some(tip), fence, seqno).unwrap();
        }
        assert_eq!(indexed(&tip).unwrap().len(), 18);
        // Points 1..=8 signalled: the first pending node at or after point 9's is its own.
        let nine = tip.find_seqno(9).unwrap().unwrap();
        assert_eq!(nine.seqno(), 9);
        let left = indexed(&tip).unwrap();
        assert_eq!(left.len(), 10, "the signalled points' entries are dropped");
        assert!(left.iter().all(|n| n.seqno() >= 9));
        assert!(tip.find_seqno(5).unwrap().is_none());
    }
}
