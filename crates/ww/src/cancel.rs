//! Cancellation tokens: how a lock waiting in one thread is interrupted from another (kernel:
//! the `_interruptible` locks, which a signal interrupts).
//!
//! A waiting lock registers itself with its token (the mutex it waits on and its identity
//! there) for as long as it waits; [`CancelToken::cancel`] sets the flag and wakes every
//! registered waiter, which then sees the flag and answers
//! [`Interrupted`](crate::WwError::Interrupted).

use crate::park;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// `(mutex address, waiter identity)` of every lock waiting with this token.
    waiters: Mutex<Vec<(usize, usize)>>,
}

/// Cancels interruptible locks from another thread (the kernel's `_interruptible` locks react
/// to signals; user space has none to spare).
///
/// ```
/// use dmabuf_ww::{CancelToken, WwClass, WwError, WwMutex};
/// static C: WwClass = WwClass::wait_die("doc.cancel");
/// let m = WwMutex::new(&C, ());
/// let token = CancelToken::new();
/// let held = m.lock_plain();
/// std::thread::scope(|s| {
///     let waiter = s.spawn(|| m.lock_plain_interruptible(&token).map(drop));
///     std::thread::sleep(std::time::Duration::from_millis(10));
///     token.cancel();
///     assert_eq!(waiter.join().unwrap(), Err(WwError::Interrupted));
/// });
/// drop(held);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: every interruptible lock waiting with this token (now or later) answers
    /// [`Interrupted`](crate::WwError::Interrupted).
    pub fn cancel(&self) {
        // SeqCst against the waiter's check inside `park`: either it sees the flag, or we see
        // its registration and it is already parked when we wake it.
        self.0.cancelled.store(true, Ordering::SeqCst);
        for &(key, who) in self.0.waiters.lock().iter() {
            park::wake_one(key, who);
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Registers waiter `who` on the mutex at `key` to be woken by `cancel` until the
    /// returned value drops.
    pub(crate) fn register(&self, key: usize, who: usize) -> Registration<'_> {
        self.0.waiters.lock().push((key, who));
        Registration {
            token: self,
            entry: (key, who),
        }
    }
}

/// Removes a waiter from a token's waiters.
pub(crate) struct Registration<'a> {
    token: &'a CancelToken,
    entry: (usize, usize),
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut w = self.token.0.waiters.lock();
        if let Some(p) = w.iter().position(|e| *e == self.entry) {
            w.swap_remove(p);
        }
    }
}
