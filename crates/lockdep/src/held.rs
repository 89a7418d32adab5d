//! The per-thread stack of held locks and the acquire/release entry points (kernel:
//! `lock_acquire()` / `lock_release()`, `task_struct::held_locks`).
//!
//! On each acquisition the validator looks at what this thread already holds: the same class
//! again is recursive locking; otherwise a dependency is recorded from the topmost held lock
//! (and any trylocked ones above it) to the new one, and checked for a cycle. The key of the
//! held chain plus the new acquisition is remembered once validated ([`crate::chains`]), so an
//! acquisition pattern this thread met lately costs one look at a slot of a thread-local table
//! and a push, and its release a pop.
//!
//! # Rules
//! * Trylocks cannot deadlock: a trylock acquisition is not validated and adds no dependency
//!   towards itself (locks taken while it is held still depend on it).
//! * A recursive read of a class already held for reading is allowed; anything else on a held
//!   class is recursive locking, unless it names a held *nest lock* (as ww_mutexes do with
//!   their acquire context), in which case it is merged into the held entry.
//! * Releasing a lock that is not held is reported. Releasing one that is not the innermost
//!   validates the locks above it again, as if acquired on the shorter stack (kernel:
//!   `reacquire_held_locks()`).
//!
//! # Reports and the stack
//! A report may panic ([`ReportMode::Panic`](crate::ReportMode::Panic)), so it goes out only
//! once the stack is what the call leaves: an acquisition is validated and reported *before*
//! it is pushed (a report that panics unwinds out of a call that never took its lock, and
//! nothing of it may stay held for the unwinding to trip over), a release is popped before
//! its reports. A report found while the thread already unwinds from a panic is written to
//! standard error instead of raised (see [`crate::delivery`]).
//!
//! # A thread whose state is gone
//! The stack is a thread-local. Code running in another thread-local's destructor after
//! this one was destroyed (a guard or a fence kept in a thread-local and dropped as the
//! thread exits) finds no state: the validator then neither records nor checks anything on
//! that thread. Acquisitions and releases are skipped, [`is_held`] answers `false` and
//! [`held_classes`] nothing. It never panics for want of its state.

use crate::chains::{self, Chains};
use crate::class::{ClassId, LockClass, Mode};
use crate::delivery;
use crate::graph::{self, Origin};
use crate::report::{Kind, Report};
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns validation on or off at run time (on by default). Change it only while no tracked
/// lock is held: acquisitions made while off are not on the held stack.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Release);
}

/// Whether validation is on.
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A held lock.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) class: ClassId,
    pub(crate) mode: Mode,
    pub(crate) trylock: bool,
    /// Instance key (e.g. the lock's address) to match releases; 0 = any.
    instance: usize,
    /// Nest lock class this acquisition was merged under, if any.
    nest: Option<ClassId>,
    /// How many acquisitions were merged into this entry.
    count: u32,
    /// Key of the held chain up to and including this entry (see [`crate::chains`]).
    chain: u64,
}

struct ThreadState {
    held: Vec<Held>,
    /// The chains this thread knows to be validated.
    chains: Chains,
}

std::thread_local! {
    static STATE: RefCell<ThreadState> = const {
        RefCell::new(ThreadState {
            held: Vec::new(),
            chains: Chains::new(),
        })
    };
}

/// Runs `f` on this thread's state; `None` once the state is gone (see the module docs).
#[inline]
fn with_state<R>(f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    STATE.try_with(|s| f(&mut s.borrow_mut())).ok()
}

/// The key of the chain `below` (its top entry's key, 0 when empty) plus an acquisition.
#[inline]
fn chain_key(below: Option<&Held>, class: ClassId, mode: Mode, trylock: bool) -> u64 {
    let bits = u64::from(class.0) << 8 | mode.bits() << 1 | u64::from(trylock);
    chains::mix(below.map_or(0, |h| h.chain), bits)
}

/// Options of one acquisition.
#[derive(Debug, Clone, Copy, Default)]
pub struct Acquire {
    /// A trylock: validated as one that cannot block.
    pub trylock: bool,
    /// The lock instance (e.g. its address), to match the release; 0 matches any.
    pub instance: usize,
    /// A held lock under which same-class acquisitions nest (kernel: `nest_lock`).
    pub nest: Option<&'static LockClass>,
}

/// Records that this thread acquires `class` in `mode` and validates it (kernel:
/// `lock_acquire()`). Call it *before* blocking on the real lock, so a deadlock is reported
/// instead of hung in.
///
/// A report is delivered before the acquisition is recorded: if it panics, this thread holds
/// nothing more than before the call.
#[inline]
pub fn acquire(class: &'static LockClass, mode: Mode, opts: Acquire) {
    if is_enabled() {
        acquire_enabled(class, mode, opts);
    }
}

/// [`acquire`] with validation on. The fast path is a chain this thread's recent table knows
/// (or a trylock, which is not validated): one push. Anything else is [`acquire_checked`].
fn acquire_enabled(class: &'static LockClass, mode: Mode, opts: Acquire) {
    crate::prime::ensure_primed();
    let id = class.id();
    // No state (`None`): nothing is recorded on this thread any more.
    if with_state(|s| push_known(s, id, mode, opts)) == Some(false) {
        acquire_checked(id, mode, opts);
    }
}

/// The fast path of an acquisition: pushes it if it needs no validation (a trylock, or a
/// chain the recent table knows) and has no nest lock; answers whether it did.
#[inline]
fn push_known(s: &mut ThreadState, id: ClassId, mode: Mode, opts: Acquire) -> bool {
    if opts.nest.is_some() {
        return false;
    }
    let chain = chain_key(s.held.last(), id, mode, opts.trylock);
    if !opts.trylock && !s.chains.known(chain) {
        return false;
    }
    s.held.push(Held {
        class: id,
        mode,
        trylock: opts.trylock,
        instance: opts.instance,
        nest: None,
        count: 1,
        chain,
    });
    true
}

/// The acquisition the fast path did not take: with a nest lock, or on a chain the recent
/// table does not know. Reports what it finds, then records the acquisition (unless merged
/// into a held entry or refused). Kept out of line, so the fast path stays small.
#[inline(never)]
fn acquire_checked(id: ClassId, mode: Mode, opts: Acquire) {
    let checked = with_state(|s| {
        let nest = opts.nest.map(LockClass::id);
        if let Some(n) = nest {
            if !s.held.iter().any(|h| h.class == n) {
                let report = Report {
                    kind: Kind::NestLockNotHeld,
                    class: Some(id),
                    cycle: Vec::new(),
                    held: held_list(&s.held),
                };
                return (vec![report], None);
            }
            if let Some(h) = s
                .held
                .iter_mut()
                .rev()
                .find(|h| h.class == id && h.nest == Some(n))
            {
                h.count += 1;
                return (Vec::new(), None);
            }
        }
        let mut found = Vec::new();
        let chain = check_chain(&mut s.chains, &s.held, id, mode, opts.trylock, &mut found);
        let entry = Held {
            class: id,
            mode,
            trylock: opts.trylock,
            instance: opts.instance,
            nest,
            count: 1,
            chain,
        };
        (found, Some(entry))
    });
    let Some((found, entry)) = checked else {
        return;
    };
    deliver_all(found);
    if let Some(entry) = entry {
        with_state(|s| s.held.push(entry));
    }
}

/// Delivers what a call found, once the stack is what the call leaves.
#[inline]
fn deliver_all(found: Vec<Report>) {
    if !found.is_empty() {
        for r in found {
            delivery::deliver(r);
        }
    }
}

/// Records that this thread released `class` (instance `instance`, 0 = any) (kernel:
/// `lock_release()`). Releases in any order are fine; the locks above the released one are
/// validated again on the shorter stack.
#[inline]
pub fn release(class: &'static LockClass, instance: usize) {
    if is_enabled() {
        release_enabled(class, instance);
    }
}

/// [`release`] with validation on. The fast path is the top entry, taken once: one pop.
fn release_enabled(class: &'static LockClass, instance: usize) {
    let id = class.id();
    let found = with_state(|s| {
        if let Some(top) = s.held.last()
            && top.class == id
            && top.count == 1
            && (instance == 0 || top.instance == instance || top.instance == 0)
        {
            s.held.pop();
            return Vec::new();
        }
        pop(s, id, instance)
    });
    deliver_all(found.unwrap_or_default());
}

/// Removes this thread's entry of class `id` (instance `instance`, 0 = any) from `s`,
/// validating the entries above it again; returns what that found (or the bad unlock).
fn pop(s: &mut ThreadState, id: ClassId, instance: usize) -> Vec<Report> {
    let held = &mut s.held;
    let Some(pos) = held.iter().rposition(|h| {
        h.class == id && (instance == 0 || h.instance == instance || h.instance == 0)
    }) else {
        return vec![Report {
            kind: Kind::BadUnlock,
            class: Some(id),
            cycle: Vec::new(),
            held: held_list(held),
        }];
    };
    if held[pos].count > 1 {
        held[pos].count -= 1;
        return Vec::new();
    }
    held.remove(pos);
    // Entries above the removed one now sit on a shorter chain, and are validated there
    // like new acquisitions (kernel: `reacquire_held_locks()`): one may now sit directly
    // on a lock it was ordered after only through a recursive read in between, which does
    // not carry the order.
    let mut found = Vec::new();
    for i in pos..held.len() {
        let h = &held[i];
        let (class, mode, trylock) = (h.class, h.mode, h.trylock);
        held[i].chain = check_chain(&mut s.chains, &held[..i], class, mode, trylock, &mut found);
    }
    found
}

/// Whether this thread holds `class` (kernel: `lock_is_held()`); `false` once the thread's
/// state is gone.
pub fn is_held(class: &'static LockClass) -> bool {
    let id = class.id();
    with_state(|s| s.held.iter().any(|h| h.class == id)).unwrap_or(false)
}

/// The classes this thread holds, outermost first (none once the thread's state is gone).
pub fn held_classes() -> Vec<(ClassId, Mode)> {
    with_state(|s| held_list(&s.held)).unwrap_or_default()
}

/// Acquires `class` as [`acquire`] does unless this thread holds it already (kernel: the
/// outermost `dma_fence_begin_signalling()`); answers whether it acquired. Validation must be
/// on.
pub(crate) fn acquire_unless_held(class: &'static LockClass, mode: Mode, opts: Acquire) -> bool {
    crate::prime::ensure_primed();
    let id = class.id();
    let done = with_state(|s| {
        if s.held.iter().any(|h| h.class == id) {
            return Some(false);
        }
        push_known(s, id, mode, opts).then_some(true)
    });
    match done {
        Some(Some(acquired)) => acquired,
        Some(None) => {
            acquire_checked(id, mode, opts);
            true
        }
        // No state: nothing is recorded, so nothing is to be released.
        None => false,
    }
}

/// Whether a momentary exclusive acquisition of `class` has nothing to do: this thread does
/// not hold `class`, and its recent table knows the chain of the acquisition on its stack
/// (so it would record nothing, and find nothing). Otherwise [`momentary_exclusive`] must
/// run. Validation must be on.
pub(crate) fn momentary_exclusive_known(class: &'static LockClass) -> bool {
    let id = class.id();
    with_state(|s| {
        !s.held.iter().any(|h| h.class == id)
            && s.chains
                .known(chain_key(s.held.last(), id, Mode::Exclusive, false))
    })
    .unwrap_or(true)
}

/// A momentary exclusive acquisition of `class` (acquired and released at once) by a thread
/// that may hold it in a read mode: the held entry is released first, the acquisition
/// validated on what remains, and the entry taken again on top as a read trylock (kernel:
/// `__dma_fence_might_wait()` around the signalling pseudo-lock). Whatever is found is
/// delivered only once the entry is back, so a report that panics leaves it held for its
/// owner's release.
pub(crate) fn momentary_exclusive(class: &'static LockClass) {
    crate::prime::ensure_primed();
    let id = class.id();
    let found = with_state(|s| {
        let mut found = Vec::new();
        let held_mode = s.held.iter().rev().find(|h| h.class == id).map(|h| h.mode);
        if held_mode.is_some() {
            found.extend(pop(s, id, 0));
        }
        check_chain(
            &mut s.chains,
            &s.held,
            id,
            Mode::Exclusive,
            false,
            &mut found,
        );
        if let Some(mode) = held_mode {
            let chain = check_chain(&mut s.chains, &s.held, id, mode, true, &mut found);
            s.held.push(Held {
                class: id,
                mode,
                trylock: true,
                instance: 0,
                nest: None,
                count: 1,
                chain,
            });
        }
        found
    });
    for r in found.unwrap_or_default() {
        delivery::deliver(r);
    }
}

fn held_list(held: &[Held]) -> Vec<(ClassId, Mode)> {
    held.iter().map(|h| (h.class, h.mode)).collect()
}

/// Validates an acquisition of `id` on top of `below` unless a thread already validated that
/// chain (kernel: `validate_chain()` with `lookup_chain_cache_add()`); returns the chain's key.
/// A trylock is not validated.
fn check_chain(
    chains: &mut Chains,
    below: &[Held],
    id: ClassId,
    mode: Mode,
    trylock: bool,
    found: &mut Vec<Report>,
) -> u64 {
    let key = chain_key(below.last(), id, mode, trylock);
    if !trylock && !chains.known(key) && !chains.validated(key) {
        #[cfg(test)]
        tests::note_validation();
        found.extend(validate(below, id, mode));
        chains.publish(key);
    }
    key
}

/// Checks a new acquisition against the held stack and records its dependencies.
fn validate(held: &[Held], id: ClassId, mode: Mode) -> Vec<Report> {
    // Same class held: only a recursive read after a read is fine — after every held entry of
    // the class, trylocked ones included (kernel: `check_deadlock()`).
    if held
        .iter()
        .any(|h| h.class == id && !(mode == Mode::RecursiveShared && h.mode.is_read()))
    {
        return vec![Report {
            kind: Kind::RecursiveLocking,
            class: Some(id),
            cycle: Vec::new(),
            held: held_list(held),
        }];
    }
    let mut found = Vec::new();
    let mut trace: Option<Arc<Backtrace>> = None;
    for h in held.iter().rev() {
        if h.class != id {
            let cycle = graph::add_edge(h.class, h.mode, id, mode, || {
                Origin::Acquired(
                    trace
                        .get_or_insert_with(|| Arc::new(Backtrace::force_capture()))
                        .clone(),
                )
            });
            if let Some(cycle) = cycle {
                found.push(Report {
                    kind: Kind::of_cycle(&cycle),
                    class: Some(id),
                    cycle,
                    held: held_list(held),
                });
            }
        }
        if !h.trylock {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    //! The chain cache against the graph. These tests reset the validator (forget every
    //! dependency and validated chain) and so run one at a time; no other test of this crate's
    //! own binary records dependencies. The recent table has 4 slots here (`chains::SLOTS`).

    use super::*;
    use crate::{Kind, capture};
    use std::cell::Cell;
    use std::sync::mpsc;

    std::thread_local! {
        /// Chains this thread validated against the graph.
        static VALIDATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts a validation against the graph on this thread.
    pub(super) fn note_validation() {
        VALIDATIONS.with(|v| v.set(v.get() + 1));
    }

    fn validations() -> u64 {
        VALIDATIONS.with(Cell::get)
    }

    /// One test at a time: they reset the validator.
    static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    /// Forgets every dependency and validated chain, then records the canonical order again.
    fn reset() {
        graph::forget_all();
        chains::forget_all();
        crate::prime::record_canonical();
    }

    fn class(test: &str, name: &str) -> &'static LockClass {
        LockClass::leak(format!("test.held.{test}.{name}"))
    }

    fn lock(c: &'static LockClass) {
        acquire(c, Mode::Exclusive, Acquire::default());
    }

    fn unlock(c: &'static LockClass) {
        release(c, 0);
    }

    /// Takes `outer` then `inner`, releases both; answers the kinds reported.
    fn nest(outer: &'static LockClass, inner: &'static LockClass) -> Vec<Kind> {
        let ((), reports) = capture(|| {
            lock(outer);
            lock(inner);
            unlock(inner);
            unlock(outer);
        });
        reports.into_iter().map(|r| r.kind).collect()
    }

    /// The key of `classes` taken in order, each exclusively, on an empty stack.
    fn key_of(classes: &[&'static LockClass]) -> u64 {
        classes.iter().fold(0, |prev, c| {
            chains::mix(prev, u64::from(c.id().0) << 8 | Mode::Exclusive.bits() << 1)
        })
    }

    #[test]
    fn a_seen_chain_takes_the_fast_path_and_a_new_conflicting_order_is_still_reported() {
        let _serial = SERIAL.lock();
        let (a, b) = (class("seen", "A"), class("seen", "B"));
        assert_eq!(nest(a, b), []);
        let before = validations();
        assert_eq!(nest(a, b), []);
        assert_eq!(
            validations(),
            before,
            "the seen chain was not validated again"
        );
        assert_eq!(nest(b, a), [Kind::CircularDependency]);
        // A chain is validated once: the reported order is not reported again.
        assert_eq!(nest(b, a), []);
        assert_eq!(nest(a, b), []);
    }

    #[test]
    fn keys_that_share_a_slot_do_not_share_a_verdict() {
        let _serial = SERIAL.lock();
        let a = class("slot", "A");
        // A class B whose order after A and order before A land in one slot.
        let b = (0..)
            .map(|i| class("slot", &format!("B{i}")))
            .find(|&b| chains::same_slot(key_of(&[a, b]), key_of(&[b, a])))
            .unwrap();
        assert_ne!(key_of(&[a, b]), key_of(&[b, a]));
        assert_eq!(nest(a, b), []);
        // The slot holds A -> B: B -> A only shares it.
        assert_eq!(nest(b, a), [Kind::CircularDependency]);
        // Evicted from the slot by the other key, a chain is still known as validated: its
        // report is not repeated and nothing is validated again.
        let before = validations();
        assert_eq!(nest(a, b), []);
        assert_eq!(nest(b, a), []);
        assert_eq!(validations(), before);
    }

    #[test]
    fn a_reset_empties_the_cache_of_every_thread() {
        let _serial = SERIAL.lock();
        // Two classes whose chains, P alone and P then Q, sit in two slots: both stay cached.
        let pair = |name: &str| {
            let p = class("reset", &format!("{name}.P"));
            let q = (0..)
                .map(|i| class("reset", &format!("{name}.Q{i}")))
                .find(|&q| !chains::same_slot(key_of(&[p]), key_of(&[p, q])))
                .unwrap();
            (p, q)
        };
        let ((a, b), (c, d)) = (pair("1"), pair("2"));
        let cached = |p, q| {
            assert_eq!(nest(p, q), []);
            let before = validations();
            assert_eq!(nest(p, q), []);
            assert_eq!(validations(), before, "cached before the reset");
        };
        // Another thread caches A -> B and stays alive across the reset.
        let (go, wait) = mpsc::channel::<()>();
        let (answer, answered) = mpsc::channel();
        let other = std::thread::spawn(move || {
            cached(a, b);
            answer.send(Vec::new()).unwrap();
            wait.recv().unwrap();
            answer.send(nest(a, b)).unwrap();
        });
        assert_eq!(answered.recv().unwrap(), []);
        // This thread caches C -> D.
        cached(c, d);
        reset();
        // A thread with nothing cached takes the other orders: new since the graph forgot
        // A -> B and C -> D, so without a cycle.
        std::thread::spawn(move || {
            assert_eq!(nest(b, a), []);
            assert_eq!(nest(d, c), []);
        })
        .join()
        .unwrap();
        // Each cache's first lookup since the reset: a stale hit would hide the cycle.
        assert_eq!(nest(c, d), [Kind::CircularDependency]);
        go.send(()).unwrap();
        assert_eq!(answered.recv().unwrap(), [Kind::CircularDependency]);
        other.join().unwrap();
    }

    #[test]
    fn a_key_covers_the_whole_stack_however_deep() {
        let _serial = SERIAL.lock();
        let (a, b, c) = (class("deep", "A"), class("deep", "B"), class("deep", "C"));
        let fillers: Vec<_> = (0..64).map(|i| class("deep", &format!("F{i}"))).collect();
        // `bottom`, the 64 fillers, then A, released in reverse: the kinds reported.
        let take = |bottom: &'static LockClass| {
            let ((), reports) = capture(|| {
                lock(bottom);
                for &f in &fillers {
                    lock(f);
                }
                lock(a);
                unlock(a);
                for &f in fillers.iter().rev() {
                    unlock(f);
                }
                unlock(bottom);
            });
            reports
        };
        assert!(take(b).is_empty());
        let before = validations();
        assert!(take(b).is_empty());
        assert_eq!(validations(), before, "every level cached");
        // Another bottom: every level is a chain never seen, down to 65 entries below the
        // top, and goes to the graph.
        assert!(take(c).is_empty());
        assert_eq!(validations() - before, 66);
        // A at the bottom: its first filler closes A -> F0 -> .. -> F63 -> A, and taking A
        // again on top is recursive locking, found 65 entries down though the top 65 entries
        // are those of the chains seen.
        let reports = take(a);
        assert_eq!(
            reports.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [Kind::CircularDependency, Kind::RecursiveLocking]
        );
        assert_eq!(reports[1].held.len(), 65);
    }
}
