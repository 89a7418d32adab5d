//! The per-thread stack of held locks and the acquire/release entry points (kernel:
//! `lock_acquire()` / `lock_release()`, `task_struct::held_locks`).
//!
//! On each acquisition the validator looks at what this thread already holds: the same class
//! again is recursive locking; otherwise a dependency is recorded from the topmost held lock
//! (and any trylocked ones above it) to the new one, and checked for a cycle. A hash of the
//! held chain plus the new acquisition is remembered once validated, so an acquisition pattern
//! already seen costs a thread-local hash lookup.
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

use crate::class::{ClassId, LockClass, Mode};
use crate::delivery;
use crate::graph::{self, Origin};
use crate::report::{Kind, Report};
use parking_lot::RwLock;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
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
    /// Hash of the held chain up to and including this entry.
    chain: u64,
}

/// Pass-through hasher for chain keys, which are already well mixed.
#[derive(Default)]
struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}
type KeySet = HashSet<u64, BuildHasherDefault<KeyHasher>>;

/// Chains validated by any thread.
static GLOBAL_CHAINS: RwLock<Option<KeySet>> = RwLock::new(None);

struct ThreadState {
    held: Vec<Held>,
    /// Chains this thread knows to be validated.
    chains: KeySet,
}

std::thread_local! {
    static STATE: RefCell<ThreadState> = RefCell::new(ThreadState {
        held: Vec::new(),
        chains: KeySet::default(),
    });
}

/// Runs `f` on this thread's state; `None` once the state is gone (see the module docs).
fn with_state<R>(f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    STATE.try_with(|s| f(&mut s.borrow_mut())).ok()
}

fn mix(prev: u64, class: ClassId, mode: Mode, trylock: bool) -> u64 {
    // splitmix64 finaliser over the previous hash and this acquisition.
    let mut z = prev
        ^ (u64::from(class.0) << 8 | mode.bits() << 1 | u64::from(trylock))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
pub fn acquire(class: &'static LockClass, mode: Mode, opts: Acquire) {
    if !is_enabled() {
        return;
    }
    crate::prime::ensure_primed();
    let id = class.id();
    let nest = opts.nest.map(LockClass::id);
    let checked = with_state(|s| {
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
    for r in found {
        delivery::deliver(r);
    }
    if let Some(entry) = entry {
        with_state(|s| s.held.push(entry));
    }
}

/// Records that this thread released `class` (instance `instance`, 0 = any) (kernel:
/// `lock_release()`). Releases in any order are fine; the locks above the released one are
/// validated again on the shorter stack.
pub fn release(class: &'static LockClass, instance: usize) {
    if !is_enabled() {
        return;
    }
    let id = class.id();
    let found = with_state(|s| pop(s, id, instance)).unwrap_or_default();
    for r in found {
        delivery::deliver(r);
    }
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
fn check_chain(
    chains: &mut KeySet,
    below: &[Held],
    id: ClassId,
    mode: Mode,
    trylock: bool,
    found: &mut Vec<Report>,
) -> u64 {
    let prev = below.last().map_or(0, |h| h.chain);
    let key = mix(prev, id, mode, trylock);
    if !trylock && !chains.contains(&key) {
        let known = GLOBAL_CHAINS
            .read()
            .as_ref()
            .is_some_and(|g| g.contains(&key));
        if !known {
            found.extend(validate(below, id, mode));
            GLOBAL_CHAINS
                .write()
                .get_or_insert_with(KeySet::default)
                .insert(key);
        }
        chains.insert(key);
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
