//! The lookup index of a chain's newest node: the node's predecessors on its own context,
//! oldest first, each with its seqno, searched by bisection (no kernel counterpart; see
//! [`chain`](super::chain) for when a node has one and what a lookup does with it).
//!
//! An index is a snapshot: a prefix of a *lineage*, a fixed run of write-once slots shared by
//! the successive newest nodes of one chain. Extending the newest node writes the next free
//! slot (a slot beyond every existing snapshot, so readers of those never see it change) and
//! hands the longer snapshot to the new node. Readers search their snapshot without locks and
//! without touching a reference count.
//!
//! # Rules
//! * Entries are in chain order with strictly increasing seqnos: the chain's own rule for a
//!   node joining its predecessor's context.
//! * A lineage made from `n` entries has room for `2n + HEADROOM`. A snapshot that cannot be
//!   extended (the lineage is full, or the new node starts a context of its own) is
//!   *retired*: it answers no lookup any more, and is handed on to the new node all the same,
//!   so that making a node never drops the references an index holds (dropping the last one
//!   to a node runs that node's drop, which a caller holding a lock may not want). A lookup
//!   replaces a retired index, outside any lock of the caller's.
//! * [`Index::compact`] copies the entries a filter keeps into a new lineage: the old one
//!   stays valid for whoever still reads it.

use super::Fence;
use crate::sync::Arc;
use std::sync::OnceLock;

/// Room a lineage has beyond twice the entries it was made with.
pub(crate) const HEADROOM: usize = 16;

/// One predecessor: its seqno (kept beside it so a search reads one array) and the node.
struct Entry {
    seqno: u64,
    node: Fence,
}

/// The slots of one lineage; slot `i` is written once, before any snapshot covering it is
/// made.
struct Slots(Box<[OnceLock<Entry>]>);

/// A snapshot of a lineage: its first `len` slots.
pub(crate) struct Index {
    slots: Arc<Slots>,
    /// Slots this snapshot covers, all written.
    len: usize,
    /// Entries the lineage was made with.
    base: usize,
    /// Whether the snapshot still describes its holder's predecessors (see `retire`).
    current: bool,
}

impl Index {
    /// A new lineage holding `nodes` (oldest first), with room for `2n + HEADROOM` in all.
    pub(crate) fn new(nodes: Vec<Fence>) -> Index {
        let base = nodes.len();
        let capacity = base.saturating_mul(2).saturating_add(HEADROOM);
        let mut slots: Vec<OnceLock<Entry>> = Vec::with_capacity(capacity);
        for node in nodes {
            slots.push(OnceLock::from(Entry {
                seqno: node.seqno(),
                node,
            }));
        }
        slots.resize_with(capacity, OnceLock::new);
        Index {
            slots: Arc::new(Slots(slots.into_boxed_slice())),
            len: base,
            base,
            current: true,
        }
    }

    /// Whether the snapshot answers lookups (it has not been retired).
    pub(crate) fn is_current(&self) -> bool {
        self.current
    }

    /// The snapshot for a successor of the node holding `this`: with `node` (that holder)
    /// appended; retired if the lineage is full, its next slot is taken or `this` is retired.
    ///
    /// Reuses `this` when nobody else holds it; never drops a reference to a node.
    pub(crate) fn push(this: Arc<Index>, node: &Fence) -> Arc<Index> {
        let written = this.current
            && this.slots.0.get(this.len).is_some_and(|slot| {
                slot.set(Entry {
                    seqno: node.seqno(),
                    node: node.clone(),
                })
                .is_ok()
            });
        if written {
            Index::update(this, |ix| ix.len += 1)
        } else {
            Index::retire(this)
        }
    }

    /// `this`, retired: it answers no lookup any more.
    pub(crate) fn retire(this: Arc<Index>) -> Arc<Index> {
        if this.current {
            Index::update(this, |ix| ix.current = false)
        } else {
            this
        }
    }

    /// `this` changed by `change`: in place when nobody else holds it, else a new snapshot
    /// of the same lineage (dropping `this` only drops a count somebody else also holds).
    fn update(mut this: Arc<Index>, change: impl FnOnce(&mut Index)) -> Arc<Index> {
        if let Some(ix) = Arc::get_mut(&mut this) {
            change(ix);
            return this;
        }
        let mut ix = Index {
            slots: this.slots.clone(),
            len: this.len,
            base: this.base,
            current: this.current,
        };
        change(&mut ix);
        Arc::new(ix)
    }

    /// The oldest entry whose seqno is `seqno` or later, if any (a bisection).
    pub(crate) fn first_at_or_after(&self, seqno: u64) -> Option<&Fence> {
        let written = self.written();
        // Every slot below `len` is written; one that were not would end the search there.
        let at = written.partition_point(|s| s.get().is_some_and(|e| e.seqno < seqno));
        written.get(at)?.get().map(|e| &e.node)
    }

    /// Whether half of the room the lineage had beyond its first entries has been used:
    /// the time to drop the entries of points that have signalled since.
    pub(crate) fn wants_compaction(&self) -> bool {
        let room = self.slots.0.len().saturating_sub(self.base);
        self.len.saturating_sub(self.base) >= room / 2
    }

    /// The written slots of this snapshot.
    fn written(&self) -> &[OnceLock<Entry>] {
        self.slots.0.get(..self.len).unwrap_or_default()
    }

    /// A new lineage of the entries `keep` accepts, in order.
    pub(crate) fn compact(&self, mut keep: impl FnMut(&Fence) -> bool) -> Index {
        let nodes = self
            .written()
            .iter()
            .filter_map(OnceLock::get)
            .filter(|e| keep(&e.node))
            .map(|e| e.node.clone())
            .collect();
        Index::new(nodes)
    }

    /// The nodes in this snapshot, oldest first.
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &Fence> {
        self.written()
            .iter()
            .filter_map(OnceLock::get)
            .map(|e| &e.node)
    }
}
