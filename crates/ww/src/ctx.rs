//! Acquire contexts (kernel: `struct ww_acquire_ctx`, `ww_acquire_init/done/fini`) and
//! cancellation tokens.
//!
//! # Rules
//! * A context belongs to the thread that made it and to one class.
//! * Guards borrow the context, so it cannot be finished (dropped) while it holds locks.
//! * `done` marks the end of the acquire phase; the validator reports later locks.

use crate::class::WwClass;
use crate::inject::Injector;
use crate::validate;
use parking_lot::Mutex;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;

/// The part of a context other threads see: its age and its wound flag.
#[derive(Debug)]
pub(crate) struct CtxShared {
    /// Age stamp: lower is older.
    pub(crate) stamp: u64,
    /// Set by an older context that needs a lock this one holds (wound-wait).
    pub(crate) wounded: AtomicBool,
    /// The owning thread, woken when wounded.
    pub(crate) thread: Thread,
}

/// One locking transaction (kernel: `ww_acquire_ctx`).
///
/// Made with [`AcquireCtx::new`] (kernel: `ww_acquire_init`); dropped to finish it (kernel:
/// `ww_acquire_fini`), which the borrow checker allows only once every guard is gone:
///
/// ```compile_fail
/// use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
/// static C: WwClass = WwClass::wait_die("doc.fini");
/// let m = WwMutex::new(&C, ());
/// let ctx = AcquireCtx::new(&C);
/// let g = m.lock(&ctx).unwrap();
/// drop(ctx); // error: `ctx` is still borrowed by `g`
/// drop(g);
/// ```
pub struct AcquireCtx {
    pub(crate) class: &'static WwClass,
    pub(crate) shared: Arc<CtxShared>,
    /// Locks held through this context (kernel: `ctx->acquired`).
    pub(crate) acquired: Cell<usize>,
    done: Cell<bool>,
    /// Deadlock answers received (rollbacks), for statistics.
    backoffs: Cell<u64>,
    pub(crate) inject: Injector,
    pub(crate) validator: validate::Ctx,
    /// A context is bound to its thread.
    _not_send: PhantomData<*const ()>,
}

impl AcquireCtx {
    /// Starts a transaction on `class` with a fresh stamp (kernel: `ww_acquire_init`).
    pub fn new(class: &'static WwClass) -> Self {
        let stamp = class.next_stamp();
        AcquireCtx {
            class,
            shared: Arc::new(CtxShared {
                stamp,
                wounded: AtomicBool::new(false),
                thread: std::thread::current(),
            }),
            acquired: Cell::new(0),
            done: Cell::new(false),
            backoffs: Cell::new(0),
            inject: Injector::new(stamp),
            validator: validate::Ctx::init(class),
            _not_send: PhantomData,
        }
    }

    /// Ends the acquire phase: no more locks will be taken (kernel: `ww_acquire_done`).
    /// Locking later still works, but the validator reports it.
    pub fn done(&self) {
        self.done.set(true);
        self.validator.done();
    }

    /// Whether [`done`](Self::done) was called.
    pub fn is_done(&self) -> bool {
        self.done.get()
    }

    /// The class.
    pub fn class(&self) -> &'static WwClass {
        self.class
    }

    /// The age stamp; lower is older.
    pub fn stamp(&self) -> u64 {
        self.shared.stamp
    }

    /// Locks currently held through this context.
    pub fn acquired(&self) -> usize {
        self.acquired.get()
    }

    /// How many times this context was told to back off.
    pub fn backoffs(&self) -> u64 {
        self.backoffs.get()
    }

    /// Whether an older context has wounded this one (wound-wait); while it holds locks, the
    /// next lock it has to wait for answers Deadlock.
    pub fn is_wounded(&self) -> bool {
        self.shared.wounded.load(Ordering::Acquire)
    }

    /// Injects a Deadlock answer into about one in `one_in` successful `lock` calls of this
    /// context (`None`: follow the global setting of [`inject`](crate::inject)).
    pub fn inject_deadlocks(&self, one_in: Option<std::num::NonZeroU32>) {
        self.inject.set(one_in);
    }

    pub(crate) fn note_backoff(&self) {
        self.backoffs.set(self.backoffs.get() + 1);
    }

    /// Whether `other` is this context's shared part.
    pub(crate) fn is(&self, other: &Arc<CtxShared>) -> bool {
        Arc::ptr_eq(&self.shared, other)
    }
}

impl Drop for AcquireCtx {
    fn drop(&mut self) {
        self.validator.fini();
    }
}

impl std::fmt::Debug for AcquireCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcquireCtx")
            .field("class", &self.class.name())
            .field("stamp", &self.shared.stamp)
            .field("acquired", &self.acquired.get())
            .field("done", &self.done.get())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    waiters: Mutex<Vec<Thread>>,
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
        self.0.cancelled.store(true, Ordering::Release);
        for t in self.0.waiters.lock().iter() {
            t.unpark();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Registers the current thread to be woken by `cancel` until the returned value drops.
    pub(crate) fn register(&self) -> Registration<'_> {
        self.0.waiters.lock().push(std::thread::current());
        Registration(self)
    }
}

/// Removes the current thread from a token's waiters.
pub(crate) struct Registration<'a>(&'a CancelToken);

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut w = self.0.0.waiters.lock();
        if let Some(p) = w.iter().position(|t| t.id() == me) {
            w.swap_remove(p);
        }
    }
}
