//! The global class dependency graph and its cycle check (kernel: lockdep's `lock_list`
//! dependency lists and `check_noncircular()`).
//!
//! An edge `A -> B` says "B was acquired while A was held". Each edge carries the kinds of
//! dependency seen, after lockdep's read/recursive-read design: the holder side is `E`
//! (exclusive: a writer) or `S` (shared: any reader), the acquirer side is `R` (a recursive
//! reader) or `N` (anything else). A cycle is a possible deadlock only if it is *strong*: no
//! `-(xR)->` edge is followed by a `-(Sx)->` edge (two readers of the lock in between can both
//! proceed). New edges are checked with a breadth-first search over (class, arrived-by-R)
//! states, so each check is linear in the graph.
//!
//! # Rules
//! * An edge whose addition would close a strong cycle is reported and not added.
//! * The first time an edge is recorded, a backtrace of that acquisition is kept with it.

use crate::class::{ClassId, Mode};
use parking_lot::Mutex;
use std::backtrace::Backtrace;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One dependency kind: holder exclusive/shared × acquirer recursive-reader or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DepKind {
    /// The held lock was held as a reader (`S`), else a writer (`E`).
    pub(crate) holder_shared: bool,
    /// The new lock was taken as a recursive reader (`R`), else `N`.
    pub(crate) next_recursive: bool,
}

impl DepKind {
    pub(crate) fn new(held: Mode, next: Mode) -> Self {
        Self {
            holder_shared: held.is_read(),
            next_recursive: next == Mode::RecursiveShared,
        }
    }

    fn bit(self) -> u8 {
        1 << (u8::from(self.holder_shared) * 2 + u8::from(self.next_recursive))
    }

    fn from_bit(i: u8) -> Self {
        Self {
            holder_shared: i & 2 != 0,
            next_recursive: i & 1 != 0,
        }
    }
}

/// Where an edge was first recorded.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Recorded by priming (the canonical order), not by a real acquisition.
    Primed,
    /// Recorded by an acquisition; its backtrace.
    Acquired(Arc<Backtrace>),
}

struct EdgeInfo {
    /// Bit set of [`DepKind::bit`].
    kinds: u8,
    /// Modes of the first recording (for reports).
    held_mode: Mode,
    next_mode: Mode,
    origin: Origin,
}

/// One hop of a reported dependency chain.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The class held.
    pub held: ClassId,
    /// How it was held.
    pub held_mode: Mode,
    /// The class acquired while it was held.
    pub next: ClassId,
    /// How it was acquired.
    pub next_mode: Mode,
    /// Where this dependency was first recorded.
    pub origin: Origin,
}

#[derive(Default)]
struct Graph {
    adj: HashMap<ClassId, HashMap<ClassId, EdgeInfo>>,
}

static GRAPH: Mutex<Option<Graph>> = Mutex::new(None);

/// Records `held -> next`; returns the cycle (starting with the new edge) if the edge would
/// close a strong cycle, in which case it is not recorded.
pub(crate) fn add_edge(
    held: ClassId,
    held_mode: Mode,
    next: ClassId,
    next_mode: Mode,
    origin: impl FnOnce() -> Origin,
) -> Option<Vec<Hop>> {
    if held == next {
        return None;
    }
    let kind = DepKind::new(held_mode, next_mode);
    let mut guard = GRAPH.lock();
    let g = guard.get_or_insert_with(Graph::default);
    if let Some(e) = g.adj.get(&held).and_then(|m| m.get(&next))
        && e.kinds & kind.bit() != 0
    {
        return None;
    }
    if let Some(mut path) = g.find_path(next, held, kind) {
        let new = Hop {
            held,
            held_mode,
            next,
            next_mode,
            origin: origin(),
        };
        path.insert(0, new);
        return Some(path);
    }
    let edges = g.adj.entry(held).or_default();
    match edges.get_mut(&next) {
        Some(e) => e.kinds |= kind.bit(),
        None => {
            edges.insert(
                next,
                EdgeInfo {
                    kinds: kind.bit(),
                    held_mode,
                    next_mode,
                    origin: origin(),
                },
            );
        }
    }
    None
}

/// Forgets every recorded dependency.
#[cfg(test)]
pub(crate) fn forget_all() {
    *GRAPH.lock() = None;
}

/// Whether `held -> next` has been recorded with any kind.
pub fn has_dependency(held: ClassId, next: ClassId) -> bool {
    GRAPH
        .lock()
        .as_ref()
        .and_then(|g| g.adj.get(&held))
        .is_some_and(|m| m.contains_key(&next))
}

impl Graph {
    /// A strong path `from -> ... -> to` that, followed by a new edge of kind `new`
    /// (`to -> from`), closes a strong cycle.
    fn find_path(&self, from: ClassId, to: ClassId, new: DepKind) -> Option<Vec<Hop>> {
        // State: (class, arrived by an -(xR)-> edge). The new edge leads into `from`.
        type State = (ClassId, bool);
        let start: State = (from, new.next_recursive);
        let mut parent: HashMap<State, (State, ClassId, DepKind)> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut seen = std::collections::HashSet::from([start]);
        while let Some(state @ (node, via_r)) = queue.pop_front() {
            let Some(out) = self.adj.get(&node) else {
                continue;
            };
            for (&m, info) in out {
                for i in 0..4u8 {
                    if info.kinds & (1 << i) == 0 {
                        continue;
                    }
                    let k = DepKind::from_bit(i);
                    // -(xR)-> followed by -(Sx)-> is not a deadlock: both readers proceed.
                    if via_r && k.holder_shared {
                        continue;
                    }
                    let next_state = (m, k.next_recursive);
                    if m == to {
                        // Closing pair: this edge into `to`, then the new edge out of it.
                        if !(k.next_recursive && new.holder_shared) {
                            let mut hops = vec![self.hop(node, m)];
                            let mut s = state;
                            while s != start {
                                let (p, held, _) = parent[&s];
                                hops.push(self.hop(held, s.0));
                                s = p;
                            }
                            hops.reverse();
                            return Some(hops);
                        }
                        continue;
                    }
                    if seen.insert(next_state) {
                        parent.insert(next_state, (state, node, k));
                        queue.push_back(next_state);
                    }
                }
            }
        }
        None
    }

    fn hop(&self, held: ClassId, next: ClassId) -> Hop {
        let info = &self.adj[&held][&next];
        Hop {
            held,
            held_mode: info.held_mode,
            next,
            next_mode: info.next_mode,
            origin: info.origin.clone(),
        }
    }
}
