//! Reservation objects (kernel: `struct dma_resv`): a buffer's implicit-sync state — a
//! wait-die ww_mutex and a set of fences, each classified by [`Usage`].
//!
//! A submitting driver locks every buffer of a job ([`Resv::lock`] through an
//! [`AcquireCtx`], or [`AcquireCtx::lock_all`] via [`Resv::lock_all`]), reserves slots
//! ([`ResvGuard::reserve_fences`], the only step that allocates), collects the fences it must
//! wait for, adds its own ([`ResvGuard::add_fence`]) and unlocks. Readers that never take the
//! lock ([`Resv::iter_unlocked`], [`Resv::get_fences`], [`Resv::wait`], …) run concurrently
//! with a writer.
//!
//! ```
//! use dmabuf::fence::FenceContext;
//! use dmabuf::resv::{Resv, Usage};
//! use dmabuf_ww::AcquireCtx;
//!
//! let buffer = Resv::new();
//! let gpu = FenceContext::new("gpu", "ring0");
//! let (job, fence) = gpu.next_fence();
//!
//! let ctx = Resv::acquire_ctx();
//! let mut locked = buffer.lock(&ctx)?;
//! locked.reserve_fences(1)?;
//! locked.add_fence(&fence, Usage::Write);
//! drop(locked);
//!
//! assert!(!buffer.test_signaled(Usage::Read)); // readers would wait for the writer
//! job.signal();
//! assert!(buffer.test_signaled(Usage::Bookkeep));
//! # Ok::<(), dmabuf::Error>(())
//! ```
//!
//! # Rules
//! * Usage order KERNEL < WRITE < READ < BOOKKEEP; a query for `u` sees every fence with
//!   usage ≤ `u`. Re-adding a fence of a context with a lower usage promotes the entry; an
//!   entry is never degraded.
//! * Reservations do not survive an unlock (checked in debug builds, as the kernel's
//!   `CONFIG_DEBUG_MUTEXES` does): reserve, add and unlock under one lock.
//! * Containers are not added: [`ResvGuard::add_fence`] adds an array's or chain's leaves
//!   one by one, each needing its own reserved slot. [`ResvGuard::replace_fences`] stores
//!   its replacement as given, a container too (as the kernel does: replacing allocates
//!   nothing, and the leaves might need more slots than the entries replaced), so readers
//!   that build an array ([`Resv::get_singleton`]) look through container entries.
//! * With the validator on, adding a pending fence starts the adding thread's signalling
//!   obligation (kernel: `dma_fence_begin_signalling()` in the submit path once the fence is
//!   visible): until that guard is dropped the thread must not wait on fences, reclaim, or
//!   take a lock that is held around fence waits elsewhere. Lock every object and reserve
//!   every slot first ([`ResvGuard::reserve_fences`] is a reclaim point, as is
//!   [`ResvGuard::copy_fences`]), then publish. (Further reservation locks through the same
//!   context are nested under it and, as in the kernel's lockdep, not re-checked.)
//!
//! # Differences from the kernel
//! * Every change of the fences publishes a new immutable snapshot; a replacement in place is
//!   a new snapshot too (the kernel writes the entry in place). An unlocked read sees one
//!   state the object held, whole, and never waits for a writer (see `table.rs`).
//! * Waits take a timeout but no interruption: fence waits are not cancellable here.

mod access;
mod guard;
mod hazard;
mod iter;
pub(crate) mod locked_by;
pub(crate) mod table;
mod usage;

pub use access::{Access, ReadyFuture};
pub use dmabuf_ww::Guards;
pub use guard::{LockedIter, ResvGuard, ResvGuardMut};
pub use iter::UnlockedIter;
pub use usage::Usage;

use crate::error::{FenceFailed, Result, TimedOut, WaitError};
use crate::fence::unwrap::leaves;
use crate::fence::{Fence, alloc_contexts};
use crate::time::MonotonicTime;
use crate::validate;
use dmabuf_ww::{AcquireCtx, Algorithm, CancelToken, WwClass, WwMutex};
use std::num::NonZeroU64;
use std::time::Duration;
use table::{Published, Table};

/// The ww class of every reservation lock (kernel: `reservation_ww_class`, a wait-die
/// class), validated as the validator's primed reservation class.
pub static RESERVATION_CLASS: WwClass = WwClass::with_lockdep_class(
    "reservation_ww_class",
    Algorithm::WaitDie,
    &dmabuf_lockdep::prime::RESERVATION,
);

/// The writer's state, which the reservation lock protects.
#[derive(Debug, Default)]
pub(crate) struct TableState {
    /// Appends promised by `reserve_fences` and not used yet.
    pub(crate) reserved: usize,
    /// The entries, and the snapshots readers walk.
    pub(crate) table: Table,
}

/// A reservation object (kernel: `struct dma_resv`).
pub struct Resv {
    pub(crate) lock: WwMutex<TableState>,
    /// The fences as readers see them: published under `lock`, read without it.
    pub(crate) fences: Published,
}

impl Default for Resv {
    fn default() -> Self {
        Self::new()
    }
}

impl Resv {
    /// An empty, unlocked reservation object (kernel: `dma_resv_init`). Allocates nothing
    /// but itself until the first reservation.
    pub fn new() -> Self {
        Resv {
            lock: WwMutex::new(&RESERVATION_CLASS, TableState::default()),
            fences: Published::new(),
        }
    }

    /// A new acquire context for reservation locks (kernel: `ww_acquire_init(ctx,
    /// &reservation_ww_class)`).
    pub fn acquire_ctx() -> AcquireCtx {
        AcquireCtx::new(&RESERVATION_CLASS)
    }

    /// Locks through `ctx` (kernel: `dma_resv_lock`).
    ///
    /// # Errors
    /// [`Error::Ww`](crate::Error::Ww) with [`WwError::Deadlock`](dmabuf_ww::WwError::Deadlock) (back off: drop
    /// every lock of `ctx`, then [`lock_slow`](Self::lock_slow) this one),
    /// [`WwError::AlreadyHeld`](dmabuf_ww::WwError::AlreadyHeld) or
    /// [`WwError::ClassMismatch`](dmabuf_ww::WwError::ClassMismatch).
    pub fn lock<'a>(&'a self, ctx: &'a AcquireCtx) -> Result<ResvGuard<'a>> {
        Ok(ResvGuard::new(self, self.lock.lock(ctx)?))
    }

    /// Locks through `ctx` until `cancel` is cancelled (kernel: `dma_resv_lock_interruptible`).
    ///
    /// # Errors
    /// As [`lock`](Self::lock), plus [`WwError::Interrupted`](dmabuf_ww::WwError::Interrupted).
    pub fn lock_interruptible<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        cancel: &CancelToken,
    ) -> Result<ResvGuard<'a>> {
        Ok(ResvGuard::new(
            self,
            self.lock.lock_interruptible(ctx, cancel)?,
        ))
    }

    /// Sleeps for the lock after a Deadlock answer, holding nothing else (kernel:
    /// `dma_resv_lock_slow`).
    ///
    /// # Errors
    /// Only on misuse (see [`WwMutex::lock_slow`]).
    pub fn lock_slow<'a>(&'a self, ctx: &'a AcquireCtx) -> Result<ResvGuard<'a>> {
        Ok(ResvGuard::new(self, self.lock.lock_slow(ctx)?))
    }

    /// Locks if free, accounted to `ctx` (kernel: `dma_resv_trylock`).
    pub fn try_lock<'a>(&'a self, ctx: &'a AcquireCtx) -> Option<ResvGuard<'a>> {
        self.lock.try_lock(ctx).map(|g| ResvGuard::new(self, g))
    }

    /// Locks without a context (kernel: `dma_resv_lock(obj, NULL)`): for code that locks
    /// one object only.
    pub fn lock_single(&self) -> ResvGuard<'_> {
        ResvGuard::new(self, self.lock.lock_plain())
    }

    /// Locks without a context if free (kernel: `dma_resv_trylock`).
    pub fn try_lock_single(&self) -> Option<ResvGuard<'_>> {
        self.lock.try_lock_plain().map(|g| ResvGuard::new(self, g))
    }

    /// Locks every object, in any order, backing off as needed; one guard per distinct
    /// object, in the order they were locked, and dropping the set unlocks newest first (see
    /// [`AcquireCtx::lock_all`]). [`ResvGuard::resv`] or [`Guards::source`] tell which
    /// object a guard belongs to.
    ///
    /// ```
    /// use dmabuf::resv::Resv;
    /// let (a, b) = (Resv::new(), Resv::new());
    /// let ctx = Resv::acquire_ctx();
    /// let guards = Resv::lock_all(&ctx, &[&a, &b, &a])?;
    /// assert_eq!(guards.len(), 2);
    /// assert!(guards.iter().any(|g| std::ptr::eq(g.resv(), &b)));
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Ww`](crate::Error::Ww) with [`WwError::ClassMismatch`](dmabuf_ww::WwError::ClassMismatch) if
    /// `ctx` is not a reservation context; with
    /// [`WwError::Deadlock`](dmabuf_ww::WwError::Deadlock) only if `ctx` held reservation
    /// locks from before the call and had to back off: drop them and call again (see
    /// [`AcquireCtx::lock_all`]).
    pub fn lock_all<'a>(
        ctx: &'a AcquireCtx,
        objects: &[&'a Resv],
    ) -> Result<Guards<ResvGuard<'a>>> {
        let mutexes: Vec<&'a WwMutex<TableState>> = objects.iter().map(|r| &r.lock).collect();
        let guards = ctx.lock_all(&mutexes)?;
        Ok(guards.map(|i, g| ResvGuard::new(objects[i], g)))
    }

    /// Whether anybody holds the lock (kernel: `dma_resv_is_locked`).
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// Whether `ctx` holds the lock (kernel: `dma_resv_locking_ctx(obj) == ctx`).
    pub fn is_locked_by(&self, ctx: &AcquireCtx) -> bool {
        self.lock.is_locked_by(ctx)
    }

    /// Walks the unsignalled fences with usage ≤ `usage` without the lock (kernel:
    /// `dma_resv_for_each_fence_unlocked`); see [`UnlockedIter`].
    pub fn iter_unlocked(&self, usage: Usage) -> UnlockedIter<'_> {
        UnlockedIter::new(self, usage)
    }

    /// A snapshot of the unsignalled fences with usage ≤ `usage`, in table order (kernel:
    /// `dma_resv_get_fences`). Lock-free and never waits for a writer: the fences of one
    /// state of the object, as [`snapshot`](Self::snapshot).
    pub fn get_fences(&self, usage: Usage) -> Vec<Fence> {
        self.pending(usage, |f, _| f, |f| f)
    }

    /// A snapshot of the unsignalled fences with usage ≤ `usage`, each with its usage, in
    /// table order. Lock-free and never waits for a writer: the entries are those of one
    /// published state of the object (the set it held at one moment, never a mix of two),
    /// less the fences found signalled.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use dmabuf::resv::{Resv, Usage};
    /// let r = Resv::new();
    /// let (_s, f) = FenceContext::new("drv", "tl").next_fence();
    /// let mut g = r.lock_single();
    /// g.reserve_fences(1)?;
    /// g.add_fence(&f, Usage::Write);
    /// drop(g);
    /// let all = r.snapshot(Usage::Bookkeep);
    /// assert_eq!(all.len(), 1);
    /// assert!(all[0].0.ptr_eq(&f) && all[0].1 == Usage::Write);
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    pub fn snapshot(&self, usage: Usage) -> Vec<(Fence, Usage)> {
        self.pending(usage, |f, u| (f, u), |(f, _)| f)
    }

    /// The fences with usage ≤ `usage` that have not signalled, in table order, from one
    /// published state, each made into a `T` by `make`. Fences whose flag says nothing
    /// without polling are polled once the reader's protection is over (`fence` finds the
    /// fence in a `T`).
    fn pending<T>(
        &self,
        usage: Usage,
        make: impl Fn(Fence, Usage) -> T,
        fence: impl Fn(&T) -> &Fence,
    ) -> Vec<T> {
        let (mut out, poll) = self.fences.read(|entries| {
            let mut out = Vec::with_capacity(entries.len());
            let mut poll = false;
            for e in entries {
                if e.usage() > usage {
                    continue;
                }
                match e.is_signaled_unpolled() {
                    Some(true) => {}
                    Some(false) => out.push(make(e.fence(), e.usage())),
                    None => {
                        poll = true;
                        out.push(make(e.fence(), e.usage()));
                    }
                }
            }
            (out, poll)
        });
        // Polling may call a driver: only outside the reader's protection.
        if poll {
            out.retain(|t| !fence(t).is_signaled());
        }
        out
    }

    /// One fence standing for every unsignalled fence with usage ≤ `usage` (kernel:
    /// `dma_resv_get_singleton`): `None` if there is none, the fence itself if there is one,
    /// otherwise a new array (own context, seqno 1) that signals when all have.
    ///
    /// An entry that is a container (only [`ResvGuard::replace_fences`] stores one) joins
    /// the array with its unsignalled leaves, as an array holds leaves only; so does every
    /// other entry then. The result waits for everything the entries wait for, whatever
    /// they are: this cannot fail (the kernel's only failure is `-ENOMEM`).
    ///
    /// Never add the result back to a reservation object (it would nest containers).
    #[doc(alias = "dma_resv_get_singleton")]
    pub fn get_singleton(&self, usage: Usage) -> Option<Fence> {
        let mut fences = self.get_fences(usage);
        if fences.len() > 1 && fences.iter().any(Fence::is_container) {
            fences = fences
                .iter()
                .flat_map(leaves)
                .filter(|leaf| !leaf.is_signaled())
                .collect();
        }
        match fences.len() {
            0 => None,
            1 => fences.pop(),
            _ => {
                let ctx = alloc_contexts(NonZeroU64::MIN);
                Some(Fence::array_of_leaves(fences, ctx, 1))
            }
        }
    }

    /// Whether every fence with usage ≤ `usage` has signalled (kernel:
    /// `dma_resv_test_signaled`). Lock-free.
    pub fn test_signaled(&self, usage: Usage) -> bool {
        // A fence pending without anything to poll answers at once; fences that only a poll
        // can tell about are polled outside the reader's protection.
        let to_poll: Option<Vec<Fence>> = self.fences.read(|entries| {
            let mut to_poll = Vec::new();
            for e in entries.filter(|e| e.usage() <= usage) {
                match e.is_signaled_unpolled() {
                    Some(true) => {}
                    Some(false) => return None,
                    None => to_poll.push(e.fence()),
                }
            }
            Some(to_poll)
        });
        to_poll.is_some_and(|fences| fences.iter().all(Fence::is_signaled))
    }

    /// Waits for every fence with usage ≤ `usage`, and says whether their work succeeded.
    /// Lock-free; a blocking fence wait for the validator.
    ///
    /// # Errors
    /// [`FenceFailed`] with the error of the first fence with usage ≤ `usage`, in the
    /// object's order, that signalled with one, once every such fence has signalled. A
    /// failed fence counts while it is still in the object: a later fence of its context
    /// takes its entry, and a reservation that grows the table leaves signalled fences
    /// behind. [`wait_for_signal`](Self::wait_for_signal) is the kernel's wait, which does
    /// not look at errors.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use dmabuf::resv::{Resv, Usage};
    /// use dmabuf::{Errno, FenceFailed};
    /// let buffer = Resv::new();
    /// let (writer, fence) = FenceContext::new("gpu", "ring0").next_fence();
    /// let mut locked = buffer.lock_single();
    /// locked.reserve_fences(1)?;
    /// locked.add_fence(&fence, Usage::Write);
    /// drop(locked);
    /// writer.signal_with_error(Errno::EIO);
    /// assert_eq!(buffer.wait(Usage::Read), Err(FenceFailed(Errno::EIO)));
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    pub fn wait(&self, usage: Usage) -> std::result::Result<(), FenceFailed> {
        self.wait_for_signal(usage);
        self.first_failure(usage)
    }

    /// Waits for every fence with usage ≤ `usage`, one after another, sharing `timeout`,
    /// and says whether their work succeeded. A zero timeout polls, as
    /// [`wait_for_signal_timeout`](Self::wait_for_signal_timeout) does.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] if a fence is still pending when the time is up; else
    /// [`WaitError::Failed`] as [`wait`](Self::wait) answers [`FenceFailed`].
    pub fn wait_timeout(
        &self,
        usage: Usage,
        timeout: Duration,
    ) -> std::result::Result<(), WaitError> {
        self.wait_for_signal_timeout(usage, timeout)?;
        Ok(self.first_failure(usage)?)
    }

    /// Waits for every fence with usage ≤ `usage` to signal, with or without an error
    /// (kernel: `dma_resv_wait_timeout` with no timeout, which does not look at errors).
    /// Lock-free; a blocking fence wait for the validator.
    pub fn wait_for_signal(&self, usage: Usage) {
        crate::validate::might_wait();
        while let Some(f) = self.iter_unlocked(usage).next() {
            f.wait_for_signal();
        }
    }

    /// Waits for every fence with usage ≤ `usage` to signal, with or without an error, one
    /// after another, sharing `timeout` (kernel: `dma_resv_wait_timeout`).
    ///
    /// A zero timeout polls without blocking, as the kernel's does: each unsignalled fence
    /// in turn gets a zero-timeout [`Fence::wait_for_signal_timeout`] (which enables its
    /// signalling and looks again), stopping at the first still pending.
    /// [`test_signaled`](Self::test_signaled) only looks.
    ///
    /// # Errors
    /// [`TimedOut`] (`ETIME`) if a fence is still pending when the time is up.
    #[doc(alias = "dma_resv_wait_timeout")]
    pub fn wait_for_signal_timeout(
        &self,
        usage: Usage,
        timeout: Duration,
    ) -> std::result::Result<(), TimedOut> {
        if timeout.is_zero() {
            return if self.iter_unlocked(usage).all(|f| f.poll_enabling()) {
                Ok(())
            } else {
                Err(TimedOut)
            };
        }
        crate::validate::might_wait();
        let deadline = MonotonicTime::now().saturating_add(timeout);
        // Each round waits for the first pending fence; signalled ones are skipped by the
        // iterator, so the loop ends when none is left.
        while let Some(f) = self.iter_unlocked(usage).next() {
            f.wait_for_signal_deadline(deadline)?;
        }
        Ok(())
    }

    /// The error of the first signalled fence with usage ≤ `usage` that failed, in table
    /// order.
    fn first_failure(&self, usage: Usage) -> std::result::Result<(), FenceFailed> {
        let done: Vec<Fence> = self.fences.read(|entries| {
            entries
                .filter(|e| e.usage() <= usage && e.is_signaled_flag())
                .map(|e| e.fence())
                .collect()
        });
        match done.iter().find_map(Fence::error) {
            Some(e) => Err(FenceFailed(e)),
            None => Ok(()),
        }
    }

    /// Forwards a deadline hint to every unsignalled fence with usage ≤ `usage` (kernel:
    /// `dma_resv_set_deadline`).
    pub fn set_deadline(&self, usage: Usage, deadline: MonotonicTime) {
        for f in self.iter_unlocked(usage) {
            f.set_deadline(deadline);
        }
    }

    /// Annotates that the caller might take this object's lock (kernel: `might_lock()` on
    /// the reservation lock): with the validator on, a caller that holds it already is
    /// reported as the recursion it would be. For paths that lock only sometimes (mapping,
    /// CPU access), so the rule is checked on every call.
    pub(crate) fn might_lock(&self) {
        validate::might_lock(
            RESERVATION_CLASS.lockdep_mutex_class(),
            std::ptr::from_ref(self) as usize,
        );
    }
}

impl std::fmt::Debug for Resv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fences = self.fences.read(|entries| entries.count());
        f.debug_struct("Resv")
            .field("locked", &self.is_locked())
            .field("fences", &fences)
            .field("capacity", &self.fences.capacity())
            .finish()
    }
}
