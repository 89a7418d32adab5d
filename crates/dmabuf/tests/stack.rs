//! Stack-depth tests for containers (no upstream suite): releasing a chain unlinks its
//! predecessors one at a time, and no chain or nest of merges overflows the stack however
//! long it grows (see `dmabuf::docs::kernel_bugs`, "Recursive release of long chains").
//!
//! Every test runs on a thread with a 2 MiB stack (the std default for spawned threads, and
//! far smaller than what a recursive drop of these structures would need), so a recursive
//! drop, walk or signal would overflow and abort the test binary. The sizes are large enough
//! that any recursion would: a 10,000,000-node chain and 1,000,000-step merge/chain nests.

use dmabuf::FenceStatus;
use dmabuf::fence::unwrap::{leaves, merge};
use dmabuf::fence::{Fence, FenceContext, Signaller, chain};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stack size of the thread every test body runs on.
const STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a fresh thread with a [`STACK`]-sized stack and returns its result.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("test body panicked")
}

#[test]
fn drop_ten_million_node_chain() {
    const NODES: u64 = 10_000_000;
    on_small_stack(|| {
        // Every node contains the same signalled fence, which keeps memory to the nodes
        // themselves. Nothing walks the chain, so nothing is collected before the drop.
        let ctx = FenceContext::new("stack", "chain");
        let (issuer, done) = ctx.fence(1);
        issuer.signal();

        let first = Fence::new_chain(None, done.clone(), 1).unwrap();
        let chain_ctx = first.context();
        let mut head = first;
        // A handle to a node halfway down: dropping the head must stop unlinking there, and
        // dropping that node afterwards must free the other half. (Taken while building:
        // `find_seqno` would walk the chain and collect every node, all being signalled.)
        let mut middle = None;
        for i in 1..NODES {
            head = Fence::new_chain(Some(head), done.clone(), i + 1).unwrap();
            if i + 1 == NODES / 2 {
                middle = Some(head.clone());
            }
        }
        assert_eq!(head.seqno(), NODES);
        assert_eq!(head.context(), chain_ctx);
        assert_eq!(head.chain_prev().map(|p| p.seqno()), Some(NODES - 1));

        let middle = middle.unwrap();
        assert_eq!(middle.seqno(), NODES / 2);
        drop(head);
        assert_eq!(middle.chain_prev().map(|p| p.seqno()), Some(NODES / 2 - 1));
        drop(middle);
        assert!(done.is_signaled());
    });
}

/// Contexts the nest tests rotate over.
const NEST_CONTEXTS: usize = 4;
/// How many steps a fence stays pending: two rotations, so each context always has an older
/// and a newer pending fence and the merge has to deduplicate, not just drop signalled ones.
const NEST_WINDOW: usize = 2 * NEST_CONTEXTS;
/// Steps of the nest tests.
const NEST_STEPS: u64 = 1_000_000;

/// The leaves of a merge result, checking it is flat: a leaf, or an array of leaves.
fn flat_leaf_count(m: &Fence) -> usize {
    assert!(!m.is_chain(), "a merge never returns a chain");
    if let Some(members) = m.array_members() {
        assert!(
            members.iter().all(|f| !f.is_container()),
            "nested container in a merge result"
        );
    }
    leaves(m).count()
}

/// Issuers of the nest tests: the newest [`NEST_WINDOW`] stay pending.
struct Window {
    ctxs: Vec<FenceContext>,
    pending: VecDeque<Signaller>,
}

impl Window {
    fn new() -> Self {
        Self {
            ctxs: (0..NEST_CONTEXTS)
                .map(|_| FenceContext::new("stack", "nest"))
                .collect(),
            pending: VecDeque::with_capacity(NEST_WINDOW + 1),
        }
    }

    /// A new pending fence on the next context in rotation; signals the oldest one that
    /// falls out of the window.
    fn next(&mut self, step: u64) -> Fence {
        let ctx = &self.ctxs[(step % NEST_CONTEXTS as u64) as usize];
        let (issuer, fence) = ctx.next_fence();
        self.pending.push_back(issuer);
        if self.pending.len() > NEST_WINDOW {
            self.pending.pop_front().unwrap().signal();
        }
        fence
    }

    fn signal_all(&mut self) {
        for issuer in self.pending.drain(..) {
            issuer.signal();
        }
    }
}

#[test]
fn merge_chain_nest_stays_flat_and_drops() {
    // Seed 003's failure mode: merging a merge result into the next merge, and chaining each
    // result, must not build ever-deeper containers. Merges flatten and deduplicate by
    // context, so the merge stays one array of at most one fence per context, and the chain
    // of 1,000,000 such arrays drops without recursion.
    on_small_stack(|| {
        let mut window = Window::new();
        let mut m = Fence::stub();
        let mut c: Option<Fence> = None;
        for i in 0..NEST_STEPS {
            let f = window.next(i);
            m = merge(&[m, f]);
            let n = flat_leaf_count(&m);
            assert_eq!(
                n,
                (i as usize + 1).min(NEST_CONTEXTS),
                "step {i}: {n} leaves"
            );
            c = Some(Fence::new_chain(c, m.clone(), i + 1).unwrap());
        }
        let c = c.unwrap();
        assert_eq!(c.seqno(), NEST_STEPS);
        assert!(!c.is_signaled_flag());
        drop(c);
        drop(m);
        window.signal_all();
    });
}

#[test]
fn merging_a_chain_into_itself_stays_flat() {
    // The other nesting: each step merges the whole chain so far (not just the last merge)
    // with a new fence and appends the result to the chain. Unwrapping the chain collects
    // its completed points, so both the merge and the live chain stay bounded.
    on_small_stack(|| {
        let mut window = Window::new();
        let mut c: Option<Fence> = None;
        for i in 0..NEST_STEPS {
            let f = window.next(i);
            let m = match &c {
                Some(c) => merge(&[c.clone(), f]),
                None => merge(&[f]),
            };
            let n = flat_leaf_count(&m);
            assert_eq!(
                n,
                (i as usize + 1).min(NEST_CONTEXTS),
                "step {i}: {n} leaves"
            );
            let node = Fence::new_chain(c.take(), m, i + 1).unwrap();
            // Only the points whose fences are still in the window stay linked.
            let live = chain::iter(&node).count();
            assert!(live <= NEST_WINDOW, "step {i}: {live} live chain nodes");
            c = Some(node);
        }
        let c = c.unwrap();
        assert_eq!(c.seqno(), NEST_STEPS);
        drop(c);
        window.signal_all();
    });
}

/// A chain of `n` nodes, each containing its own pending fence on one context.
fn pending_chain(n: u64) -> (Vec<Signaller>, Vec<Fence>, Fence) {
    let ctx = FenceContext::new("stack", "pending");
    let mut issuers = Vec::with_capacity(n as usize);
    let mut fences = Vec::with_capacity(n as usize);
    let mut head: Option<Fence> = None;
    for i in 0..n {
        let (issuer, fence) = ctx.fence(i + 1);
        head = Some(Fence::new_chain(head, fence.clone(), i + 1).unwrap());
        issuers.push(issuer);
        fences.push(fence);
    }
    (issuers, fences, head.unwrap())
}

const PENDING_NODES: u64 = 1_000_000;

#[test]
fn drop_chain_of_pending_fences_then_signal_them() {
    on_small_stack(|| {
        let (issuers, fences, head) = pending_chain(PENDING_NODES);
        assert!(!head.is_signaled());
        drop(head);
        for issuer in issuers {
            assert!(issuer.signal(), "the fence signals for the first time");
        }
        assert!(fences.iter().all(|f| f.status() == FenceStatus::Signaled));
    });
}

#[test]
fn dropped_chain_still_signals_its_waiter() {
    // A waiter on the tail keeps the chain alive after the last user handle is gone; the
    // chain then completes when its fences signal (forward: one long collection at the end;
    // backward: one re-arm per fence), and the last reference goes away inside a callback.
    for backward in [false, true] {
        on_small_stack(move || {
            let (mut issuers, _fences, head) = pending_chain(PENDING_NODES);
            let fired = Arc::new(AtomicBool::new(false));
            let flag = fired.clone();
            let handle = head
                .add_callback(move |_| flag.store(true, Ordering::SeqCst))
                .expect("pending");
            drop(handle);
            drop(head);

            if backward {
                issuers.reverse();
            }
            let last = issuers.pop().unwrap();
            for issuer in issuers {
                issuer.signal();
            }
            assert!(
                !fired.load(Ordering::SeqCst),
                "chain signalled with a fence pending (backward: {backward})"
            );
            last.signal();
            assert!(
                fired.load(Ordering::SeqCst),
                "chain not signalled after its last fence (backward: {backward})"
            );
        });
    }
}

#[test]
fn last_chain_reference_dropped_in_callback() {
    // The kernel crashed when the last put of a long chain happened in an interrupt handler.
    // Here the only handle to a long, fully pending chain lives in a callback of another
    // fence, so it is dropped on the signalling path.
    on_small_stack(|| {
        let (issuers, fences, head) = pending_chain(PENDING_NODES);
        let ctx = FenceContext::new("stack", "trigger");
        let (trigger, trigger_fence) = ctx.fence(1);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let handle = trigger_fence
            .add_callback(move |_| {
                assert!(!head.is_signaled());
                flag.store(true, Ordering::SeqCst);
                drop(head);
            })
            .expect("pending");
        drop(handle);
        trigger.signal();
        assert!(ran.load(Ordering::SeqCst));
        for issuer in issuers {
            issuer.signal();
        }
        assert!(fences.iter().all(Fence::is_signaled));
    });
}

#[test]
fn indexed_chain_drops_pending_and_after_collection() {
    // A lookup far down a long chain leaves its newest node an index holding every node; the
    // chain still drops a node at a time, pending, and once every point has signalled and a
    // walk has collected them all (then the index holds the only reference to most nodes,
    // each still linked to its old predecessor).
    for collected in [false, true] {
        on_small_stack(move || {
            let (issuers, fences, head) = pending_chain(PENDING_NODES);
            assert_eq!(head.find_seqno(1).unwrap().unwrap().seqno(), 1);
            assert_eq!(head.find_seqno(2).unwrap().unwrap().seqno(), 2);
            if collected {
                for issuer in issuers {
                    issuer.signal();
                }
                assert_eq!(chain::iter(&head).count(), 1);
                assert!(head.find_seqno(1).unwrap().is_none());
                drop(head);
            } else {
                drop(head);
                for issuer in issuers {
                    issuer.signal();
                }
            }
            assert!(fences.iter().all(Fence::is_signaled));
        });
    }
}
