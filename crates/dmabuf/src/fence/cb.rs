//! Fence callbacks (kernel: `dma_fence_add_callback()` / `dma_fence_remove_callback()`).
//!
//! A callback is a boxed `FnOnce(&Fence)` queued on a pending fence and run exactly once, in the
//! signalling thread, in the order added.
//!
//! # Rules
//! * Adding to a signalled fence fails with [`AlreadySignaled`], handing the callback back unrun
//!   (kernel: `-ENOENT`).
//! * Adding enables signalling (the issuer's `enable_signaling` hook runs, once).
//! * [`CallbackHandle::remove`] returns `true` iff it removed the callback before it ran; if the
//!   signaller is running callbacks right now it waits for them to finish first, so whatever the
//!   callback borrowed may be freed once `remove` returns (no use-after-free).
//! * A callback runs inside a signalling section: it must not block on fences or take locks a
//!   waiter may hold (the validator of a later layer enforces this).
//!
//! # Differences from the kernel
//! * Callbacks run after the fence lock is released; the signaller marks the fence
//!   `CB_RUNNING` until the last one returns, which is what `remove` waits for. A callback that
//!   removes another callback of the fence it is running for does not wait (it would wait for
//!   itself): it gets `false`.

use super::Fence;
use super::core::bits::{CB_RUNNING, CB_WAITER, SIGNALED};
use crate::error::AlreadySignaled;
use crate::sync::{Ordering, futex};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

/// A queued callback: its id (for removal) and the closure.
pub(crate) struct Callback {
    id: u64,
    func: Box<dyn FnOnce(&Fence) + Send>,
}

/// Callback ids, unique per process so a handle can never match another fence's callback.
static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(1);

#[cfg(not(loom))]
std::thread_local! {
    /// The fences whose callbacks this thread is running right now (innermost last).
    static RUNNING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}
#[cfg(loom)]
loom::thread_local! {
    static RUNNING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

fn addr(fence: &Fence) -> usize {
    std::ptr::from_ref(&*fence.0) as usize
}

/// Runs `callbacks` for `fence`, recording that this thread is doing so; then clears
/// `CB_RUNNING` and wakes any `remove` waiting for it — also if a callback panics, so a
/// panicking callback cannot hang removers.
pub(crate) fn run_all(fence: &Fence, callbacks: Vec<Callback>) {
    /// Undoes the bookkeeping even if a callback panics.
    struct Finish<'a>(&'a Fence);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            RUNNING.with(|r| {
                r.borrow_mut().pop();
            });
            let flags = &self.0.0.flags;
            if flags.fetch_and(!CB_RUNNING, Ordering::AcqRel) & CB_WAITER != 0 {
                futex::wake_all(flags);
            }
        }
    }
    RUNNING.with(|r| r.borrow_mut().push(addr(fence)));
    let _finish = Finish(fence);
    for cb in callbacks {
        (cb.func)(fence);
    }
}

fn running_here(fence: &Fence) -> bool {
    let me = addr(fence);
    RUNNING.with(|r| r.borrow().contains(&me))
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
    /// Returns `true` if it was removed before running (it never will run), `false` if it has
    /// already run. If it is running right now on another thread, waits until it returns.
    #[doc(alias = "dma_fence_remove_callback")]
    pub fn remove(self) -> bool {
        let inner = &*self.fence.0;
        let mut st = inner.lock();
        if let Some(pos) = st.callbacks.iter().position(|c| c.id == self.id) {
            let cb = st.callbacks.remove(pos);
            drop(st);
            drop(cb);
            return true;
        }
        drop(st);
        if running_here(&self.fence) {
            return false;
        }
        loop {
            let f = inner.flags.load(Ordering::Acquire);
            if f & CB_RUNNING == 0 {
                return false;
            }
            if f & CB_WAITER == 0
                && inner
                    .flags
                    .compare_exchange(f, f | CB_WAITER, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            futex::wait(&inner.flags, f | CB_WAITER, None);
        }
    }
}

impl Fence {
    /// Queues `func` to run once this fence signals (kernel: `dma_fence_add_callback()`).
    ///
    /// # Signalling context
    /// `func` runs in the signaller's thread, inside its signalling section: no blocking on
    /// fences, no locks a waiter may hold while waiting.
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
        let id = NEXT_ID.fetch_add(1, StdOrdering::Relaxed);
        let mut st = self.0.lock();
        if self.0.flags.load(Ordering::Relaxed) & SIGNALED != 0 {
            drop(st);
            return Err(AlreadySignaled(*boxed));
        }
        st.callbacks.push(Callback { id, func: boxed });
        drop(st);
        Ok(CallbackHandle {
            fence: self.clone(),
            id,
        })
    }
}
