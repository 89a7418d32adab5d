//! Waiting for many syncobj points at once (kernel: `DRM_IOCTL_SYNCOBJ_WAIT`,
//! `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`, `drm_syncobj_array_wait_timeout()`).
//!
//! A [`Wait`] names `(syncobj, point)` pairs and how to wait: for all of them or for any,
//! for points nobody has submitted yet ([`WaitFlags::FOR_SUBMIT`]), only for them to be
//! submitted ([`WaitFlags::AVAILABLE`]), with a deadline hint for their fences
//! ([`Wait::fence_deadline`]); blocking, with a time limit, or as a future.
//!
//! # Rules
//! * First every point is looked up. One without a fence is `EINVAL` unless the wait waits
//!   for submit or for availability; if the points already done satisfy the wait (all of
//!   them, or any one), it returns without registering anything.
//! * Then the wait registers for the points without a fence (with either flag), sets the
//!   deadline on the fences it has, and loops: a point is done once its fence has signalled
//!   (with or without an error), or, with [`WaitFlags::AVAILABLE`], once it has a fence at
//!   all. "Any" answers the first done point in the order given. A fence that arrives later
//!   gets no deadline.
//! * A point whose fence the wait took is not affected by later replacements or resets of its
//!   syncobj; one still waiting for submit takes the first fence that covers it.
//! * A zero timeout (or a time limit already past) looks once, enabling the fences' signalling
//!   as the kernel's does, and answers `ETIME` if the wait is not satisfied.
//! * A wait that can block, and so every blocking or timed wait, is a fence wait for the
//!   validator: not inside a signalling section, not under a lock a fence callback takes.
//!
//! # Differences from the kernel
//! * A point that signalled with an error is done, as in the kernel: unlike
//!   [`Fence::wait`](crate::Fence::wait), a syncobj wait does not report the error. A
//!   timeline point's chain node does not carry it either (nor does the kernel's): it is on
//!   the node's fence ([`Syncobj::find_fence`], then
//!   [`Fence::contained`](crate::Fence::contained)).
//! * The kernel's `WAIT_ALL` is the choice between [`Wait::all`] and [`Wait::any`], and its
//!   `WAIT_DEADLINE` with `deadline_nsec` is [`Wait::fence_deadline`]; [`WaitFlags`] holds the
//!   other two flags, and cannot hold a bit the kernel would refuse.
//! * No interruptible wait (no `-ERESTARTSYS`); time limits are durations or
//!   [`MonotonicTime`]s rather than absolute nanoseconds.

use super::submit::SubmitWaiter;
use super::{Point, Syncobj};
use crate::error::{Error, SyncobjWaitError};
use crate::fence::{CallbackHandle, Fence, FenceContext, Signaller};
use crate::sync::Mutex;
use crate::time::MonotonicTime;
use crate::validate;
use std::fmt;
use std::future::Future;
use std::ops::{BitOr, BitOrAssign};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How a [`Wait`] treats points without a fence (kernel: `DRM_SYNCOBJ_WAIT_FLAGS_*`, at the
/// same bit positions).
///
/// ```
/// use dmabuf::syncobj::WaitFlags;
/// let flags = WaitFlags::FOR_SUBMIT | WaitFlags::AVAILABLE;
/// assert_eq!(flags.bits(), 0b110);
/// assert_eq!(WaitFlags::from_bits(0b110), Ok(flags));
/// // Bit 0 (WAIT_ALL) is Wait::all, bit 3 (WAIT_DEADLINE) Wait::fence_deadline.
/// assert_eq!(WaitFlags::from_bits(0b1).unwrap_err().errno(), dmabuf::Errno::EINVAL);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WaitFlags(u32);

impl WaitFlags {
    /// Neither flag: a point without a fence is `EINVAL`.
    pub const NONE: WaitFlags = WaitFlags(0);
    /// Wait for points without a fence to get one, then for it to signal (kernel:
    /// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`, `1 << 1`).
    pub const FOR_SUBMIT: WaitFlags = WaitFlags(1 << 1);
    /// A point is done once it has a fence, signalled or not (kernel:
    /// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`, `1 << 2`); a point without one is waited for.
    pub const AVAILABLE: WaitFlags = WaitFlags(1 << 2);

    const ALL_BITS: u32 = Self::FOR_SUBMIT.0 | Self::AVAILABLE.0;

    /// The kernel's bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Flags from the kernel's bits.
    ///
    /// # Errors
    /// [`Error::InvalidFlags`] (`EINVAL`) for any other bit, `WAIT_ALL` and `WAIT_DEADLINE`
    /// included (they are [`Wait::all`] and [`Wait::fence_deadline`]).
    pub fn from_bits(bits: u32) -> Result<WaitFlags, Error> {
        if bits & !Self::ALL_BITS != 0 {
            return Err(Error::InvalidFlags(u64::from(bits)));
        }
        Ok(WaitFlags(bits))
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: WaitFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether a point without a fence is waited for rather than `EINVAL`.
    fn waits_for_submit(self) -> bool {
        self.0 != 0
    }
}

impl BitOr for WaitFlags {
    type Output = WaitFlags;
    fn bitor(self, rhs: WaitFlags) -> WaitFlags {
        WaitFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for WaitFlags {
    fn bitor_assign(&mut self, rhs: WaitFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for WaitFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::FOR_SUBMIT, "FOR_SUBMIT"),
            (Self::AVAILABLE, "AVAILABLE"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        if set.is_empty() {
            f.write_str("WaitFlags(NONE)")
        } else {
            write!(f, "WaitFlags({})", set.join(" | "))
        }
    }
}

/// A wait over `(syncobj, point)` pairs (kernel: the arguments of
/// `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`; point 0 throughout is `DRM_IOCTL_SYNCOBJ_WAIT`).
///
/// Built once, it can be waited on any number of times; cloning it clones the syncobj handles.
///
/// ```
/// use dmabuf::syncobj::{Point, Syncobj, Wait, WaitFlags};
/// use std::time::Duration;
/// let (a, b) = (Syncobj::new(), Syncobj::new());
/// b.timeline_signal(Point(3));
/// let wait = Wait::new([(&a, Point(1)), (&b, Point(2))]).flags(WaitFlags::FOR_SUBMIT);
/// assert_eq!(wait.any(None)?, 1); // b's point 2 is done (point 3 covers it)
/// assert_eq!(wait.all(Some(Duration::from_millis(1))).unwrap_err().errno(), dmabuf::Errno::ETIME);
/// # Ok::<(), dmabuf::SyncobjWaitError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Wait {
    points: Vec<(Syncobj, Point)>,
    flags: WaitFlags,
    fence_deadline: Option<MonotonicTime>,
}

/// When a blocking wait gives up.
#[derive(Clone, Copy)]
enum Limit {
    /// Look once (timeout 0).
    Poll,
    Until(MonotonicTime),
    Forever,
}

impl Limit {
    fn after(timeout: Option<Duration>) -> Limit {
        match timeout {
            None => Limit::Forever,
            Some(t) if t.is_zero() => Limit::Poll,
            Some(t) => Limit::Until(MonotonicTime::now() + t),
        }
    }
}

impl Wait {
    /// A wait for `points`, with no flags and no deadline.
    pub fn new<'a>(points: impl IntoIterator<Item = (&'a Syncobj, Point)>) -> Wait {
        Wait {
            points: points.into_iter().map(|(s, p)| (s.clone(), p)).collect(),
            flags: WaitFlags::NONE,
            fence_deadline: None,
        }
    }

    /// Sets the flags (kernel: `flags` less `WAIT_ALL` and `WAIT_DEADLINE`).
    pub fn flags(mut self, flags: WaitFlags) -> Wait {
        self.flags = flags;
        self
    }

    /// Asks the fences the wait has when it starts waiting to signal by `deadline` (kernel:
    /// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE` with `deadline_nsec`, `dma_fence_set_deadline()`).
    /// A hint; not set when the wait is satisfied at once, nor on fences submitted later.
    pub fn fence_deadline(mut self, deadline: MonotonicTime) -> Wait {
        self.fence_deadline = Some(deadline);
        self
    }

    /// Blocks until every point is done, or `timeout` passes (`None`: no limit; zero: look
    /// once). A point is done when its fence has signalled, or with
    /// [`WaitFlags::AVAILABLE`] when it has a fence.
    ///
    /// # Errors
    /// * [`SyncobjWaitError::NoPoints`] (`EINVAL`) for a wait over no points;
    /// * [`SyncobjWaitError::Unsubmitted`] (`EINVAL`) for a point without a fence when the
    ///   flags are [`WaitFlags::NONE`];
    /// * [`SyncobjWaitError::TimedOut`] (`ETIME`).
    ///
    /// # Signalling context
    /// Unless `timeout` is zero, a fence wait for the validator.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_WAIT")]
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT")]
    pub fn all(&self, timeout: Option<Duration>) -> Result<(), SyncobjWaitError> {
        self.block(true, Limit::after(timeout)).map(drop)
    }

    /// [`all`](Self::all) with an absolute time limit on the monotonic clock (kernel:
    /// `timeout_nsec`); a limit already past looks once.
    ///
    /// # Errors
    /// As [`all`](Self::all).
    pub fn all_until(&self, until: MonotonicTime) -> Result<(), SyncobjWaitError> {
        self.block(true, Limit::Until(until)).map(drop)
    }

    /// Blocks until any point is done, or `timeout` passes, and answers the index of the first
    /// point found done, in the order given (kernel: `first_signaled`).
    ///
    /// # Errors
    /// As [`all`](Self::all).
    ///
    /// # Signalling context
    /// Unless `timeout` is zero, a fence wait for the validator.
    pub fn any(&self, timeout: Option<Duration>) -> Result<usize, SyncobjWaitError> {
        self.block(false, Limit::after(timeout)).map(first)
    }

    /// [`any`](Self::any) with an absolute time limit on the monotonic clock.
    ///
    /// # Errors
    /// As [`all`](Self::all).
    pub fn any_until(&self, until: MonotonicTime) -> Result<usize, SyncobjWaitError> {
        self.block(false, Limit::Until(until)).map(first)
    }

    /// A future that resolves when every point is done; runtime-agnostic, without a time
    /// limit (combine it with the runtime's timeout).
    ///
    /// ```
    /// use dmabuf::syncobj::{Point, Syncobj, Wait, WaitFlags};
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    /// let s = Syncobj::new();
    /// let mut fut = Box::pin(Wait::new([(&s, Point(1))]).flags(WaitFlags::FOR_SUBMIT).all_async());
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(fut.as_mut().poll(&mut cx).is_pending());
    /// s.timeline_signal(Point(1));
    /// assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    /// ```
    pub fn all_async(&self) -> WaitAllFuture {
        WaitAllFuture(AsyncWait::new(self.clone(), true))
    }

    /// A future that resolves to the index of the first point found done.
    pub fn any_async(&self) -> WaitAnyFuture {
        WaitAnyFuture(AsyncWait::new(self.clone(), false))
    }

    fn block(&self, all: bool, limit: Limit) -> Result<Option<usize>, SyncobjWaitError> {
        if !matches!(limit, Limit::Poll) {
            validate::might_wait();
        }
        let mut run = match Run::start(self, all)? {
            Start::Done(first) => return Ok(first),
            Start::Waiting(run) => run,
        };
        loop {
            let kick = match limit {
                Limit::Poll => None,
                Limit::Until(_) | Limit::Forever => Some(run.wake.arm()),
            };
            if run.scan() {
                return Ok(run.first);
            }
            let (kick, until) = match (kick, limit) {
                (Some(kick), Limit::Until(t)) if MonotonicTime::now() < t => (kick, Some(t)),
                (Some(kick), Limit::Forever) => (kick, None),
                _ => return Err(SyncobjWaitError::TimedOut),
            };
            match until {
                Some(t) => drop(kick.wait_for_signal_deadline(t)),
                None => kick.wait_for_signal(),
            }
        }
    }
}

/// The index a wait for any answers; a finished wait for any always has one.
fn first(found: Option<usize>) -> usize {
    found.unwrap_or(0)
}

/// The context of the private fences a blocking wait sleeps on.
fn kicks() -> &'static FenceContext {
    static KICKS: OnceLock<FenceContext> = OnceLock::new();
    KICKS.get_or_init(|| FenceContext::new("drm_syncobj", "wait"))
}

/// How the events a wait waits for reach it: a blocking wait sleeps on a private fence that
/// the next event signals; an async wait leaves its waker.
#[derive(Default)]
struct Wake {
    slot: Mutex<Sleepers>,
}

#[derive(Default)]
struct Sleepers {
    kick: Option<Signaller>,
    waker: Option<Waker>,
}

impl Wake {
    /// Something the wait waits for happened: wake whoever sleeps.
    fn kick(&self) {
        let (kick, waker) = {
            let mut s = self.slot.lock();
            (s.kick.take(), s.waker.take())
        };
        if let Some(k) = kick {
            k.signal();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// A fresh fence the next event signals. Armed before looking, so an event after the look
    /// is not missed.
    fn arm(&self) -> Fence {
        let (signaller, fence) = kicks().next_fence();
        let old = self.slot.lock().kick.replace(signaller);
        if let Some(old) = old {
            old.signal();
        }
        fence
    }

    /// Leaves the waker the next event wakes.
    fn set_waker(&self, waker: &Waker) {
        let mut s = self.slot.lock();
        match &s.waker {
            Some(old) if old.will_wake(waker) => {}
            _ => s.waker = Some(waker.clone()),
        }
    }

    /// Signals a fence armed but not needed any more (an issuer dropped unsignalled would
    /// count as a leak).
    fn disarm(&self) {
        let kick = self.slot.lock().kick.take();
        if let Some(k) = kick {
            k.signal();
        }
    }
}

/// Where a waiter for submit leaves the fence it is told.
type Landing = Arc<Mutex<Option<Fence>>>;

/// One point of a running wait.
struct Entry {
    syncobj: Syncobj,
    point: Point,
    /// The point's fence once the wait has it.
    fence: Option<Fence>,
    /// Registered with the syncobj until the point is submitted, and where the fence lands.
    submit: Option<(Arc<SubmitWaiter>, Landing)>,
    /// The callback on `fence` that wakes the wait.
    armed: Option<CallbackHandle>,
}

/// A wait in progress (kernel: the `entries` of `drm_syncobj_array_wait_timeout()`).
struct Run {
    entries: Vec<Entry>,
    flags: WaitFlags,
    all: bool,
    wake: Arc<Wake>,
    /// The answer of a wait for any.
    first: Option<usize>,
}

enum Start {
    /// Satisfied by the first look.
    Done(Option<usize>),
    Waiting(Run),
}

impl Run {
    /// Looks every point up, registers for the unsubmitted ones and sets the deadline (see the
    /// module's rules).
    fn start(wait: &Wait, all: bool) -> Result<Start, SyncobjWaitError> {
        if wait.points.is_empty() {
            return Err(SyncobjWaitError::NoPoints);
        }
        let available = wait.flags.contains(WaitFlags::AVAILABLE);
        let mut entries = Vec::with_capacity(wait.points.len());
        let mut done = 0;
        let mut first = None;
        for (index, (syncobj, point)) in wait.points.iter().enumerate() {
            let fence = syncobj.locate(*point);
            match &fence {
                None if !wait.flags.waits_for_submit() => {
                    return Err(SyncobjWaitError::Unsubmitted {
                        index,
                        point: point.get(),
                    });
                }
                Some(f) if available || f.is_signaled() => {
                    first.get_or_insert(index);
                    done += 1;
                }
                _ => {}
            }
            entries.push(Entry {
                syncobj: syncobj.clone(),
                point: *point,
                fence,
                submit: None,
                armed: None,
            });
        }
        if done == entries.len() || (done > 0 && !all) {
            return Ok(Start::Done(first));
        }
        let mut run = Run {
            entries,
            flags: wait.flags,
            all,
            wake: Arc::default(),
            first: None,
        };
        if wait.flags.waits_for_submit() {
            run.register();
        }
        if let Some(deadline) = wait.fence_deadline {
            for f in run.entries.iter().filter_map(|e| e.fence.as_ref()) {
                f.set_deadline(deadline);
            }
        }
        Ok(Start::Waiting(run))
    }

    /// Registers a waiter for submit for every point without a fence (kernel:
    /// `drm_syncobj_fence_add_wait()`, which looks once more first).
    fn register(&mut self) {
        for e in self.entries.iter_mut().filter(|e| e.fence.is_none()) {
            let landed: Landing = Arc::default();
            let waiter = {
                let (landed, wake) = (landed.clone(), self.wake.clone());
                SubmitWaiter::new(e.point, move |fence| {
                    *landed.lock() = Some(fence);
                    wake.kick();
                })
            };
            match e.syncobj.register(&waiter) {
                Some(fence) => e.fence = Some(fence),
                None => e.submit = Some((waiter, landed)),
            }
        }
    }

    /// Looks at every point once, arming a wake-up on each fence not yet signalled; `true`
    /// when the wait is satisfied (for any: `first` is the point).
    fn scan(&mut self) -> bool {
        let available = self.flags.contains(WaitFlags::AVAILABLE);
        let mut done = 0;
        for (index, e) in self.entries.iter_mut().enumerate() {
            if e.fence.is_none()
                && let Some((_, landed)) = &e.submit
            {
                e.fence = landed.lock().take();
            }
            let Some(fence) = &e.fence else { continue };
            let signalled = available || fence.is_signaled() || {
                e.armed.is_none() && {
                    let wake = self.wake.clone();
                    match fence.add_callback(move |_| wake.kick()) {
                        Ok(handle) => {
                            e.armed = Some(handle);
                            false
                        }
                        Err(_) => true,
                    }
                }
            };
            if signalled {
                if !self.all {
                    self.first = Some(index);
                    return true;
                }
                done += 1;
            }
        }
        done == self.entries.len()
    }
}

impl Drop for Run {
    /// Takes the wait's waiters and callbacks off their syncobjs and fences, never waiting:
    /// each owns what it touches, so one that runs late is harmless.
    fn drop(&mut self) {
        for e in &mut self.entries {
            if let Some((waiter, _)) = e.submit.take() {
                e.syncobj.deregister(&waiter);
                drop(waiter.withdraw());
            }
            if let Some(handle) = e.armed.take() {
                handle.cancel();
            }
        }
        self.wake.disarm();
    }
}

/// The state both wait futures share.
struct AsyncWait {
    wait: Wait,
    all: bool,
    run: Option<Run>,
    /// Set once the future has answered.
    answered: bool,
}

impl AsyncWait {
    fn new(wait: Wait, all: bool) -> AsyncWait {
        AsyncWait {
            wait,
            all,
            run: None,
            answered: false,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<usize>, SyncobjWaitError>> {
        if self.answered {
            return Poll::Pending;
        }
        if self.run.is_none() {
            match Run::start(&self.wait, self.all) {
                Err(e) => return self.answer(Err(e)),
                Ok(Start::Done(first)) => return self.answer(Ok(first)),
                Ok(Start::Waiting(run)) => self.run = Some(run),
            }
        }
        let Some(run) = self.run.as_mut() else {
            return Poll::Pending;
        };
        // The waker first, then the look: an event after the look wakes this task.
        run.wake.set_waker(cx.waker());
        if run.scan() {
            let first = run.first;
            self.run = None;
            return self.answer(Ok(first));
        }
        Poll::Pending
    }

    fn answer<T>(&mut self, out: T) -> Poll<T> {
        self.answered = true;
        Poll::Ready(out)
    }
}

impl fmt::Debug for AsyncWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWait")
            .field("wait", &self.wait)
            .field("all", &self.all)
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

/// Future returned by [`Wait::all_async`]: resolves when every point is done. Dropping it
/// takes its waiters off, without waiting.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WaitAllFuture(AsyncWait);

impl Future for WaitAllFuture {
    /// As [`Wait::all`] answers, without a time limit.
    type Output = Result<(), SyncobjWaitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll(cx).map(|r| r.map(drop))
    }
}

/// Future returned by [`Wait::any_async`]: resolves to the index of the first point found
/// done. Dropping it takes its waiters off, without waiting.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WaitAnyFuture(AsyncWait);

impl Future for WaitAnyFuture {
    /// As [`Wait::any`] answers, without a time limit.
    type Output = Result<usize, SyncobjWaitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll(cx).map(|r| r.map(first))
    }
}
