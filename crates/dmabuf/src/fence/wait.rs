//! Waiting for fences: blocking, with a timeout, for any of several, and async
//! (kernel: `dma_fence_wait_timeout()`, `dma_fence_wait_any_timeout()`).
//!
//! A blocking wait enables signalling, checks the flag, spins briefly and then parks on the
//! fence's own state word with a futex; the signaller wakes only when a waiter has set the
//! `PARKED` bit, so a signal nobody sleeps on costs no system call. Single waits allocate
//! nothing. [`wait_any`] queues one callback on each fence (as the kernel's does), each of
//! which wakes one shared futex word.
//!
//! # Two answers
//! * [`Fence::wait`], [`Fence::wait_timeout`] and [`Fence::wait_deadline`] say how the work
//!   ended: `Ok` if the fence signalled without error, [`FenceFailed`] or
//!   [`WaitError::Failed`] with the fence's error if it failed (or its issuer went away:
//!   `ECANCELED`), [`WaitError::TimedOut`] if the time ran out. For a consumer that waits
//!   before using what the fence guards.
//! * [`Fence::wait_for_signal`], [`Fence::wait_for_signal_timeout`] and
//!   [`Fence::wait_for_signal_deadline`] wait for the signal alone, as the kernel's
//!   `dma_fence_wait()` does (it returns 0 for a fence that signalled with an error): the
//!   error, if any, is in [`Fence::status`]. For code whose point is the kernel's semantics,
//!   and for waits that only need the fence to be done (before freeing what it used).
//!
//! # Rules
//! * A zero timeout polls without blocking, but enables signalling first, as every wait does
//!   (kernel: `dma_fence_wait_timeout()` calls `dma_fence_enable_sw_signaling()` whatever the
//!   timeout): the issuer's `enable_signaling` hook runs (once per fence), then the fence is
//!   looked at. Queries ([`Fence::is_signaled`], [`Fence::status`]) never enable, and
//!   [`wait_any`]'s zero timeout only looks (kernel: `dma_fence_wait_any_timeout()` with
//!   timeout 0 does the same).
//! * Waits are blocking fence waits for the validator (the `lockdep` feature, see
//!   [`docs`](crate::docs)): they must not happen inside a signalling section.
//!
//! # Differences from the kernel
//! * No interruptible variant: user space has no signals to interrupt with. What can be
//!   cancelled is taking a reservation lock
//!   ([`Resv::lock_interruptible`](crate::resv::Resv::lock_interruptible) with a
//!   [`CancelToken`](dmabuf_ww::CancelToken)).
//! * Success is `Ok(())`, not "remaining jiffies"; a deadline form is offered beside the timeout.
//! * A zero-timeout wait is not a fence wait for the validator, since it cannot block, so it
//!   may be used inside a signalling section (a callback); the kernel annotates every
//!   `dma_fence_wait_timeout()` with `__dma_fence_might_wait()`, timeout 0 included.

use super::core::bits::{PARKED, SIGNALED};
use super::{Fence, FenceStatus};
use crate::error::{Error, FenceFailed, Result, TimedOut, WaitError};
use crate::sync::{Arc, AtomicU32, Mutex, Ordering, futex, spin_hint};
use crate::time::MonotonicTime;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Spin iterations before parking: a futex wake-up costs tens of microseconds (20–40 µs
/// measured on a two-vCPU VM) where a signal seen while spinning costs about 0.2 µs, and
/// ~2000 `spin_loop` iterations (a few µs) cover the case of both threads running without
/// burning a time slice.
const SPIN_LIMIT: u32 = 2000;

/// Spins actually made: under loom every spin is a scheduling point, so one is enough there.
const SPINS: u32 = if cfg!(loom) { 1 } else { SPIN_LIMIT };

fn deadline_after(timeout: Duration) -> Option<MonotonicTime> {
    Some(MonotonicTime::now().saturating_add(timeout))
}

impl Fence {
    /// Blocks until the fence signals, and says whether the work it stands for succeeded.
    ///
    /// # Errors
    /// [`FenceFailed`] with the fence's error if it signalled with one (`ECANCELED` for an
    /// issuer dropped unsignalled). [`wait_for_signal`](Self::wait_for_signal) is the
    /// kernel's `dma_fence_wait()`, which does not look at the error.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use dmabuf::{Errno, FenceFailed};
    /// let ctx = FenceContext::new("doc", "wait");
    /// let (issuer, fence) = ctx.next_fence();
    /// let t = std::thread::spawn(move || issuer.signal());
    /// fence.wait()?;
    /// t.join().unwrap();
    ///
    /// let (issuer, failing) = ctx.next_fence();
    /// issuer.signal_with_error(Errno::EIO);
    /// assert_eq!(failing.wait(), Err(FenceFailed(Errno::EIO)));
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    pub fn wait(&self) -> std::result::Result<(), FenceFailed> {
        self.wait_for_signal();
        self.outcome()
    }

    /// Blocks until the fence signals or `timeout` passes, and says whether the work
    /// succeeded. A zero timeout polls, enabling signalling first (see the module docs).
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] (`ETIME`) if the fence is still pending;
    /// [`WaitError::Failed`] with the fence's error if it signalled with one.
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<(), WaitError> {
        self.wait_for_signal_timeout(timeout)?;
        Ok(self.outcome()?)
    }

    /// Blocks until the fence signals or the monotonic clock reaches `deadline`, and says
    /// whether the work succeeded.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(&self, deadline: MonotonicTime) -> std::result::Result<(), WaitError> {
        self.wait_until(Some(deadline))?;
        Ok(self.outcome()?)
    }

    /// Blocks until the fence signals, with or without an error (kernel:
    /// `dma_fence_wait(fence, false)`, which returns 0 for a fence that failed); the error
    /// is in [`status`](Self::status).
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// let ctx = FenceContext::new("doc", "wait_for_signal");
    /// let (issuer, fence) = ctx.next_fence();
    /// let t = std::thread::spawn(move || issuer.signal());
    /// fence.wait_for_signal();
    /// assert!(fence.is_signaled());
    /// t.join().unwrap();
    /// ```
    #[doc(alias = "dma_fence_wait")]
    pub fn wait_for_signal(&self) {
        // An infinite wait can only end by signalling.
        let _ = self.wait_until(None);
    }

    /// Blocks until the fence signals, with or without an error, or until `timeout` passes
    /// (kernel: `dma_fence_wait_timeout()`).
    ///
    /// A zero timeout polls: it enables signalling, as any wait does, then looks, without
    /// blocking (kernel: timeout 0 gives 1 if signalled, else 0). It is not a blocking wait
    /// for the validator.
    ///
    /// # Errors
    /// [`TimedOut`] (`ETIME`) if the fence is still pending.
    ///
    /// ```
    /// use dmabuf::fence::{Fence, FenceContext, FenceOps};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// /// An issuer that arms on demand and has always finished by then.
    /// struct Done;
    /// impl FenceOps for Done {
    ///     fn enable_signaling(&self, _: &Fence) -> bool {
    ///         false
    ///     }
    /// }
    /// let (_issuer, fence) = FenceContext::new("doc", "poll").next_fence_with_ops(Arc::new(Done));
    /// assert!(!fence.is_signaled()); // a query does not enable
    /// assert!(fence.wait_for_signal_timeout(Duration::ZERO).is_ok()); // a poll does
    /// ```
    #[doc(alias = "dma_fence_wait_timeout")]
    pub fn wait_for_signal_timeout(&self, timeout: Duration) -> std::result::Result<(), TimedOut> {
        if timeout.is_zero() {
            return if self.poll_enabling() {
                Ok(())
            } else {
                Err(TimedOut)
            };
        }
        self.wait_until(deadline_after(timeout))
    }

    /// Blocks until the fence signals, with or without an error, or until the monotonic
    /// clock reaches `deadline`.
    ///
    /// # Errors
    /// [`TimedOut`] (`ETIME`) if the fence is still pending at the deadline.
    pub fn wait_for_signal_deadline(
        &self,
        deadline: MonotonicTime,
    ) -> std::result::Result<(), TimedOut> {
        self.wait_until(Some(deadline))
    }

    /// A signalled fence's outcome as a wait answers it.
    pub(crate) fn outcome(&self) -> std::result::Result<(), FenceFailed> {
        match self.signaled_status() {
            FenceStatus::Failed(e) => Err(FenceFailed(e)),
            FenceStatus::Signaled | FenceStatus::Pending => Ok(()),
        }
    }

    /// A zero-timeout wait: whether the fence has signalled once signalling is enabled
    /// (kernel: `dma_fence_wait_timeout(fence, intr, 0)`). Never blocks.
    pub(crate) fn poll_enabling(&self) -> bool {
        if self.is_signaled() {
            return true;
        }
        self.enable_sw_signaling();
        self.is_signaled()
    }

    fn wait_until(&self, deadline: Option<MonotonicTime>) -> std::result::Result<(), TimedOut> {
        // Annotated whether or not this wait ends up blocking: it could have (kernel:
        // `__dma_fence_might_wait()` at the top of every wait).
        crate::validate::might_wait();
        if self.is_signaled() {
            return Ok(());
        }
        tracing::trace!(target: "dmabuf::fence", context = self.context(), seqno = self.seqno(), "wait_start");
        self.enable_sw_signaling();
        let result = self.park(deadline);
        tracing::trace!(target: "dmabuf::fence", context = self.context(), seqno = self.seqno(), ok = result.is_ok(), "wait_end");
        result
    }

    fn park(&self, deadline: Option<MonotonicTime>) -> std::result::Result<(), TimedOut> {
        let flags = &self.0.flags;
        for _ in 0..SPINS {
            if flags.load(Ordering::Acquire) & SIGNALED != 0 {
                return Ok(());
            }
            spin_hint();
        }
        loop {
            let f = flags.load(Ordering::Acquire);
            if f & SIGNALED != 0 {
                return Ok(());
            }
            // Ops and containers may complete by being polled.
            if self.is_signaled() {
                return Ok(());
            }
            if deadline.is_some_and(|d| MonotonicTime::now() >= d) {
                return Err(TimedOut);
            }
            if f & PARKED == 0
                && flags
                    .compare_exchange(f, f | PARKED, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            futex::wait(flags, f | PARKED, deadline);
        }
    }

    /// A future that resolves when the fence signals, to how the work ended (as
    /// [`wait`](Self::wait): `Err` if the fence signalled with an error); runtime-agnostic.
    ///
    /// The first pending poll queues a callback that wakes the latest waker; dropping the future
    /// removes it without waiting, also while the fence is signalling.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    /// let ctx = FenceContext::new("doc", "async");
    /// let (issuer, fence) = ctx.next_fence();
    /// let mut fut = Box::pin(fence.wait_async());
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(fut.as_mut().poll(&mut cx).is_pending());
    /// issuer.signal();
    /// assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    /// ```
    pub fn wait_async(&self) -> FenceFuture {
        FenceFuture {
            fence: self.clone(),
            armed: None,
        }
    }
}

/// The slot an async waiter's latest waker lives in.
type WakerSlot = Arc<Mutex<Option<Waker>>>;

/// Future returned by [`Fence::wait_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct FenceFuture {
    fence: Fence,
    armed: Option<(WakerSlot, super::CallbackHandle)>,
}

impl Future for FenceFuture {
    /// How the work ended, as [`Fence::wait`] answers: `Err` if the fence signalled with an
    /// error.
    type Output = std::result::Result<(), FenceFailed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.fence.is_signaled() {
            return Poll::Ready(self.fence.outcome());
        }
        match &self.armed {
            Some((slot, _)) => {
                let mut w = slot.lock();
                match w.as_ref() {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
            }
            None => {
                let slot: WakerSlot = Arc::new(Mutex::new(Some(cx.waker().clone())));
                let s = slot.clone();
                let handle = self.fence.add_callback(move |_| {
                    if let Some(w) = s.lock().take() {
                        w.wake();
                    }
                });
                match handle {
                    Ok(h) => self.armed = Some((slot, h)),
                    Err(_) => return Poll::Ready(self.fence.outcome()),
                }
            }
        }
        // The callback may have fired before the new waker was stored.
        if self.fence.is_signaled_flag() {
            Poll::Ready(self.fence.outcome())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for FenceFuture {
    /// Takes the callback off the fence if it has not run; never waits (the callback owns the
    /// waker slot it uses, so it may still run, harmlessly, on the signalling thread).
    fn drop(&mut self) {
        if let Some((_, handle)) = self.armed.take() {
            handle.cancel();
        }
    }
}

/// `wait_any`'s shared word: 0 idle, 1 a fence signalled, 2 the waiter is parked.
struct AnyWaiter {
    word: AtomicU32,
}

const ANY_IDLE: u32 = 0;
const ANY_DONE: u32 = 1;
const ANY_PARKED: u32 = 2;

/// Blocks until any of `fences` signals and returns the index of the first signalled one in
/// slice order (kernel: `dma_fence_wait_any_timeout()`). `None` waits forever; a zero timeout
/// only looks, enabling nothing (as the kernel's).
///
/// # Errors
/// [`Error::NoFences`] (`EINVAL`) for an empty slice; [`Error::TimedOut`] (`ETIME`) if none
/// signalled in time.
///
/// ```
/// use dmabuf::fence::{FenceContext, wait_any};
/// use std::time::Duration;
/// let ctx = FenceContext::new("doc", "any");
/// let (_a, fa) = ctx.next_fence();
/// let (b, fb) = ctx.next_fence();
/// assert!(wait_any(&[fa.clone(), fb.clone()], Some(Duration::ZERO)).is_err());
/// b.signal();
/// assert_eq!(wait_any(&[fa, fb], None).unwrap(), 1);
/// ```
#[doc(alias = "dma_fence_wait_any_timeout")]
pub fn wait_any(fences: &[Fence], timeout: Option<Duration>) -> Result<usize> {
    let deadline = match timeout {
        Some(t) if t.is_zero() => return first_signaled(fences)?.ok_or(Error::TimedOut),
        Some(t) => deadline_after(t),
        None => None,
    };
    wait_any_until(fences, deadline)
}

/// [`wait_any`] with an absolute deadline.
///
/// # Errors
/// As [`wait_any`].
pub fn wait_any_deadline(fences: &[Fence], deadline: MonotonicTime) -> Result<usize> {
    wait_any_until(fences, Some(deadline))
}

fn first_signaled(fences: &[Fence]) -> Result<Option<usize>> {
    if fences.is_empty() {
        return Err(Error::NoFences);
    }
    Ok(fences.iter().position(Fence::is_signaled))
}

/// Sleeps until `word` is `ANY_DONE` or `deadline` passes.
fn park_any(word: &AtomicU32, deadline: Option<MonotonicTime>) {
    loop {
        let v = word.load(Ordering::Acquire);
        if v == ANY_DONE || deadline.is_some_and(|d| MonotonicTime::now() >= d) {
            return;
        }
        if v == ANY_IDLE
            && word
                .compare_exchange(ANY_IDLE, ANY_PARKED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            continue;
        }
        futex::wait(word, ANY_PARKED, deadline);
    }
}

fn wait_any_until(fences: &[Fence], deadline: Option<MonotonicTime>) -> Result<usize> {
    if fences.is_empty() {
        return Err(Error::NoFences);
    }
    crate::validate::might_wait();
    if let Some(i) = first_signaled(fences)? {
        return Ok(i);
    }
    tracing::trace!(target: "dmabuf::fence", n = fences.len(), "wait_start");
    let waiter = Arc::new(AnyWaiter {
        word: AtomicU32::new(ANY_IDLE),
    });
    let mut handles = Vec::with_capacity(fences.len());
    let mut already = false;
    for f in fences {
        let w = waiter.clone();
        match f.add_callback(move |_| {
            if w.word.swap(ANY_DONE, Ordering::AcqRel) == ANY_PARKED {
                futex::wake_all(&w.word);
            }
        }) {
            Ok(h) => handles.push(h),
            Err(_) => {
                already = true;
                break;
            }
        }
    }
    if !already {
        park_any(&waiter.word, deadline);
    }
    // Never waits: each callback owns its share of the word it wakes.
    for h in handles {
        h.cancel();
    }
    let r = fences
        .iter()
        .position(Fence::is_signaled_flag)
        .ok_or(Error::TimedOut);
    tracing::trace!(target: "dmabuf::fence", ok = r.is_ok(), "wait_end");
    r
}
