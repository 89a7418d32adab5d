//! Fence callbacks (kernel: `dma_fence_add_callback()` / `dma_fence_remove_callback()`).
//!
//! A callback is a boxed `FnOnce(&Fence)` queued on a pending fence and run exactly once, in the
//! signalling thread, in the order added.
//!
//! # Rules
//! * Adding to a signalled fence fails with [`AlreadySignaled`], handing the callback back unrun
//!   (kernel: `-ENOENT`).
//! * Adding enables signalling (the issuer's `enable_signaling` hook runs, once).
//! * Every queued callback runs, even when one before it panics: the signaller catches each
//!   panic, runs the rest, and then resumes the first one (later ones are logged). If the thread
//!   is already unwinding (an issuer dropped during a panic signals `ECANCELED`), the panic is
//!   logged instead, since a second unwind out of a destructor would abort the process.
//! * [`CallbackHandle::remove`] returns `true` iff the callback will never run, `false` iff it
//!   has run. It waits for nothing but its own callback: one the signaller has not reached is
//!   taken out of its list (`true`), whatever runs before it; one running right now on another
//!   thread is waited for, so whatever it uses may be freed once `remove` returns. That wait is
//!   a fence wait for the validator.
//! * A callback runs inside a signalling section: it must not block on fences or take locks a
//!   waiter may hold (the validator checks this with the `lockdep` feature).
//! * Nothing here uses a thread-local that needs dropping, so a fence may signal (an issuer be
//!   dropped) inside another thread-local's destructor.
//!
//! # How the signaller and `remove` meet
//! The signal takes the whole list under the fence lock and then runs it without the lock.
//! Ids are handed out under the fence lock, so they ascend through a list. Before each
//! callback the signaller publishes its id in `cb_cursor` and then reads the state word; a
//! `remove` that finds its callback gone from the list compares its id with the cursor:
//! below it, the callback has run; equal, it is running; above it, not started, and `remove`
//! leaves a cancellation marker in the (now empty) list and sets `CB_CANCEL`, which sends the
//! signaller to look for markers under the lock. Both sides write first and read second, with
//! a `SeqCst` fence between (loom models fences, not `SeqCst` accesses), so at least one sees
//! the other; a `remove` that finds the cursor has reached its callback meanwhile takes its
//! marker back and waits instead.
//! Waiting sets `CB_WAITER`, which the signaller clears (changing the futex word) when it
//! moves on. `tests::loom` checks these races.
//!
//! # Differences from the kernel
//! * Callbacks run after the fence lock is released, so `remove` waits for its own callback
//!   only; the kernel's waits for the fence lock, which the signaller holds across all of
//!   them.
//! * A `remove` of a callback that is running on the calling thread (from inside it, or from a
//!   callback that one led to) answers `false` without waiting, where the kernel would
//!   deadlock on its own lock.
//! * Kernel callbacks cannot panic; here a panic is caught and resumed as above.

use super::Fence;
use super::core::Inner;
use super::core::bits::{CB_CANCEL, CB_RUNNING, CB_WAITER, SIGNALED};
use crate::error::AlreadySignaled;
use crate::sync::{Ordering, atomic_fence, futex, thread_token};
use crate::validate;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

/// The closure of a queued callback.
type Func = Box<dyn FnOnce(&Fence) + Send>;

/// A queued callback: its id (for removal) and the closure; after the signal, a cancellation
/// marker (no closure).
pub(crate) struct Callback {
    id: u64,
    func: Option<Func>,
}

/// Callback ids: unique per process, so a handle can never match another fence's callback,
/// and taken under the fence lock, so they ascend through each fence's list.
static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(1);

/// A panic caught from user code, waiting to be resumed.
type Payload = Box<dyn Any + Send>;

/// Runs `callbacks` for `fence` in order, every one even if some panic, then clears
/// `CB_RUNNING`, wakes any `remove` waiting, and resumes the first panic (or logs it when the
/// thread is already unwinding).
pub(crate) fn run_all(fence: &Fence, callbacks: Vec<Callback>) {
    let inner = &*fence.0;
    let mut panicked: Option<Payload> = None;
    for cb in callbacks {
        // Publish the position, then read the flags: a `remove` writes its flag, then reads
        // the position (see the module docs); the fences make at least one see the other.
        inner.cb_cursor.store(cb.id, Ordering::Release);
        atomic_fence(Ordering::SeqCst);
        let f = inner.flags.load(Ordering::Acquire);
        if f & CB_WAITER != 0 {
            wake_removers(inner);
        }
        if f & CB_CANCEL != 0 && take_marker(inner, cb.id) {
            // Its drop is user code too.
            catch(&mut panicked, fence, || drop(cb));
            continue;
        }
        if let Some(func) = cb.func {
            catch(&mut panicked, fence, || func(fence));
        }
    }
    let old = inner
        .flags
        .fetch_and(!(CB_RUNNING | CB_WAITER | CB_CANCEL), Ordering::AcqRel);
    if old & CB_WAITER != 0 {
        futex::wake_all(&inner.flags);
    }
    if let Some(payload) = panicked {
        if std::thread::panicking() {
            tracing::error!(target: "dmabuf::fence", %fence, "a fence callback panicked while the thread was unwinding; the panic is not resumed");
            drop_quietly(payload);
        } else {
            panic::resume_unwind(payload);
        }
    }
}

/// Runs `f`, keeping the first panic in `first` and logging any later one.
fn catch(first: &mut Option<Payload>, fence: &Fence, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        if first.is_none() {
            *first = Some(payload);
        } else {
            tracing::error!(target: "dmabuf::fence", %fence, "another fence callback panicked; only the first panic is resumed");
            drop_quietly(payload);
        }
    }
}

/// Drops a panic payload; a payload whose own drop panics is leaked rather than unwound.
pub(crate) fn drop_quietly(payload: Payload) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

/// Clears `CB_WAITER` (so a sleeping `remove`'s futex word changes) and wakes the removers.
fn wake_removers(inner: &Inner) {
    if inner.flags.fetch_and(!CB_WAITER, Ordering::AcqRel) & CB_WAITER != 0 {
        futex::wake_all(&inner.flags);
    }
}

/// Takes the cancellation marker of callback `id`, if a `remove` left one.
fn take_marker(inner: &Inner, id: u64) -> bool {
    let mut st = inner.lock();
    match st.callbacks.iter().position(|c| c.id == id) {
        Some(pos) => {
            st.callbacks.swap_remove(pos);
            true
        }
        None => false,
    }
}

/// A queued callback, for [`remove`](Self::remove)ing it before it runs.
///
/// Dropping the handle leaves the callback queued.
#[derive(Debug)]
pub struct CallbackHandle {
    fence: Fence,
    id: u64,
}

impl CallbackHandle {
    /// The fence the callback is queued on.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Removes the callback (kernel: `dma_fence_remove_callback()`).
    ///
    /// Returns `true` if the callback will never run, `false` if it has run. If the fence is
    /// signalling and the callback is running right now on another thread, waits until it
    /// returns, and for nothing else: a callback the signaller has not reached yet is taken
    /// out of its list. A callback running on this thread (the caller is inside it, or inside
    /// something it led to) gets `false` at once.
    ///
    /// # Signalling context
    /// The wait for a running callback is a fence wait: do not remove a callback while holding
    /// a lock that callback takes, nor from inside another fence's callback; with the `lockdep`
    /// feature the validator reports either.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// let ctx = FenceContext::new("doc", "remove");
    /// let (issuer, fence) = ctx.next_fence();
    /// let handle = fence.add_callback(|_| unreachable!("removed first")).unwrap();
    /// assert!(handle.remove()); // it will never run
    /// issuer.signal();
    /// ```
    #[doc(alias = "dma_fence_remove_callback")]
    pub fn remove(self) -> bool {
        let inner = &*self.fence.0;
        let mut st = inner.lock();
        let flags = inner.flags.load(Ordering::Acquire);
        if flags & SIGNALED == 0 {
            // Still queued: the signal takes the list under this lock.
            let pos = st.callbacks.iter().position(|c| c.id == self.id);
            let cb = pos.map(|p| st.callbacks.remove(p));
            drop(st);
            // The closure's drop is user code: run it without the lock.
            return cb.is_some();
        }
        if flags & CB_RUNNING == 0 {
            return false;
        }
        let mut at = inner.cb_cursor.load(Ordering::Acquire);
        if at < self.id {
            // Not reached yet: leave a marker, then look again (see the module docs).
            st.callbacks.push(Callback {
                id: self.id,
                func: None,
            });
            inner.flags.fetch_or(CB_CANCEL, Ordering::AcqRel);
            atomic_fence(Ordering::SeqCst);
            at = inner.cb_cursor.load(Ordering::Acquire);
            if at < self.id {
                return true;
            }
            // The signaller got there meanwhile. It cannot have taken the marker (that needs
            // the lock held here), so it runs the callback: take the marker back and wait.
            if let Some(pos) = st.callbacks.iter().position(|c| c.id == self.id) {
                st.callbacks.swap_remove(pos);
            }
        }
        if at > self.id || st.runner == thread_token() {
            return false;
        }
        drop(st);
        validate::might_wait();
        wait_until_returned(inner, self.id);
        false
    }

    /// Takes the callback out of the queue if it is still there, and never waits: for
    /// callbacks that own everything they touch, so running late is harmless (a future's
    /// waker, `wait_any`'s word).
    pub(crate) fn cancel(self) {
        let inner = &*self.fence.0;
        let mut st = inner.lock();
        if inner.flags.load(Ordering::Acquire) & SIGNALED != 0 {
            return;
        }
        let pos = st.callbacks.iter().position(|c| c.id == self.id);
        let cb = pos.map(|p| st.callbacks.remove(p));
        drop(st);
        drop(cb);
    }
}

/// Sleeps until the signaller has moved past callback `id` (or finished).
fn wait_until_returned(inner: &Inner, id: u64) {
    loop {
        // Flag first, position second: the signaller writes the position first, then reads
        // the flag, so it either sees this waiter or this waiter sees it move on.
        let f = inner.flags.fetch_or(CB_WAITER, Ordering::AcqRel) | CB_WAITER;
        atomic_fence(Ordering::SeqCst);
        if f & CB_RUNNING == 0 || inner.cb_cursor.load(Ordering::Acquire) != id {
            return;
        }
        futex::wait(&inner.flags, f, None);
    }
}

impl Fence {
    /// Queues `func` to run once this fence signals (kernel: `dma_fence_add_callback()`).
    ///
    /// # Signalling context
    /// `func` runs in the signaller's thread, inside its signalling section: no blocking on
    /// fences, no locks a waiter may hold while waiting. If it panics, the other callbacks
    /// still run and the panic then continues in the signaller.
    ///
    /// # Errors
    /// [`AlreadySignaled`] (kernel `-ENOENT`) if the fence has signalled; `func` is handed back
    /// unrun.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// let ctx = FenceContext::new("doc", "cb");
    /// let (issuer, fence) = ctx.next_fence();
    /// let seen = Arc::new(AtomicBool::new(false));
    /// let s = seen.clone();
    /// fence.add_callback(move |_| s.store(true, Ordering::SeqCst)).unwrap();
    /// issuer.signal();
    /// assert!(seen.load(Ordering::SeqCst)); // ran before signal() returned
    /// assert!(fence.add_callback(|_| unreachable!()).is_err());
    /// ```
    #[doc(alias = "dma_fence_add_callback")]
    pub fn add_callback<F>(&self, func: F) -> Result<CallbackHandle, AlreadySignaled<F>>
    where
        F: FnOnce(&Fence) + Send + 'static,
    {
        if self.flags() & SIGNALED != 0 {
            return Err(AlreadySignaled(func));
        }
        self.enable_sw_signaling();
        let boxed = Box::new(func);
        let mut st = self.0.lock();
        if self.0.flags.load(Ordering::Relaxed) & SIGNALED != 0 {
            drop(st);
            return Err(AlreadySignaled(*boxed));
        }
        let id = NEXT_ID.fetch_add(1, StdOrdering::Relaxed);
        st.callbacks.push(Callback {
            id,
            func: Some(boxed),
        });
        drop(st);
        Ok(CallbackHandle {
            fence: self.clone(),
            id,
        })
    }
}
