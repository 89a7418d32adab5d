//! The chains already validated (kernel: lockdep's chain cache, `lookup_chain_cache_add()`).
//!
//! A *chain* is a thread's held stack plus the acquisition on top of it, named by a 64-bit key
//! that [`mix`] builds one entry at a time: each held entry keeps the key of the stack up to
//! itself, so the key of a new acquisition is one step from the key of the entry below it,
//! whatever the depth. Validating a chain records its dependencies; a chain validated once
//! would record nothing new, so it is validated once per process.
//!
//! Three places remember a validated chain, tried in this order:
//! 1. this thread's *recent* table, a small direct-mapped cache: the slot is a few bits of the
//!    key, and the slot holds the whole key, so a key that only shares the slot is a miss;
//! 2. this thread's set of every chain it has met;
//! 3. the process-wide set, under a lock, which every thread writes once it validated a chain.
//!
//! Only a key found in the process-wide set (or validated and put there) enters a thread's
//! two, so a key in them is always in the process-wide set.
//!
//! # Rules
//! * A key that is in none of the three is validated against the graph (`held::validate`)
//!   before it is remembered, so a new order is checked the first time it runs.
//! * Two different keys never share an answer: a slot of the recent table answers for the one
//!   key it holds. (Two *chains* with one key would: the key is a 64-bit hash, as the kernel's.)
//! * The graph and the process-wide set only grow, so a remembered chain stays validated. If
//!   the process-wide set forgets (the crate's own tests reset the validator), the global
//!   generation moves, and each thread empties its own two before its next lookup: one
//!   relaxed load per acquisition checks it.
//!
//! A thread's recent table is 2 KiB (256 slots), part of its thread-local state.

use parking_lot::RwLock;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots of a thread's recent table (a power of two). The crate's tests use a tiny table,
/// so that keys share slots all the time.
const SLOTS: usize = if cfg!(test) { 4 } else { 256 };

/// Bumped whenever the process-wide set forgets chains; a thread whose tables were filled
/// under an older value empties them.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Chains validated by any thread.
static VALIDATED: RwLock<KeySet> = RwLock::new(KeySet::with_hasher(BuildHasherDefault::new()));

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

/// The key of a chain: `prev` (the key of the stack below, 0 for an empty stack) followed by
/// an acquisition described by `bits` (its class, mode and trylock flag, packed).
#[inline]
pub(crate) fn mix(prev: u64, bits: u64) -> u64 {
    // splitmix64's finaliser over the previous key and this acquisition.
    let mut z = prev ^ bits.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A thread's memory of validated chains: the recent table and the set of all it has met.
pub(crate) struct Chains {
    /// The [`GENERATION`] both tables were filled under.
    generation: u64,
    /// Direct-mapped: the key in slot `key % SLOTS`, or 0 (no key is 0: see [`Chains::known`]).
    recent: [u64; SLOTS],
    /// Every chain this thread met and found validated.
    met: KeySet,
}

impl Chains {
    /// Empty tables.
    pub(crate) const fn new() -> Self {
        Chains {
            generation: 0,
            recent: [0; SLOTS],
            met: KeySet::with_hasher(BuildHasherDefault::new()),
        }
    }

    /// The slot of `key` in the recent table.
    #[inline]
    fn slot(key: u64) -> usize {
        key as usize % SLOTS
    }

    /// Whether the recent table holds `key`, under the current generation: the fast path.
    /// A 0 key (possible, if unlikely, for a hash) is never found, since 0 marks a free slot.
    #[inline]
    pub(crate) fn known(&self, key: u64) -> bool {
        self.recent[Self::slot(key)] == key
            && key != 0
            && self.generation == GENERATION.load(Ordering::Relaxed)
    }

    /// Whether `key` was validated by any thread, looking past the recent table: this
    /// thread's set, then the process-wide one. A key found is put in the recent table.
    pub(crate) fn validated(&mut self, key: u64) -> bool {
        self.refresh();
        let found = self.met.contains(&key) || VALIDATED.read().contains(&key);
        if found {
            self.remember(key);
        }
        found
    }

    /// Records that `key` has been validated, for every thread.
    pub(crate) fn publish(&mut self, key: u64) {
        self.refresh();
        VALIDATED.write().insert(key);
        self.remember(key);
    }

    /// Puts `key` in both of this thread's tables.
    fn remember(&mut self, key: u64) {
        self.met.insert(key);
        self.recent[Self::slot(key)] = key;
    }

    /// Empties both tables if the process-wide set forgot chains since they were filled.
    fn refresh(&mut self) {
        let now = GENERATION.load(Ordering::Relaxed);
        if self.generation != now {
            self.recent = [0; SLOTS];
            self.met.clear();
            self.generation = now;
        }
    }
}

/// Forgets every validated chain, in every thread (the threads' tables empty themselves on
/// their next lookup). The graph is the caller's business.
#[cfg(test)]
pub(crate) fn forget_all() {
    let mut validated = VALIDATED.write();
    validated.clear();
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Whether two keys share a slot of the recent table.
#[cfg(test)]
pub(crate) fn same_slot(a: u64, b: u64) -> bool {
    Chains::slot(a) == Chains::slot(b)
}
