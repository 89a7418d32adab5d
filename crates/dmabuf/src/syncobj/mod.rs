//! DRM sync objects: a replaceable fence slot, used as a binary semaphore or as a timeline of
//! points (kernel: `struct drm_syncobj`, `drivers/gpu/drm/drm_syncobj.c`).
//!
//! A [`Syncobj`] holds one fence or none. Binary use replaces it ([`Syncobj::replace`],
//! [`Syncobj::reset`], [`Syncobj::signal`], [`Syncobj::import_sync_file`]) and exports it
//! ([`Syncobj::export_sync_file`]). Timeline use adds points, each a
//! [chain node](crate::fence::chain) over the fence before ([`Syncobj::add_point`],
//! [`Syncobj::timeline_signal`]), looks a point up ([`Syncobj::find_fence`]), asks how far
//! the timeline has got ([`Syncobj::last_signaled_point`],
//! [`Syncobj::last_submitted_point`]) and moves points between syncobjs
//! ([`Syncobj::transfer`]). A [`Wait`] waits for all or any of many `(syncobj, point)` pairs,
//! also for points nobody has submitted yet; [`Syncobj::notify`] and [`Syncobj::notified`]
//! tell when a point is available or signalled.
//!
//! ```
//! use dmabuf::syncobj::{Point, Syncobj, Wait, WaitFlags};
//! use std::time::Duration;
//!
//! // A client renders and signals an acquire point; a compositor waits for it, possibly
//! // before the client has even submitted the work.
//! let acquire = Syncobj::new();
//! let compositor = {
//!     let acquire = acquire.clone();
//!     std::thread::spawn(move || {
//!         Wait::new([(&acquire, Point(1))]).flags(WaitFlags::FOR_SUBMIT).all(None)
//!     })
//! };
//! acquire.timeline_signal(Point(1)); // a CPU signal of point 1 (TIMELINE_SIGNAL)
//! compositor.join().unwrap()?;
//! assert_eq!(acquire.last_signaled_point(), Point(1));
//!
//! // A point nobody submitted is EINVAL, unless the wait waits for submit.
//! let err = Wait::new([(&acquire, Point(2))]).all(Some(Duration::ZERO)).unwrap_err();
//! assert_eq!(err.errno(), dmabuf::Errno::EINVAL);
//! # Ok::<(), dmabuf::SyncobjWaitError>(())
//! ```
//!
//! The `explicit_sync` example (`cargo run -p dmabuf --example explicit_sync`) is the whole
//! story of Wayland's explicit-sync protocol on these calls: acquire points a client's
//! render jobs signal, release points a compositor's sampling jobs signal, per buffer.
//!
//! # Rules
//! * Point 0 is the syncobj's fence itself; point `N > 0` is the chain node of the first
//!   point at or after `N`, or the signalled stub fence once everything up to `N` has
//!   signalled and been collected (kernel: `drm_syncobj_find_fence()` over
//!   `dma_fence_chain_find_seqno()`). A syncobj without a fence, or a point later than the
//!   last one added, has no fence: `EINVAL`, unless the caller waits for submit.
//! * A point not above the last one is still added (kernel: `drm_syncobj_add_point()` only
//!   logs it): it goes on a fresh context at the last point's number, and the last
//!   signalled point reads 0 until it signals (kernel: "payload returned from query_ioctl is
//!   0").
//! * Adding a point walks the chain once, collecting the links whose fences have signalled
//!   (kernel: the `dma_fence_chain_for_each()` after `add_point`), so a timeline whose
//!   points signal stays as short as its pending points.
//! * Waiters for submit and notifications are told by every replacement and every added
//!   point that gives their point a fence; a reset tells nobody; a waiter that has its
//!   fence is not affected by later replacements.
//!
//! # Differences from the kernel
//! * A value, not a handle in a DRM file: a [`Syncobj`] is shared by cloning it. Handles,
//!   fds and the ioctls' argument checks are `dmabuf-linux`'s.
//! * The syncobj's lock guards only its fence slot and its list of waiters. Chains are walked
//!   and waiters told outside it, so code run by a walk (the callbacks of a fence a poll
//!   signals) or by a notification may use the syncobj; the kernel does both under its
//!   spinlock.
//! * Every wait that can block, and every wait for submit, is a fence wait for the
//!   validator; the kernel's syncobj waits are not `dma_fence_wait()`s, and only a wait for
//!   submit asserts that no lock is held.
//! * Notifications are a callback or a future ([`Syncobj::notify`], [`Syncobj::notified`]),
//!   where the kernel signals an eventfd.
//! * A chain node given to [`Syncobj::add_point`] is flattened first, as
//!   `DRM_IOCTL_SYNCOBJ_TRANSFER` does; the kernel's `drm_syncobj_add_point()` trusts its
//!   driver caller.
//!
//! Kernel: `drivers/gpu/drm/drm_syncobj.c`, `include/uapi/drm/drm.h`; suites:
//! `tests/igt_syncobj_basic.rs`, `tests/igt_syncobj_wait.rs`, `tests/igt_syncobj_timeline.rs`,
//! `tests/igt_syncobj_eventfd.rs`.

mod notify;
mod point;
mod submit;
mod wait;

pub use notify::{Notification, NotifyFuture, NotifyWhen};
pub use point::Point;
pub use wait::{Wait, WaitAllFuture, WaitAnyFuture, WaitFlags};

use crate::error::SyncobjError;
use crate::fence::unwrap::merge;
use crate::fence::{Fence, chain};
use crate::sync_file::SyncFile;
use crate::time::MonotonicTime;
use crate::validate::{self, SYNCOBJ_LOCK, TrackedMutex};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use submit::SubmitWaiter;

/// How long a lookup that waits for submit waits before it answers `ETIME` (kernel:
/// `DRM_SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT`, 5 s).
pub const WAIT_FOR_SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a lookup does about a point that has no fence yet (kernel: the `flags` of
/// `drm_syncobj_find_fence()`, of which only `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT` is
/// accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IfUnsubmitted {
    /// Answer [`SyncobjError::Unsubmitted`] (`EINVAL`) at once (kernel: flags 0).
    #[default]
    Fail,
    /// Wait up to [`WAIT_FOR_SUBMIT_TIMEOUT`] for a fence to be submitted, then answer
    /// [`SyncobjError::TimedOut`] (`ETIME`) (kernel: `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`).
    WaitForSubmit,
}

/// A sync object (kernel: `struct drm_syncobj`): one replaceable fence, or none.
///
/// Cheap to clone: every clone is the same object. Thread-safe; every call takes `&self`.
///
/// ```
/// use dmabuf::fence::FenceContext;
/// use dmabuf::syncobj::{Point, Syncobj};
///
/// let (render_done, render) = FenceContext::new("gpu", "ring0").next_fence();
/// let semaphore = Syncobj::new();
/// assert!(semaphore.fence().is_none());
/// semaphore.replace(Some(render)); // a binary semaphore, as a driver's submit makes it
/// let file = semaphore.export_sync_file()?;
/// assert!(!file.is_signaled());
/// render_done.signal();
/// assert!(file.is_signaled());
/// semaphore.reset();
/// assert!(semaphore.export_sync_file().is_err()); // EINVAL: no fence
/// # Ok::<(), dmabuf::SyncobjError>(())
/// ```
#[derive(Clone)]
pub struct Syncobj(Arc<Shared>);

/// What every clone of one syncobj shares.
struct Shared {
    state: TrackedMutex<State>,
}

/// The syncobj's lock protects these (kernel: `syncobj->lock` over `fence` and `cb_list`).
#[derive(Default)]
struct State {
    /// The current fence: a leaf, a container, or the head of a chain of points.
    fence: Option<Fence>,
    /// Counts fence changes, so a lookup made outside the lock knows whether it is still
    /// current when it comes back to register a waiter.
    generation: u64,
    /// Waiters for a point to be submitted, in the order they came.
    waiters: Vec<Arc<SubmitWaiter>>,
}

impl Default for Syncobj {
    fn default() -> Self {
        Syncobj::new()
    }
}

impl Syncobj {
    /// A syncobj without a fence (kernel: `DRM_IOCTL_SYNCOBJ_CREATE`, flags 0).
    #[doc(alias = "drm_syncobj_create")]
    pub fn new() -> Syncobj {
        Syncobj(Arc::new(Shared {
            state: TrackedMutex::new(&SYNCOBJ_LOCK, State::default()),
        }))
    }

    /// A syncobj holding a signalled stub fence (kernel: `DRM_SYNCOBJ_CREATE_SIGNALED`).
    pub fn new_signaled() -> Syncobj {
        let s = Syncobj::new();
        s.signal();
        s
    }

    /// A syncobj holding `fence` (kernel: `drm_syncobj_create()` with a fence).
    pub fn with_fence(fence: Fence) -> Syncobj {
        let s = Syncobj::new();
        s.replace(Some(fence));
        s
    }

    /// Whether both handles are the same syncobj.
    pub fn ptr_eq(&self, other: &Syncobj) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = State> + '_ {
        self.0.state.lock()
    }

    /// The current fence, if any (kernel: `drm_syncobj_fence_get()`): for a timeline, the
    /// head of its chain of points.
    #[doc(alias = "drm_syncobj_fence_get")]
    pub fn fence(&self) -> Option<Fence> {
        self.lock().fence.clone()
    }

    /// Makes `fence` the syncobj's fence, or leaves it without one for `None` (kernel:
    /// `drm_syncobj_replace_fence()`). Waiters for submit and notifications whose point the
    /// new fence covers are told before this returns; a reset tells nobody.
    ///
    /// # Panics
    /// If a notification's callback panics: every waiter due is told first, then the first
    /// panic continues here.
    #[doc(alias = "drm_syncobj_replace_fence")]
    pub fn replace(&self, fence: Option<Fence>) {
        let (old, waiters, generation) = {
            let mut st = self.lock();
            let changed = match (&st.fence, &fence) {
                (Some(a), Some(b)) => !a.ptr_eq(b),
                (None, None) => false,
                _ => true,
            };
            let old = std::mem::replace(&mut st.fence, fence.clone());
            st.generation += 1;
            let waiters = if changed && fence.is_some() {
                std::mem::take(&mut st.waiters)
            } else {
                Vec::new()
            };
            (old, waiters, st.generation)
        };
        // The old fence may be the last handle to a chain, or hold callbacks: dropped
        // outside the lock.
        drop(old);
        submit::settle(self, waiters, fence, generation);
    }

    /// Leaves the syncobj without a fence (kernel: `DRM_IOCTL_SYNCOBJ_RESET`). Waits that
    /// already took the old fence keep it.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_RESET")]
    pub fn reset(&self) {
        self.replace(None);
    }

    /// Gives the syncobj a fresh signalled stub fence stamped now (kernel:
    /// `DRM_IOCTL_SYNCOBJ_SIGNAL`, `dma_fence_allocate_private_stub(ktime_get())`).
    ///
    /// # Panics
    /// As [`replace`](Self::replace).
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_SIGNAL")]
    pub fn signal(&self) {
        self.replace(Some(Fence::signaled_stub(MonotonicTime::now())));
    }

    /// Makes the sync file's fence the syncobj's fence (kernel:
    /// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` with `DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE`,
    /// into an existing syncobj).
    ///
    /// # Panics
    /// As [`replace`](Self::replace).
    pub fn import_sync_file(&self, file: &SyncFile) {
        self.replace(Some(file.fence()));
    }

    /// A sync file of the current fence (kernel: `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD` with
    /// `DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE`). A snapshot: later replacements do
    /// not change it.
    ///
    /// # Errors
    /// [`SyncobjError::Unsubmitted`] (`EINVAL`) if the syncobj has no fence.
    pub fn export_sync_file(&self) -> Result<SyncFile, SyncobjError> {
        self.find_fence(Point::BINARY, IfUnsubmitted::Fail)
            .map(SyncFile::new)
    }

    /// Adds timeline point `point` signalled by `fence`: a chain node over the current fence
    /// becomes the syncobj's fence (kernel: `drm_syncobj_add_point()`).
    ///
    /// A point not above the last one is added all the same, on a fresh context at the last
    /// point's number (see the module's rules). A chain node given as `fence` is flattened
    /// first ([`merge`]). Waiters for submit and notifications the new point covers are told
    /// before this returns; then the chain is walked once, collecting signalled links.
    ///
    /// # Panics
    /// If a notification's callback panics, or a callback of a fence the walk polls to
    /// completion: everything due is done first, then the first panic continues here.
    ///
    /// ```
    /// use dmabuf::Timeline;
    /// use dmabuf::syncobj::{Point, Syncobj};
    /// let gpu = Timeline::new("gpu");
    /// let timeline = Syncobj::new();
    /// timeline.add_point(gpu.create_fence(1).unwrap(), Point(10));
    /// timeline.add_point(gpu.create_fence(2).unwrap(), Point(20));
    /// assert_eq!(timeline.last_submitted_point(), Point(20));
    /// gpu.inc(1);
    /// assert_eq!(timeline.last_signaled_point(), Point(10));
    /// ```
    #[doc(alias = "drm_syncobj_add_point")]
    pub fn add_point(&self, fence: Fence, point: Point) {
        let fence = if fence.is_chain() {
            merge(std::slice::from_ref(&fence))
        } else {
            fence
        };
        let (prev, node, waiters, generation) = {
            let mut st = self.lock();
            let prev = st.fence.clone();
            let node = match Fence::new_chain(prev.clone(), fence, point.get()) {
                Ok(node) => node,
                Err(_) => unreachable!("a merged fence is never a chain node"),
            };
            st.fence = Some(node.clone());
            st.generation += 1;
            (prev, node, std::mem::take(&mut st.waiters), st.generation)
        };
        if let Some(p) = &prev
            && p.seqno() >= point.get()
        {
            tracing::debug!(target: "dmabuf::syncobj", last = p.seqno(), %point, "point added out of order");
        }
        let mut panicked = submit::Panics::default();
        panicked.run(|| submit::settle(self, waiters, Some(node), generation));
        // Walk the chain once to collect the links whose fences have signalled.
        if let Some(p) = &prev {
            panicked.run(|| chain::iter(p).for_each(drop));
        }
        drop(prev);
        panicked.resume();
    }

    /// Adds point `point` already signalled (kernel: `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`: a
    /// chain node over the stub fence). Point 0 adds a signalled node too, as the kernel's.
    ///
    /// # Panics
    /// As [`add_point`](Self::add_point).
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL")]
    pub fn timeline_signal(&self, point: Point) {
        self.add_point(Fence::stub(), point);
    }

    /// The fence for `point` (kernel: `drm_syncobj_find_fence()`): for point 0 the current
    /// fence; else the chain node of the first point at or after `point`, or the signalled
    /// stub if `point` has signalled and been collected.
    ///
    /// # Errors
    /// * [`SyncobjError::Unsubmitted`] (`EINVAL`) if there is no fence for `point` (no fence
    ///   at all, a fence that is not a timeline for a point above 0, or a point later than
    ///   the last one) and `if_unsubmitted` is [`IfUnsubmitted::Fail`];
    /// * [`SyncobjError::TimedOut`] (`ETIME`) if it is [`IfUnsubmitted::WaitForSubmit`] and
    ///   none came within [`WAIT_FOR_SUBMIT_TIMEOUT`].
    ///
    /// # Signalling context
    /// Waiting for submit is a fence wait for the validator.
    ///
    /// ```
    /// use dmabuf::syncobj::{IfUnsubmitted, Point, Syncobj};
    /// let timeline = Syncobj::new();
    /// timeline.timeline_signal(Point(5));
    /// let five = timeline.find_fence(Point(3), IfUnsubmitted::Fail)?; // point 5 covers 3
    /// assert!(five.is_signaled());
    /// assert_eq!(timeline.find_fence(Point(6), IfUnsubmitted::Fail).unwrap_err().errno(), dmabuf::Errno::EINVAL);
    /// # Ok::<(), dmabuf::SyncobjError>(())
    /// ```
    #[doc(alias = "drm_syncobj_find_fence")]
    pub fn find_fence(
        &self,
        point: Point,
        if_unsubmitted: IfUnsubmitted,
    ) -> Result<Fence, SyncobjError> {
        if if_unsubmitted == IfUnsubmitted::Fail {
            return self
                .locate(point)
                .ok_or(SyncobjError::Unsubmitted { point: point.get() });
        }
        // Waiting for user space to submit: a wait whether or not it blocks (kernel:
        // `lockdep_assert_none_held_once()` whenever the flag is set).
        validate::might_wait();
        let until = MonotonicTime::now() + WAIT_FOR_SUBMIT_TIMEOUT;
        loop {
            if let Some(fence) = self.locate(point) {
                return Ok(fence);
            }
            // Available means a fence came; a reset may take it away again before the lookup
            // above, so look and wait again until the time runs out.
            Wait::new([(self, point)])
                .flags(WaitFlags::AVAILABLE)
                .all_until(until)
                .map_err(|_| SyncobjError::TimedOut)?;
        }
    }

    /// The fence for `point` now, or `None` (the kernel's test "fence && find_seqno == 0",
    /// with the stub for a collected point).
    fn locate(&self, point: Point) -> Option<Fence> {
        locate_in(&self.fence()?, point)
    }

    /// The last point that has signalled (kernel: `DRM_IOCTL_SYNCOBJ_QUERY`, flags 0): the
    /// latest point of the newest run of in-order points whose fences, and those of every
    /// point before, have signalled. 0 for a syncobj that is not a timeline, and while the
    /// newest point was added out of order and has not signalled.
    ///
    /// Walking the chain collects its signalled links.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_QUERY")]
    pub fn last_signaled_point(&self) -> Point {
        let Some(head) = self.fence().filter(Fence::is_chain) else {
            return Point::BINARY;
        };
        let context = head.context();
        let mut last = head.clone();
        for node in chain::iter(&head) {
            if node.context() != context {
                break;
            }
            last = node;
        }
        Point(if last.is_signaled() {
            last.seqno()
        } else {
            last.chain_prev_seqno()
        })
    }

    /// The last point added (kernel: `DRM_IOCTL_SYNCOBJ_QUERY` with
    /// `DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED`): the newest point's number, which after an
    /// out-of-order point is the highest added. 0 for a syncobj that is not a timeline.
    pub fn last_submitted_point(&self) -> Point {
        Point(
            self.fence()
                .filter(Fence::is_chain)
                .map_or(0, |f| f.seqno()),
        )
    }

    /// Moves the fence of `src_point` in `src` to `dst_point` in `dst` (kernel:
    /// `DRM_IOCTL_SYNCOBJ_TRANSFER`). To point 0 it replaces `dst`'s fence with the point's
    /// fence as found; to a later point it adds a point of the found fence flattened
    /// ([`merge`]), as the kernel's `dma_fence_unwrap_merge()`.
    ///
    /// # Errors
    /// As [`find_fence`](Self::find_fence) of `src_point`; `dst` is left as it was.
    ///
    /// # Panics
    /// As [`add_point`](Self::add_point).
    ///
    /// ```
    /// use dmabuf::Timeline;
    /// use dmabuf::syncobj::{IfUnsubmitted, Point, Syncobj};
    /// let gpu = Timeline::new("gpu");
    /// let binary = Syncobj::with_fence(gpu.create_fence(1).unwrap());
    /// let timeline = Syncobj::new();
    /// Syncobj::transfer(&binary, Point::BINARY, &timeline, Point(1), IfUnsubmitted::Fail)?;
    /// assert_eq!(timeline.last_signaled_point(), Point(0));
    /// gpu.inc(1);
    /// assert_eq!(timeline.last_signaled_point(), Point(1));
    /// # Ok::<(), dmabuf::SyncobjError>(())
    /// ```
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_TRANSFER")]
    pub fn transfer(
        src: &Syncobj,
        src_point: Point,
        dst: &Syncobj,
        dst_point: Point,
        if_unsubmitted: IfUnsubmitted,
    ) -> Result<(), SyncobjError> {
        let fence = src.find_fence(src_point, if_unsubmitted)?;
        if dst_point.is_binary() {
            dst.replace(Some(fence));
        } else {
            dst.add_point(merge(std::slice::from_ref(&fence)), dst_point);
        }
        Ok(())
    }
}

/// The fence for `point` in a syncobj whose fence is `fence`: the fence itself for point 0,
/// the chain node covering `point`, the stub if it was collected, `None` if nothing covers it.
fn locate_in(fence: &Fence, point: Point) -> Option<Fence> {
    match fence.find_seqno(point.get()) {
        Ok(Some(node)) => Some(node),
        Ok(None) => Some(Fence::stub()),
        Err(_) => None,
    }
}

impl fmt::Debug for Syncobj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncobj")
            .field("fence", &self.fence())
            .finish_non_exhaustive()
    }
}
