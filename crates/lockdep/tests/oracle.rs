//! Property test: the validator against a brute-force model of kernel lockdep.
//!
//! Random programs — 2–3 threads, 3–4 classes made fresh for each case, and operations lock
//! (exclusive, shared, recursive-shared), trylock, unlock (the top entry or any held one),
//! begin/end a fence signalling section, fence wait and fence signal — run against the
//! validator, each thread on its own OS thread, one after the other (the dependency graph is
//! global, so the order of threads is all that matters). Every operation runs in its own
//! [`capture`], so the validator's answer is "the first operation that reported, and the kinds of
//! problem it reported".
//!
//! Independently, an oracle replays the same operations on its own model of what the kernel's
//! `kernel/locking/lockdep.c` records and reports:
//!
//! * **Recursive locking** (`check_deadlock()`): a blocking acquisition of class `C` while the
//!   thread holds any entry of `C` — trylocked ones included — is a problem, unless the new
//!   acquisition is a recursive read and that held entry is a read. Such an acquisition records
//!   no dependency.
//! * **Dependencies** (`check_prevs_add()`): a blocking acquisition of `C` records `H -> C` for
//!   the topmost held entry `H` and each entry below it down to and including the first one that
//!   was not a trylock; a held entry of `C` itself records nothing. A trylock is not validated
//!   and records nothing towards itself. Each edge keeps the set of kinds seen: holder
//!   exclusive (`E`) or any reader (`S`) × acquirer recursive reader (`R`) or not (`N`).
//! * **Out-of-order release** (`reacquire_held_locks()`): releasing an entry that is not on top
//!   acquires every entry above it again on the shorter stack, with the two checks above.
//! * **Cycles**: after every new edge (or new kind on an edge) the oracle enumerates every
//!   simple cycle of the class graph and every choice of one kind per edge; a cycle is a
//!   deadlock if some choice never has an `-(*R)->` edge followed by an `-(S*)->` one, all the
//!   way round (a *strong* cycle).
//! * **Fence signalling** (`drivers/dma-buf/dma-fence.c`, mainline): the outermost
//!   `dma_fence_begin_signalling()` is a successful non-recursive read trylock (`trylock == 1`,
//!   `read == 1`) of the `dma_fence_map` pseudo-lock, nested ones do nothing, and the end
//!   releases it. A fence wait (`__dma_fence_might_wait()`) releases the section if one is
//!   open, acquires and releases the pseudo-lock exclusively, then takes the section again as a
//!   read trylock. A fence signal is
//!   `begin; lock(fence lock); unlock; end`.
//! * **Wait inside a section**: reported directly. This one is the crate's documented
//!   addition (see `signalling.rs`); the kernel only finds it through a cycle.
//!
//! The comparison is exact: the first operation (threads in order) at which the oracle finds a
//! problem must be the first at which the validator reports, with the same set of problem
//! kinds. After the first problem the two are no longer compared: the validator reports a
//! cycle-closing dependency without recording it and carries on, whereas the kernel turns
//! lockdep off. Before it, both have seen exactly the same dependencies — the validator's
//! chain cache only skips acquisitions whose held stack it has validated before, which would
//! record nothing new. Within the reporting operation, the first edge that closes a cycle is
//! the same for both, so "a cycle was reported" agrees even though the validator drops that
//! edge and the oracle keeps it.
//!
//! Deliberately not modelled, because they are imprecisions of the kernel's implementation
//! rather than of its model (the validator is exact on both): the kernel's chain-cache key
//! ignores the trylock bit (so it may skip the extra edges a trylock-topped stack records),
//! and its breadth-first search marks *classes* visited, so a class first reached through
//! recursive-read-only edges is not explored again through a stronger edge.
//!
//! The fence pseudo-lock's class is a process-wide static, so its edges accumulate across
//! cases; that cannot change a verdict, since every edge into it has an `N` acquirer (a detour
//! through earlier cases' classes leaves it as strongly as it entered). Set `PROPTEST_CASES` to
//! run more cases than the default 512.

use dmabuf_lockdep::signalling::{self, SignallingSection};
use dmabuf_lockdep::{
    Acquire, Kind, LockClass, Mode, Report, ReportMode, acquire, capture, release, set_report_mode,
    take_reports,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// What is compared: the kinds of problem, not the exact report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    /// A class acquired while already held.
    Recursive,
    /// A strong cycle, whatever pseudo-locks it runs through.
    Cycle,
    /// A fence wait inside a signalling section.
    WaitInSection,
    /// Anything else (never expected here).
    Other,
}

fn problem(r: &Report) -> Problem {
    match r.kind {
        Kind::RecursiveLocking => Problem::Recursive,
        Kind::CircularDependency
        | Kind::SignallingDeadlock
        | Kind::ReclaimInSignalling
        | Kind::ReclaimDeadlock => Problem::Cycle,
        Kind::WaitInSignalling => Problem::WaitInSection,
        _ => Problem::Other,
    }
}

// ---------------------------------------------------------------------------------------------
// Programs.

/// A generated operation; class numbers are taken modulo the case's class count.
#[derive(Debug, Clone)]
enum Op {
    /// A blocking acquisition. With `avoid_held`, a class this thread holds is replaced by the
    /// next one it does not hold (skipped if it holds them all), so that recursive locking
    /// does not end most cases early.
    Lock {
        class: usize,
        mode: Mode,
        avoid_held: bool,
    },
    /// A successful trylock (of any class, held or not: another lock of a held class may be
    /// free).
    TryLock { class: usize, mode: Mode },
    /// Unlock the most recent held lock.
    UnlockTop,
    /// Unlock held lock number `n % held`, outermost first (any order).
    UnlockAt(usize),
    /// `begin_signalling()`.
    Begin,
    /// End the innermost open section, if any.
    End,
    /// `might_wait()`.
    Wait,
    /// Signal a fence whose lock has this class: section, lock, unlock, end.
    Signal(usize),
}

#[derive(Debug, Clone)]
struct Program {
    classes: usize,
    threads: Vec<Vec<Op>>,
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Exclusive),
        Just(Mode::Shared),
        Just(Mode::RecursiveShared)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, mode(), prop::bool::weighted(0.85)).prop_map(|(class, mode, avoid_held)| {
            Op::Lock { class, mode, avoid_held }
        }),
        1 => (0..4usize, mode()).prop_map(|(class, mode)| Op::TryLock { class, mode }),
        3 => Just(Op::UnlockTop),
        2 => (0..8usize).prop_map(Op::UnlockAt),
        1 => Just(Op::Begin),
        1 => Just(Op::End),
        1 => Just(Op::Wait),
        1 => (0..4usize).prop_map(Op::Signal),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (
        3..=4usize,
        prop::collection::vec(prop::collection::vec(op(), 1..=10), 2..=3),
    )
        .prop_map(|(classes, threads)| Program { classes, threads })
}

/// One primitive step, as both sides execute it. `inst` identifies one acquisition.
#[derive(Debug, Clone, Copy)]
enum Step {
    Acquire {
        class: usize,
        mode: Mode,
        trylock: bool,
        inst: usize,
    },
    Release {
        class: usize,
        inst: usize,
    },
    Begin,
    End,
    Wait,
}

/// Turns each thread's operations into valid steps (only held locks are unlocked, only open
/// sections ended).
fn resolve(p: &Program) -> Vec<Vec<Step>> {
    let n = p.classes;
    let mut next_inst = 0;
    let mut out = Vec::new();
    for ops in &p.threads {
        let mut held: Vec<(usize, usize)> = Vec::new();
        let mut sections = 0usize;
        let mut steps = Vec::new();
        let free = |held: &[(usize, usize)], class: usize| {
            (0..n)
                .map(|d| (class + d) % n)
                .find(|c| !held.iter().any(|h| h.0 == *c))
        };
        for op in ops {
            match *op {
                Op::Lock {
                    class,
                    mode,
                    avoid_held,
                } => {
                    let class = if avoid_held {
                        match free(&held, class % n) {
                            Some(c) => c,
                            None => continue,
                        }
                    } else {
                        class % n
                    };
                    next_inst += 1;
                    let inst = next_inst;
                    steps.push(Step::Acquire {
                        class,
                        mode,
                        trylock: false,
                        inst,
                    });
                    held.push((class, inst));
                }
                Op::TryLock { class, mode } => {
                    next_inst += 1;
                    let inst = next_inst;
                    let class = class % n;
                    steps.push(Step::Acquire {
                        class,
                        mode,
                        trylock: true,
                        inst,
                    });
                    held.push((class, inst));
                }
                Op::UnlockTop | Op::UnlockAt(_) if held.is_empty() => {}
                Op::UnlockTop => {
                    let (class, inst) = held.pop().expect("not empty");
                    steps.push(Step::Release { class, inst });
                }
                Op::UnlockAt(k) => {
                    let (class, inst) = held.remove(k % held.len());
                    steps.push(Step::Release { class, inst });
                }
                Op::Begin => {
                    sections += 1;
                    steps.push(Step::Begin);
                }
                Op::End => {
                    if sections > 0 {
                        sections -= 1;
                        steps.push(Step::End);
                    }
                }
                Op::Wait => steps.push(Step::Wait),
                Op::Signal(class) => {
                    let Some(class) = free(&held, class % n) else {
                        continue;
                    };
                    next_inst += 1;
                    let inst = next_inst;
                    steps.push(Step::Begin);
                    steps.push(Step::Acquire {
                        class,
                        mode: Mode::Exclusive,
                        trylock: false,
                        inst,
                    });
                    steps.push(Step::Release { class, inst });
                    steps.push(Step::End);
                }
            }
        }
        out.push(steps);
    }
    out
}

/// One line per thread, for failure messages.
fn show(threads: &[Vec<Step>]) -> String {
    let m = |m: Mode| match m {
        Mode::Exclusive => "E",
        Mode::Shared => "S",
        Mode::RecursiveShared => "RR",
    };
    let mut out = String::new();
    for (t, steps) in threads.iter().enumerate() {
        let steps: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| match *s {
                Step::Acquire {
                    class,
                    mode,
                    trylock,
                    inst,
                } => format!(
                    "{i}:{}{class}{}#{inst}",
                    if trylock { "try " } else { "" },
                    m(mode)
                ),
                Step::Release { class, inst } => format!("{i}:unlock {class}#{inst}"),
                Step::Begin => format!("{i}:begin"),
                Step::End => format!("{i}:end"),
                Step::Wait => format!("{i}:wait"),
            })
            .collect();
        out += &format!("  thread {t}: {}\n", steps.join(", "));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The validator side.

/// Runs each thread's steps on its own OS thread, in order; per step, the problems reported.
fn run_validator(
    classes: &[&'static LockClass],
    threads: &[Vec<Step>],
) -> Vec<Vec<BTreeSet<Problem>>> {
    let mut out = Vec::new();
    for steps in threads {
        let steps = steps.clone();
        let classes = classes.to_vec();
        let found = std::thread::spawn(move || {
            let mut sections: Vec<SignallingSection> = Vec::new();
            let mut found = Vec::new();
            for step in steps {
                let ((), reports) = capture(|| match step {
                    Step::Acquire {
                        class,
                        mode,
                        trylock,
                        inst,
                    } => acquire(
                        classes[class],
                        mode,
                        Acquire {
                            trylock,
                            instance: inst,
                            nest: None,
                        },
                    ),
                    Step::Release { class, inst } => release(classes[class], inst),
                    Step::Begin => sections.push(signalling::begin_signalling()),
                    Step::End => drop(sections.pop()),
                    Step::Wait => signalling::might_wait(),
                });
                found.push(reports.iter().map(problem).collect());
            }
            // Sections still open die with the thread, like its held stack: no more events.
            std::mem::forget(sections);
            found
        })
        .join()
        .expect("validator thread panicked");
        out.push(found);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The oracle.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Class(usize),
    FenceMap,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    node: Node,
    mode: Mode,
    trylock: bool,
    /// Identifies the acquisition (0 for the fence pseudo-lock, held at most once).
    inst: usize,
}

impl Entry {
    /// The fence pseudo-lock: a section is a read trylock, a wait a blocking write.
    fn map(mode: Mode) -> Self {
        Entry {
            node: Node::FenceMap,
            mode,
            trylock: mode != Mode::Exclusive,
            inst: 0,
        }
    }
}

/// Kind `k` in 0..4: bit 1 = holder shared (`S`, else `E`), bit 0 = acquirer recursive (`R`,
/// else `N`). An edge's kinds are a bit set over `k`.
fn kind(held: Mode, next: Mode) -> u8 {
    u8::from(held != Mode::Exclusive) * 2 + u8::from(next == Mode::RecursiveShared)
}

/// `-(a)->` followed by `-(b)->` keeps a path strong unless `a` is `*R` and `b` is `S*`.
fn chains(a: u8, b: u8) -> bool {
    !(a & 1 != 0 && b & 2 != 0)
}

/// Whether some choice of one kind per edge makes the cycle strong (brute force).
fn strong(cycle: &[u8]) -> bool {
    fn pick(cycle: &[u8], chosen: &mut Vec<u8>) -> bool {
        if chosen.len() == cycle.len() {
            let n = chosen.len();
            return (0..n).all(|i| chains(chosen[i], chosen[(i + 1) % n]));
        }
        for k in 0..4u8 {
            if cycle[chosen.len()] & (1 << k) != 0 {
                chosen.push(k);
                if pick(cycle, chosen) {
                    return true;
                }
                chosen.pop();
            }
        }
        false
    }
    pick(cycle, &mut Vec::new())
}

#[derive(Default)]
struct Oracle {
    /// `(held, next)` -> bit set of kinds.
    edges: BTreeMap<(Node, Node), u8>,
    /// A cycle that is not strong was seen (coverage statistics).
    saw_weak_cycle: bool,
}

impl Oracle {
    /// Every simple cycle, as the kind sets of its edges (each cycle once, from its least node).
    fn cycles(&self) -> Vec<Vec<u8>> {
        let nodes: BTreeSet<Node> = self.edges.keys().flat_map(|&(a, b)| [a, b]).collect();
        let nodes: Vec<Node> = nodes.into_iter().collect();
        let ix = |n: Node| nodes.binary_search(&n).expect("node");
        let mut adj = vec![Vec::new(); nodes.len()];
        for (&(a, b), &k) in &self.edges {
            adj[ix(a)].push((ix(b), k));
        }
        fn walk(
            start: usize,
            at: usize,
            adj: &[Vec<(usize, u8)>],
            on_path: &mut [bool],
            kinds: &mut Vec<u8>,
            out: &mut Vec<Vec<u8>>,
        ) {
            for &(next, k) in &adj[at] {
                kinds.push(k);
                if next == start {
                    out.push(kinds.clone());
                } else if next > start && !on_path[next] {
                    on_path[next] = true;
                    walk(start, next, adj, on_path, kinds, out);
                    on_path[next] = false;
                }
                kinds.pop();
            }
        }
        let mut out = Vec::new();
        for s in 0..nodes.len() {
            let mut on_path = vec![false; nodes.len()];
            on_path[s] = true;
            walk(s, s, &adj, &mut on_path, &mut Vec::new(), &mut out);
        }
        out
    }

    fn add_edge(&mut self, held: Node, k: u8, next: Node, found: &mut BTreeSet<Problem>) {
        let kinds = self.edges.entry((held, next)).or_insert(0);
        if *kinds & (1 << k) != 0 {
            return;
        }
        *kinds |= 1 << k;
        let cycles = self.cycles();
        if cycles.iter().any(|c| strong(c)) {
            found.insert(Problem::Cycle);
        } else if !cycles.is_empty() {
            self.saw_weak_cycle = true;
        }
    }

    /// The checks of a blocking acquisition of `e` on top of `below`.
    fn validate(&mut self, below: &[Entry], e: Entry, found: &mut BTreeSet<Problem>) {
        if e.trylock {
            return;
        }
        if below.iter().any(|h| {
            h.node == e.node && !(e.mode == Mode::RecursiveShared && h.mode != Mode::Exclusive)
        }) {
            found.insert(Problem::Recursive);
            return;
        }
        for h in below.iter().rev() {
            if h.node != e.node {
                self.add_edge(h.node, kind(h.mode, e.mode), e.node, found);
            }
            if !h.trylock {
                break;
            }
        }
    }

    fn acquire(&mut self, held: &mut Vec<Entry>, e: Entry, found: &mut BTreeSet<Problem>) {
        self.validate(held, e, found);
        held.push(e);
    }

    fn release(&mut self, held: &mut Vec<Entry>, pos: usize, found: &mut BTreeSet<Problem>) {
        let above = held.split_off(pos + 1);
        held.pop();
        for e in above {
            self.acquire(held, e, found);
        }
    }

    /// The first step (thread, index) at which a problem is found, and its problems.
    fn run(&mut self, threads: &[Vec<Step>]) -> Option<(usize, usize, BTreeSet<Problem>)> {
        for (t, steps) in threads.iter().enumerate() {
            let mut held: Vec<Entry> = Vec::new();
            let mut sections: Vec<bool> = Vec::new();
            let map_pos = |held: &[Entry]| held.iter().position(|e| e.node == Node::FenceMap);
            for (i, step) in steps.iter().enumerate() {
                let mut found = BTreeSet::new();
                match *step {
                    Step::Acquire {
                        class,
                        mode,
                        trylock,
                        inst,
                    } => {
                        let e = Entry {
                            node: Node::Class(class),
                            mode,
                            trylock,
                            inst,
                        };
                        self.acquire(&mut held, e, &mut found);
                    }
                    Step::Release { inst, .. } => {
                        let pos = held
                            .iter()
                            .position(|e| e.inst == inst && e.node != Node::FenceMap)
                            .expect("released lock is held");
                        self.release(&mut held, pos, &mut found);
                    }
                    Step::Begin => {
                        let owner = map_pos(&held).is_none();
                        if owner {
                            self.acquire(&mut held, Entry::map(Mode::Shared), &mut found);
                        }
                        sections.push(owner);
                    }
                    Step::End => {
                        if sections.pop().expect("open section") {
                            let pos = map_pos(&held).expect("section held");
                            self.release(&mut held, pos, &mut found);
                        }
                    }
                    Step::Wait => {
                        let in_section = map_pos(&held);
                        if let Some(pos) = in_section {
                            found.insert(Problem::WaitInSection);
                            self.release(&mut held, pos, &mut found);
                        }
                        self.acquire(&mut held, Entry::map(Mode::Exclusive), &mut found);
                        let top = held.len() - 1;
                        self.release(&mut held, top, &mut found);
                        if in_section.is_some() {
                            self.acquire(&mut held, Entry::map(Mode::Shared), &mut found);
                        }
                    }
                }
                if !found.is_empty() {
                    return Some((t, i, found));
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The property.

#[derive(Debug, Default)]
struct Coverage {
    cases: usize,
    clean: usize,
    recursive: usize,
    cycle: usize,
    wait: usize,
    weak_cycle: usize,
    out_of_order: usize,
}

fn check(p: &Program, cov: &mut Coverage) -> Result<(), TestCaseError> {
    let classes: Vec<&'static LockClass> = (0..p.classes)
        .map(|i| LockClass::leak(format!("oracle.c{i}")))
        .collect();
    let steps = resolve(p);
    let got = run_validator(&classes, &steps);
    let validator_first = got
        .iter()
        .enumerate()
        .flat_map(|(t, per_step)| per_step.iter().enumerate().map(move |(i, s)| (t, i, s)))
        .find(|(_, _, s)| !s.is_empty())
        .map(|(t, i, s)| (t, i, s.clone()));
    let mut oracle = Oracle::default();
    let oracle_first = oracle.run(&steps);
    prop_assert_eq!(
        &validator_first,
        &oracle_first,
        "validator (left) and oracle (right) disagree on the first problem \
         (thread, step, problems); steps:\n{}",
        show(&steps)
    );
    prop_assert!(
        take_reports().is_empty(),
        "a report escaped capture (another thread?)"
    );

    cov.cases += 1;
    match &oracle_first {
        None => cov.clean += 1,
        Some((_, _, s)) => {
            cov.recursive += usize::from(s.contains(&Problem::Recursive));
            cov.cycle += usize::from(s.contains(&Problem::Cycle));
            cov.wait += usize::from(s.contains(&Problem::WaitInSection));
        }
    }
    cov.weak_cycle += usize::from(oracle.saw_weak_cycle);
    cov.out_of_order += usize::from(
        p.threads
            .iter()
            .flatten()
            .any(|o| matches!(o, Op::UnlockAt(_))),
    );
    Ok(())
}

#[test]
fn validator_agrees_with_brute_force_oracle() {
    set_report_mode(ReportMode::Collect);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let cov = RefCell::new(Coverage::default());
    if let Err(e) = runner.run(&program(), |p| check(&p, &mut cov.borrow_mut())) {
        panic!("{e}");
    }
    let cov = cov.into_inner();
    eprintln!("{cov:?}");
    // The generator must keep producing every kind of verdict, or the property says little.
    let some = cases as usize / 50;
    assert!(
        cov.clean >= some
            && cov.recursive >= some
            && cov.cycle >= some
            && cov.wait >= some
            && cov.weak_cycle >= some,
        "generator coverage too thin: {cov:?}"
    );
}
