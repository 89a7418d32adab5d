//! `Fence::find_seqno` against a brute-force oracle (no upstream suite).
//!
//! Random histories of chain nodes: points added in order with gaps, repeated, out of order
//! and at seqnos around 2^32 and 2^64, on the newest node or forked from an older one, some
//! chains starting on a plain fence; contained fences signalled in random order; links
//! collected by walks. After every step a lookup of a random seqno (0, the node's own and
//! every other point, one below a point, below the first, above the node, far above) on the
//! newest node of a history or on any node must answer what the kernel's walk over the
//! original links would: the node itself when the point is its own, else the first node,
//! skipping those whose contained fence has signalled, that is on another context, is no
//! chain node or whose predecessor's seqno is below the point; `None` when there is none;
//! `SeqnoNotInChain` for a point later than the node. The same lookup written as the
//! kernel's loop over `chain::walk` must agree too.
//!
//! Lookups that walk a few links give the newest node an index, which later points extend,
//! lookups compact, and out-of-order points and full indexes retire: the histories are long
//! enough for all of these to happen.

mod kernel_walk;

use dmabuf::Error;
use dmabuf::fence::{Fence, FenceContext, Signaller, chain};
use kernel_walk::kernel_find_seqno;
use proptest::prelude::*;

/// One node of the model: the fence (a chain node, or the plain fence a chain starts on), the
/// issuer of the fence it waits for (until signalled), and its predecessor as made.
struct Node {
    fence: Fence,
    issuer: Option<Signaller>,
    prev: Option<usize>,
}

impl Node {
    /// Whether the fence this node waits for is still pending (a chain node's contained
    /// fence, or the plain fence itself).
    fn pending(&self) -> bool {
        !self.fence.contained().is_signaled()
    }
}

/// How a new point's seqno relates to its predecessor's.
#[derive(Debug, Clone)]
enum Step {
    /// `gap` later: joins the predecessor's context.
    After(u64),
    /// The same seqno: a fresh context at that seqno.
    Same,
    /// `gap` earlier (saturating at 0): a fresh context at the predecessor's seqno.
    Before(u64),
    /// Just below 2^32 or 2^64, or exactly at them; whatever that is next to the predecessor.
    Edge(u8),
}

/// Which seqno a lookup asks for.
#[derive(Debug, Clone)]
enum Pick {
    Zero,
    /// The seqno of some node's point (of the whole model, wrapped by index).
    Point(usize),
    /// One below some node's point.
    BelowPoint(usize),
    /// `1..=` the node's own seqno, as a fraction in thousandths.
    Within(u16),
    /// One above the node's own.
    AboveHead,
    Max,
}

#[derive(Debug, Clone)]
enum Op {
    /// A point on the newest node of history `history`, or, with `fork`, on any node.
    Add {
        history: usize,
        fork: Option<usize>,
        step: Step,
    },
    /// A new history: a first point on nothing, or on a plain pending fence.
    Start { on_plain: bool, seqno: u64 },
    /// Signals the fence node `n` waits for (a no-op if it has).
    Signal(usize),
    /// Walks the chain from node `n` to its end, collecting signalled links.
    Walk(usize),
    /// A lookup on the newest node of history `history`, or, with `any`, on that node.
    Find {
        history: usize,
        any: Option<usize>,
        pick: Pick,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (1u64..4).prop_map(Step::After),
        2 => (1u64..100).prop_map(Step::After),
        2 => Just(Step::Same),
        2 => (1u64..10).prop_map(Step::Before),
        1 => (0u8..6).prop_map(Step::Edge),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::Zero),
        6 => any::<usize>().prop_map(Pick::Point),
        3 => any::<usize>().prop_map(Pick::BelowPoint),
        6 => (0u16..1000).prop_map(Pick::Within),
        1 => Just(Pick::AboveHead),
        1 => Just(Pick::Max),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (any::<usize>(), prop::option::weighted(0.1, any::<usize>()), step())
            .prop_map(|(history, fork, step)| Op::Add { history, fork, step }),
        1 => (any::<bool>(), 0u64..20).prop_map(|(on_plain, seqno)| Op::Start { on_plain, seqno }),
        14 => any::<usize>().prop_map(Op::Signal),
        2 => any::<usize>().prop_map(Op::Walk),
        20 => (any::<usize>(), prop::option::weighted(0.15, any::<usize>()), pick())
            .prop_map(|(history, any, pick)| Op::Find { history, any, pick }),
    ]
}

/// The model: every node ever made (kept alive, so collected ones can still be looked up
/// from), and the newest node of each history.
struct Model {
    ctx: FenceContext,
    nodes: Vec<Node>,
    heads: Vec<usize>,
}

impl Model {
    fn new() -> Model {
        Model {
            ctx: FenceContext::new("prop", "chain_lookup"),
            nodes: Vec::new(),
            heads: Vec::new(),
        }
    }

    fn push(&mut self, prev: Option<usize>, seqno: u64) -> usize {
        let (issuer, contained) = self.ctx.next_fence();
        let fence = Fence::new_chain(prev.map(|p| self.nodes[p].fence.clone()), contained, seqno)
            .expect("a plain fence is a valid chain member");
        self.nodes.push(Node {
            fence,
            issuer: Some(issuer),
            prev,
        });
        self.nodes.len() - 1
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Start { on_plain, seqno } => {
                let prev = on_plain.then(|| {
                    let (issuer, fence) = self.ctx.next_fence();
                    self.nodes.push(Node {
                        fence,
                        issuer: Some(issuer),
                        prev: None,
                    });
                    self.nodes.len() - 1
                });
                let n = self.push(prev, *seqno);
                self.heads.push(n);
            }
            Op::Add {
                history,
                fork,
                step,
            } => {
                if self.heads.is_empty() {
                    return self.apply(&Op::Start {
                        on_plain: false,
                        seqno: 1,
                    });
                }
                let h = history % self.heads.len();
                let on = match fork {
                    Some(f) => f % self.nodes.len(),
                    None => self.heads[h],
                };
                let last = self.nodes[on].fence.seqno();
                let seqno = match step {
                    Step::After(gap) => last.saturating_add(*gap),
                    Step::Same => last,
                    Step::Before(gap) => last.saturating_sub(*gap),
                    Step::Edge(e) => match e {
                        0 => u64::from(u32::MAX),
                        1 => u64::from(u32::MAX) + 1,
                        2 => u64::from(u32::MAX) + 2,
                        3 => u64::MAX - 1,
                        4 => u64::MAX,
                        _ => last.wrapping_add(u64::from(u32::MAX)),
                    },
                };
                let n = self.push(Some(on), seqno);
                if fork.is_some() {
                    self.heads.push(n);
                } else {
                    self.heads[h] = n;
                }
            }
            Op::Signal(n) => {
                if !self.nodes.is_empty() {
                    let i = n % self.nodes.len();
                    if let Some(issuer) = self.nodes[i].issuer.take() {
                        issuer.signal();
                    }
                }
            }
            Op::Walk(n) => {
                if !self.nodes.is_empty() {
                    chain::iter(&self.nodes[n % self.nodes.len()].fence).for_each(drop);
                }
            }
            Op::Find { history, any, pick } => {
                if self.heads.is_empty() {
                    return Ok(());
                }
                let on = match any {
                    Some(a) => a % self.nodes.len(),
                    None => self.heads[history % self.heads.len()],
                };
                self.check_lookup(on, self.seqno_for(on, pick))?;
            }
        }
        Ok(())
    }

    fn seqno_for(&self, on: usize, pick: &Pick) -> u64 {
        let own = self.nodes[on].fence.seqno();
        match pick {
            Pick::Zero => 0,
            Pick::Point(i) => self.nodes[i % self.nodes.len()].fence.seqno(),
            Pick::BelowPoint(i) => self.nodes[i % self.nodes.len()]
                .fence
                .seqno()
                .saturating_sub(1),
            Pick::Within(per_mille) => {
                1 + ((u128::from(own) * u128::from(*per_mille)) / 1000) as u64
            }
            Pick::AboveHead => own.saturating_add(1),
            Pick::Max => u64::MAX,
        }
    }

    /// The kernel's answer computed over the links as made: the predecessor chain, skipping
    /// nodes whose fence has signalled. `Err` for a lookup the kernel refuses.
    fn oracle(&self, on: usize, seqno: u64) -> Result<Option<usize>, ()> {
        let head = &self.nodes[on].fence;
        if seqno == 0 {
            return Ok(Some(on));
        }
        if !head.is_chain() || head.seqno() < seqno {
            return Err(());
        }
        let context = head.context();
        let stops = |i: usize| {
            let f = &self.nodes[i].fence;
            f.context() != context || !f.is_chain() || f.chain_prev_seqno() < seqno
        };
        let mut at = on;
        loop {
            if stops(at) {
                return Ok(Some(at));
            }
            let mut prev = self.nodes[at].prev;
            while let Some(p) = prev {
                if self.nodes[p].pending() {
                    break;
                }
                prev = self.nodes[p].prev;
            }
            match prev {
                Some(p) => at = p,
                None => return Ok(None),
            }
        }
    }

    fn check_lookup(&self, on: usize, seqno: u64) -> Result<(), TestCaseError> {
        let expected = self.oracle(on, seqno);
        let head = &self.nodes[on].fence;
        let got = head.find_seqno(seqno);
        let name = |f: &Option<Fence>| {
            f.as_ref()
                .map(|f| (f.context(), f.seqno(), self.index_of(f)))
        };
        match (&expected, &got) {
            (Err(()), Err(e)) => prop_assert_eq!(e, &Error::SeqnoNotInChain { seqno }),
            (Ok(want), Ok(found)) => {
                let same = match (want, found) {
                    (None, None) => true,
                    (Some(i), Some(f)) => f.ptr_eq(&self.nodes[*i].fence),
                    _ => false,
                };
                prop_assert!(
                    same,
                    "find_seqno({seqno}) on node {on} (seqno {}): oracle node {:?}, found {:?}",
                    head.seqno(),
                    want,
                    name(found)
                );
            }
            _ => prop_assert!(
                false,
                "find_seqno({seqno}) on node {on}: oracle {expected:?}, found {:?}",
                got.as_ref().map(name)
            ),
        }
        // The kernel's loop, written over `chain::walk`, agrees on the same chain.
        if let Ok(found) = &got {
            let walked = kernel_find_seqno(head, seqno);
            let same = match (found, &walked) {
                (None, None) => true,
                (Some(a), Some(b)) => a.ptr_eq(b),
                _ => false,
            };
            prop_assert!(
                same,
                "find_seqno({seqno}) on node {on} disagrees with a walk"
            );
        }
        Ok(())
    }

    fn index_of(&self, f: &Fence) -> Option<usize> {
        self.nodes.iter().position(|n| n.fence.ptr_eq(f))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn find_seqno_answers_what_a_walk_over_the_links_as_made_answers(
        ops in prop::collection::vec(op(), 1..400)
    ) {
        let mut model = Model::new();
        model.apply(&Op::Start { on_plain: false, seqno: 1 })?;
        for op in &ops {
            model.apply(op)?;
            // A lookup of a random point after every step as well, on the first history's
            // newest node (the one most steps extend).
            let head = model.heads[0];
            let len = model.nodes.len();
            model.check_lookup(head, model.seqno_for(head, &Pick::Point(len / 2)))?;
        }
        // Every point of every node, on every history's newest node.
        for h in 0..model.heads.len() {
            let on = model.heads[h];
            for i in 0..model.nodes.len() {
                model.check_lookup(on, model.nodes[i].fence.seqno())?;
                model.check_lookup(on, model.nodes[i].fence.seqno().saturating_sub(1))?;
            }
        }
        // Everything signalled: nothing is left to wait for below any node's own point.
        for node in &mut model.nodes {
            if let Some(issuer) = node.issuer.take() {
                issuer.signal();
            }
        }
        for h in 0..model.heads.len() {
            let on = model.heads[h];
            model.check_lookup(on, 1)?;
        }
    }
}
