//! The fence core: shared state, status, signalling and lazy enabling (kernel: `struct dma_fence`).
//!
//! A fence is one heap block shared by its consumer handles ([`Fence`]), its issuer
//! ([`Signaller`](super::Signaller)) and any armed callbacks. It holds the ordering key
//! (context, seqno), a state word, the error, the timestamp and — under a per-fence lock — the
//! callback list and the issuer's ops, both of which are emptied by the one signal.
//!
//! # Rules
//! * One-shot: the first signal wins; every later path that meets a signalled fence is a no-op.
//! * The timestamp and error are published before the signalled bit (release), so anybody who
//!   sees "signalled" (acquire) sees both.
//! * Signalling makes no system call unless a waiter is parked (the `PARKED` bit).
//! * Callbacks run in the signaller's thread, after the lock is released (see `cb.rs`).
//!
//! # Differences from the kernel
//! * Callbacks run outside the fence lock, so a callback may use the fence it is called for, and
//!   containers can signal straight from member callbacks (the kernel needs an irq_work hop to
//!   avoid a lock inversion: see [`docs::kernel_bugs`](crate::docs::kernel_bugs)).

use super::array::ArrayState;
use super::cb::{self, Callback};
use super::chain::ChainState;
use super::{FenceOps, FenceStatus};
use crate::error::Errno;
use crate::sync::{
    Arc, AtomicI32, AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering, futex, thread_token,
};
use crate::time::MonotonicTime;
use crate::validate;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc as StdArc;

/// State word bits (`Inner::flags`).
///
/// | bit | name | set by | cleared |
/// |---|---|---|---|
/// | 0 | `SIGNALED` | the one signal, under the lock | never |
/// | 1 | `TIMESTAMP` | with `SIGNALED` (same store) | never |
/// | 2 | `ENABLE_SIGNAL` | first waiter/callback (fetch_or, exactly-once) | never |
/// | 3 | `SEQNO64` | creation | never |
/// | 4 | `PARKED` | a waiter about to sleep on this word | never (sticky, cheap) |
/// | 5 | `CB_RUNNING` | signal, when it took a non-empty callback list | after the last callback |
/// | 6 | `CB_WAITER` | a `remove` waiting for its running callback to return | by the signaller when it moves on (and wakes) |
/// | 7 | `HAS_OPS` | creation with issuer ops | never |
/// | 8 | `CB_CANCEL` | a `remove` of a callback the signaller has not reached | after the last callback |
pub(crate) mod bits {
    pub(crate) const SIGNALED: u32 = 1 << 0;
    pub(crate) const TIMESTAMP: u32 = 1 << 1;
    pub(crate) const ENABLE_SIGNAL: u32 = 1 << 2;
    pub(crate) const SEQNO64: u32 = 1 << 3;
    pub(crate) const PARKED: u32 = 1 << 4;
    pub(crate) const CB_RUNNING: u32 = 1 << 5;
    pub(crate) const CB_WAITER: u32 = 1 << 6;
    pub(crate) const HAS_OPS: u32 = 1 << 7;
    pub(crate) const CB_CANCEL: u32 = 1 << 8;
}
use bits::*;

/// The names and context id shared by every fence of one [`FenceContext`](super::FenceContext).
#[derive(Debug)]
pub(crate) struct Names {
    pub(crate) driver: Cow<'static, str>,
    pub(crate) timeline: Cow<'static, str>,
}

/// A container's own state; a leaf fence (signalled by its issuer or its ops' poll) has none.
pub(crate) enum Container {
    /// `dma_fence_array`: signals when all members have.
    Array(ArrayState),
    /// `dma_fence_chain`: one timeline point.
    Chain(ChainState),
}

/// The hooks of a pending fence, which the per-fence lock protects and the one signal
/// detaches: the callbacks, the issuer's ops and the thread that runs the callbacks.
pub(crate) struct Hooks {
    /// Until the signal: callbacks still to run, in the order they were added (ids ascending).
    /// The signal takes them; from then on: cancellation markers of callbacks removed before
    /// the signaller reached them (see `cb.rs`).
    pub(crate) callbacks: Vec<Callback>,
    /// The issuer's hooks; detached by the signal, and dropped once its callbacks have run.
    pub(crate) ops: Option<StdArc<dyn FenceOps>>,
    /// The thread running the callbacks ([`thread_token`]), set by the signal that took them.
    pub(crate) runner: usize,
}

/// The shared block behind every handle of one fence.
pub(crate) struct Inner {
    /// Context id (immutable).
    pub(crate) context: u64,
    /// Driver and timeline names (immutable, shared with the context).
    pub(crate) names: StdArc<Names>,
    /// Position on the context's timeline (immutable).
    pub(crate) seqno: u64,
    /// State word, see [`bits`]; also the futex waiters sleep on.
    pub(crate) flags: AtomicU32,
    /// Positive errno or 0; written before `SIGNALED` is published.
    pub(crate) error: AtomicI32,
    /// Signal time in ns; written before `SIGNALED` is published.
    pub(crate) timestamp: AtomicU64,
    /// The id of the callback the signaller has reached (0 before it starts; see `cb.rs`).
    pub(crate) cb_cursor: AtomicU64,
    /// Callback list and ops.
    pub(crate) hooks: Mutex<Hooks>,
    /// The container's own state: `None` for a leaf (immutable once made; one pointer wide).
    pub(crate) container: Option<Box<Container>>,
}

/// A consumer handle to a fence (kernel: a counted `struct dma_fence *`).
///
/// Cheap to clone (one atomic increment). It can query, wait and add callbacks, never signal:
/// only the [`Signaller`](super::Signaller) made with it can.
#[derive(Clone)]
#[repr(transparent)]
pub struct Fence(pub(super) Arc<Inner>);

pub(crate) fn new_inner(
    context: u64,
    names: StdArc<Names>,
    seqno: u64,
    seqno64: bool,
    ops: Option<StdArc<dyn FenceOps>>,
    container: Option<Box<Container>>,
) -> Fence {
    let mut flags = if seqno64 { SEQNO64 } else { 0 };
    if ops.is_some() {
        flags |= HAS_OPS;
    }
    let fence = Fence(Arc::new(Inner {
        context,
        names,
        seqno,
        flags: AtomicU32::new(flags),
        error: AtomicI32::new(0),
        timestamp: AtomicU64::new(0),
        cb_cursor: AtomicU64::new(0),
        hooks: Mutex::new(Hooks {
            callbacks: Vec::new(),
            ops,
            runner: 0,
        }),
        container,
    }));
    tracing::trace!(target: "dmabuf::fence", context = fence.context(), seqno, "init");
    fence
}

pub(crate) fn new_plain(
    context: u64,
    names: StdArc<Names>,
    seqno: u64,
    seqno64: bool,
    ops: Option<StdArc<dyn FenceOps>>,
) -> Fence {
    new_inner(context, names, seqno, seqno64, ops, None)
}

/// What a signal does with the error word.
#[derive(Clone, Copy)]
pub(crate) enum SetError {
    /// Keep whatever the issuer set earlier.
    Keep,
    /// Set this error (kernel: `dma_fence_set_error()` right before signalling).
    Set(Errno),
}

impl Fence {
    #[inline]
    pub(crate) fn flags(&self) -> u32 {
        self.0.flags.load(Ordering::Acquire)
    }

    /// The context id (kernel: `fence->context`).
    pub fn context(&self) -> u64 {
        self.0.context
    }

    /// The seqno on its context (kernel: `fence->seqno`).
    pub fn seqno(&self) -> u64 {
        self.0.seqno
    }

    /// Whether seqnos compare as plain 64-bit numbers (else 32-bit with wrap-around).
    pub fn is_seqno64(&self) -> bool {
        self.flags() & SEQNO64 != 0
    }

    /// The issuing driver's name (kernel: `dma_fence_driver_name()`).
    pub fn driver_name(&self) -> &str {
        &self.0.names.driver
    }

    /// The timeline's name (kernel: `dma_fence_timeline_name()`).
    pub fn timeline_name(&self) -> &str {
        &self.0.names.timeline
    }

    /// Whether both handles are the same fence.
    pub fn ptr_eq(&self, other: &Fence) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether the fence has signalled, polling the issuer's ops or the container's members
    /// if the flag is not yet set (kernel: `dma_fence_is_signaled()`).
    ///
    /// A positive poll signals the fence as a side effect, as in the kernel.
    #[doc(alias = "dma_fence_is_signaled")]
    pub fn is_signaled(&self) -> bool {
        let f = self.flags();
        if f & SIGNALED != 0 {
            return true;
        }
        if f & HAS_OPS == 0 && self.0.container.is_none() {
            return false;
        }
        self.poll_signaled()
    }

    /// Just the flag, no polling (kernel: `test_bit(DMA_FENCE_FLAG_SIGNALED_BIT)`).
    pub fn is_signaled_flag(&self) -> bool {
        self.flags() & SIGNALED != 0
    }

    /// [`is_signaled`](Self::is_signaled) where the answer needs no polling: `Some(true)`
    /// once the flag is set, `Some(false)` for a pending fence with nothing to poll (no ops,
    /// not a container); `None` when only a poll, which may call a driver, can tell.
    #[cfg_attr(all(loom, not(test)), allow(dead_code))] // only the reservation table uses it
    pub(crate) fn is_signaled_unpolled(&self) -> Option<bool> {
        let f = self.flags();
        if f & SIGNALED != 0 {
            Some(true)
        } else if f & HAS_OPS == 0 && self.0.container.is_none() {
            Some(false)
        } else {
            None
        }
    }

    #[cold]
    fn poll_signaled(&self) -> bool {
        let done = match self.0.container.as_deref() {
            None => {
                let ops = self.0.lock().ops.clone();
                match ops.map(|ops| ops.signaled(self)) {
                    Some(FenceStatus::Signaled) => Some(SetError::Keep),
                    Some(FenceStatus::Failed(e)) => Some(SetError::Set(e)),
                    Some(FenceStatus::Pending) | None => None,
                }
            }
            Some(Container::Array(a)) => a.poll(self),
            Some(Container::Chain(_)) => super::chain::poll(self),
        };
        match done {
            Some(err) => {
                signal(self, err, None);
                true
            }
            None => self.is_signaled_flag(),
        }
    }

    /// The fence's status (kernel: `dma_fence_get_status()`): pending, signalled, or signalled
    /// with an error.
    #[doc(alias = "dma_fence_get_status")]
    pub fn status(&self) -> FenceStatus {
        if !self.is_signaled() {
            return FenceStatus::Pending;
        }
        self.signaled_status()
    }

    /// Status of a fence known to be signalled.
    pub(crate) fn signaled_status(&self) -> FenceStatus {
        match Errno::from_raw(self.0.error.load(Ordering::Relaxed)) {
            None => FenceStatus::Signaled,
            Some(e) => FenceStatus::Failed(e),
        }
    }

    /// The error a signalled fence carries, if any; `None` while pending.
    pub fn error(&self) -> Option<Errno> {
        match self.status() {
            FenceStatus::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// When the fence signalled (kernel: `dma_fence_timestamp()`); `None` while pending.
    #[doc(alias = "dma_fence_timestamp")]
    pub fn timestamp(&self) -> Option<MonotonicTime> {
        if self.flags() & TIMESTAMP == 0 {
            return None;
        }
        Some(MonotonicTime::from_nanos(
            self.0.timestamp.load(Ordering::Relaxed),
        ))
    }

    /// Whether this fence is a [`FenceArray`](super::array) container.
    pub fn is_array(&self) -> bool {
        matches!(self.0.container.as_deref(), Some(Container::Array(_)))
    }

    /// Whether this fence is a [`FenceChain`](super::chain) node.
    pub fn is_chain(&self) -> bool {
        matches!(self.0.container.as_deref(), Some(Container::Chain(_)))
    }

    /// Whether this fence is a container (array or chain).
    pub fn is_container(&self) -> bool {
        self.0.container.is_some()
    }

    /// Enables signalling now rather than at the first wait or callback (kernel:
    /// `dma_fence_enable_sw_signaling()`).
    ///
    /// Runs the issuer's `enable_signaling` hook (or arms a container's members) exactly once
    /// over the fence's life.
    #[doc(alias = "dma_fence_enable_sw_signaling")]
    pub fn enable_sw_signaling(&self) {
        let f = self.flags();
        if f & (ENABLE_SIGNAL | SIGNALED) != 0 {
            return;
        }
        let old = self.0.flags.fetch_or(ENABLE_SIGNAL, Ordering::AcqRel);
        if old & (ENABLE_SIGNAL | SIGNALED) != 0 {
            return;
        }
        tracing::trace!(target: "dmabuf::fence", context = self.context(), seqno = self.seqno(), "enable_signal");
        let armed = match self.0.container.as_deref() {
            None => {
                if old & HAS_OPS == 0 {
                    return;
                }
                let ops = self.0.lock().ops.clone();
                ops.is_none_or(|ops| ops.enable_signaling(self))
            }
            Some(Container::Array(_)) => super::array::enable(self),
            Some(Container::Chain(_)) => super::chain::enable(self),
        };
        if !armed {
            signal(self, SetError::Keep, None);
        }
    }

    /// Sets a deadline hint (kernel: `dma_fence_set_deadline()`): forwarded to the issuer's ops
    /// or to a container's members; ignored once signalled.
    #[doc(alias = "dma_fence_set_deadline")]
    pub fn set_deadline(&self, deadline: MonotonicTime) {
        if self.is_signaled_flag() {
            return;
        }
        match self.0.container.as_deref() {
            None => {
                let ops = self.0.lock().ops.clone();
                if let Some(ops) = ops {
                    ops.set_deadline(self, deadline);
                }
            }
            Some(Container::Array(a)) => a.members.iter().for_each(|m| m.set_deadline(deadline)),
            Some(Container::Chain(_)) => super::chain::set_deadline(self, deadline),
        }
    }

    /// Whether `self` is later than `other` on their common context (kernel:
    /// `dma_fence_is_later()`).
    ///
    /// # Errors
    /// [`Error::ContextMismatch`](crate::Error::ContextMismatch) (`EINVAL`) when the contexts
    /// differ: fences of different contexts have no order.
    #[doc(alias = "dma_fence_is_later")]
    pub fn is_later(&self, other: &Fence) -> crate::Result<bool> {
        self.check_context(other)?;
        Ok(super::seqno_is_later(
            self.is_seqno64(),
            self.seqno(),
            other.seqno(),
        ))
    }

    /// Whether `self` is the same fence as `other` or later than it (kernel:
    /// `dma_fence_is_later_or_same()`, `f1 == f2 || dma_fence_is_later(f1, f2)`).
    ///
    /// "Same" is identity ([`ptr_eq`](Self::ptr_eq)): a distinct fence at an equal seqno is
    /// neither, so a reservation object keeps both (either may be the one still pending).
    ///
    /// # Errors
    /// As [`is_later`](Self::is_later).
    #[doc(alias = "dma_fence_is_later_or_same")]
    pub fn is_later_or_same(&self, other: &Fence) -> crate::Result<bool> {
        self.check_context(other)?;
        Ok(self.ptr_eq(other) || self.is_later(other)?)
    }

    /// The later of two fences of one context, or `None` if that one has already signalled
    /// (kernel: `dma_fence_later()`).
    ///
    /// # Errors
    /// As [`is_later`](Self::is_later).
    pub fn later(&self, other: &Fence) -> crate::Result<Option<Fence>> {
        let later = if self.is_later(other)? { self } else { other };
        Ok((!later.is_signaled()).then(|| later.clone()))
    }

    fn check_context(&self, other: &Fence) -> crate::Result<()> {
        if self.context() == other.context() {
            Ok(())
        } else {
            Err(crate::Error::ContextMismatch(
                self.context(),
                other.context(),
            ))
        }
    }
}

/// Signals `fence` unless it already is; returns whether this call signalled it.
///
/// The only place `SIGNALED` is set. Publishes error and timestamp, detaches the ops and the
/// callbacks, wakes parked waiters, runs the callbacks in this thread, then drops the ops.
pub(crate) fn signal(fence: &Fence, error: SetError, ts: Option<MonotonicTime>) -> bool {
    // Signalling is a signalling section (as mainline's `dma_fence_signal()`), and so is every
    // callback it runs: no fence waits, no locks a waiter may hold.
    let _section = validate::begin_signalling();
    let inner = &*fence.0;
    let f = inner.flags.load(Ordering::Acquire);
    if f & SIGNALED != 0 {
        return false;
    }
    // Read the clock before taking the lock: it is the most expensive step of a signal.
    let ts = ts.unwrap_or_else(MonotonicTime::now).as_nanos();
    if f & (ENABLE_SIGNAL | HAS_OPS) == 0 && inner.container.is_none() {
        // Fast path: nobody ever showed interest (every callback, waiter and future sets
        // `ENABLE_SIGNAL` before registering, and re-checks `SIGNALED` after), so there is
        // nothing to take from under the lock. Only the issuer signals a plain fence without
        // ops, so the error and timestamp words have no other writer; one CAS publishes both.
        if let SetError::Set(e) = error {
            inner.error.store(e.raw(), Ordering::Relaxed);
        }
        inner.timestamp.store(ts, Ordering::Relaxed);
        if inner
            .flags
            .compare_exchange(
                f,
                f | SIGNALED | TIMESTAMP,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            tracing::trace!(target: "dmabuf::fence", context = fence.context(), seqno = fence.seqno(), "signaled");
            return true;
        }
        // Somebody registered interest meanwhile: take the locked path.
    }
    let mut st = inner.lock();
    if inner.flags.load(Ordering::Relaxed) & SIGNALED != 0 {
        return false;
    }
    if let SetError::Set(e) = error {
        inner.error.store(e.raw(), Ordering::Relaxed);
    }
    inner.timestamp.store(ts, Ordering::Relaxed);
    let callbacks = std::mem::take(&mut st.callbacks);
    let ops = st.ops.take();
    let running = if callbacks.is_empty() {
        0
    } else {
        st.runner = thread_token();
        CB_RUNNING
    };
    let old = inner
        .flags
        .fetch_or(SIGNALED | TIMESTAMP | running, Ordering::AcqRel);
    drop(st);
    if old & PARKED != 0 {
        futex::wake_all(&inner.flags);
    }
    tracing::trace!(target: "dmabuf::fence", context = fence.context(), seqno = fence.seqno(), error = inner.error.load(Ordering::Relaxed), "signaled");
    // The ops were detached with the callback list above; the last reference may be this
    // one, and their drop may use the fence (remove a callback, say), so it comes after the
    // callbacks have run and `CB_RUNNING` is clear, also when a callback panicked (`run_all`
    // resumes that panic only once all have run; `ops` is dropped while it unwinds).
    if !callbacks.is_empty() {
        cb::run_all(fence, callbacks);
    }
    drop(ops);
    true
}

/// Process-wide names for fences the library makes itself (stub, arrays, chains).
pub(crate) fn static_names(
    slot: &'static std::sync::OnceLock<StdArc<Names>>,
    driver: &'static str,
    timeline: &'static str,
) -> StdArc<Names> {
    slot.get_or_init(|| {
        StdArc::new(Names {
            driver: Cow::Borrowed(driver),
            timeline: Cow::Borrowed(timeline),
        })
    })
    .clone()
}

/// The fence lock held: proof for the validator too (kernel: `dma_fence_lock_irqsave()`).
pub(crate) struct HooksGuard<'a> {
    guard: MutexGuard<'a, Hooks>,
    _held: validate::Held,
}

impl std::ops::Deref for HooksGuard<'_> {
    type Target = Hooks;
    fn deref(&self) -> &Hooks {
        &self.guard
    }
}

impl std::ops::DerefMut for HooksGuard<'_> {
    fn deref_mut(&mut self) -> &mut Hooks {
        &mut self.guard
    }
}

impl Inner {
    /// Takes the fence lock.
    pub(crate) fn lock(&self) -> HooksGuard<'_> {
        let held = validate::acquire(&validate::FENCE_LOCK, std::ptr::from_ref(self) as usize);
        HooksGuard {
            guard: self.hooks.lock(),
            _held: held,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        tracing::trace!(target: "dmabuf::fence", context = self.context, seqno = self.seqno, "destroy");
    }
}

impl fmt::Display for Fence {
    /// `context:seqno timeline driver [un]signalled`, like `dma_fence_describe()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} {} {} {}signalled",
            self.context(),
            self.seqno(),
            self.timeline_name(),
            self.driver_name(),
            if self.is_signaled_flag() { "" } else { "un" }
        )
    }
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fence")
            .field("context", &self.context())
            .field("seqno", &self.seqno())
            .field("status", &self.status())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::fence::FenceContext;
    use crate::sync::futex::WAKES;

    fn wakes() -> usize {
        WAKES.with(|w| w.get())
    }

    #[test]
    fn signal_without_parked_waiter_makes_no_syscall() {
        let ctx = FenceContext::new("test", "nosys");
        let before = wakes();
        for _ in 0..100 {
            let (s, f) = ctx.next_fence();
            f.add_callback(|_| {}).unwrap();
            s.signal();
            f.wait().unwrap();
        }
        assert_eq!(wakes(), before, "no futex wake without a parked waiter");
    }

    #[test]
    fn signal_with_parked_waiter_wakes_it() {
        let ctx = FenceContext::new("test", "parked");
        let (s, f) = ctx.next_fence();
        let w = {
            let f = f.clone();
            std::thread::spawn(move || f.wait())
        };
        while f.flags() & bits::PARKED == 0 {
            std::thread::yield_now();
        }
        let before = wakes();
        s.signal();
        assert_eq!(wakes(), before + 1);
        assert_eq!(w.join().unwrap(), Ok(()));
    }

    #[test]
    fn sizes_fit_budget() {
        // Arc header (two counts) plus the shared block.
        let fence = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Inner>();
        assert!(fence <= 128, "pending fence takes {fence} bytes");
    }
}
