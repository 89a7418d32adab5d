//! Synchronisation primitives used by the fence core and the reservation object's fence
//! table, swappable for loom's models.
//!
//! Every file that loom checks takes its atomics, fences, `Arc`, `Mutex`, `UnsafeCell`,
//! swappable `Arc`s and futex operations from here, never from `std` or `arc-swap` directly.
//! Under `--cfg loom` the atomics, `Arc`, `Mutex` and `UnsafeCell` are loom's instrumented
//! versions, a swappable `Arc` is a loom mutex around one, and the futex is modelled by a
//! mutex and condition variable with the same check-and-sleep contract, so the same code is
//! model-checked that ships, lost wake-ups included.

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence as atomic_fence,
};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr};

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence as atomic_fence,
};

/// An `Option<Arc<T>>` that readers load without a lock while a writer replaces it (kernel:
/// an RCU-protected pointer): `arc-swap`'s `ArcSwapOption`. The chain index lives in one.
#[cfg(not(loom))]
pub(crate) use arc_swap::ArcSwapOption as AtomicOptionArc;

/// Loom model of `arc-swap`: a loom mutex around the pointer. Every load and store is one
/// atomic step that synchronises with the store it reads (as `arc-swap`'s acquire loads and
/// sequentially consistent swaps do), so the models check the code around it, not `arc-swap`.
#[cfg(loom)]
#[allow(dead_code)] // outside the models, only the parts the compiled modules use
mod loom_arc_swap {
    use super::{Arc, Mutex};

    /// Model of `arc_swap::ArcSwapOption`.
    #[derive(Debug)]
    pub(crate) struct AtomicOptionArc<T>(Mutex<Option<Arc<T>>>);

    impl<T> AtomicOptionArc<T> {
        pub(crate) fn empty() -> Self {
            Self(Mutex::new(None))
        }

        pub(crate) fn new(value: Option<Arc<T>>) -> Self {
            Self(Mutex::new(value))
        }

        pub(crate) fn swap(&self, value: Option<Arc<T>>) -> Option<Arc<T>> {
            std::mem::replace(&mut *self.0.lock(), value)
        }

        pub(crate) fn load(&self) -> Option<Arc<T>> {
            self.0.lock().clone()
        }

        pub(crate) fn load_full(&self) -> Option<Arc<T>> {
            self.load()
        }

        pub(crate) fn store(&self, value: Option<Arc<T>>) {
            let old = std::mem::replace(&mut *self.0.lock(), value);
            drop(old);
        }
    }
}
#[cfg(loom)]
pub(crate) use loom_arc_swap::AtomicOptionArc;

/// A cell whose contents one thread writes while no other reads them, and many threads read
/// while nobody writes; the code around it keeps that rule. Under loom it is loom's, which
/// reports a write that may overlap a read.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `read` with a pointer to the contents, for reading.
    #[inline]
    pub(crate) fn with<R>(&self, read: impl FnOnce(*const T) -> R) -> R {
        read(self.0.get())
    }

    /// Calls `write` with a pointer to the contents, for writing.
    #[inline]
    pub(crate) fn with_mut<R>(&self, write: impl FnOnce(*mut T) -> R) -> R {
        write(self.0.get())
    }
}

#[cfg(all(loom, test))]
pub(crate) use loom::cell::UnsafeCell;

/// Stores `value` in `slot`, then loads `src`, with the store ordered before the load (a full
/// barrier between them; kernel: `smp_store_mb()` then `READ_ONCE()`), and the store a
/// release. Normally a sequentially consistent exchange and load (on x86 one locked exchange,
/// cheaper than a store and a fence); under loom, which models `SeqCst` fences but not
/// `SeqCst` accesses, a release store, a `SeqCst` fence and an acquire load. Paired with a
/// `SeqCst` fence on the other side, both give the same guarantee: the other side's loads
/// after its fence see the store, or this load sees what the other side stored before its
/// fence.
#[inline]
#[cfg(not(loom))]
pub(crate) fn store_then_load<T>(slot: &AtomicUsize, value: usize, src: &AtomicPtr<T>) -> *mut T {
    slot.swap(value, Ordering::SeqCst);
    src.load(Ordering::SeqCst)
}

/// Loom's [`store_then_load`]: a release store, a `SeqCst` fence, an acquire load.
#[cfg(all(loom, test))]
pub(crate) fn store_then_load<T>(slot: &AtomicUsize, value: usize, src: &AtomicPtr<T>) -> *mut T {
    slot.store(value, Ordering::Release);
    atomic_fence(Ordering::SeqCst);
    src.load(Ordering::Acquire)
}

/// A mutex without poisoning: `parking_lot` normally, loom's model under `--cfg loom`.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

/// The guard of [`Mutex`].
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// The guard of [`Mutex`].
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// Locks, blocking until the lock is free.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            // A panic while holding the lock already failed the model; poisoning adds nothing.
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// Futex wait and wake on a 32-bit atomic word.
pub(crate) mod futex {
    use super::AtomicU32;
    use crate::time::MonotonicTime;

    /// Sleeps while `word` still holds `expected`, until woken or `deadline` passes.
    ///
    /// Spurious returns are allowed: callers re-check their condition in a loop.
    #[cfg(not(loom))]
    pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<MonotonicTime>) {
        use rustix::thread::futex;
        let timeout = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(MonotonicTime::now()) {
                None => return,
                Some(left) => Some(rustix::time::Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                }),
            },
        };
        // EAGAIN (value changed), EINTR and ETIMEDOUT all mean "look again".
        let _ = futex::wait(word, futex::Flags::PRIVATE, expected, timeout.as_ref());
    }

    #[cfg(all(test, not(loom)))]
    std::thread_local! {
        /// Wake system calls made by this thread (unit tests check the no-waiter fast path).
        pub(crate) static WAKES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Wakes every thread sleeping in [`wait`] on `word`.
    #[cfg(not(loom))]
    pub(crate) fn wake_all(word: &AtomicU32) {
        use rustix::thread::futex;
        #[cfg(test)]
        WAKES.with(|w| w.set(w.get() + 1));
        let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
    }

    #[cfg(loom)]
    loom::lazy_static! {
        /// One global futex queue: check-and-sleep and wake are atomic under its mutex, exactly
        /// the kernel futex contract, so a lost wake-up shows as a loom deadlock.
        static ref QUEUE: (loom::sync::Mutex<()>, loom::sync::Condvar) =
            (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
    }

    /// Loom model of `FUTEX_WAIT`: sleeps iff `word == expected`, atomically with respect to
    /// [`wake_all`]. Timed waits yield instead (loom has no clock).
    #[cfg(loom)]
    pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<MonotonicTime>) {
        use super::Ordering;
        if deadline.is_some() {
            loom::thread::yield_now();
            return;
        }
        let guard = QUEUE.0.lock().unwrap_or_else(|e| e.into_inner());
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        drop(QUEUE.1.wait(guard));
    }

    /// Loom model of `FUTEX_WAKE` (all waiters).
    #[cfg(loom)]
    pub(crate) fn wake_all(_word: &AtomicU32) {
        let _guard = QUEUE.0.lock().unwrap_or_else(|e| e.into_inner());
        QUEUE.1.notify_all();
    }
}

/// A number that identifies the calling thread among the threads alive now (never 0).
///
/// It is the address of a thread-local without a destructor, so it stays usable in
/// thread-local destructors and while the thread unwinds, where `std::thread::current()` or a
/// thread-local that needs dropping may already be gone. Two live threads never share it; a
/// thread that has ended may hand its number on to a new one.
#[cfg(not(loom))]
pub(crate) fn thread_token() -> usize {
    std::thread_local! {
        static MARK: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
    }
    MARK.with(|m| std::ptr::from_ref(m) as usize)
}

/// Loom runs its model threads on one OS thread, so each gets a number of its own.
#[cfg(loom)]
pub(crate) fn thread_token() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    loom::thread_local! {
        static TOKEN: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// Spins for a short while, then yields: the busy part of spin-then-park.
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
