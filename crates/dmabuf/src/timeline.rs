//! A software timeline: fences at points on a counter that only moves forward (kernel:
//! `sw_sync`, the test-only timeline behind `/sys/kernel/debug/sync/sw_sync`).
//!
//! [`Timeline::create_fence`] makes a fence at point N; [`Timeline::inc`] advances the counter
//! and signals, in order, every point it passed; closing the timeline (explicitly, or by
//! dropping its last handle) signals every pending point with [`Errno::ENOENT`]. Tests and
//! examples use it where the kernel's tests use sw_sync or vgem.
//!
//! # Rules
//! * Points are 32-bit and compare with wrap-around, as sw_sync's do.
//! * A point at or before the current value is born signalled and not tracked; a pending point
//!   asked for twice is the same fence.
//! * Signalled points are forgotten: a timeline that advanced past a million points holds no
//!   memory for them.
//! * Points signal in order even when several threads advance the timeline at once (a separate
//!   signalling lock serialises advances; fences are signalled after the state lock is
//!   released, so callbacks may create points, where sw_sync deadlocks: see
//!   [`docs::kernel_bugs`](crate::docs::kernel_bugs)).
//! * A point's callback may advance or close its own timeline: the
//!   thread that is advancing does that step itself right after the callbacks of the current
//!   step have run, so [`Timeline::inc`] and [`Timeline::close`] return at once when called
//!   from inside it. On any other thread they wait their turn as usual.
//! * A panicking callback does not stop the advance: every point it reached signals (without
//!   error), and the panic continues once they all have.
//!
//! # Differences from the kernel
//! * A pending point lives until it signals even if every consumer dropped its handle (sw_sync
//!   unlinks it on release).
//! * The deadline of a point ([`Timeline::deadline`]) is known only while it is pending.
//!
//! Kernel: `drivers/dma-buf/sw_sync.c`; suites: `tests/igt_sw_sync.rs`, `tests/sync_selftests.rs`.

use crate::error::{Errno, Error, Result};
use crate::fence::{Fence, FenceContext, FenceOps, FenceStatus, Signaller, seqno_is_later};
use crate::sync::thread_token;
use crate::time::MonotonicTime;
use crate::validate::{TIMELINE_LOCK, TIMELINE_SIGNAL_LOCK, TrackedMutex};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// A software timeline (kernel: a `sw_sync` timeline). Cloning shares the timeline; the last
/// handle dropped closes it.
///
/// ```
/// use dmabuf::Timeline;
/// let tl = Timeline::new("demo");
/// let f5 = tl.create_fence(5).unwrap();
/// tl.inc(4);
/// assert!(!f5.is_signaled());
/// tl.inc(1);
/// assert!(f5.is_signaled());
/// assert!(tl.create_fence(3).unwrap().is_signaled()); // born signalled
/// ```
#[derive(Clone, Debug)]
pub struct Timeline {
    handle: Arc<Handle>,
}

/// Closes the timeline when the last [`Timeline`] goes.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    ctx: FenceContext,
    /// The lower 32 bits of the value, for lock-free polls.
    value32: AtomicU32,
    /// Serialises advances so points signal in order.
    signal_lock: TrackedMutex<()>,
    /// The thread holding `signal_lock` ([`thread_token`]), 0 if none: a call from that thread
    /// comes from a point's callback and is deferred rather than deadlock on the lock.
    advancing: AtomicUsize,
    /// Increments deferred by calls from inside the advancing thread's callbacks.
    deferred_inc: AtomicU64,
    /// A close deferred the same way.
    deferred_close: AtomicBool,
    /// Value, pending points, closed flag.
    state: TrackedMutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The value, never wrapping (the 32-bit value is its low half).
    value: u64,
    /// Pending points keyed by the absolute value at which they signal.
    points: BTreeMap<u64, Point>,
    closed: bool,
}

#[derive(Debug)]
struct Point {
    signaller: Signaller,
    fence: Fence,
    deadline: Option<MonotonicTime>,
}

impl State {
    /// The absolute key of a point at 32-bit `value`, if it is still in the future.
    fn key_of(&self, value: u32) -> Option<u64> {
        let cur = self.value as u32;
        seqno_is_later(false, u64::from(value), u64::from(cur))
            .then(|| self.value + u64::from(value.wrapping_sub(cur)))
    }
}

impl Timeline {
    /// A new timeline at value 0 with a fresh context; `name` is the timeline name its fences
    /// report (driver name "sw_sync").
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        let shared = Arc::new(Shared {
            ctx: FenceContext::new("sw_sync", name).with_wrapping_seqno(),
            value32: AtomicU32::new(0),
            signal_lock: TrackedMutex::new(&TIMELINE_SIGNAL_LOCK, ()),
            advancing: AtomicUsize::new(0),
            deferred_inc: AtomicU64::new(0),
            deferred_close: AtomicBool::new(false),
            state: TrackedMutex::new(&TIMELINE_LOCK, State::default()),
        });
        Self {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The context id every point's fence has.
    pub fn context(&self) -> u64 {
        self.shared().ctx.id()
    }

    /// The current value (kernel: the timeline's `value`).
    pub fn value(&self) -> u32 {
        self.shared().value32.load(Ordering::Acquire)
    }

    /// How many points are pending (tracked) right now.
    pub fn pending_points(&self) -> usize {
        self.shared().state.lock().points.len()
    }

    /// Whether the timeline has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared().state.lock().closed
    }

    /// A fence that signals when the timeline reaches `value` (kernel:
    /// `SW_SYNC_IOC_CREATE_FENCE`).
    ///
    /// # Errors
    /// [`Error::TimelineClosed`] (`ENOENT`) once the timeline is closed.
    pub fn create_fence(&self, value: u32) -> Result<Fence> {
        let shared = self.shared();
        let mut st = shared.state.lock();
        if st.closed {
            return Err(Error::TimelineClosed);
        }
        let Some(key) = st.key_of(value) else {
            drop(st);
            let (signaller, fence) = shared.ctx.fence(u64::from(value));
            signaller.signal();
            return Ok(fence);
        };
        if let Some(p) = st.points.get(&key) {
            return Ok(p.fence.clone());
        }
        let ops: Arc<dyn FenceOps> = shared.clone();
        let (signaller, fence) = shared.ctx.fence_with_ops(u64::from(value), Some(ops));
        st.points.insert(
            key,
            Point {
                signaller,
                fence: fence.clone(),
                deadline: None,
            },
        );
        Ok(fence)
    }

    /// Advances the value by `by` and signals, in order, every point it reached (kernel:
    /// `SW_SYNC_IOC_INC`).
    ///
    /// Called from a callback of a point this thread is signalling, the advance is done by
    /// the outer call once the current callbacks have returned, and this call returns at once.
    ///
    /// ```
    /// use dmabuf::Timeline;
    /// let tl = Timeline::new("doc");
    /// let (p1, p2) = (tl.create_fence(1).unwrap(), tl.create_fence(2).unwrap());
    /// let t = tl.clone();
    /// p1.add_callback(move |_| t.inc(1)).unwrap(); // re-enters: deferred, not a deadlock
    /// tl.inc(1);
    /// assert!(p2.is_signaled());
    /// ```
    pub fn inc(&self, by: u32) {
        let shared = self.shared();
        if shared.is_advancing_here() {
            shared
                .deferred_inc
                .fetch_add(u64::from(by), Ordering::Relaxed);
            return;
        }
        shared.exclusively(|shared, panicked| shared.advance(u64::from(by), panicked));
    }

    /// Closes the timeline: every pending point signals with [`Errno::ENOENT`] and no new point
    /// can be created (kernel: releasing the sw_sync file).
    ///
    /// Called from a callback of a point this thread is signalling, the close is done by the
    /// outer call once the current callbacks have returned.
    pub fn close(&self) {
        self.shared().close();
    }

    /// The earliest deadline set on a pending point's fence (kernel:
    /// `SW_SYNC_GET_DEADLINE`); `None` if none was set, the point has signalled, or the fence
    /// is not a pending point of this timeline.
    pub fn deadline(&self, fence: &Fence) -> Option<MonotonicTime> {
        if fence.context() != self.context() {
            return None;
        }
        let st = self.shared().state.lock();
        let key = st.key_of(fence.seqno() as u32)?;
        st.points.get(&key).and_then(|p| p.deadline)
    }
}

/// A panic caught from a point's callbacks, resumed once the advance is complete.
type Payload = Box<dyn std::any::Any + Send>;

impl Shared {
    fn close(&self) {
        if self.is_advancing_here() {
            self.deferred_close.store(true, Ordering::Relaxed);
            return;
        }
        self.exclusively(Shared::close_points);
    }

    /// Whether this thread holds the signalling lock, i.e. the caller is a point's callback.
    fn is_advancing_here(&self) -> bool {
        self.advancing.load(Ordering::Relaxed) == thread_token()
    }

    /// Runs `step` under the signalling lock, then every step deferred by callbacks meanwhile;
    /// resumes the first panic of a callback once all are done.
    fn exclusively(&self, step: impl FnOnce(&Self, &mut Option<Payload>)) {
        /// Forgets the advancing thread also when a panic leaves.
        struct Advancing<'a>(&'a AtomicUsize);
        impl Drop for Advancing<'_> {
            fn drop(&mut self) {
                self.0.store(0, Ordering::Relaxed);
            }
        }
        let order = self.signal_lock.lock();
        self.advancing.store(thread_token(), Ordering::Relaxed);
        let advancing = Advancing(&self.advancing);
        let mut panicked = None;
        step(self, &mut panicked);
        loop {
            if self.deferred_close.swap(false, Ordering::Relaxed) {
                self.close_points(&mut panicked);
            }
            match self.deferred_inc.swap(0, Ordering::Relaxed) {
                0 => break,
                by => self.advance(by, &mut panicked),
            }
        }
        drop(advancing);
        drop(order);
        if let Some(payload) = panicked {
            if std::thread::panicking() {
                // Closed by a handle dropped while unwinding: a second unwind would abort.
                tracing::error!(target: "dmabuf::timeline", "a point's callback panicked while the thread was unwinding; the panic is not resumed");
            } else {
                std::panic::resume_unwind(payload);
            }
        }
    }

    /// Adds `by` to the value and signals every point reached. Signalling lock held.
    fn advance(&self, by: u64, panicked: &mut Option<Payload>) {
        let ready = {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            st.value += by;
            self.value32.store(st.value as u32, Ordering::Release);
            let first_pending = st.value + 1;
            let rest = st.points.split_off(&first_pending);
            std::mem::replace(&mut st.points, rest)
        };
        for (_, p) in ready {
            drop(p.fence);
            catch(panicked, || p.signaller.signal());
        }
    }

    /// Closes the timeline and cancels every pending point. Signalling lock held.
    fn close_points(&self, panicked: &mut Option<Payload>) {
        let points = {
            let mut st = self.state.lock();
            st.closed = true;
            std::mem::take(&mut st.points)
        };
        for (_, p) in points {
            drop(p.fence);
            catch(panicked, || p.signaller.signal_with_error(Errno::ENOENT));
        }
    }
}

/// Runs `f`, keeping the first panic in `first`; later ones are dropped.
fn catch(first: &mut Option<Payload>, f: impl FnOnce() -> bool) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        && first.is_none()
    {
        *first = Some(payload);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl FenceOps for Shared {
    fn signaled(&self, fence: &Fence) -> FenceStatus {
        let cur = self.value32.load(Ordering::Acquire);
        if seqno_is_later(false, fence.seqno(), u64::from(cur)) {
            FenceStatus::Pending
        } else {
            FenceStatus::Signaled
        }
    }

    fn set_deadline(&self, fence: &Fence, deadline: MonotonicTime) {
        let mut st = self.state.lock();
        let Some(key) = st.key_of(fence.seqno() as u32) else {
            return;
        };
        if let Some(p) = st.points.get_mut(&key) {
            p.deadline = Some(p.deadline.map_or(deadline, |d| d.min(deadline)));
        }
    }
}
