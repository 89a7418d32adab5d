//! Errors and the kernel errno values they map to.
//!
//! A fence's failure is data ([`FenceStatus::Failed`](crate::fence::FenceStatus::Failed) carries
//! an [`Errno`]). A failed call answers [`Error`], the crate-wide error, except where its
//! caller branches on the few things that can happen: those calls answer a small error of
//! their own that says exactly that, and converts into [`Error`] with `?`:
//!
//! * waits: [`TimedOut`] (a wait that only waits for the signal), [`FenceFailed`] (a wait
//!   without a time limit that reports the fence's error), [`WaitError`] (a timed wait that
//!   reports it: one or the other);
//! * sync objects: [`SyncobjError`] (a point looked up that has no fence, or none in time) and
//!   [`SyncobjWaitError`] (a wait over many points: none given, one without a fence, or the
//!   time ran out);
//! * calls that hand back what they could not take: [`AlreadySignaled`] (a callback on a
//!   signalled fence) and [`Rejected`].
//!
//! Everything else (a flag or size out of range, a buffer that is busy, a lock of another
//! object) is a fault the caller reports rather than handles, so it stays one [`Error`]
//! variant among many, matched only by those that care. Every error names, through its
//! `errno()`, the value the kernel returns in the same situation.

use std::fmt;

/// A Linux error number, always in the kernel's valid range `1..=4095` (kernel: `-MAX_ERRNO..-1`).
///
/// Stored positive; the kernel passes it negated. Constructing one outside the range is
/// impossible, so a fence error is always valid (the kernel WARNs at run time instead).
///
/// ```
/// use dmabuf::Errno;
/// assert_eq!(Errno::from_raw(-5), Some(Errno::EIO));
/// assert_eq!(Errno::EIO.raw(), 5);
/// assert_eq!(Errno::from_raw(0), None);
/// assert_eq!(Errno::ECANCELED.to_string(), "ECANCELED");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(u16);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Self = Self(1);
    /// No such entry (a closed timeline's pending points; a callback on a signalled fence).
    pub const ENOENT: Self = Self(2);
    /// Interrupted.
    pub const EINTR: Self = Self(4);
    /// I/O error.
    pub const EIO: Self = Self(5);
    /// Bad address (a device access through an address that maps nothing).
    pub const EFAULT: Self = Self(14);
    /// Try again.
    pub const EAGAIN: Self = Self(11);
    /// Out of memory.
    pub const ENOMEM: Self = Self(12);
    /// Device or resource busy.
    pub const EBUSY: Self = Self(16);
    /// No space left (an id space used up).
    pub const ENOSPC: Self = Self(28);
    /// Invalid argument.
    pub const EINVAL: Self = Self(22);
    /// Resource deadlock would occur (also: a fence released with pending callbacks).
    pub const EDEADLK: Self = Self(35);
    /// No data available.
    pub const ENODATA: Self = Self(61);
    /// Timer expired (a wait that timed out; a job that hung).
    pub const ETIME: Self = Self(62);
    /// Value too large.
    pub const EOVERFLOW: Self = Self(75);
    /// Operation already in progress (a ww_mutex already held by the context).
    pub const EALREADY: Self = Self(114);
    /// Operation canceled (an issuer dropped without signalling).
    pub const ECANCELED: Self = Self(125);
    /// The kernel's internal "restart the system call".
    pub const ERESTARTSYS: Self = Self(512);

    /// The largest errno the kernel accepts (`MAX_ERRNO`).
    pub const MAX: u16 = 4095;

    /// An errno from its raw value, positive or negated; `None` outside `1..=4095`.
    pub const fn from_raw(raw: i32) -> Option<Self> {
        let v = if raw < 0 { raw.wrapping_neg() } else { raw };
        if v >= 1 && v <= Self::MAX as i32 {
            Some(Self(v as u16))
        } else {
            None
        }
    }

    /// The positive errno value.
    pub const fn raw(self) -> i32 {
        self.0 as i32
    }

    /// The symbolic name for the errnos this crate uses, else `None`.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            4 => "EINTR",
            5 => "EIO",
            11 => "EAGAIN",
            14 => "EFAULT",
            12 => "ENOMEM",
            16 => "EBUSY",
            22 => "EINVAL",
            28 => "ENOSPC",
            35 => "EDEADLK",
            61 => "ENODATA",
            62 => "ETIME",
            75 => "EOVERFLOW",
            114 => "EALREADY",
            125 => "ECANCELED",
            512 => "ERESTARTSYS",
            _ => return None,
        })
    }
}

/// The one conversion between the errno of system calls and `dmabuf-ww`
/// ([`rustix::io::Errno`], what `dmabuf-linux` gets from the kernel) and the library's.
impl From<rustix::io::Errno> for Errno {
    /// The same number; one outside the library's range (`1..=4095`, which no Linux errno
    /// leaves) becomes `EIO`.
    fn from(e: rustix::io::Errno) -> Self {
        Self::from_raw(e.raw_os_error()).unwrap_or(Self::EIO)
    }
}

impl From<Errno> for rustix::io::Errno {
    /// The same number.
    fn from(e: Errno) -> Self {
        rustix::io::Errno::from_raw_os_error(e.raw())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({self})")
    }
}

/// The errors of this crate's fallible calls.
///
/// Each variant names the errno the kernel returns in the same place ([`Error::errno`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two fences of different contexts were compared (kernel: WARN and `false`).
    #[error("fences of different contexts ({0} and {1}) have no order")]
    ContextMismatch(u64, u64),
    /// A wait ran out of time (kernel: `0` from `dma_fence_wait_timeout`, `-ETIME` from sync_file);
    /// what [`TimedOut`] and [`WaitError::TimedOut`] become.
    #[error("timed out waiting for a fence")]
    TimedOut,
    /// A fence waited for signalled with this error; what [`FenceFailed`] and
    /// [`WaitError::Failed`] become (its errno is the fence's).
    #[error("the fence signalled with error {0}")]
    FenceFailed(Errno),
    /// A wait over no fences at all (kernel: `-EINVAL`).
    #[error("wait_any needs at least one fence")]
    NoFences,
    /// A container was given where only leaf fences are allowed (kernel: WARN).
    #[error("a fence container cannot hold another container; flatten it with unwrap first")]
    ContainerMember,
    /// A chain node was asked for a seqno it does not cover, or the fence is not a chain.
    #[error("seqno {seqno} is not covered by this fence chain")]
    SeqnoNotInChain {
        /// The seqno asked for.
        seqno: u64,
    },
    /// Zero contexts were asked for.
    #[error("at least one fence context must be allocated")]
    ZeroContexts,
    /// A sync object point that has no fence: nothing was submitted for it (kernel: `-EINVAL`
    /// from `drm_syncobj_find_fence()` and the syncobj waits without WAIT_FOR_SUBMIT); what
    /// [`SyncobjError::Unsubmitted`] and [`SyncobjWaitError::Unsubmitted`] become.
    #[error("no fence submitted for point {point}")]
    Unsubmitted {
        /// The point asked for.
        point: u64,
    },
    /// A sync object wait over no points at all (kernel: `-EINVAL` for `count_handles == 0`).
    #[error("a syncobj wait needs at least one point")]
    NoPoints,
    /// Fewer fence context ids are left than were asked for: the 64-bit id counter would
    /// wrap and hand out ids still in use (`ENOSPC`, what the kernel's id allocators, idr and
    /// ida, answer when their space is full; `dma_fence_context_alloc()` itself never checks).
    #[error("no fence context ids left")]
    ContextsExhausted,
    /// The software timeline was closed; no new points can be created on it.
    #[error("the timeline is closed")]
    TimelineClosed,
    /// `reserve_fences(0)` (kernel: WARN and `-EINVAL`).
    #[error("reserve_fences needs at least one slot")]
    NothingToReserve,
    /// The buffer cannot do this now (kernel: `-EBUSY`): its storage cannot serve that device,
    /// or a cached mapping has another direction, or the memory it needs is pinned.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// The reservation guard given as proof of the lock belongs to another object (kernel:
    /// `dma_resv_assert_held()` warns).
    #[error("the reservation lock held is not this buffer's")]
    WrongLock,
    /// A buffer name longer than the uapi allows (kernel: `DMA_BUF_NAME_LEN`, 32 bytes with
    /// the NUL; `-EINVAL`).
    #[error("name longer than {max} bytes")]
    NameTooLong {
        /// The longest name accepted, in bytes.
        max: usize,
    },
    /// The exporter does not offer this operation (kernel: `-EINVAL` for a missing `mmap`,
    /// `vmap`, …).
    #[error("the exporter does not support {0}")]
    Unsupported(&'static str),
    /// An access outside a memory object, or through a device address that maps nothing
    /// (kernel: `-EFAULT`; on hardware, an IOMMU fault).
    #[error("bad address {addr:#x} (+{len})")]
    Fault {
        /// The first address (or offset) of the access.
        addr: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// Out of memory, in the host or in a device (kernel: `-ENOMEM`).
    #[error("out of memory")]
    NoMemory,
    /// An undo without its do: `unpin` without `pin`, `vunmap` without `vmap`, `end` without
    /// `begin` (kernel: a WARN).
    #[error("unbalanced {0}")]
    Unbalanced(&'static str),
    /// Flags outside the accepted set (kernel: `-EINVAL`).
    #[error("invalid flags {0:#x}")]
    InvalidFlags(u64),
    /// A buffer size of zero, or one that overflows (kernel: `-EINVAL`).
    #[error("invalid buffer size {0}")]
    InvalidSize(u64),
    /// An exporter whose callbacks contradict each other, such as one that moves its storage
    /// and caches mappings (kernel: `dma_buf_export()` WARNs and answers `-EINVAL`).
    #[error("invalid exporter: {0}")]
    InvalidExporter(&'static str),
    /// A reservation lock did not lock: back off, already held, interrupted or wrong class.
    #[error(transparent)]
    Ww(dmabuf_ww::WwError),
    /// Access flags that are not a non-empty subset of `DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE`
    /// (kernel: `-EINVAL` from the export and import sync-file ioctls).
    #[error("invalid dma-buf sync flags {0:#x}: expected READ (1), WRITE (2) or both")]
    InvalidSyncFlags(u32),
    /// A sync file's fence-info buffer holds fewer entries than the file has fences (kernel:
    /// `-EINVAL` from `SYNC_IOC_FILE_INFO`).
    #[error("room for {given} fence infos, but the sync file has {needed} fences")]
    FenceInfoTooSmall {
        /// The number of leaf fences in the sync file.
        needed: usize,
        /// The number of entries offered.
        given: usize,
    },
    /// A system call behind an exporter or a memory object failed (a kernel dma-buf's
    /// `DMA_BUF_IOCTL_SYNC`, say), with the errno it answered.
    #[error("{call} failed: {errno}")]
    Os {
        /// The call that failed.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
}

impl Error {
    /// The errno the kernel returns in the same situation.
    pub fn errno(&self) -> Errno {
        match self {
            Error::TimedOut => Errno::ETIME,
            Error::FenceFailed(e) => *e,
            Error::TimelineClosed => Errno::ENOENT,
            Error::NothingToReserve => Errno::EINVAL,
            Error::Busy(_) => Errno::EBUSY,
            Error::Fault { .. } => Errno::EFAULT,
            Error::NoMemory => Errno::ENOMEM,
            Error::ContextsExhausted => Errno::ENOSPC,
            Error::WrongLock
            | Error::NameTooLong { .. }
            | Error::Unsupported(_)
            | Error::Unbalanced(_)
            | Error::InvalidFlags(_)
            | Error::InvalidSize(_)
            | Error::InvalidExporter(_) => Errno::EINVAL,
            Error::Ww(e) => e.errno().into(),
            Error::Os { errno, .. } => *errno,
            Error::ContextMismatch(..)
            | Error::NoFences
            | Error::ContainerMember
            | Error::SeqnoNotInChain { .. }
            | Error::ZeroContexts
            | Error::InvalidSyncFlags(_)
            | Error::FenceInfoTooSmall { .. }
            | Error::Unsubmitted { .. }
            | Error::NoPoints => Errno::EINVAL,
        }
    }
}

/// A wait for the signal alone ran out of time (kernel: `0` from `dma_fence_wait_timeout()`,
/// `-ETIME` from a sync file's wait); the fence is still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("timed out waiting for a fence")]
pub struct TimedOut;

impl TimedOut {
    /// The errno the kernel returns (`ETIME`).
    pub fn errno(&self) -> Errno {
        Errno::ETIME
    }
}

/// The fence waited for signalled with this error: the work it stands for failed (kernel:
/// `dma_fence_get_status()` below zero after the wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the fence signalled with error {0}")]
pub struct FenceFailed(pub Errno);

impl FenceFailed {
    /// The fence's error.
    pub fn errno(&self) -> Errno {
        self.0
    }
}

/// Why a timed wait did not end with the work done: it ran out of time, or the fence
/// signalled with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WaitError {
    /// The time ran out with the fence still pending (`ETIME`).
    #[error("timed out waiting for a fence")]
    TimedOut,
    /// The fence signalled with this error.
    #[error("the fence signalled with error {0}")]
    Failed(Errno),
}

impl WaitError {
    /// `ETIME` for a timeout, the fence's error for a failure.
    pub fn errno(&self) -> Errno {
        match self {
            WaitError::TimedOut => Errno::ETIME,
            WaitError::Failed(e) => *e,
        }
    }
}

impl From<TimedOut> for WaitError {
    fn from(TimedOut: TimedOut) -> Self {
        WaitError::TimedOut
    }
}

impl From<FenceFailed> for WaitError {
    fn from(FenceFailed(e): FenceFailed) -> Self {
        WaitError::Failed(e)
    }
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::TimedOut => Error::TimedOut,
            WaitError::Failed(e) => Error::FenceFailed(e),
        }
    }
}

/// `?` turns the narrow wait errors into [`Error`] as their [`WaitError`] would be.
macro_rules! into_error_through_wait_error {
    ($($narrow:ty),*) => {$(
        impl From<$narrow> for Error {
            fn from(e: $narrow) -> Self {
                WaitError::from(e).into()
            }
        }
    )*};
}
into_error_through_wait_error!(TimedOut, FenceFailed);

/// A sync object lookup that found no fence for its point (kernel: the errors of
/// `drm_syncobj_find_fence()`, which `DRM_IOCTL_SYNCOBJ_TRANSFER` and the sync-file export of
/// `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD` answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SyncobjError {
    /// Nothing was submitted for the point (`EINVAL`).
    #[error("no fence submitted for point {point}")]
    Unsubmitted {
        /// The point looked up.
        point: u64,
    },
    /// A lookup that waits for submit waited its limit in vain (`ETIME`).
    #[error("timed out waiting for a fence to be submitted")]
    TimedOut,
}

impl SyncobjError {
    /// The errno the kernel returns: `EINVAL` or `ETIME`.
    pub fn errno(&self) -> Errno {
        match self {
            SyncobjError::Unsubmitted { .. } => Errno::EINVAL,
            SyncobjError::TimedOut => Errno::ETIME,
        }
    }
}

impl From<SyncobjError> for Error {
    fn from(e: SyncobjError) -> Self {
        match e {
            SyncobjError::Unsubmitted { point } => Error::Unsubmitted { point },
            SyncobjError::TimedOut => Error::TimedOut,
        }
    }
}

/// Why a wait over sync object points did not complete (kernel: the errors of
/// `DRM_IOCTL_SYNCOBJ_WAIT` and `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT` once their arguments are
/// valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SyncobjWaitError {
    /// No points were given (`EINVAL`).
    #[error("a syncobj wait needs at least one point")]
    NoPoints,
    /// A point has no fence and the wait neither waits for submit nor for availability
    /// (`EINVAL`); nothing was waited for.
    #[error("no fence submitted for point {point} (entry {index})")]
    Unsubmitted {
        /// The entry's position in the wait.
        index: usize,
        /// Its point.
        point: u64,
    },
    /// The time ran out (`ETIME`).
    #[error("timed out waiting for syncobj points")]
    TimedOut,
}

impl SyncobjWaitError {
    /// The errno the kernel returns: `EINVAL` or `ETIME`.
    pub fn errno(&self) -> Errno {
        match self {
            SyncobjWaitError::NoPoints | SyncobjWaitError::Unsubmitted { .. } => Errno::EINVAL,
            SyncobjWaitError::TimedOut => Errno::ETIME,
        }
    }
}

impl From<SyncobjWaitError> for Error {
    fn from(e: SyncobjWaitError) -> Self {
        match e {
            SyncobjWaitError::NoPoints => Error::NoPoints,
            SyncobjWaitError::Unsubmitted { point, .. } => Error::Unsubmitted { point },
            SyncobjWaitError::TimedOut => Error::TimedOut,
        }
    }
}

impl From<dmabuf_ww::WwError> for Error {
    /// A reservation lock that did not lock ([`Error::Ww`]).
    fn from(e: dmabuf_ww::WwError) -> Self {
        Error::Ww(e)
    }
}

/// A call that refused its input hands it back with the reason (an unmap under another
/// buffer's lock, say), so nothing is dropped on the floor. `?` turns it into the [`Error`],
/// dropping the input.
#[derive(thiserror::Error)]
#[error("{error}")]
pub struct Rejected<T> {
    /// Why.
    pub error: Error,
    /// What was given.
    pub input: T,
}

impl<T> From<Rejected<T>> for Error {
    fn from(r: Rejected<T>) -> Error {
        r.error
    }
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// `add_callback` on a fence that has already signalled (kernel: `-ENOENT`).
///
/// The callback was not run; it is handed back so nothing is dropped unrun.
#[derive(thiserror::Error)]
#[error("the fence has already signalled; the callback was not queued")]
pub struct AlreadySignaled<F>(pub F);

impl<F> AlreadySignaled<F> {
    /// The errno the kernel returns (`ENOENT`).
    pub fn errno(&self) -> Errno {
        Errno::ENOENT
    }

    /// The callback, unrun.
    pub fn into_inner(self) -> F {
        self.0
    }
}

impl<F> fmt::Debug for AlreadySignaled<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlreadySignaled(..)")
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
