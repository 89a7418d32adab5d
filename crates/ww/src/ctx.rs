//! Acquire contexts (kernel: `struct ww_acquire_ctx`, `ww_acquire_init/done/fini`).
//!
//! # Rules
//! * A context belongs to the thread that made it and to one class.
//! * Guards borrow the context, so it cannot be finished (dropped) while it holds locks.
//! * `done` marks the end of the acquire phase; the validator reports later locks.

use crate::class::WwClass;
use crate::inject::Injector;
use crate::validate;
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The part of a context other threads see: its age and its wound flag.
///
/// Its address is the context's identity in a mutex's lock word, so it lives in its own
/// allocation (stable while the context moves) and is 8-aligned (the word's low bits are
/// flags).
#[derive(Debug)]
#[repr(align(8))]
pub(crate) struct CtxShared {
    /// Age stamp: lower is older.
    pub(crate) stamp: u64,
    /// Set by an older context that needs a lock this one holds (wound-wait).
    wounded: AtomicBool,
    /// The mutex this context's thread is parked on (its address), or 0: where a wounder
    /// wakes it.
    pub(crate) parked_on: AtomicUsize,
}

thread_local! {
    /// The shared part of this thread's last finished context, reused by the next one (a
    /// transaction is often one allocation shorter this way).
    static SPARE: Cell<Option<Box<CtxShared>>> = const { Cell::new(None) };
}

impl CtxShared {
    /// A fresh shared part with `stamp`, reusing this thread's spare allocation if any.
    fn take(stamp: u64) -> Box<CtxShared> {
        match SPARE.try_with(Cell::take).ok().flatten() {
            Some(mut b) => {
                *b.wounded.get_mut() = false;
                *b.parked_on.get_mut() = 0;
                b.stamp = stamp;
                b
            }
            None => Box::new(CtxShared {
                stamp,
                wounded: AtomicBool::new(false),
                parked_on: AtomicUsize::new(0),
            }),
        }
    }

    /// Whether an older context wounded this one.
    pub(crate) fn is_wounded(&self) -> bool {
        self.wounded.load(Ordering::SeqCst)
    }

    /// Wounds this context; returns whether it already was.
    pub(crate) fn wound(&self) -> bool {
        self.wounded.swap(true, Ordering::SeqCst)
    }

    /// Clears the wound (the context holds nothing, so nobody needs it to back off).
    pub(crate) fn heal(&self) {
        self.wounded.store(false, Ordering::Relaxed);
    }
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
    /// Leaked instead of freed if the context is dropped while a leaked guard still holds a
    /// lock (the lock word keeps naming it).
    pub(crate) shared: ManuallyDrop<Box<CtxShared>>,
    /// Locks held through this context (kernel: `ctx->acquired`).
    pub(crate) acquired: Cell<usize>,
    done: Cell<bool>,
    /// Deadlock answers received (rollbacks), for statistics.
    backoffs: Cell<u64>,
    /// The mutex (its address) that a `lock_all` answered Deadlock on because locks from
    /// before the call were held: the next `lock_all` takes it first, with `lock_slow`
    /// (kernel: `drm_exec`'s `prelocked`). 0 when none.
    pub(crate) retry_first: Cell<usize>,
    pub(crate) inject: Injector,
    pub(crate) validator: validate::Ctx,
    /// A context is bound to its thread.
    _not_send: PhantomData<*const ()>,
}

impl AcquireCtx {
    /// Starts a transaction on `class` with a fresh stamp (kernel: `ww_acquire_init`).
    pub fn new(class: &'static WwClass) -> Self {
        let stamp = class.next_stamp();
        // First: a report that panics here leaves nothing to release.
        let validator = validate::Ctx::init(class);
        AcquireCtx {
            class,
            shared: ManuallyDrop::new(CtxShared::take(stamp)),
            acquired: Cell::new(0),
            done: Cell::new(false),
            backoffs: Cell::new(0),
            retry_first: Cell::new(0),
            inject: Injector::new(stamp),
            validator,
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
        self.shared.is_wounded()
    }

    /// Injects a Deadlock answer into about one in `one_in` successful `lock` calls of this
    /// context (`None`: follow the global setting of [`inject`](crate::inject)).
    pub fn inject_deadlocks(&self, one_in: Option<std::num::NonZeroU32>) {
        self.inject.set(one_in);
    }

    pub(crate) fn note_backoff(&self) {
        self.backoffs.set(self.backoffs.get() + 1);
    }

    /// Whether a lock may skip the validator and the injector: neither is on, and the
    /// context holds something already (so no wound to heal).
    #[inline]
    pub(crate) fn lean(&self) -> bool {
        self.acquired.get() != 0 && self.inject.is_off() && self.validator.is_off()
    }

    /// This context's identity in a lock word: the address of its shared part.
    pub(crate) fn id(&self) -> usize {
        std::ptr::from_ref::<CtxShared>(&self.shared) as usize
    }
}

impl Drop for AcquireCtx {
    fn drop(&mut self) {
        self.validator.fini();
        // SAFETY: `drop` runs once and nothing reads `shared` after this line.
        #[allow(unsafe_code)]
        let shared = unsafe { ManuallyDrop::take(&mut self.shared) };
        if self.acquired.get() > 0 {
            // A guard was leaked (`mem::forget`): its mutex stays locked and its lock word
            // keeps naming this context, which waiters read. Keep that part alive forever.
            Box::leak(shared);
        } else {
            // Nothing refers to it any more (no lock word names it, no waiter is parked as
            // it): keep the allocation for this thread's next context, if the slot is free.
            let _ = SPARE.try_with(|s| {
                let spare = s.take();
                s.set(Some(spare.unwrap_or(shared)));
            });
        }
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
