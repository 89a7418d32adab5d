//! Sync files: one fence, possibly a container, handed between processes and drivers for
//! explicit synchronisation (kernel: `struct sync_file`).
//!
//! A sync file wraps a [`Fence`] and an optional user name. Two sync files merge into a third
//! that signals when both have ([`SyncFile::merge`]); [`SyncFile::info`] lists the leaf fences
//! with their timelines, drivers, statuses and timestamps; the waits are the file's `poll()`.
//! A buffer's implicit-sync state, its [`Resv`], can be exported as a sync file
//! ([`SyncFile::export`]: what an [`Access`] would have to wait for now) and a sync file can be
//! imported into it ([`SyncFile::import_into`]: later accesses wait for it), bridging implicit
//! and explicit sync.
//!
//! ```
//! use dmabuf::fence::FenceContext;
//! use dmabuf::resv::{Access, Resv};
//! use dmabuf::SyncFile;
//!
//! let buffer = Resv::new();
//! let (render_done, render) = FenceContext::new("gpu", "ring0").next_fence();
//!
//! // An explicitly synced client hands its render fence to an implicitly synced buffer …
//! SyncFile::new(render).import_into(&buffer, Access::Write)?;
//! assert!(!buffer.is_ready(Access::Read));
//!
//! // … and a compositor that wants to read it takes the writers out as a sync file.
//! let before_read = SyncFile::export(&buffer, Access::Read);
//! assert!(!before_read.is_signaled());
//! render_done.signal();
//! before_read.wait()?; // Err(FenceFailed(errno)) had the render failed
//! assert!(buffer.is_ready(Access::Read));
//! # Ok::<(), dmabuf::Error>(())
//! ```
//!
//! # Rules
//! * A sync file never changes: its fence is fixed at creation; merge and export make new
//!   files and leave their inputs valid.
//! * Merge output is flat, deduplicated by context keeping the latest point, without leaves
//!   that had already signalled ([`unwrap::merge`](crate::fence::unwrap::merge)); when all
//!   had, it is one private stub fence ("stub" / "stub", signalled, stamped with the latest
//!   input's timestamp), as Linux's.
//! * Export is a snapshot: fences added to the buffer afterwards are not waited for. An idle
//!   buffer exports the signalled stub fence.
//! * Import adds every leaf, each in a slot reserved beforehand under the same lock, so either
//!   all leaves are added or none.
//! * Names are the uapi's 32-byte fields including the NUL ([`NAME_LEN`]): at most 31 bytes,
//!   cut at the first NUL and then on a character boundary.
//!
//! # Differences from the kernel
//! * No file descriptor: a [`SyncFile`] is an in-process value, cloned rather than `dup`ed.
//!   Real sync_file fds, with the ioctls' structs and their checks of `flags` and `pad`, are
//!   `dmabuf-linux`'s `SyncFileFd`, which also bridges one to a library [`Fence`].
//! * `SYNC_IOC_FILE_INFO` is split into [`SyncFile::info`] (everything, allocated),
//!   [`SyncFile::fill_info`] (the ioctl's contract on a caller's slice) and the two scalar
//!   queries [`SyncFile::num_fences`] and [`SyncFile::status`].
//! * None in what [`SyncFile::info`] reports: timeline and driver names survive signalling,
//!   as in Linux 6.12. (Mainline since the 2026 "detach fence ops on signal" series reports
//!   "signaled-timeline" and "detached-driver" for a signalled fence; see [`docs`](crate::docs).)
//!
//! Kernel: `drivers/dma-buf/sync_file.c`, `include/uapi/linux/sync_file.h`, and
//! `dma_buf_export_sync_file` / `dma_buf_import_sync_file` in `drivers/dma-buf/dma-buf.c`;
//! suite: `tests/igt_dmabuf_sync_file.rs`.

use crate::error::{Error, FenceFailed, Result, TimedOut, WaitError};
use crate::fence::unwrap::{leaves, merge};
use crate::fence::{Fence, FenceFuture, FenceStatus};
use crate::resv::{Access, Resv, ResvGuard};
use crate::time::MonotonicTime;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Size of the uapi's name fields, NUL included (kernel: `sync_file_info.name`,
/// `sync_merge_data.name`, `sync_fence_info.obj_name` and `driver_name`): names hold at most
/// `NAME_LEN - 1` bytes.
pub const NAME_LEN: usize = 32;

/// A sync file (kernel: `struct sync_file`): one fence and an optional user name.
///
/// Cheap to clone: a fence handle and a shared name.
#[derive(Clone)]
pub struct SyncFile {
    fence: Fence,
    /// The name given at merge, already cut to fit; `None` if none or empty.
    name: Option<Arc<str>>,
}

/// One leaf fence of a sync file as `SYNC_IOC_FILE_INFO` reports it (kernel:
/// `struct sync_fence_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "sync_fence_info")]
pub struct FenceInfo {
    /// The timeline's name, cut to fit [`NAME_LEN`] (kernel: `obj_name`).
    pub timeline: String,
    /// The driver's name, cut to fit [`NAME_LEN`] (kernel: `driver_name`).
    pub driver: String,
    /// Pending, signalled, or signalled with an error (kernel: `status`, 0 / 1 / `-errno`).
    pub status: FenceStatus,
    /// When the fence signalled; `None` while pending (kernel: `timestamp_ns`, 0 while
    /// pending).
    pub timestamp: Option<MonotonicTime>,
}

impl FenceInfo {
    /// The timestamp as the uapi reports it: nanoseconds of `CLOCK_MONOTONIC`, 0 while
    /// pending.
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp.map_or(0, MonotonicTime::as_nanos)
    }
}

impl Default for FenceInfo {
    /// Empty names, pending, no timestamp: a slot for [`SyncFile::fill_info`].
    fn default() -> Self {
        FenceInfo {
            timeline: String::new(),
            driver: String::new(),
            status: FenceStatus::Pending,
            timestamp: None,
        }
    }
}

/// Everything `SYNC_IOC_FILE_INFO` reports about a sync file (kernel:
/// `struct sync_file_info` with its `sync_fence_info` array).
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "sync_file_info")]
pub struct SyncFileInfo {
    /// The file's name ([`SyncFile::name`]).
    pub name: String,
    /// [`FenceStatus::Signaled`], replaced by the status of the first leaf that is pending or
    /// failed (kernel: `status` when fences are listed).
    pub status: FenceStatus,
    /// The leaves, in unwrap order.
    pub fences: Vec<FenceInfo>,
}

impl SyncFileInfo {
    /// The number of leaves listed (kernel: `num_fences`).
    pub fn num_fences(&self) -> usize {
        self.fences.len()
    }
}

/// `s` as a C string in a `NAME_LEN`-byte field would hold it: up to the first NUL, at most
/// `NAME_LEN - 1` bytes, cut on a character boundary.
fn uapi_str(s: &str) -> &str {
    let s = s.find('\0').map_or(s, |nul| &s[..nul]);
    &s[..s.floor_char_boundary(NAME_LEN - 1)]
}

/// Replaces `dst`'s contents with `src` cut to fit, reusing its buffer.
fn set_uapi_str(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(uapi_str(src));
}

/// Fills `info` from one leaf and returns the leaf's status (kernel: `sync_fill_fence_info()`).
fn fill_leaf(fence: &Fence, info: &mut FenceInfo) -> FenceStatus {
    set_uapi_str(&mut info.timeline, fence.timeline_name());
    set_uapi_str(&mut info.driver, fence.driver_name());
    let status = fence.status();
    info.status = status;
    info.timestamp = if status.is_signaled() {
        fence.timestamp()
    } else {
        None
    };
    status
}

/// The overall status rule of `SYNC_IOC_FILE_INFO`: start signalled, take the first leaf
/// status that is pending or failed, keep it.
fn fold_status(overall: FenceStatus, leaf: FenceStatus) -> FenceStatus {
    if overall == FenceStatus::Signaled {
        leaf
    } else {
        overall
    }
}

impl SyncFile {
    /// A sync file holding `fence` (kernel: `sync_file_create()`). The fence may be a
    /// container; it is kept as is.
    ///
    /// ```
    /// use dmabuf::{FenceContext, SyncFile};
    /// let (_issuer, fence) = FenceContext::new("gpu", "ring0").next_fence();
    /// let file = SyncFile::new(fence.clone());
    /// assert!(file.fence().ptr_eq(&fence));
    /// assert_eq!(file.name(), format!("gpu-ring0{}-1", fence.context()));
    /// ```
    #[doc(alias = "sync_file_create")]
    pub fn new(fence: Fence) -> SyncFile {
        SyncFile { fence, name: None }
    }

    /// A new handle to the file's fence (kernel: `sync_file_get_fence()`).
    #[doc(alias = "sync_file_get_fence")]
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The file's fence, consuming the file.
    pub fn into_fence(self) -> Fence {
        self.fence
    }

    /// The file's name (kernel: `sync_file_get_name()`): the name given at
    /// [`merge`](Self::merge) if it was not empty, else one made from the fence as
    /// `<driver>-<timeline><context>-<seqno>` — for a container the container's own names,
    /// context and seqno (an array: `dma_fence_array-unbound<context>-1`). Either is cut to
    /// fit [`NAME_LEN`] (at most 31 bytes, on a character boundary). The seqno is printed
    /// as a signed 64-bit number, as the kernel does.
    ///
    /// ```
    /// use dmabuf::SyncFile;
    /// use dmabuf::fence::Fence;
    /// assert_eq!(SyncFile::new(Fence::stub()).name(), "stub-stub0-0");
    /// let a = SyncFile::new(Fence::stub());
    /// let long = "a name longer than the thirty-one bytes a sync file keeps";
    /// assert_eq!(SyncFile::merge(long, &a, &a).name(), &long[..31]);
    /// ```
    #[doc(alias = "sync_file_get_name")]
    pub fn name(&self) -> Cow<'_, str> {
        match &self.name {
            Some(name) => Cow::Borrowed(name),
            None => {
                let f = &self.fence;
                let mut name = format!(
                    "{}-{}{}-{}",
                    f.driver_name(),
                    f.timeline_name(),
                    f.context(),
                    f.seqno() as i64
                );
                name.truncate(uapi_str(&name).len());
                Cow::Owned(name)
            }
        }
    }

    /// A new sync file that signals when both `a` and `b` have (kernel: `SYNC_IOC_MERGE`,
    /// `sync_file_merge()`): the leaves of both, flat, one per context (the latest), without
    /// those that have already signalled ([`unwrap::merge`](crate::fence::unwrap::merge)).
    /// `a` and `b` stay valid. `name` is cut to fit [`NAME_LEN`]; an empty name leaves the
    /// file unnamed, so [`name`](Self::name) describes its fence.
    ///
    /// ```
    /// use dmabuf::{FenceContext, SyncFile};
    /// let gpu = FenceContext::new("gpu", "ring0");
    /// let (_s1, first) = gpu.next_fence();
    /// let (_s2, second) = gpu.next_fence();
    /// let (_s3, decode) = FenceContext::new("codec", "dec0").next_fence();
    /// let a = SyncFile::new(first);
    /// let b = SyncFile::merge("b", &SyncFile::new(second.clone()), &SyncFile::new(decode));
    /// let both = SyncFile::merge("both", &a, &b);
    /// assert_eq!(both.num_fences(), 2); // `first` dropped: `second` is later on its context
    /// assert_eq!(both.name(), "both");
    /// assert_eq!(a.num_fences(), 1);
    /// ```
    #[doc(alias = "SYNC_IOC_MERGE")]
    #[doc(alias = "sync_file_merge")]
    pub fn merge(name: &str, a: &SyncFile, b: &SyncFile) -> SyncFile {
        let fence = merge(&[a.fence.clone(), b.fence.clone()]);
        let name = uapi_str(name);
        SyncFile {
            fence,
            name: (!name.is_empty()).then(|| Arc::from(name)),
        }
    }

    /// The number of leaf fences (kernel: `SYNC_IOC_FILE_INFO` with `num_fences == 0`).
    pub fn num_fences(&self) -> usize {
        leaves(&self.fence).count()
    }

    /// The status of the file's fence itself (kernel: `SYNC_IOC_FILE_INFO` with
    /// `num_fences == 0`, `dma_fence_get_status()`).
    pub fn status(&self) -> FenceStatus {
        self.fence.status()
    }

    /// The name, the overall status and every leaf (kernel: `SYNC_IOC_FILE_INFO`).
    ///
    /// The overall status starts as [`FenceStatus::Signaled`] and takes the status of the
    /// first leaf that is pending or failed: a file whose first leaf is pending reads as
    /// pending even if a later leaf failed.
    ///
    /// ```
    /// use dmabuf::{FenceContext, FenceStatus, SyncFile};
    /// let (issuer, fence) = FenceContext::new("gpu", "ring0").next_fence();
    /// let file = SyncFile::new(fence);
    /// let info = file.info();
    /// assert_eq!((info.num_fences(), info.status), (1, FenceStatus::Pending));
    /// assert_eq!((info.fences[0].driver.as_str(), info.fences[0].timeline.as_str()), ("gpu", "ring0"));
    /// assert_eq!(info.fences[0].timestamp_ns(), 0);
    /// issuer.signal();
    /// assert!(file.info().fences[0].timestamp.is_some());
    /// ```
    #[doc(alias = "SYNC_IOC_FILE_INFO")]
    pub fn info(&self) -> SyncFileInfo {
        let mut status = FenceStatus::Signaled;
        let fences = leaves(&self.fence)
            .map(|leaf| {
                let mut info = FenceInfo::default();
                status = fold_status(status, fill_leaf(&leaf, &mut info));
                info
            })
            .collect();
        SyncFileInfo {
            name: self.name().into_owned(),
            status,
            fences,
        }
    }

    /// Fills `out` with one entry per leaf and returns how many were written and the overall
    /// status (kernel: `SYNC_IOC_FILE_INFO` into the caller's `sync_fence_info` array). Entries
    /// past the leaves are left as they were.
    ///
    /// An empty `out` is the ioctl's query form: nothing is written, and the result is the
    /// leaf count and the status of the file's fence itself ([`num_fences`](Self::num_fences),
    /// [`status`](Self::status)).
    ///
    /// # Errors
    /// [`Error::FenceInfoTooSmall`] (`EINVAL`) if `out` is not empty but shorter than the
    /// number of leaves; nothing is written then.
    ///
    /// ```
    /// use dmabuf::{FenceContext, FenceStatus, SyncFile};
    /// use dmabuf::sync_file::FenceInfo;
    /// let ctx = FenceContext::new("gpu", "ring0");
    /// let (_a, a) = ctx.next_fence();
    /// let (_b, b) = dmabuf::FenceContext::new("gpu", "ring1").next_fence();
    /// let file = SyncFile::merge("ab", &SyncFile::new(a), &SyncFile::new(b));
    /// assert_eq!(file.fill_info(&mut []).unwrap(), (2, FenceStatus::Pending));
    /// let mut one = [FenceInfo::default()];
    /// assert_eq!(file.fill_info(&mut one).unwrap_err().errno(), dmabuf::Errno::EINVAL);
    /// let mut two = vec![FenceInfo::default(); 2];
    /// assert_eq!(file.fill_info(&mut two).unwrap(), (2, FenceStatus::Pending));
    /// assert_eq!(two[1].timeline, "ring1");
    /// ```
    #[doc(alias = "sync_fill_fence_info")]
    pub fn fill_info(&self, out: &mut [FenceInfo]) -> Result<(usize, FenceStatus)> {
        // One walk, so the count checked is the count written (a chain may shed signalled
        // nodes between two walks).
        let all: Vec<Fence> = leaves(&self.fence).collect();
        if out.is_empty() {
            return Ok((all.len(), self.status()));
        }
        if out.len() < all.len() {
            return Err(Error::FenceInfoTooSmall {
                needed: all.len(),
                given: out.len(),
            });
        }
        let status = all
            .iter()
            .zip(out.iter_mut())
            .fold(FenceStatus::Signaled, |status, (leaf, info)| {
                fold_status(status, fill_leaf(leaf, info))
            });
        Ok((all.len(), status))
    }

    /// Asks for the fence to be signalled by `deadline` (kernel: `SYNC_IOC_SET_DEADLINE`,
    /// `dma_fence_set_deadline()`): forwarded to the issuer's ops, or to every member of a
    /// container. A hint; ignored once signalled.
    #[doc(alias = "SYNC_IOC_SET_DEADLINE")]
    pub fn set_deadline(&self, deadline: MonotonicTime) {
        self.fence.set_deadline(deadline);
    }

    /// Whether the fence has signalled (kernel: `poll()` reporting `EPOLLIN`).
    pub fn is_signaled(&self) -> bool {
        self.fence.is_signaled()
    }

    /// Blocks until the fence signals, and says whether the work succeeded (see
    /// [`Fence::wait`]).
    ///
    /// # Errors
    /// [`FenceFailed`] with the fence's error if it signalled with one.
    pub fn wait(&self) -> std::result::Result<(), FenceFailed> {
        self.fence.wait()
    }

    /// Blocks until the fence signals or `timeout` passes, and says whether the work
    /// succeeded (see [`Fence::wait_timeout`]). A zero timeout polls, enabling the fence's
    /// signalling first as the kernel's first `poll()` does (it queues a callback).
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] (`ETIME`) if the fence is still pending;
    /// [`WaitError::Failed`] with the fence's error if it signalled with one.
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<(), WaitError> {
        self.fence.wait_timeout(timeout)
    }

    /// Blocks until the fence signals or the monotonic clock reaches `deadline`, and says
    /// whether the work succeeded.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(&self, deadline: MonotonicTime) -> std::result::Result<(), WaitError> {
        self.fence.wait_deadline(deadline)
    }

    /// Blocks until the fence signals, with or without an error (kernel: `poll()` without a
    /// timeout, which reports `EPOLLIN` for a fence that failed too); see
    /// [`Fence::wait_for_signal`].
    pub fn wait_for_signal(&self) {
        self.fence.wait_for_signal();
    }

    /// Blocks until the fence signals, with or without an error, or until `timeout` passes
    /// (kernel: `poll()` with a timeout; libsync's `sync_wait()`). A zero timeout polls,
    /// enabling the fence's signalling first as the kernel's first `poll()` does.
    ///
    /// # Errors
    /// [`TimedOut`] (`ETIME`) if the fence is still pending.
    pub fn wait_for_signal_timeout(&self, timeout: Duration) -> std::result::Result<(), TimedOut> {
        self.fence.wait_for_signal_timeout(timeout)
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
        self.fence.wait_for_signal_deadline(deadline)
    }

    /// A future that resolves when the fence signals (kernel: `sync_file_poll()`, the
    /// `EPOLLIN` side); see [`Fence::wait_async`].
    #[doc(alias = "sync_file_poll")]
    pub fn wait_async(&self) -> FenceFuture {
        self.fence.wait_async()
    }

    /// A snapshot of what `access` would have to wait for on the buffer whose
    /// implicit-sync state is `resv` (kernel: `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`,
    /// `dma_buf_export_sync_file()`).
    ///
    /// [`Access::Read`] takes the writers (`get_singleton(Usage::Write)`, kernel fences
    /// included); [`Access::Write`] and [`Access::ReadWrite`] take every implicit fence
    /// (`get_singleton(Usage::Read)`). Several fences become one array; an idle buffer gives
    /// the signalled stub fence. Fences added to `resv` later are not in the file.
    /// Lock-free.
    ///
    /// ```
    /// use dmabuf::fence::{Fence, FenceContext};
    /// use dmabuf::resv::{Access, Resv, Usage};
    /// use dmabuf::SyncFile;
    /// let buffer = Resv::new();
    /// assert!(SyncFile::export(&buffer, Access::Write).fence().ptr_eq(&Fence::stub()));
    /// let (_reader, fence) = FenceContext::new("gpu", "ring0").next_fence();
    /// let mut locked = buffer.lock_single();
    /// locked.reserve_fences(1)?;
    /// locked.add_fence(&fence, Usage::Read);
    /// drop(locked);
    /// assert!(SyncFile::export(&buffer, Access::Read).is_signaled()); // no writer
    /// assert!(SyncFile::export(&buffer, Access::Write).fence().ptr_eq(&fence));
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    #[doc(alias = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE")]
    #[doc(alias = "dma_buf_export_sync_file")]
    pub fn export(resv: &Resv, access: Access) -> SyncFile {
        let fence = resv
            .get_singleton(access.wait_usage())
            .unwrap_or_else(Fence::stub);
        SyncFile::new(fence)
    }

    /// Makes later accesses to the buffer whose implicit-sync state is `resv` wait for this
    /// file (kernel: `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`, `dma_buf_import_sync_file()`).
    ///
    /// Every leaf is added with [`access.add_usage()`](Access::add_usage): as a writer with
    /// the WRITE flag (readers and writers then wait), else as a reader (writers wait).
    /// Locks `resv`, reserves one slot per leaf, adds them and unlocks; a file without leaves
    /// changes nothing.
    ///
    /// # Locking
    /// Takes `resv`'s lock without a context: the caller must not hold it (use
    /// [`import_locked`](Self::import_locked) under a held lock).
    ///
    /// # Errors
    /// Those of [`ResvGuard::reserve_fences`], before any leaf is added: on error `resv` is
    /// unchanged.
    ///
    /// ```
    /// use dmabuf::{SyncFile, Timeline};
    /// use dmabuf::resv::{Access, Resv};
    /// let buffer = Resv::new();
    /// let timeline = Timeline::new("client");
    /// SyncFile::new(timeline.create_fence(1)?).import_into(&buffer, Access::Read)?;
    /// assert!(buffer.is_ready(Access::Read)); // a reader does not block readers
    /// assert!(!buffer.is_ready(Access::Write));
    /// timeline.inc(1);
    /// assert!(buffer.is_ready(Access::Write));
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    #[doc(alias = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE")]
    #[doc(alias = "dma_buf_import_sync_file")]
    pub fn import_into(&self, resv: &Resv, access: Access) -> Result<()> {
        // Walked once, before locking: the count reserved is the count added.
        let all: Vec<Fence> = leaves(&self.fence).collect();
        if all.is_empty() {
            return Ok(());
        }
        let mut guard = resv.lock_single();
        add_leaves(&mut guard, &all, access)
    }

    /// [`import_into`](Self::import_into) for a caller that holds the reservation lock (for
    /// example through an [`AcquireCtx`](dmabuf_ww::AcquireCtx) with other buffers of the
    /// same job).
    ///
    /// Reserves with [`ResvGuard::reserve_fences`], which only makes sure of at least that
    /// many free slots: to add fences of your own too, reserve for them and the file's
    /// [`num_fences`](Self::num_fences) in one call before the import. Not after it: an
    /// imported pending fence starts this thread's signalling obligation, and a reservation
    /// inside it is reported (a reclaim point).
    ///
    /// # Errors
    /// As [`import_into`](Self::import_into).
    pub fn import_locked(&self, guard: &mut ResvGuard<'_>, access: Access) -> Result<()> {
        let all: Vec<Fence> = leaves(&self.fence).collect();
        if all.is_empty() {
            return Ok(());
        }
        add_leaves(guard, &all, access)
    }
}

/// Reserves a slot per leaf, then adds them all: the reservation is the only step that can
/// fail, so a failure adds nothing.
fn add_leaves(guard: &mut ResvGuard<'_>, all: &[Fence], access: Access) -> Result<()> {
    guard.reserve_fences(all.len())?;
    let usage = access.add_usage();
    for leaf in all {
        guard.add_fence(leaf, usage);
    }
    Ok(())
}

impl From<Fence> for SyncFile {
    /// [`SyncFile::new`].
    fn from(fence: Fence) -> SyncFile {
        SyncFile::new(fence)
    }
}

impl fmt::Debug for SyncFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncFile")
            .field("name", &self.name())
            .field("fence", &self.fence)
            .finish()
    }
}

impl fmt::Display for SyncFile {
    /// `<name>: <status>`, the status as `pending`, `signalled` or `error <errno>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self.status() {
            FenceStatus::Pending => f.write_str("pending"),
            FenceStatus::Signaled => f.write_str("signalled"),
            FenceStatus::Failed(e) => write!(f, "error {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::{FenceContext, FenceOps, alloc_contexts};
    use crate::resv::Usage;
    use crate::{Errno, Signaller, Timeline};
    use std::future::Future;
    use std::num::NonZeroU64;
    use std::sync::Mutex;
    use std::task::{Context, Waker};

    fn pending(driver: &'static str, timeline: &'static str) -> (Signaller, Fence) {
        FenceContext::new(driver, timeline).next_fence()
    }

    /// An array over `members`, kept as is (no merge: signalled members stay).
    fn array(members: &[Fence]) -> Fence {
        Fence::new_array(members.to_vec(), alloc_contexts(NonZeroU64::MIN), 1).unwrap()
    }

    fn statuses(info: &SyncFileInfo) -> Vec<FenceStatus> {
        info.fences.iter().map(|f| f.status).collect()
    }

    #[test]
    fn info_of_a_single_pending_then_signalled_leaf() {
        let (s, f) = pending("drv", "tl");
        let file = SyncFile::new(f.clone());
        let info = file.info();
        assert_eq!(info.status, FenceStatus::Pending);
        assert_eq!(info.status.to_raw(), 0);
        assert_eq!(info.num_fences(), 1);
        assert_eq!(info.fences[0].timeline, "tl");
        assert_eq!(info.fences[0].driver, "drv");
        assert_eq!(info.fences[0].timestamp, None);
        assert_eq!(info.fences[0].timestamp_ns(), 0);
        assert_eq!(file.status(), FenceStatus::Pending);

        s.signal();
        let info = file.info();
        assert_eq!(info.status, FenceStatus::Signaled);
        assert_eq!(info.status.to_raw(), 1);
        assert_eq!(info.fences[0].status, FenceStatus::Signaled);
        assert_eq!(info.fences[0].timestamp, f.timestamp());
        assert!(info.fences[0].timestamp_ns() > 0);
        assert_eq!(file.status(), FenceStatus::Signaled);
    }

    #[test]
    fn info_status_is_the_first_pending_or_failed_leaf() {
        // Contexts in creation order; the array keeps the members' order.
        let (ok, f_ok) = pending("t", "ok");
        let (bad, f_bad) = pending("t", "bad");
        let (_pend, f_pend) = pending("t", "pending");
        ok.signal();
        bad.signal_with_error(Errno::EIO);

        let failed_first = SyncFile::new(array(&[f_ok.clone(), f_bad.clone(), f_pend.clone()]));
        let info = failed_first.info();
        assert_eq!(
            statuses(&info),
            [
                FenceStatus::Signaled,
                FenceStatus::Failed(Errno::EIO),
                FenceStatus::Pending
            ]
        );
        assert_eq!(info.status, FenceStatus::Failed(Errno::EIO));
        assert_eq!(info.status.to_raw(), -5);
        assert_eq!(info.fences[1].timestamp, f_bad.timestamp());
        assert_eq!(info.fences[2].timestamp, None);
        // The fence itself (the num_fences == 0 query) is still pending.
        assert_eq!(failed_first.status(), FenceStatus::Pending);

        let pending_first = SyncFile::new(array(&[f_ok.clone(), f_pend, f_bad.clone()]));
        assert_eq!(pending_first.info().status, FenceStatus::Pending);

        let all_ok = SyncFile::new(array(&[f_ok.clone(), f_ok]));
        assert_eq!(all_ok.info().status, FenceStatus::Signaled);
        assert_eq!(all_ok.status(), FenceStatus::Signaled);

        let failed_only = SyncFile::new(f_bad);
        assert_eq!(failed_only.info().status, FenceStatus::Failed(Errno::EIO));
        assert_eq!(failed_only.status(), FenceStatus::Failed(Errno::EIO));
    }

    #[test]
    fn info_lists_the_leaves_of_containers() {
        let (_a, fa) = pending("t", "a");
        let (_b, fb) = pending("t", "b");
        let (_c, fc) = pending("t", "c");
        let chain = Fence::new_chain(None, array(&[fa, fb]), 1).unwrap();
        let chain = Fence::new_chain(Some(chain), fc, 2).unwrap();
        let file = SyncFile::new(chain);
        let info = file.info();
        let mut timelines: Vec<_> = info.fences.iter().map(|f| f.timeline.as_str()).collect();
        timelines.sort_unstable();
        assert_eq!(timelines, ["a", "b", "c"]);
        assert_eq!(file.num_fences(), 3);
        assert_eq!(info.status, FenceStatus::Pending);
    }

    #[test]
    fn fill_info_follows_the_ioctl_contract() {
        let (s1, f1) = pending("t", "one");
        let (_s2, f2) = pending("t", "two");
        let (_s3, f3) = pending("t", "three");
        s1.signal();
        let file = SyncFile::new(array(&[f1, f2, f3]));

        // Query form.
        assert_eq!(file.fill_info(&mut []), Ok((3, FenceStatus::Pending)));

        // Too small: EINVAL, nothing written.
        let mut two = vec![FenceInfo::default(); 2];
        let err = file.fill_info(&mut two).unwrap_err();
        assert_eq!(
            err,
            Error::FenceInfoTooSmall {
                needed: 3,
                given: 2
            }
        );
        assert_eq!(err.errno(), Errno::EINVAL);
        assert!(two.iter().all(|i| *i == FenceInfo::default()));

        // Larger than needed: the tail is left alone.
        let marker = FenceInfo {
            timeline: "untouched".into(),
            ..FenceInfo::default()
        };
        let mut four = vec![marker.clone(); 4];
        assert_eq!(file.fill_info(&mut four), Ok((3, FenceStatus::Pending)));
        assert_eq!(four[0].status, FenceStatus::Signaled);
        assert_eq!(four[0].timeline, "one");
        assert_eq!(four[2].timeline, "three");
        assert_eq!(four[3], marker);
        assert_eq!(four[..3], file.info().fences[..]);
    }

    #[test]
    fn generated_names() {
        let ctx = FenceContext::new("drv", "tl");
        let (_s, f) = ctx.fence(42);
        assert_eq!(SyncFile::new(f).name(), format!("drv-tl{}-42", ctx.id()));
        assert_eq!(SyncFile::new(Fence::stub()).name(), "stub-stub0-0");

        // A container is named after itself, not its leaves.
        let (_a, fa) = pending("t", "a");
        let (_b, fb) = pending("t", "b");
        let arr = array(&[fa, fb]);
        let want = format!("dma_fence_array-unbound{}-1", arr.context());
        assert_eq!(SyncFile::new(arr).name(), want);

        // The seqno prints signed, as the kernel's "%lld".
        let (_s, big) = ctx.fence(u64::MAX);
        let name = SyncFile::new(big).name().into_owned();
        assert!(name.ends_with("--1"), "{name}");

        // Too long: cut to 31 bytes.
        let (_s, long) =
            FenceContext::new("a-driver-with-a-long-name", "and-a-long-timeline").next_fence();
        let name = SyncFile::new(long).name().into_owned();
        assert_eq!(name.len(), NAME_LEN - 1);
        assert_eq!(name, "a-driver-with-a-long-name-and-a");
    }

    #[test]
    fn user_names_and_truncation() {
        let (_a, fa) = pending("t", "a");
        let (_b, fb) = pending("t", "b");
        let (a, b) = (SyncFile::new(fa), SyncFile::new(fb));

        let merged = SyncFile::merge("merged", &a, &b);
        assert_eq!(merged.name(), "merged");
        assert_eq!(merged.info().name, "merged");

        // ASCII: 31 bytes kept.
        let long = "0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(SyncFile::merge(long, &a, &b).name(), &long[..31]);
        // Exactly 31 bytes: kept whole.
        assert_eq!(SyncFile::merge(&long[..31], &a, &b).name(), &long[..31]);
        // Two-byte characters: 15 of them (30 bytes), never half of one.
        let accents = "é".repeat(20);
        let cut = SyncFile::merge(&accents, &a, &b).name().into_owned();
        assert_eq!(cut, "é".repeat(15));
        // A NUL ends the name, as in the C field.
        assert_eq!(SyncFile::merge("left\0right", &a, &b).name(), "left");

        // Empty (or starting with NUL): no user name, so the fence names the file.
        for empty in ["", "\0hidden"] {
            let unnamed = SyncFile::merge(empty, &a, &b);
            let f = unnamed.fence();
            assert_eq!(
                unnamed.name(),
                format!("dma_fence_array-unbound{}-1", f.context())
            );
        }
    }

    #[test]
    fn fence_info_names_are_cut_to_fit() {
        let (_s, f) = FenceContext::new("d".repeat(40), "ü".repeat(20)).next_fence();
        let info = SyncFile::new(f).info();
        assert_eq!(info.fences[0].driver, "d".repeat(31));
        assert_eq!(info.fences[0].timeline, "ü".repeat(15));
    }

    #[test]
    fn merge_is_flat_deduplicated_and_keeps_inputs() {
        let x = FenceContext::new("t", "x");
        let y = FenceContext::new("t", "y");
        let z = FenceContext::new("t", "z");
        let (_x1, x1) = x.next_fence();
        let (_x2, x2) = x.next_fence();
        let (_y1, y1) = y.next_fence();
        let (_z1, z1) = z.next_fence();

        let a = SyncFile::merge("a", &SyncFile::new(x1.clone()), &SyncFile::new(y1.clone()));
        let b = SyncFile::merge("b", &SyncFile::new(x2.clone()), &SyncFile::new(z1.clone()));
        let ab = SyncFile::merge("ab", &a, &b);
        let got: Vec<Fence> = leaves(&ab.fence()).collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].ptr_eq(&x2), "x1 dropped: x2 is later");
        assert!(got[1].ptr_eq(&y1));
        assert!(got[2].ptr_eq(&z1));
        assert!(got.iter().all(|l| !l.is_container()), "flat");

        // Inputs stay valid and unchanged.
        assert_eq!(a.num_fences(), 2);
        assert_eq!(b.num_fences(), 2);
        assert_eq!(a.name(), "a");
        assert!(leaves(&a.fence()).next().unwrap().ptr_eq(&x1));
    }

    #[test]
    fn merge_of_the_same_fence_and_of_signalled_leaves() {
        let (s, f) = pending("t", "same");
        let file = SyncFile::new(f.clone());
        let same = SyncFile::merge("same", &file, &file);
        assert_eq!(same.num_fences(), 1);
        assert!(
            same.fence().ptr_eq(&f),
            "one pending leaf: the fence itself"
        );

        let (_p, p) = pending("t", "pending");
        s.signal();
        let merged = SyncFile::merge("m", &file, &SyncFile::new(p.clone()));
        assert!(merged.fence().ptr_eq(&p), "the signalled leaf was dropped");

        let done = SyncFile::merge("done", &file, &file);
        assert!(done.is_signaled());
        assert_eq!(done.num_fences(), 1);
    }

    #[test]
    fn merge_of_only_signalled_fences_reports_one_private_stub_with_the_latest_timestamp() {
        // As Linux 6.12 answers SYNC_IOC_FILE_INFO for such a merge: one fence, "stub" /
        // "stub", signalled without error, stamped with the latest input.
        let (s1, f1) = pending("drv", "early");
        let (s2, f2) = pending("drv", "late");
        let (mut s3, f3) = pending("drv", "failed");
        s1.signal_timestamp(MonotonicTime::from_nanos(1_000));
        s3.set_error(Errno::EIO);
        s3.signal_timestamp(MonotonicTime::from_nanos(2_000));
        s2.signal();
        let late = f2.timestamp().unwrap();
        assert!(late > MonotonicTime::from_nanos(2_000));
        let (s4, f4) = pending("drv", "failed-last");
        s4.signal_with_error(Errno::EIO);
        let failed_last = f4.timestamp().unwrap();
        for (a, b, when) in [
            (&f1, &f2, late),
            (&f2, &f1, late),
            (&f3, &f2, late),
            (&f1, &f4, failed_last),
        ] {
            let merged = SyncFile::merge("m", &SyncFile::new(a.clone()), &SyncFile::new(b.clone()));
            assert!(
                ![&f1, &f2, &f3, &f4]
                    .iter()
                    .any(|f| merged.fence().ptr_eq(f))
            );
            assert!(!merged.fence().ptr_eq(&Fence::stub()), "a private stub");
            let info = merged.info();
            assert_eq!(info.status, FenceStatus::Signaled);
            assert_eq!(info.fences.len(), 1);
            let stub = &info.fences[0];
            assert_eq!(
                (stub.driver.as_str(), stub.timeline.as_str()),
                ("stub", "stub")
            );
            assert_eq!(
                stub.status,
                FenceStatus::Signaled,
                "an input's error is not kept"
            );
            assert_eq!(stub.timestamp, Some(when));
        }
    }

    #[test]
    fn set_deadline_reaches_every_timeline_point() {
        let t1 = Timeline::new("t1");
        let t2 = Timeline::new("t2");
        let p1 = t1.create_fence(1).unwrap();
        let p2 = t2.create_fence(1).unwrap();
        let file = SyncFile::merge(
            "both",
            &SyncFile::new(p1.clone()),
            &SyncFile::new(p2.clone()),
        );
        let soon = MonotonicTime::now() + Duration::from_millis(10);
        file.set_deadline(soon);
        assert_eq!(t1.deadline(&p1), Some(soon));
        assert_eq!(t2.deadline(&p2), Some(soon));
        // A later one does not replace the earlier (the timeline keeps the minimum).
        file.set_deadline(soon + Duration::from_secs(1));
        assert_eq!(t1.deadline(&p1), Some(soon));
    }

    #[test]
    fn set_deadline_reaches_the_issuers_ops() {
        #[derive(Default)]
        struct Record(Mutex<Vec<(u64, MonotonicTime)>>);
        impl FenceOps for Record {
            fn set_deadline(&self, fence: &Fence, deadline: MonotonicTime) {
                self.0.lock().unwrap().push((fence.seqno(), deadline));
            }
        }
        let ops = Arc::new(Record::default());
        let ctx = FenceContext::new("t", "ops");
        let (s, f) = ctx.next_fence_with_ops(ops.clone());
        let file = SyncFile::new(f);
        let t = MonotonicTime::from_nanos(123_456);
        file.set_deadline(t);
        assert_eq!(*ops.0.lock().unwrap(), [(1, t)]);
        s.signal();
        file.set_deadline(t);
        assert_eq!(ops.0.lock().unwrap().len(), 1, "ignored once signalled");
    }

    #[test]
    fn waits_time_out_then_complete() {
        let (s, f) = pending("t", "wait");
        let file = SyncFile::new(f);
        assert!(!file.is_signaled());
        let err = file.wait_timeout(Duration::ZERO).unwrap_err();
        assert_eq!((err, err.errno()), (WaitError::TimedOut, Errno::ETIME));
        assert_eq!(
            file.wait_timeout(Duration::from_millis(5)),
            Err(WaitError::TimedOut)
        );
        assert_eq!(
            file.wait_deadline(MonotonicTime::now()),
            Err(WaitError::TimedOut)
        );
        assert_eq!(
            file.wait_for_signal_deadline(MonotonicTime::now()),
            Err(TimedOut)
        );

        let mut fut = Box::pin(file.wait_async());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());

        let waiter = {
            let file = file.clone();
            std::thread::spawn(move || file.wait())
        };
        std::thread::sleep(Duration::from_millis(5));
        s.signal();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(file.is_signaled());
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert_eq!(file.wait_timeout(Duration::ZERO), Ok(()));
        assert_eq!(
            file.wait_deadline(MonotonicTime::now() + Duration::from_secs(1)),
            Ok(())
        );
    }

    #[test]
    fn waits_report_a_failed_fence_and_the_signal_waits_do_not() {
        let (s, f) = pending("t", "failed");
        let file = SyncFile::new(f);
        s.signal_with_error(Errno::EIO);
        assert_eq!(file.wait(), Err(FenceFailed(Errno::EIO)));
        assert_eq!(
            file.wait_timeout(Duration::ZERO),
            Err(WaitError::Failed(Errno::EIO))
        );
        assert_eq!(
            file.wait_deadline(MonotonicTime::now()),
            Err(WaitError::Failed(Errno::EIO))
        );
        // The kernel's poll() answers EPOLLIN for a fence that failed.
        file.wait_for_signal();
        assert_eq!(file.wait_for_signal_timeout(Duration::ZERO), Ok(()));
        assert_eq!(Error::from(file.wait().unwrap_err()).errno(), Errno::EIO);
    }

    #[test]
    fn import_reserves_exactly_the_leaf_count() {
        for n in [1usize, 3, 5, 16] {
            let issuers: Vec<_> = (0..n).map(|_| pending("t", "leaf")).collect();
            let mut file = SyncFile::new(issuers[0].1.clone());
            for (_, f) in &issuers[1..] {
                file = SyncFile::merge("m", &file, &SyncFile::new(f.clone()));
            }
            assert_eq!(file.num_fences(), n);

            let resv = Resv::new();
            let mut g = resv.lock_single();
            assert_eq!(g.reserved(), 0);
            file.import_locked(&mut g, Access::Read).unwrap();
            // Every reserved slot was used by one leaf, and no leaf went without one.
            assert_eq!(g.reserved(), 0, "{n} leaves");
            assert_eq!(g.num_fences(), n);
            let usages: Vec<Usage> = g.iter(Usage::Bookkeep).map(|(_, u)| u).collect();
            assert_eq!(usages, vec![Usage::Read; n]);
        }
    }

    #[test]
    fn import_adds_each_leaf_with_the_access_usage() {
        for (access, usage) in [
            (Access::Read, Usage::Read),
            (Access::Write, Usage::Write),
            (Access::ReadWrite, Usage::Write),
        ] {
            let (_a, fa) = pending("t", "a");
            let (_b, fb) = pending("t", "b");
            let file = SyncFile::new(array(&[fa.clone(), fb.clone()]));
            let resv = Resv::new();
            file.import_into(&resv, access).unwrap();
            let g = resv.lock_single();
            let got: Vec<(Fence, Usage)> = g.iter(Usage::Bookkeep).collect();
            assert_eq!(got.len(), 2, "{access}: leaves, not the array");
            assert!(got[0].0.ptr_eq(&fa) && got[1].0.ptr_eq(&fb));
            assert!(got.iter().all(|(_, u)| *u == usage), "{access}");
        }
    }

    #[test]
    fn import_of_a_signalled_file_leaves_the_buffer_ready() {
        let resv = Resv::new();
        SyncFile::new(Fence::stub())
            .import_into(&resv, Access::Write)
            .unwrap();
        assert!(Access::ALL.into_iter().all(|a| resv.is_ready(a)));
        assert!(SyncFile::export(&resv, Access::Write).is_signaled());
    }

    #[test]
    fn export_of_an_idle_buffer_is_the_stub() {
        let resv = Resv::new();
        for access in Access::ALL {
            let file = SyncFile::export(&resv, access);
            assert!(file.fence().ptr_eq(&Fence::stub()), "{access}");
            assert_eq!(file.info().status, FenceStatus::Signaled);
        }
    }

    #[test]
    fn export_snapshots_by_access() {
        let resv = Resv::new();
        let mut issuers = Vec::new();
        for usage in Usage::ALL {
            let (s, f) = pending("t", usage.name());
            let mut g = resv.lock_single();
            g.reserve_fences(1).unwrap();
            g.add_fence(&f, usage);
            drop(g);
            issuers.push(s);
        }
        // Read: kernel + write; Write and ReadWrite: kernel + write + read; never bookkeep.
        assert_eq!(SyncFile::export(&resv, Access::Read).num_fences(), 2);
        assert_eq!(SyncFile::export(&resv, Access::Write).num_fences(), 3);
        assert_eq!(SyncFile::export(&resv, Access::ReadWrite).num_fences(), 3);
    }

    #[test]
    fn display_and_debug() {
        let (s, f) = pending("drv", "tl");
        let file = SyncFile::merge("shown", &SyncFile::new(f.clone()), &SyncFile::new(f));
        assert_eq!(file.to_string(), "shown: pending");
        assert!(format!("{file:?}").starts_with("SyncFile { name: \"shown\""));
        s.signal_with_error(Errno::EIO);
        assert_eq!(file.to_string(), "shown: error EIO");
        assert_eq!(
            SyncFile::new(Fence::stub()).to_string(),
            "stub-stub0-0: signalled"
        );
    }
}
