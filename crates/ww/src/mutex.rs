//! The wound/wait mutex (kernel: `struct ww_mutex`, `ww_mutex_lock*`, `ww_mutex_trylock`,
//! `ww_mutex_unlock`).
//!
//! Each mutex keeps its owner, the owner's context and its waiters under a small internal
//! lock; waiters park their thread and re-decide whenever the owner changes. A context
//! holding nothing never backs off (it cannot be part of a cycle), which is why `lock_slow`
//! after releasing everything always succeeds.
//!
//! A woken waiter races with whoever locks next; a waiter that finds the lock taken by a thread
//! that did not wait for it asks for a hand-off, and the next unlock gives it the lock directly
//! (kernel: `MUTEX_FLAG_HANDOFF`), so a thread that unlocks and relocks in a loop cannot starve
//! it.
//!
//! # Rules (both algorithms, as the kernel)
//! * Wait-die: a requester that holds locks dies if the owner, or a waiter queued for the
//!   lock, is older.
//! * Wound-wait: an older requester wounds a younger owner and waits; a wounded context that
//!   holds locks answers Deadlock when it next has to wait for a lock, or wakes up to it while
//!   waiting (free locks it still takes).
//! * A context's wound is cleared when it next locks while holding nothing.
//! * `lock` with the owning context answers `AlreadyHeld`; `try_lock` with it fails.

use crate::class::{Algorithm, WwClass};
use crate::ctx::{AcquireCtx, CancelToken, CtxShared, Registration};
use crate::error::WwError;
use crate::validate;
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{Thread, ThreadId};

struct Waiter {
    id: ThreadId,
    thread: Thread,
    /// The waiting context; `None` for a lock without a context.
    ctx: Option<Arc<CtxShared>>,
}

impl Waiter {
    fn stamp(&self) -> Option<u64> {
        self.ctx.as_ref().map(|c| c.stamp)
    }
}

#[derive(Default)]
struct State {
    locked: bool,
    /// The owning context; `None` while unlocked or when locked without a context.
    holder: Option<Arc<CtxShared>>,
    waiters: Vec<Waiter>,
    /// Whether the owner took the lock ahead of waiters, without waiting itself.
    barged: bool,
    /// A waiter that found the lock taken by such an owner: the next unlock hands the lock to
    /// it instead of freeing it.
    handoff: Option<ThreadId>,
    /// The waiter the lock was handed to, until it notices.
    handed: Option<ThreadId>,
}

impl State {
    /// Removes `id` from the waiters (`None`: the caller never queued; nothing to do).
    fn remove_waiter(&mut self, id: Option<ThreadId>) {
        let Some(id) = id else { return };
        if let Some(p) = self.waiters.iter().position(|w| w.id == id) {
            self.waiters.swap_remove(p);
        }
        if self.handoff == Some(id) {
            self.handoff = None;
        }
    }

    fn wake_waiters(&self) {
        for w in &self.waiters {
            w.thread.unpark();
        }
    }
}

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
    state: Mutex<State>,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out `&mut T` to one guard at a time (the `locked` flag under the
// internal lock), so sharing it across threads needs only `T: Send`, as for `std::sync::Mutex`.
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
            state: Mutex::new(State::default()),
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
        self.state.lock().locked
    }

    /// Whether `ctx` holds the mutex.
    pub fn is_locked_by(&self, ctx: &AcquireCtx) -> bool {
        self.state.lock().holder.as_ref().is_some_and(|h| ctx.is(h))
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
    pub fn lock<'a>(&'a self, ctx: &'a AcquireCtx) -> Result<WwGuard<'a, T>, WwError> {
        self.lock_ctx(ctx, false, None)
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
        self.lock_ctx(ctx, false, Some(cancel))
    }

    /// Sleeps until the mutex is free and locks it, after a Deadlock answer and with every
    /// other lock of `ctx` released (kernel: `ww_mutex_lock_slow`). A context holding nothing
    /// is never told to back off, so this waits rather than fails.
    ///
    /// # Errors
    /// Only on misuse: [`WwError::ClassMismatch`]; and, when `ctx` still holds locks (the
    /// validator reports that), whatever [`lock`](Self::lock) would answer.
    pub fn lock_slow<'a>(&'a self, ctx: &'a AcquireCtx) -> Result<WwGuard<'a, T>, WwError> {
        self.lock_ctx(ctx, true, None)
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
        self.lock_ctx(ctx, true, Some(cancel))
    }

    /// Locks if free, without waiting; accounted to `ctx` (kernel: `ww_mutex_trylock` with a
    /// context, since v5.16). Fails if anybody holds it, `ctx` included.
    pub fn try_lock<'a>(&'a self, ctx: &'a AcquireCtx) -> Option<WwGuard<'a, T>> {
        if !std::ptr::eq(ctx.class, self.class) {
            return None;
        }
        let mut st = self.state.lock();
        if st.locked {
            return None;
        }
        st.locked = true;
        st.holder = Some(ctx.shared.clone());
        st.barged = !st.waiters.is_empty();
        if st.barged {
            st.wake_waiters();
        }
        drop(st);
        if ctx.acquired.get() == 0 {
            ctx.shared.wounded.store(false, Ordering::Relaxed);
        }
        ctx.acquired.set(ctx.acquired.get() + 1);
        ctx.validator.trylocked(self.class, self.instance());
        Some(WwGuard::new(self, Some(ctx)))
    }

    /// Locks as a plain mutex, without a context (kernel: `ww_mutex_lock(lock, NULL)`).
    /// Never backs off; holding two of one class this way is reported by the validator.
    pub fn lock_plain(&self) -> WwGuard<'_, T> {
        validate::plain_acquire(self.class, self.instance(), false);
        // Without a context and a token the only answer is success.
        self.acquire(None, true, None)
            .expect("a plain lock without a token cannot fail");
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
        match self.acquire(None, true, Some(cancel)) {
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
        let mut st = self.state.lock();
        if st.locked {
            return None;
        }
        st.locked = true;
        st.barged = !st.waiters.is_empty();
        drop(st);
        validate::plain_acquire(self.class, self.instance(), true);
        Some(WwGuard::new(self, None))
    }

    fn lock_ctx<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        slow: bool,
        cancel: Option<&CancelToken>,
    ) -> Result<WwGuard<'a, T>, WwError> {
        let instance = self.instance();
        ctx.validator.before_lock(self.class, instance, slow);
        let result = if std::ptr::eq(ctx.class, self.class) {
            self.acquire(Some(ctx), slow, cancel)
        } else {
            Err(WwError::ClassMismatch)
        };
        match result {
            Ok(()) if !slow && ctx.inject.fire() => {
                // Injected back-off (kernel: `ww_mutex_deadlock_injection`): undo and answer
                // as if an older context had been in the way.
                self.release();
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

    /// The lock algorithm. `slow` only relaxes nothing: a context holding nothing never dies
    /// anyway; it is kept for symmetry with the kernel's entry points.
    fn acquire(
        &self,
        ctx: Option<&AcquireCtx>,
        _slow: bool,
        cancel: Option<&CancelToken>,
    ) -> Result<(), WwError> {
        if let Some(ctx) = ctx
            && ctx.acquired.get() == 0
        {
            // Nobody can wound a context that holds nothing: clear an old wound.
            ctx.shared.wounded.store(false, Ordering::Relaxed);
        }
        // The current thread's id, once it has queued as a waiter (looked up only then: it
        // costs two atomic operations, and most locks never wait).
        let mut me: Option<ThreadId> = None;
        let mut _cancel_reg: Option<Registration<'_>> = None;
        loop {
            let mut st = self.state.lock();
            if me.is_some() && st.handed == me {
                // The last owner handed the lock to us (see `release`); it is ours whatever
                // else happened meanwhile (a wounded context backs off when it next has to wait).
                st.handed = None;
                return Ok(());
            }
            if let Some(ctx) = ctx
                && st.holder.as_ref().is_some_and(|h| ctx.is(h))
            {
                st.remove_waiter(me);
                return Err(WwError::AlreadyHeld);
            }
            if !st.locked {
                st.locked = true;
                st.holder = ctx.map(|c| c.shared.clone());
                st.barged = me.is_none() && !st.waiters.is_empty();
                st.remove_waiter(me);
                if ctx.is_some() && !st.waiters.is_empty() {
                    // Waiters re-decide against the new owner (kernel:
                    // `__ww_mutex_check_waiters`).
                    st.wake_waiters();
                }
                return Ok(());
            }
            if let Some(ctx) = ctx {
                if ctx.acquired.get() > 0 && ctx.shared.wounded.load(Ordering::Acquire) {
                    // Wounded by an older context while holding locks, and about to wait: back
                    // off (kernel: `__ww_mutex_check_kill`; a free lock is still taken).
                    st.remove_waiter(me);
                    return Err(WwError::Deadlock);
                }
                let stamp = ctx.stamp();
                match self.class.algorithm() {
                    Algorithm::WaitDie => {
                        if ctx.acquired.get() > 0
                            && (st.holder.as_ref().is_some_and(|h| h.stamp < stamp)
                                || st
                                    .waiters
                                    .iter()
                                    .any(|w| w.stamp().is_some_and(|s| s < stamp)))
                        {
                            st.remove_waiter(me);
                            return Err(WwError::Deadlock);
                        }
                    }
                    Algorithm::WoundWait => {
                        if let Some(h) = &st.holder
                            && h.stamp > stamp
                            && !h.wounded.swap(true, Ordering::AcqRel)
                        {
                            h.thread.unpark();
                        }
                    }
                }
            }
            if let Some(c) = cancel {
                if _cancel_reg.is_none() {
                    _cancel_reg = Some(c.register());
                }
                if c.is_cancelled() {
                    st.remove_waiter(me);
                    return Err(WwError::Interrupted);
                }
            }
            if me.is_none() {
                let thread = std::thread::current();
                me = Some(thread.id());
                st.waiters.push(Waiter {
                    id: thread.id(),
                    thread,
                    ctx: ctx.map(|c| c.shared.clone()),
                });
            } else if st.barged && st.handoff.is_none() {
                // Woken, but a thread that did not wait got the lock first: ask for it to be
                // handed over.
                st.handoff = me;
            }
            drop(st);
            // Woken by an unlock, a change of owner, a wound or a cancel; spurious wake-ups
            // just go round again.
            std::thread::park();
        }
    }

    /// Releases the lock — or hands it to the waiter that asked (it stays locked) — and wakes
    /// every waiter to re-decide.
    fn release(&self) {
        let mut st = self.state.lock();
        st.holder = None;
        let handoff = st.handoff.take();
        match handoff.and_then(|id| st.waiters.iter().position(|w| w.id == id)) {
            Some(p) => {
                let w = st.waiters.swap_remove(p);
                st.holder = w.ctx;
                st.barged = false;
                st.handed = Some(w.id);
                w.thread.unpark();
            }
            None => st.locked = false,
        }
        st.wake_waiters();
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

impl<T: ?Sized> Drop for WwGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.release();
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
