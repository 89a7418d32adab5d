//! Deadlock injection (kernel: `CONFIG_DEBUG_WW_MUTEX_SLOWPATH`'s
//! `deadlock_inject_countdown`): a successful `lock` with a context is undone and answered
//! [`Deadlock`](crate::WwError::Deadlock) at random, so back-off paths run in every test, not
//! only under real contention.
//!
//! ```
//! use dmabuf_ww::{AcquireCtx, WwClass, WwMutex, inject};
//! use std::num::NonZeroU32;
//! static C: WwClass = WwClass::wait_die("doc.inject");
//! let locks: Vec<_> = (0..8).map(|i| WwMutex::new(&C, i)).collect();
//! let refs: Vec<_> = locks.iter().collect();
//! let ctx = AcquireCtx::new(&C);
//! ctx.inject_deadlocks(NonZeroU32::new(2)); // half of all lock calls back off
//! let guards = ctx.lock_all(&refs).unwrap(); // the helper retries until it has them all
//! assert_eq!(guards.len(), 8);
//! assert!(ctx.backoffs() > 0);
//! # drop(guards);
//! # let _ = inject::global();
//! ```

use std::cell::Cell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

static GLOBAL: AtomicU32 = AtomicU32::new(0);

/// Sets the process-wide injection rate: about one in `one_in` successful context locks
/// answers Deadlock (`None`: off). A context takes the rate when it is created; contexts
/// with their own setting ignore it.
pub fn set_global(one_in: Option<NonZeroU32>) {
    GLOBAL.store(one_in.map_or(0, NonZeroU32::get), Ordering::Relaxed);
}

/// The process-wide injection rate.
pub fn global() -> Option<NonZeroU32> {
    NonZeroU32::new(GLOBAL.load(Ordering::Relaxed))
}

/// A context's injection state: its rate (0 = off; the global one unless set) and a
/// xorshift generator seeded by its stamp. The rate is read once, not on every lock: a
/// shared static read in the lock path would share a cache line with whatever the linker
/// put next to it.
#[derive(Debug)]
pub(crate) struct Injector {
    one_in: Cell<u32>,
    rng: Cell<u64>,
}

impl Injector {
    pub(crate) fn new(seed: u64) -> Self {
        Injector {
            one_in: Cell::new(GLOBAL.load(Ordering::Relaxed)),
            rng: Cell::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        }
    }

    pub(crate) fn set(&self, one_in: Option<NonZeroU32>) {
        self.one_in
            .set(one_in.map_or_else(|| GLOBAL.load(Ordering::Relaxed), NonZeroU32::get));
    }

    /// Whether injection is off for this context.
    #[inline]
    pub(crate) fn is_off(&self) -> bool {
        self.one_in.get() == 0
    }

    /// Whether to inject a Deadlock now.
    #[inline]
    pub(crate) fn fire(&self) -> bool {
        let n = self.one_in.get();
        if n == 0 {
            return false;
        }
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x.is_multiple_of(u64::from(n))
    }
}
