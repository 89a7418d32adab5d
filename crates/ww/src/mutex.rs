//! The wound/wait mutex (kernel: `struct ww_mutex`, `ww_mutex_lock*`, `ww_mutex_trylock`,
//! `ww_mutex_unlock`).
//!
//! [`WwMutex`] and [`WwGuard`], the typed front over the lock word: they account each lock to
//! its context and call the validator's hooks around it. The lock word and the waiting
//! algorithm are in `raw`: one word per mutex (uncontended lock and unlock are one
//! compare-and-swap each), waiters parked in a global table and woken to re-decide whenever
//! the owner changes. A context holding nothing never backs off (it cannot be part of a
//! cycle), which is why `lock_slow` after releasing everything always succeeds.
//!
//! # Rules
//! * Wait-die: a requester that holds locks dies if the owner is older (an older waiter
//!   queued for the lock does not count: see `raw`'s differences from the kernel).
//! * Wound-wait: an older requester wounds a younger owner and waits; a wounded context that
//!   holds locks answers Deadlock when it next has to wait for a lock, or wakes up to it while
//!   waiting (free locks it still takes).
//! * A context's wound is cleared when it next locks while holding nothing.
//! * `lock` with the owning context answers `AlreadyHeld`; `try_lock` with it fails.

use crate::cancel::CancelToken;
use crate::class::{Algorithm, WwClass};
use crate::ctx::AcquireCtx;
use crate::error::WwError;
use crate::raw::{RawWw, Requester};
use crate::validate;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// A mutex that many can be locked in any order through an [`AcquireCtx`] (kernel:
/// `struct ww_mutex`).
///
/// ```
/// use dmabuf_ww::{AcquireCtx, WwClass, WwError, WwMutex};
/// static C: WwClass = WwClass::wait_die("doc.mutex");
/// let (a, b) = (WwMutex::new(&C, 'a'), WwMutex::new(&C, 'b'));
/// let ctx = AcquireCtx::new(&C);
/// let ga = a.lock(&ctx)?;
/// assert_eq!(a.lock(&ctx).unwrap_err(), WwError::AlreadyHeld);
/// let gb = b.lock(&ctx)?;
/// ctx.done();
/// assert_eq!((*ga, *gb), ('a', 'b'));
/// # Ok::<(), WwError>(())
/// ```
pub struct WwMutex<T: ?Sized> {
    class: &'static WwClass,
    raw: RawWw,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out `&mut T` to one guard at a time (the lock word's LOCKED flag),
// so sharing it across threads needs only `T: Send`, as for `std::sync::Mutex`.
#[allow(unsafe_code)]
unsafe impl<T: ?Sized + Send> Sync for WwMutex<T> {}
// SAFETY: owning the mutex is owning a `T`.
#[allow(unsafe_code)]
unsafe impl<T: ?Sized + Send> Send for WwMutex<T> {}

impl<T> WwMutex<T> {
    /// A new unlocked mutex of `class` (kernel: `ww_mutex_init`).
    pub fn new(class: &'static WwClass, data: T) -> Self {
        WwMutex {
            class,
            raw: RawWw::new(),
            data: UnsafeCell::new(data),
        }
    }

    /// Consumes the mutex and returns the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> WwMutex<T> {
    /// The mutex's class.
    pub fn class(&self) -> &'static WwClass {
        self.class
    }

    /// Mutable access without locking: `&mut self` proves nobody else holds it.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Whether anybody holds the mutex (kernel: `ww_mutex_is_locked`); a snapshot.
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether `ctx` holds the mutex.
    pub fn is_locked_by(&self, ctx: &AcquireCtx) -> bool {
        self.raw.is_owned_by(ctx.id())
    }

    fn instance(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }

    /// Locks through `ctx` (kernel: `ww_mutex_lock`).
    ///
    /// # Errors
    /// * [`WwError::Deadlock`]: back off — drop every guard of `ctx`, then
    ///   [`lock_slow`](Self::lock_slow) this mutex and retry the rest.
    /// * [`WwError::AlreadyHeld`]: `ctx` holds this mutex already.
    /// * [`WwError::ClassMismatch`]: the mutex is of another class than `ctx`.
    #[inline]
    pub fn lock<'a>(&'a self, ctx: &'a AcquireCtx) -> Result<WwGuard<'a, T>, WwError> {
        match self.try_lock_lean(ctx) {
            Lean::Locked(g) => Ok(g),
            Lean::Held => self.lock_ctx(ctx, false, true, None),
            Lean::Full => self.lock_ctx(ctx, false, false, None),
        }
    }

    /// Locks through `ctx`, giving up with [`WwError::Interrupted`] once `cancel` is
    /// cancelled (kernel: `ww_mutex_lock_interruptible`).
    ///
    /// # Errors
    /// As [`lock`](Self::lock), plus [`WwError::Interrupted`].
    pub fn lock_interruptible<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        cancel: &CancelToken,
    ) -> Result<WwGuard<'a, T>, WwError> {
        match self.try_lock_lean(ctx) {
            Lean::Locked(g) => Ok(g),
            Lean::Held => self.lock_ctx(ctx, false, true, Some(cancel)),
            Lean::Full => self.lock_ctx(ctx, false, false, Some(cancel)),
        }
    }

    /// Sleeps until the mutex is free and locks it, after a Deadlock answer and with every
    /// other lock of `ctx` released (kernel: `ww_mutex_lock_slow`). A context holding nothing
    /// is never told to back off, so this waits rather than fails.
    ///
    /// # Errors
    /// Only on misuse: [`WwError::ClassMismatch`]; and, when `ctx` still holds locks (the
    /// validator reports that), whatever [`lock`](Self::lock) would answer.
    pub fn lock_slow<'a>(&'a self, ctx: &'a AcquireCtx) -> Result<WwGuard<'a, T>, WwError> {
        self.lock_ctx(ctx, true, false, None)
    }

    /// [`lock_slow`](Self::lock_slow) that gives up once `cancel` is cancelled (kernel:
    /// `ww_mutex_lock_slow_interruptible`).
    ///
    /// # Errors
    /// As [`lock_slow`](Self::lock_slow), plus [`WwError::Interrupted`].
    pub fn lock_slow_interruptible<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        cancel: &CancelToken,
    ) -> Result<WwGuard<'a, T>, WwError> {
        self.lock_ctx(ctx, true, false, Some(cancel))
    }

    /// Locks if free, without waiting; accounted to `ctx` (kernel: `ww_mutex_trylock` with a
    /// context, since v5.16). Fails if anybody holds it, `ctx` included.
    pub fn try_lock<'a>(&'a self, ctx: &'a AcquireCtx) -> Option<WwGuard<'a, T>> {
        if !std::ptr::eq(ctx.class, self.class) {
            return None;
        }
        let who = Requester {
            ctx: Some((&ctx.shared, ctx.acquired.get())),
            algorithm: self.class.algorithm(),
            cancel: None,
        };
        if !self.raw.try_lock(ctx.id(), who) {
            return None;
        }
        if ctx.acquired.get() == 0 {
            ctx.shared.heal();
        }
        ctx.acquired.set(ctx.acquired.get() + 1);
        if !ctx.validator.is_off() {
            /// Unlocks if the validator's check panics with a report: no guard holds the
            /// mutex yet, and the validator recorded nothing.
            struct Undo<'m, T: ?Sized>(&'m WwMutex<T>, &'m AcquireCtx);
            impl<T: ?Sized> Drop for Undo<'_, T> {
                fn drop(&mut self) {
                    self.0.raw.unlock(self.1.id());
                    self.1.acquired.set(self.1.acquired.get() - 1);
                }
            }
            let undo = Undo(self, ctx);
            ctx.validator.trylocked(self.class, self.instance());
            std::mem::forget(undo);
        }
        Some(WwGuard::new(self, Some(ctx)))
    }

    /// Locks as a plain mutex, without a context (kernel: `ww_mutex_lock(lock, NULL)`).
    /// Never backs off; holding two of one class this way is reported by the validator.
    pub fn lock_plain(&self) -> WwGuard<'_, T> {
        validate::plain_acquire(self.class, self.instance(), false);
        // Without a context and a token the only answer is success.
        let locked = self.raw.lock(0, Self::plain(None));
        debug_assert!(locked.is_ok(), "a plain lock without a token cannot fail");
        WwGuard::new(self, None)
    }

    /// [`lock_plain`](Self::lock_plain) that gives up once `cancel` is cancelled.
    ///
    /// # Errors
    /// [`WwError::Interrupted`].
    pub fn lock_plain_interruptible(
        &self,
        cancel: &CancelToken,
    ) -> Result<WwGuard<'_, T>, WwError> {
        validate::plain_acquire(self.class, self.instance(), false);
        match self.raw.lock(0, Self::plain(Some(cancel))) {
            Ok(()) => Ok(WwGuard::new(self, None)),
            Err(e) => {
                if validate::recording() {
                    validate::plain_release(self.class, self.instance());
                }
                Err(e)
            }
        }
    }

    /// Locks without a context if free (kernel: `ww_mutex_trylock(lock, NULL)`).
    pub fn try_lock_plain(&self) -> Option<WwGuard<'_, T>> {
        if !self.raw.try_lock(0, Self::plain(None)) {
            return None;
        }
        validate::plain_acquire(self.class, self.instance(), true);
        Some(WwGuard::new(self, None))
    }

    /// The common case of `lock`, inlined into the caller's loop: the context already holds
    /// a lock, neither the validator nor the injector is on, and the mutex is free. One
    /// compare-and-swap and the bookkeeping; [`Lean::Held`] and [`Lean::Full`] send the
    /// caller to the full path (which also answers a class mismatch), the first without
    /// another compare-and-swap. Every instruction between a transaction's
    /// first lock and its last unlock is time other transactions may wait for.
    #[inline]
    fn try_lock_lean<'a>(&'a self, ctx: &'a AcquireCtx) -> Lean<WwGuard<'a, T>> {
        if !ctx.lean() {
            return Lean::Full;
        }
        if !self.raw.try_lock_fast(ctx.id()) {
            return Lean::Held;
        }
        if !std::ptr::eq(ctx.class, self.class) {
            self.raw.unlock(ctx.id());
            return Lean::Full;
        }
        self.raw.note_owner(Some(&ctx.shared));
        ctx.acquired.set(ctx.acquired.get() + 1);
        Lean::Locked(WwGuard::new(self, Some(ctx)))
    }

    /// The full path of every context lock. `tried` says the caller's compare-and-swap on
    /// the free word just failed: the word is taken, and another attempt would only pull
    /// the owner's cache line away from it once more.
    fn lock_ctx<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        slow: bool,
        tried: bool,
        cancel: Option<&CancelToken>,
    ) -> Result<WwGuard<'a, T>, WwError> {
        let instance = self.instance();
        ctx.validator.before_lock(self.class, instance, slow);
        if ctx.acquired.get() == 0 {
            // Nobody can wound a context that holds nothing: clear an old wound (before the
            // lock is taken, so a wound that arrives once it is held is kept).
            ctx.shared.heal();
        }
        let id = ctx.id();
        // The lock word first: reading the class before it would fetch a contended cache
        // line twice (shared, then exclusive). A mutex of another class taken this way is
        // released at once, before anyone could learn of its owner.
        let result = if !tried && self.raw.try_lock_fast(id) {
            if std::ptr::eq(ctx.class, self.class) {
                self.raw.note_owner(Some(&ctx.shared));
                Ok(())
            } else {
                self.raw.unlock(id);
                Err(WwError::ClassMismatch)
            }
        } else if std::ptr::eq(ctx.class, self.class) {
            self.raw.lock_slow(
                id,
                Requester {
                    ctx: Some((&ctx.shared, ctx.acquired.get())),
                    algorithm: ctx.class.algorithm(),
                    cancel,
                },
            )
        } else {
            Err(WwError::ClassMismatch)
        };
        match result {
            Ok(()) if !slow && ctx.inject.fire() => {
                // Injected back-off (kernel: `ww_mutex_deadlock_injection`): undo and answer
                // as if an older context had been in the way.
                self.raw.unlock(ctx.id());
                ctx.note_backoff();
                ctx.validator.failed(self.class, instance, true);
                Err(WwError::Deadlock)
            }
            Ok(()) => {
                ctx.acquired.set(ctx.acquired.get() + 1);
                ctx.validator.locked(instance);
                Ok(WwGuard::new(self, Some(ctx)))
            }
            Err(e) => {
                if e == WwError::Deadlock {
                    ctx.note_backoff();
                }
                ctx.validator
                    .failed(self.class, instance, e == WwError::Deadlock);
                Err(e)
            }
        }
    }

    /// The requester of a lock without a context.
    fn plain(cancel: Option<&CancelToken>) -> Requester<'_> {
        Requester {
            ctx: None,
            algorithm: Algorithm::WaitDie,
            cancel,
        }
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for WwMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WwMutex")
            .field("class", &self.class.name())
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

/// Proof that a [`WwMutex`] is held, through a context or plainly; unlocks when dropped
/// (kernel: `ww_mutex_unlock`).
///
/// Never `Send` (unlocking updates the context's count on this thread); `Sync` when `T` is,
/// as `std`'s and parking_lot's guards are, since a shared guard only reads the data. A type
/// that wraps a guard as proof that *this thread* holds the lock, for calls that rely on it,
/// makes itself `!Sync` (dmabuf's `ResvGuard` does).
#[must_use = "dropping the guard unlocks at once"]
pub struct WwGuard<'a, T: ?Sized> {
    mutex: &'a WwMutex<T>,
    ctx: Option<&'a AcquireCtx>,
    /// Unlocking updates the context's count: the guard stays on its thread.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so it may be shared when `T` may.
#[allow(unsafe_code)]
unsafe impl<T: ?Sized + Sync> Sync for WwGuard<'_, T> {}

impl<'a, T: ?Sized> WwGuard<'a, T> {
    fn new(mutex: &'a WwMutex<T>, ctx: Option<&'a AcquireCtx>) -> Self {
        WwGuard {
            mutex,
            ctx,
            _not_send: PhantomData,
        }
    }

    /// The locked mutex.
    pub fn mutex(&self) -> &'a WwMutex<T> {
        self.mutex
    }

    /// Unlocks now (same as dropping).
    pub fn unlock(self) {}
}

impl<T: ?Sized> Deref for WwGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard exists only while `locked` is set for it, so no other guard
        // can hand out a reference to the data.
        #[allow(unsafe_code)]
        unsafe {
            &*self.mutex.data.get()
        }
    }
}

impl<T: ?Sized> DerefMut for WwGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only reference through
        // this guard.
        #[allow(unsafe_code)]
        unsafe {
            &mut *self.mutex.data.get()
        }
    }
}

/// What [`WwMutex::try_lock_lean`] found.
enum Lean<G> {
    /// Locked: the guard.
    Locked(G),
    /// The context may take the lean path, but the mutex is held.
    Held,
    /// The full path must decide (first lock, validator or injector on, other class).
    Full,
}

impl<T: ?Sized> Drop for WwGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.raw.unlock(self.ctx.map_or(0, AcquireCtx::id));
        match self.ctx {
            Some(ctx) => {
                ctx.acquired.set(ctx.acquired.get() - 1);
                ctx.validator
                    .unlocked(self.mutex.class, self.mutex.instance());
            }
            None => {
                if validate::recording() {
                    validate::plain_release(self.mutex.class, self.mutex.instance());
                }
            }
        }
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for WwGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}
