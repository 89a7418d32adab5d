//! Tracked locks for users' own driver locks: `parking_lot` locks that tell the validator
//! about every acquisition and release.
//!
//! Each lock names its [`LockClass`]. The validator runs before the thread blocks, so an order
//! inversion is reported (panicking in tests) instead of hanging.
//!
//! # Rules
//! * [`RwLock::read`] is a non-recursive read (it can queue behind a writer); a
//!   [`RecursiveRwLock`]'s read is a recursive read.
//! * `try_lock` records a trylock: it cannot deadlock and adds no dependency towards itself.

use crate::class::{LockClass, Mode};
use crate::held::{self, Acquire};
use std::ops::{Deref, DerefMut};

fn addr<T: ?Sized>(r: &T) -> usize {
    std::ptr::from_ref(r).cast::<()>() as usize
}

/// A mutex whose acquisitions the validator checks.
///
/// ```
/// use dmabuf_lockdep::{LockClass, Mutex};
/// static QUEUE: LockClass = LockClass::new("doc.mutex.queue");
/// let m = Mutex::new(&QUEUE, 0);
/// *m.lock() += 1;
/// assert_eq!(*m.lock(), 1);
/// ```
#[derive(Debug)]
pub struct Mutex<T: ?Sized> {
    class: &'static LockClass,
    inner: parking_lot::Mutex<T>,
}

/// Guard of [`Mutex`]; proof the lock is held.
#[must_use = "the lock is released when the guard is dropped"]
#[clippy::has_significant_drop]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    recorded: bool,
    guard: parking_lot::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex of `class`.
    pub const fn new(class: &'static LockClass, value: T) -> Self {
        Self {
            class,
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// The protected value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// The lock's class.
    pub fn class(&self) -> &'static LockClass {
        self.class
    }

    /// Locks, validating first, then blocking.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let recorded = held::is_enabled();
        held::acquire(self.class, Mode::Exclusive, self.opts(false));
        MutexGuard {
            lock: self,
            recorded,
            guard: self.inner.lock(),
        }
    }

    /// Locks if free, without blocking.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let guard = self.inner.try_lock()?;
        let recorded = held::is_enabled();
        held::acquire(self.class, Mode::Exclusive, self.opts(true));
        Some(MutexGuard {
            lock: self,
            recorded,
            guard,
        })
    }

    /// The value, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    fn opts(&self, trylock: bool) -> Acquire {
        Acquire {
            trylock,
            instance: addr(self),
            nest: None,
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if self.recorded {
            held::release(self.lock.class, addr(self.lock));
        }
    }
}

/// The raw reader-writer locks a tracked [`RwLock`] can sit on, and how their reads are
/// validated. Sealed.
pub trait RawRwLock: parking_lot::lock_api::RawRwLock + sealed::Sealed {
    /// The mode a read acquisition is validated as.
    const READ: Mode;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for parking_lot::RawRwLock {}
    impl Sealed for parking_lot::RawRwLockRecursive {}
}

impl RawRwLock for parking_lot::RawRwLock {
    const READ: Mode = Mode::Shared;
}

impl RawRwLock for parking_lot::RawRwLockRecursive {
    const READ: Mode = Mode::RecursiveShared;
}

/// A reader-writer lock whose acquisitions the validator checks.
///
/// Reads are non-recursive (they can queue behind a waiting writer, so a thread that reads
/// twice can deadlock); see [`RecursiveRwLock`] for the other kind.
///
/// ```
/// use dmabuf_lockdep::{LockClass, RwLock};
/// static TABLE: LockClass = LockClass::new("doc.rwlock.table");
/// let t = RwLock::new(&TABLE, vec![1]);
/// t.write().push(2);
/// assert_eq!(t.read().len(), 2);
/// ```
#[derive(Debug)]
pub struct RwLock<T: ?Sized, R: RawRwLock = parking_lot::RawRwLock> {
    class: &'static LockClass,
    inner: parking_lot::lock_api::RwLock<R, T>,
}

/// A reader-writer lock whose reads are recursive: a read never queues behind a writer while
/// other readers hold the lock, so nested reads cannot deadlock.
pub type RecursiveRwLock<T> = RwLock<T, parking_lot::RawRwLockRecursive>;

/// Shared guard of [`RwLock`].
#[must_use = "the lock is released when the guard is dropped"]
#[clippy::has_significant_drop]
pub struct RwLockReadGuard<'a, T: ?Sized, R: RawRwLock = parking_lot::RawRwLock> {
    lock: &'a RwLock<T, R>,
    recorded: bool,
    guard: parking_lot::lock_api::RwLockReadGuard<'a, R, T>,
}

/// Exclusive guard of [`RwLock`].
#[must_use = "the lock is released when the guard is dropped"]
#[clippy::has_significant_drop]
pub struct RwLockWriteGuard<'a, T: ?Sized, R: RawRwLock = parking_lot::RawRwLock> {
    lock: &'a RwLock<T, R>,
    recorded: bool,
    guard: parking_lot::lock_api::RwLockWriteGuard<'a, R, T>,
}

impl<T> RwLock<T> {
    /// A new unlocked reader-writer lock of `class` with non-recursive reads.
    pub const fn new(class: &'static LockClass, value: T) -> Self {
        Self {
            class,
            inner: parking_lot::lock_api::RwLock::new(value),
        }
    }
}

impl<T> RecursiveRwLock<T> {
    /// A new unlocked reader-writer lock of `class` with recursive reads.
    ///
    /// ```
    /// use dmabuf_lockdep::{LockClass, RecursiveRwLock};
    /// static MAP: LockClass = LockClass::new("doc.rwlock.map");
    /// let m = RecursiveRwLock::new_recursive(&MAP, 1);
    /// let a = m.read();
    /// let b = m.read(); // a nested recursive read is fine
    /// assert_eq!(*a + *b, 2);
    /// ```
    pub const fn new_recursive(class: &'static LockClass, value: T) -> Self {
        Self {
            class,
            inner: parking_lot::lock_api::RwLock::new(value),
        }
    }
}

impl<T: ?Sized, R: RawRwLock> RwLock<T, R> {
    fn acquire(&self, mode: Mode) -> bool {
        let recorded = held::is_enabled();
        held::acquire(
            self.class,
            mode,
            Acquire {
                trylock: false,
                instance: addr(self),
                nest: None,
            },
        );
        recorded
    }

    /// The lock's class.
    pub fn class(&self) -> &'static LockClass {
        self.class
    }

    /// Read lock, validated as [`RawRwLock::READ`].
    pub fn read(&self) -> RwLockReadGuard<'_, T, R> {
        let recorded = self.acquire(R::READ);
        RwLockReadGuard {
            lock: self,
            recorded,
            guard: self.inner.read(),
        }
    }

    /// Write lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T, R> {
        let recorded = self.acquire(Mode::Exclusive);
        RwLockWriteGuard {
            lock: self,
            recorded,
            guard: self.inner.write(),
        }
    }
}

impl<T: ?Sized, R: RawRwLock> Deref for RwLockReadGuard<'_, T, R> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized, R: RawRwLock> Drop for RwLockReadGuard<'_, T, R> {
    fn drop(&mut self) {
        if self.recorded {
            held::release(self.lock.class, addr(self.lock));
        }
    }
}

impl<T: ?Sized, R: RawRwLock> Deref for RwLockWriteGuard<'_, T, R> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized, R: RawRwLock> DerefMut for RwLockWriteGuard<'_, T, R> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: ?Sized, R: RawRwLock> Drop for RwLockWriteGuard<'_, T, R> {
    fn drop(&mut self) {
        if self.recorded {
            held::release(self.lock.class, addr(self.lock));
        }
    }
}
