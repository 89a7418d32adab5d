//! Port of the kernel's lock-validator self-test (`lib/locking-selftest.c`): its generic cases
//! (no interrupt contexts, no ww_mutexes) and its fs_reclaim cases. A SUCCESS case must leave
//! the validator silent; a FAILURE case must make it report exactly one problem, of the kind the
//! kernel's lockdep reports (and, for a cycle, through the classes the kernel's cycle runs
//! through).
//!
//! # Lock types
//!
//! The kernel runs most cases once per lock type, the columns of its result table. Only the
//! mode an acquisition is validated as matters to the validator; the columns map onto this
//! crate's tracked locks as follows:
//!
//! | column | kernel                          | here                        | mode              |
//! |--------|---------------------------------|-----------------------------|-------------------|
//! | spin   | `spin_lock` (`spinlock_t`)      | `Mutex::lock`               | `Exclusive`       |
//! | wlock  | `write_lock` (`rwlock_t`)       | `RecursiveRwLock` `write`   | `Exclusive`       |
//! | rlock  | `read_lock` (`rwlock_t`)        | `RecursiveRwLock` `read`    | `RecursiveShared` |
//! | mutex  | `mutex_lock` (`struct mutex`)   | `Mutex::lock`               | `Exclusive`       |
//! | wsem   | `down_write` (`rw_semaphore`)   | `RwLock::write`             | `Exclusive`       |
//! | rsem   | `down_read` (`rw_semaphore`)    | `RwLock::read`              | `Shared`          |
//!
//! The self-test forces `read_lock` on an `rwlock_t` to be a recursive read while these cases
//! run, so it maps onto `RecursiveRwLock`'s read; `down_read` may queue behind a waiting writer
//! and is a non-recursive read, as is `RwLock::read`. The spin and mutex columns are the same
//! lock here (a sleeping/spinning distinction the validator does not make); the kernel's
//! rt_mutex column is a third copy of them and is not repeated.
//!
//! # Classes and threads
//!
//! In the kernel each of `A`..`D` is a class of its own, and `X1`/`X2` are two locks of one
//! class `X` (so that "AA" does not deadlock for real). Here every case makes fresh classes named
//! `selftest.<case>.<class>` (the validator's graph is global and tests run in parallel), with
//! one lock object per kernel lock: `X1` and `X2` are two locks of class `selftest.<case>.X`.
//! The kernel runs each case in one task, event after event; here each runs the same way on a
//! thread of its own (the held-lock stack is per thread, and some cases leave it dirty), inside
//! `capture`. Locks a case leaves held are released, innermost first, when it ends.
//!
//! A kernel unlock of a lock that is not held (the double unlock) cannot be written with guards;
//! it is the bare release hook, which is what a tracked lock's unlock calls.
//!
//! # fs_reclaim
//!
//! * `fs_reclaim_acquire(GFP_KERNEL)` .. `fs_reclaim_release(GFP_KERNEL)`: a
//!   `reclaim::reclaim_scope()` guard.
//! * `might_alloc(GFP_KERNEL)`: `reclaim::might_reclaim()`.
//! * `might_alloc(GFP_NOFS)`: `reclaim::might_reclaim()` inside a `reclaim::no_reclaim_scope()`
//!   — the crate has no allocation flags; an allocation that may not recurse into reclaim is one
//!   made in a no-reclaim scope.
//! * `memalloc_nofs_save()` .. `memalloc_nofs_restore()`: a `reclaim::no_reclaim_scope()` guard.
//!
//! # Not ported
//!
//! * `init_held_{spin,wlock,rlock,mutex,wsem,rsem}` (re-initialising a held lock, FAILURE):
//!   not representable — a guard borrows its lock, so assigning a new lock over a held one (or
//!   dropping it) does not compile.
//! * The interrupt-context cases (`irqsafe*`, `irq_inversion*`, `irq_read_recursion*`,
//!   `queued_read_lock_hardirq_*`, `local_lock_*`, `hardirq_unsafe_softirq_safe`): user space
//!   has no interrupt contexts, and the validator has no irq-safety rules.
//! * The wait-context cases (`*_in_HARDIRQ` .. `*_in_mutex`): the validator has no
//!   lock-nesting-type (wait context) rules.
//! * `lockdep_set_subclass_name`: the validator has no subclasses.
//! * The ww_mutex cases: ported in `crates/ww/tests/ww_selftest.rs` (and the acquire-context
//!   rules' unit tests in `src/ww.rs`).
//! * `bad_unlock_order` is no longer in the kernel's file; it is ported from the versions that
//!   had it, with the verdict they gave without `CONFIG_DEBUG_NON_NESTED_UNLOCKS` (SUCCESS),
//!   which is this crate's rule: releases in any order are fine.

use dmabuf_lockdep::reclaim::{self, RECLAIM};
use dmabuf_lockdep::{
    ClassId, Kind, LockClass, Mutex, RecursiveRwLock, Report, RwLock, capture, is_held, release,
};
use std::any::Any;
use std::collections::HashMap;
use std::thread;

// ---------------------------------------------------------------------------------------------
// The harness.

/// The kernel's lock types: the columns of its result table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Spin,
    WLock,
    RLock,
    Mutex,
    WSem,
    RSem,
}

impl Ty {
    /// The column's name, as the kernel suffixes its cases.
    fn column(self) -> &'static str {
        match self {
            Ty::Spin => "spin",
            Ty::WLock => "wlock",
            Ty::RLock => "rlock",
            Ty::Mutex => "mutex",
            Ty::WSem => "wsem",
            Ty::RSem => "rsem",
        }
    }
}

/// A lock object of a case (leaked, so its guards can be kept in the case).
#[derive(Clone, Copy)]
enum Obj {
    /// `spinlock_t` or `struct mutex`.
    Mutex(&'static Mutex<()>),
    /// `rwlock_t`.
    RwLock(&'static RecursiveRwLock<()>),
    /// `struct rw_semaphore`.
    RwSem(&'static RwLock<()>),
}

impl Obj {
    fn class(self) -> &'static LockClass {
        match self {
            Obj::Mutex(m) => m.class(),
            Obj::RwLock(l) => l.class(),
            Obj::RwSem(s) => s.class(),
        }
    }

    /// The instance key the tracked locks give the validator: the lock's address.
    fn addr(self) -> usize {
        match self {
            Obj::Mutex(m) => std::ptr::from_ref(m).addr(),
            Obj::RwLock(l) => std::ptr::from_ref(l).addr(),
            Obj::RwSem(s) => std::ptr::from_ref(s).addr(),
        }
    }
}

/// One case: its classes, its locks (by kernel name: `A`, `X1`, ...) and the guards it holds.
struct Case {
    name: String,
    classes: HashMap<String, &'static LockClass>,
    objs: HashMap<&'static str, Obj>,
    held: Vec<(&'static str, Box<dyn Any>)>,
}

/// The class of a kernel lock name: `X1` and `X2` are of class `X`, `A` of class `A`.
fn class_of(lock: &str) -> &str {
    lock.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// The full name of a case's class.
fn class_name(case: &str, class: &str) -> String {
    format!("selftest.{case}.{class}")
}

impl Case {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            classes: HashMap::new(),
            objs: HashMap::new(),
            held: Vec::new(),
        }
    }

    fn obj(&mut self, ty: Ty, lock: &'static str) -> Obj {
        let class = class_of(lock);
        let class = *self
            .classes
            .entry(class.to_owned())
            .or_insert_with(|| LockClass::leak(class_name(&self.name, class)));
        *self.objs.entry(lock).or_insert_with(|| match ty {
            Ty::Spin | Ty::Mutex => Obj::Mutex(Box::leak(Box::new(Mutex::new(class, ())))),
            Ty::WLock | Ty::RLock => Obj::RwLock(Box::leak(Box::new(
                RecursiveRwLock::new_recursive(class, ()),
            ))),
            Ty::WSem | Ty::RSem => Obj::RwSem(Box::leak(Box::new(RwLock::new(class, ())))),
        })
    }

    /// Takes `lock` as a `ty` (kernel: `L`, `WL`, `RL`, `ML`, `WSL`, `RSL`).
    fn lock(&mut self, ty: Ty, lock: &'static str) {
        let guard: Box<dyn Any> = match (ty, self.obj(ty, lock)) {
            (Ty::Spin | Ty::Mutex, Obj::Mutex(m)) => Box::new(m.lock()),
            (Ty::WLock, Obj::RwLock(l)) => Box::new(l.write()),
            (Ty::RLock, Obj::RwLock(l)) => Box::new(l.read()),
            (Ty::WSem, Obj::RwSem(s)) => Box::new(s.write()),
            (Ty::RSem, Obj::RwSem(s)) => Box::new(s.read()),
            _ => panic!("{}: lock {lock} used as two lock types", self.name),
        };
        self.held.push((lock, guard));
    }

    /// Releases the latest hold of `lock`; if this case does not hold it, makes the release
    /// call a tracked lock's unlock makes anyway (the kernel's second unlock).
    fn unlock(&mut self, lock: &'static str) {
        match self.held.iter().rposition(|(l, _)| *l == lock) {
            Some(pos) => drop(self.held.remove(pos)),
            None => {
                let obj = self.objs[lock];
                release(obj.class(), obj.addr());
            }
        }
    }

    /// `outer` held while `inner` is taken, then both released (kernel: `LOCK_UNLOCK_2`, and
    /// the three events of the recursive-read cases).
    fn nest(
        &mut self,
        (outer_ty, outer): (Ty, &'static str),
        (inner_ty, inner): (Ty, &'static str),
    ) {
        self.lock(outer_ty, outer);
        self.lock(inner_ty, inner);
        self.unlock(inner);
        self.unlock(outer);
    }

    /// Kernel: `LOCK_UNLOCK_2(a, b)` with one lock type.
    fn lock_unlock_2(&mut self, ty: Ty, a: &'static str, b: &'static str) {
        self.nest((ty, a), (ty, b));
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        while let Some(guard) = self.held.pop() {
            drop(guard);
        }
    }
}

/// Runs a case on a thread of its own and returns every report made there, the releases of
/// whatever it left held included.
fn run(case: &str, body: impl FnOnce(&mut Case) + Send) -> Vec<Report> {
    thread::scope(|s| {
        s.spawn(|| {
            capture(|| {
                let mut c = Case::new(case);
                body(&mut c);
            })
            .1
        })
        .join()
        .expect("case body panicked")
    })
}

/// What the kernel expects of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// No report at all.
    Success,
    /// Exactly one report, of this kind.
    Failure(Kind),
}

const CYCLE: Verdict = Verdict::Failure(Kind::CircularDependency);
const RECURSIVE: Verdict = Verdict::Failure(Kind::RecursiveLocking);
const BAD_UNLOCK: Verdict = Verdict::Failure(Kind::BadUnlock);

fn kinds(reports: &[Report]) -> Vec<Kind> {
    reports.iter().map(|r| r.kind).collect()
}

fn text(reports: &[Report]) -> String {
    reports.iter().map(ToString::to_string).collect()
}

/// Checks `reports` against `verdict`; for a failure, also that the report is about `class`
/// (a kernel lock name) and, for a cycle, that the cycle runs through `cycle` (kernel lock
/// names, the class that closed it first).
fn check(case: &str, reports: &[Report], verdict: Verdict, class: &str, cycle: &[&str]) {
    match verdict {
        Verdict::Success => assert!(
            reports.is_empty(),
            "{case}: expected SUCCESS (no report), got {:?}:\n{}",
            kinds(reports),
            text(reports)
        ),
        Verdict::Failure(kind) => {
            assert_eq!(
                kinds(reports),
                [kind],
                "{case}: expected FAILURE with exactly one {kind:?} report:\n{}",
                text(reports)
            );
            let r = &reports[0];
            assert_eq!(
                r.class.map(ClassId::name),
                Some(class_name(case, class_of(class)).as_str()),
                "{case}: the report names the wrong class:\n{r}"
            );
            if kind == Kind::CircularDependency {
                let expected: Vec<String> = cycle
                    .iter()
                    .map(|l| class_name(case, class_of(l)))
                    .collect();
                assert_eq!(r.cycle_classes(), expected, "{case}: wrong cycle:\n{r}");
            }
        }
    }
}

/// Runs one case over the kernel's lock-type columns: `events` with each type in `rows`,
/// checked against that row's verdict. `class` and `cycle` are as for [`check`].
fn columns(
    base: &str,
    events: fn(&mut Case, Ty),
    class: &str,
    cycle: &[&str],
    rows: &[(Ty, Verdict)],
) {
    for &(ty, verdict) in rows {
        let case = format!("{base}_{}", ty.column());
        let reports = run(&case, |c| events(c, ty));
        check(&case, &reports, verdict, class, cycle);
    }
}

// ---------------------------------------------------------------------------------------------
// Deadlocks, one lock type at a time. The kernel expects FAILURE in every column but rlock:
// recursive reads of one class nest, and a cycle of recursive reads is no deadlock, since each
// reader gets in while the others hold the lock for reading.

#[test]
fn aa() {
    columns(
        "AA",
        |c, t| {
            c.lock(t, "X1");
            c.lock(t, "X2");
        },
        "X2",
        &[],
        &[
            // ports locking-selftest: AA_spin
            (Ty::Spin, RECURSIVE),
            // ports locking-selftest: AA_wlock
            (Ty::WLock, RECURSIVE),
            // ports locking-selftest: AA_rlock
            (Ty::RLock, Verdict::Success),
            // ports locking-selftest: AA_mutex
            (Ty::Mutex, RECURSIVE),
            // ports locking-selftest: AA_wsem
            (Ty::WSem, RECURSIVE),
            // ports locking-selftest: AA_rsem
            (Ty::RSem, RECURSIVE),
        ],
    );
}

/// The rows of the kernel's "rlock must not trigger" table, for a cycle.
const CYCLE_BUT_RLOCK: [(Ty, Verdict); 6] = [
    (Ty::Spin, CYCLE),
    (Ty::WLock, CYCLE),
    (Ty::RLock, Verdict::Success),
    (Ty::Mutex, CYCLE),
    (Ty::WSem, CYCLE),
    (Ty::RSem, CYCLE),
];

// ports locking-selftest: ABBA_spin, ABBA_wlock, ABBA_rlock (SUCCESS), ABBA_mutex, ABBA_wsem,
// ABBA_rsem
#[test]
fn abba() {
    columns(
        "ABBA",
        |c, t| {
            c.lock_unlock_2(t, "A", "B");
            c.lock_unlock_2(t, "B", "A");
        },
        "A",
        &["B", "A"],
        &CYCLE_BUT_RLOCK,
    );
}

// ports locking-selftest: ABBCCA_spin, ABBCCA_wlock, ABBCCA_rlock (SUCCESS), ABBCCA_mutex,
// ABBCCA_wsem, ABBCCA_rsem
#[test]
fn abbcca() {
    columns(
        "ABBCCA",
        |c, t| {
            c.lock_unlock_2(t, "A", "B");
            c.lock_unlock_2(t, "B", "C");
            c.lock_unlock_2(t, "C", "A");
        },
        "A",
        &["C", "A", "B"],
        &CYCLE_BUT_RLOCK,
    );
}

// ports locking-selftest: ABCABC_spin, ABCABC_wlock, ABCABC_rlock (SUCCESS), ABCABC_mutex,
// ABCABC_wsem, ABCABC_rsem
#[test]
fn abcabc() {
    columns(
        "ABCABC",
        |c, t| {
            c.lock_unlock_2(t, "A", "B");
            c.lock_unlock_2(t, "C", "A");
            c.lock_unlock_2(t, "B", "C");
        },
        "C",
        &["B", "C", "A"],
        &CYCLE_BUT_RLOCK,
    );
}

// ports locking-selftest: ABBCCDDA_spin, ABBCCDDA_wlock, ABBCCDDA_rlock (SUCCESS),
// ABBCCDDA_mutex, ABBCCDDA_wsem, ABBCCDDA_rsem
#[test]
fn abbccdda() {
    columns(
        "ABBCCDDA",
        |c, t| {
            c.lock_unlock_2(t, "A", "B");
            c.lock_unlock_2(t, "B", "C");
            c.lock_unlock_2(t, "C", "D");
            c.lock_unlock_2(t, "D", "A");
        },
        "A",
        &["D", "A", "B", "C"],
        &CYCLE_BUT_RLOCK,
    );
}

// ports locking-selftest: ABCDBDDA_spin, ABCDBDDA_wlock, ABCDBDDA_rlock (SUCCESS),
// ABCDBDDA_mutex, ABCDBDDA_wsem, ABCDBDDA_rsem
#[test]
fn abcdbdda() {
    columns(
        "ABCDBDDA",
        |c, t| {
            c.lock_unlock_2(t, "A", "B");
            c.lock_unlock_2(t, "C", "D");
            c.lock_unlock_2(t, "B", "D");
            c.lock_unlock_2(t, "D", "A");
        },
        "A",
        &["D", "A", "B"],
        &CYCLE_BUT_RLOCK,
    );
}

// ports locking-selftest: ABCDBCDA_spin, ABCDBCDA_wlock, ABCDBCDA_rlock (SUCCESS),
// ABCDBCDA_mutex, ABCDBCDA_wsem, ABCDBCDA_rsem
#[test]
fn abcdbcda() {
    columns(
        "ABCDBCDA",
        |c, t| {
            c.lock_unlock_2(t, "A", "B");
            c.lock_unlock_2(t, "C", "D");
            c.lock_unlock_2(t, "B", "C");
            c.lock_unlock_2(t, "D", "A");
        },
        "A",
        &["D", "A", "B", "C"],
        &CYCLE_BUT_RLOCK,
    );
}

// ---------------------------------------------------------------------------------------------
// Unlocking.

// ports locking-selftest: double_unlock_spin, double_unlock_wlock, double_unlock_rlock,
// double_unlock_mutex, double_unlock_wsem, double_unlock_rsem (all FAILURE)
#[test]
fn double_unlock() {
    columns(
        "double_unlock",
        |c, t| {
            c.lock(t, "A");
            c.unlock("A");
            c.unlock("A");
        },
        "A",
        &[],
        &[
            (Ty::Spin, BAD_UNLOCK),
            (Ty::WLock, BAD_UNLOCK),
            (Ty::RLock, BAD_UNLOCK),
            (Ty::Mutex, BAD_UNLOCK),
            (Ty::WSem, BAD_UNLOCK),
            (Ty::RSem, BAD_UNLOCK),
        ],
    );
}

// ports locking-selftest: bad_unlock_order_spin, bad_unlock_order_wlock, bad_unlock_order_rlock,
// bad_unlock_order_mutex, bad_unlock_order_wsem, bad_unlock_order_rsem (all SUCCESS; see the
// module documentation)
#[test]
fn bad_unlock_order() {
    columns(
        "bad_unlock_order",
        |c, t| {
            c.lock(t, "A");
            c.lock(t, "B");
            c.unlock("A");
            c.unlock("B");
        },
        "A",
        &[],
        &[
            (Ty::Spin, Verdict::Success),
            (Ty::WLock, Verdict::Success),
            (Ty::RLock, Verdict::Success),
            (Ty::Mutex, Verdict::Success),
            (Ty::WSem, Verdict::Success),
            (Ty::RSem, Verdict::Success),
        ],
    );
}

// ports locking-selftest: init_held_{spin,wlock,rlock,mutex,wsem,rsem} — not representable
// (see the module documentation).

// ---------------------------------------------------------------------------------------------
// Reads and writes of one class: rwlock_t reads recurse, rw_semaphore reads do not, and a read
// never nests with a write.

/// Runs a one-off case; the only cycle these cases close is `Y -> X -> Y`.
fn single(case: &str, body: impl FnOnce(&mut Case) + Send, verdict: Verdict, class: &str) {
    let reports = run(case, body);
    check(case, &reports, verdict, class, &["Y", "X"]);
}

// ports locking-selftest: rlock_AA1
#[test]
fn rlock_aa1() {
    let body = |c: &mut Case| {
        c.lock(Ty::RLock, "X1");
        c.lock(Ty::RLock, "X1");
    };
    single("rlock_AA1", body, Verdict::Success, "X1");
}

// ports locking-selftest: rsem_AA1
#[test]
fn rsem_aa1() {
    let body = |c: &mut Case| {
        c.lock(Ty::RSem, "X1");
        c.lock(Ty::RSem, "X1");
    };
    single("rsem_AA1", body, RECURSIVE, "X1");
}

// ports locking-selftest: rlock_AA1B
#[test]
fn rlock_aa1b() {
    let body = |c: &mut Case| {
        c.lock(Ty::RLock, "X1");
        c.lock(Ty::RLock, "X2");
    };
    single("rlock_AA1B", body, Verdict::Success, "X2");
}

// ports locking-selftest: rsem_AA1B
#[test]
fn rsem_aa1b() {
    let body = |c: &mut Case| {
        c.lock(Ty::RSem, "X1");
        c.lock(Ty::RSem, "X2");
    };
    single("rsem_AA1B", body, RECURSIVE, "X2");
}

// ports locking-selftest: rlock_AA2
#[test]
fn rlock_aa2() {
    let body = |c: &mut Case| {
        c.lock(Ty::RLock, "X1");
        c.lock(Ty::WLock, "X2");
    };
    single("rlock_AA2", body, RECURSIVE, "X2");
}

// ports locking-selftest: rsem_AA2
#[test]
fn rsem_aa2() {
    let body = |c: &mut Case| {
        c.lock(Ty::RSem, "X1");
        c.lock(Ty::WSem, "X2");
    };
    single("rsem_AA2", body, RECURSIVE, "X2");
}

// ports locking-selftest: rlock_AA3
#[test]
fn rlock_aa3() {
    let body = |c: &mut Case| {
        c.lock(Ty::WLock, "X1");
        c.lock(Ty::RLock, "X2");
    };
    single("rlock_AA3", body, RECURSIVE, "X2");
}

// ports locking-selftest: rsem_AA3
#[test]
fn rsem_aa3() {
    let body = |c: &mut Case| {
        c.lock(Ty::WSem, "X1");
        c.lock(Ty::RSem, "X2");
    };
    single("rsem_AA3", body, RECURSIVE, "X2");
}

// ---------------------------------------------------------------------------------------------
// ABBA with a reader-writer lock `X` and a plain lock `Y`: first `X` (read or write) then `Y`,
// then `Y` then `X` (read or write). Every failing one closes the cycle `Y -> X -> Y` when `X`
// is taken under `Y`.

/// `X` taken as `first` with `Y` (a `plain`) under it, then `Y` with `X` taken as `second` under
/// it.
fn abba_rw(c: &mut Case, plain: Ty, first: Ty, second: Ty) {
    c.nest((first, "X1"), (plain, "Y1"));
    c.nest((plain, "Y1"), (second, "X1"));
}

// ports locking-selftest: rlock_ABBA1 — read X, lock Y | lock Y, write X
#[test]
fn rlock_abba1() {
    let body = |c: &mut Case| abba_rw(c, Ty::Spin, Ty::RLock, Ty::WLock);
    single("rlock_ABBA1", body, CYCLE, "X1");
}

// ports locking-selftest: rwsem_ABBA1 — read X, lock Y | lock Y, write X
#[test]
fn rwsem_abba1() {
    let body = |c: &mut Case| abba_rw(c, Ty::Mutex, Ty::RSem, Ty::WSem);
    single("rwsem_ABBA1", body, CYCLE, "X1");
}

// ports locking-selftest: rlock_chaincache_ABBA1 — read X, lock Y | lock Y, read X (fine) |
// lock Y, write X: the chain "Y, then X" validated for a read must not let the same chain with
// a write through unchecked.
#[test]
fn rlock_chaincache_abba1() {
    let body = |c: &mut Case| {
        c.nest((Ty::RLock, "X1"), (Ty::Spin, "Y1"));
        c.nest((Ty::Spin, "Y1"), (Ty::RLock, "X1"));
        c.nest((Ty::Spin, "Y1"), (Ty::WLock, "X1"));
    };
    single("rlock_chaincache_ABBA1", body, CYCLE, "X1");
}

// ports locking-selftest: rlock_ABBA2 — read X, lock Y | lock Y, read X (SUCCESS: the
// second read gets in while the first is held)
#[test]
fn rlock_abba2() {
    let body = |c: &mut Case| abba_rw(c, Ty::Spin, Ty::RLock, Ty::RLock);
    single("rlock_ABBA2", body, Verdict::Success, "X1");
}

// ports locking-selftest: rwsem_ABBA2 — read X, lock Y | lock Y, read X (FAILURE: the second
// read can queue behind a writer waiting for the first)
#[test]
fn rwsem_abba2() {
    let body = |c: &mut Case| abba_rw(c, Ty::Mutex, Ty::RSem, Ty::RSem);
    single("rwsem_ABBA2", body, CYCLE, "X1");
}

// ports locking-selftest: rlock_ABBA3 — write X, lock Y | lock Y, write X
#[test]
fn rlock_abba3() {
    let body = |c: &mut Case| abba_rw(c, Ty::Spin, Ty::WLock, Ty::WLock);
    single("rlock_ABBA3", body, CYCLE, "X1");
}

// ports locking-selftest: rwsem_ABBA3 — write X, lock Y | lock Y, write X
#[test]
fn rwsem_abba3() {
    let body = |c: &mut Case| abba_rw(c, Ty::Mutex, Ty::WSem, Ty::WSem);
    single("rwsem_ABBA3", body, CYCLE, "X1");
}

// ---------------------------------------------------------------------------------------------
// Dependency paths through recursive reads: three rwlock_t classes X, Y, Z and three events,
// each holding one lock while taking the next (X under nothing, X -> Y, Y -> Z, Z -> X), run in
// all six orders. A cycle is a deadlock unless somewhere along it a lock taken as a recursive
// read is next held as a read: those two readers both get in.

/// One event: `.0` held while `.1` is taken, then both released.
type Event = ((Ty, &'static str), (Ty, &'static str));

/// The kernel's six orders of three events.
const ORDERS: [[usize; 3]; 6] = [
    [1, 2, 3],
    [1, 3, 2],
    [2, 1, 3],
    [2, 3, 1],
    [3, 1, 2],
    [3, 2, 1],
];

/// Runs the three events (`X -> Y`, `Y -> Z`, `Z -> X`) in every order. A failing order is
/// closed by its last event, so the cycle starts at that event's held class.
fn orders(base: &str, events: [Event; 3], verdict: Verdict) {
    for order in ORDERS {
        let case = format!("{base}_{}{}{}", order[0], order[1], order[2]);
        let reports = run(&case, |c| {
            for i in order {
                let (outer, inner) = events[i - 1];
                c.nest(outer, inner);
            }
        });
        let last = order[2] - 1;
        let cycle: Vec<&str> = (0..3).map(|k| events[(last + k) % 3].0.1).collect();
        check(&case, &reports, verdict, events[last].1.1, &cycle);
    }
}

const W: Ty = Ty::WLock;
const R: Ty = Ty::RLock;

// ports locking-selftest: W1R2_W2R3_W3R1_123, _132, _213, _231, _312, _321 — write X read Y |
// write Y read Z | write Z read X: a deadlock even with recursive reads (each read waits for a
// writer)
#[test]
fn w1r2_w2r3_w3r1() {
    orders(
        "W1R2_W2R3_W3R1",
        [
            ((W, "X1"), (R, "Y1")),
            ((W, "Y1"), (R, "Z1")),
            ((W, "Z1"), (R, "X1")),
        ],
        CYCLE,
    );
}

// ports locking-selftest: W1W2_R2R3_W3R1_123, _132, _213, _231, _312, _321 — write X write Y
// | read Y read Z | write Z read X: a deadlock even with recursive reads
#[test]
fn w1w2_r2r3_w3r1() {
    orders(
        "W1W2_R2R3_W3R1",
        [
            ((W, "X1"), (W, "Y1")),
            ((R, "Y1"), (R, "Z1")),
            ((W, "Z1"), (R, "X1")),
        ],
        CYCLE,
    );
}

// ports locking-selftest: W1R2_R2R3_W3W1_123, _132, _213, _231, _312, _321 — what the kernel
// runs under this name is write X write Y | read Y read Z | read Z write X (its name and its
// events are swapped with the next case's): no deadlock, Z is taken as a recursive read under Y
// and then held as a read.
#[test]
fn w1r2_r2r3_w3w1() {
    orders(
        "W1R2_R2R3_W3W1",
        [
            ((W, "X1"), (W, "Y1")),
            ((R, "Y1"), (R, "Z1")),
            ((R, "Z1"), (W, "X1")),
        ],
        Verdict::Success,
    );
}

// ports locking-selftest: W1W2_R2R3_R3W1_123, _132, _213, _231, _312, _321 — what the kernel
// runs under this name is write X read Y | read Y read Z | write Z write X: no deadlock, Y is
// taken as a recursive read under X and then held as a read.
#[test]
fn w1w2_r2r3_r3w1() {
    orders(
        "W1W2_R2R3_R3W1",
        [
            ((W, "X1"), (R, "Y1")),
            ((R, "Y1"), (R, "Z1")),
            ((W, "Z1"), (W, "X1")),
        ],
        Verdict::Success,
    );
}

// ---------------------------------------------------------------------------------------------
// fs_reclaim: allocating inside reclaim. The reclaim pseudo-lock is one process-wide class, so
// these cases share it; each runs on its own thread.

/// Runs a reclaim case on a thread of its own; checks that it really ran inside reclaim.
fn run_reclaim(body: impl FnOnce() + Send) -> Vec<Report> {
    thread::scope(|s| {
        s.spawn(|| {
            capture(|| {
                let _reclaiming = reclaim::reclaim_scope();
                assert!(is_held(&RECLAIM));
                body();
            })
            .1
        })
        .join()
        .expect("case body panicked")
    })
}

// ports locking-selftest: fs_reclaim_correct_nesting — a GFP_NOFS allocation inside reclaim
#[test]
fn fs_reclaim_correct_nesting() {
    let reports = run_reclaim(|| {
        let _nofs = reclaim::no_reclaim_scope();
        reclaim::might_reclaim();
    });
    assert!(
        reports.is_empty(),
        "fs_reclaim_correct_nesting: {:?}\n{}",
        kinds(&reports),
        text(&reports)
    );
}

// ports locking-selftest: fs_reclaim_wrong_nesting — a GFP_KERNEL allocation inside reclaim:
// reclaim recursing into itself, the pseudo-lock taken while held
#[test]
fn fs_reclaim_wrong_nesting() {
    let reports = run_reclaim(reclaim::might_reclaim);
    assert_eq!(
        kinds(&reports),
        [Kind::RecursiveLocking],
        "fs_reclaim_wrong_nesting:\n{}",
        text(&reports)
    );
    assert_eq!(reports[0].class.map(ClassId::name), Some(RECLAIM.name()));
}

// ports locking-selftest: fs_reclaim_protected_nesting — a GFP_KERNEL allocation inside
// reclaim, under memalloc_nofs_save()
#[test]
fn fs_reclaim_protected_nesting() {
    let reports = run_reclaim(|| {
        let nofs = reclaim::no_reclaim_scope();
        reclaim::might_reclaim();
        drop(nofs);
    });
    assert!(
        reports.is_empty(),
        "fs_reclaim_protected_nesting: {:?}\n{}",
        kinds(&reports),
        text(&reports)
    );
}
