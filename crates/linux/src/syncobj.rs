//! DRM sync objects on a real device (kernel: `drivers/gpu/drm/drm_syncobj.c`, uAPI
//! `include/uapi/drm/drm.h`).
//!
//! A syncobj is a slot for a fence, named by a handle in one open DRM device file. Used as a
//! *binary* syncobj, its fence is replaced (by a submission, an import, a CPU signal) and
//! waited for; used as a *timeline*, every submission adds a point (a `dma_fence_chain` node
//! with a 64-bit number), and a point is signalled once its fence and every earlier point's
//! have. Vulkan semaphores and fences, and Wayland's explicit-sync protocol
//! (`linux-drm-syncobj-v1`), are built on them.
//!
//! [`Syncobj`] owns a handle and destroys it when dropped; it keeps its [`DrmDevice`] open.
//! Every syncobj ioctl is here: create (signalled or not), destroy, export and import as an
//! opaque file ([`SyncobjFd`], to pass to another process) or as a sync_file (the fence
//! itself, [`SyncFileFd`]), waits (binary and timeline, over many syncobjs, with
//! [`WaitFlags`]), reset, signal, timeline signal, query, transfer, and eventfd
//! registration. Sync-file import goes into an existing handle, as the kernel requires.
//!
//! # Bridges
//! * [`Syncobj::signal_point_when`]: a library [`Fence`] → a kernel timeline point. When the
//!   fence signals, the point is CPU-signalled (`DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`), which
//!   wakes every process waiting for it. The uAPI cannot carry an error into a point: a CPU
//!   signal attaches a signalled stub fence, and user space has no way to make a kernel fence
//!   fail. A fence that failed still signals its point (a waiter must not hang on it), and the
//!   failure is logged at `warn` with its errno; processes that need it must send it on a
//!   channel of their own.
//! * [`Syncobj::point_to_fence`]: a kernel point → a library [`Fence`], through
//!   `DRM_IOCTL_SYNCOBJ_EVENTFD` and the [`Reactor`] (no thread per wait). When the point
//!   signals, the fence signals with the status, error and time the point's sync file reports
//!   then.
//!
//! # Errors
//! Each call answers [`Error::Sys`] with the kernel's errno, or a typed error for the
//! answers that have one meaning here: [`Error::TimedOut`] (`ETIME`) from waits,
//! [`Error::Unsubmitted`] (`EINVAL`) for a syncobj or point with no fence where one is needed,
//! [`Error::Unsupported`] for a driver without (timeline) syncobjs (`EOPNOTSUPP`) and for the
//! eventfd call on kernels before 6.6. The typed calls never pass bad flags, padding or empty
//! arrays (see [`raw`](crate::raw) for the kernel's own answers to those).

use crate::drm::DrmDevice;
use crate::error::{Error, Result};
use crate::reactor::Reactor;
use crate::sync_file::SyncFileFd;
use crate::uapi::{self, DrmSyncobjHandle, DrmSyncobjTransfer, SyncobjWait};
use dmabuf::{Fence, FenceStatus, MonotonicTime};
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::time::Duration;

/// How a syncobj wait treats syncobjs and points without a fence, and when it returns.
///
/// Combine with `|`; [`with_deadline`](Self::with_deadline) adds `WAIT_DEADLINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitFlags {
    bits: u32,
    deadline: Option<MonotonicTime>,
}

impl WaitFlags {
    /// Return once any one has signalled (the index is the answer); a syncobj or point with
    /// no fence is an error ([`Error::Unsubmitted`], `EINVAL`).
    pub const ANY: WaitFlags = WaitFlags {
        bits: 0,
        deadline: None,
    };
    /// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL`: return once all have signalled.
    pub const ALL: WaitFlags = WaitFlags {
        bits: uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
        deadline: None,
    };
    /// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`: a syncobj or point with no fence is waited
    /// for until one is attached, then that fence is waited for.
    pub const FOR_SUBMIT: WaitFlags = WaitFlags {
        bits: uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
        deadline: None,
    };
    /// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE` (timeline waits only): wait until a fence is
    /// attached for the point, not until it signals. A point without a fence is waited for
    /// (as with [`FOR_SUBMIT`](Self::FOR_SUBMIT)), not an error.
    pub const AVAILABLE: WaitFlags = WaitFlags {
        bits: uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        deadline: None,
    };

    /// These flags with `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE`: the kernel sets `deadline` as
    /// a deadline hint on the fences before waiting (Linux 6.4 and later).
    pub fn with_deadline(self, deadline: MonotonicTime) -> WaitFlags {
        WaitFlags {
            deadline: Some(deadline),
            ..self
        }
    }

    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: WaitFlags) -> bool {
        self.bits & other.bits == other.bits
    }

    /// The uAPI bits, `WAIT_DEADLINE` included when a deadline is set.
    pub fn bits(self) -> u32 {
        match self.deadline {
            Some(_) => self.bits | uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE,
            None => self.bits,
        }
    }

    /// The deadline hint, if any.
    pub fn deadline(self) -> Option<MonotonicTime> {
        self.deadline
    }
}

impl std::ops::BitOr for WaitFlags {
    type Output = WaitFlags;
    fn bitor(self, other: WaitFlags) -> WaitFlags {
        WaitFlags {
            bits: self.bits | other.bits,
            deadline: self.deadline.or(other.deadline),
        }
    }
}

/// What an eventfd registered on a point ([`Syncobj::register_eventfd`]) waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointEvent {
    /// The point has signalled (flags 0).
    Signaled,
    /// A fence has been attached for the point (`DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`); it
    /// may still be pending.
    Submitted,
}

impl PointEvent {
    fn flags(self) -> u32 {
        match self {
            PointEvent::Signaled => 0,
            PointEvent::Submitted => uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        }
    }
}

/// The error of a syncobj call: `EOPNOTSUPP` (no syncobjs in the driver) is
/// [`Error::Unsupported`], anything else [`Error::Sys`].
fn kernel(call: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| match errno {
        Errno::OPNOTSUPP => Error::Unsupported { call, errno },
        errno => Error::Sys { call, errno },
    }
}

/// As [`kernel`], and `EINVAL` (the kernel's answer for a missing fence where the call's
/// other arguments are valid, as the typed calls' are) is [`Error::Unsubmitted`], `ETIME`
/// [`Error::TimedOut`].
fn fence_needed(call: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| match errno {
        Errno::INVAL => Error::Unsubmitted { call },
        Errno::TIME => Error::TimedOut,
        errno => kernel(call)(errno),
    }
}

/// Runs `f` again while it answers `EINTR` (a signal handler ran during a wait).
fn restart<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// The uAPI's absolute `CLOCK_MONOTONIC` timeout for `timeout` from now: 0 (only look) for
/// zero, `i64::MAX` (forever) for `None`.
fn absolute_timeout(timeout: Option<Duration>) -> i64 {
    match timeout {
        Some(Duration::ZERO) => 0,
        Some(t) => {
            i64::try_from(MonotonicTime::now().saturating_add(t).as_nanos()).unwrap_or(i64::MAX)
        }
        None => i64::MAX,
    }
}

/// An owned syncobj handle in a DRM device file; destroyed (`DRM_IOCTL_SYNCOBJ_DESTROY`) when
/// dropped.
#[derive(Debug)]
pub struct Syncobj {
    device: DrmDevice,
    handle: u32,
}

impl DrmDevice {
    /// `ioctl(DRM_IOCTL_SYNCOBJ_CREATE, {flags: 0})`—A new syncobj with no fence.
    ///
    /// # Errors
    /// [`Error::Unsupported`] (`EOPNOTSUPP`) from a driver without syncobjs; [`Error::Sys`]
    /// with the kernel's errno.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_CREATE")]
    pub fn create_syncobj(&self) -> Result<Syncobj> {
        self.create(0)
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_CREATE, {DRM_SYNCOBJ_CREATE_SIGNALED})`—A new syncobj holding
    /// an already signalled fence.
    ///
    /// # Errors
    /// As [`create_syncobj`](Self::create_syncobj).
    pub fn create_syncobj_signaled(&self) -> Result<Syncobj> {
        self.create(uapi::DRM_SYNCOBJ_CREATE_SIGNALED)
    }

    fn create(&self, flags: u32) -> Result<Syncobj> {
        uapi::syncobj_create(self.as_fd(), flags)
            .map(|handle| self.owning(handle))
            .map_err(kernel("ioctl(DRM_IOCTL_SYNCOBJ_CREATE)"))
    }

    /// A [`Syncobj`] owning `handle`, which the kernel just made in this file.
    fn owning(&self, handle: u32) -> Syncobj {
        Syncobj {
            device: self.clone(),
            handle,
        }
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, {fd})`—A handle in this device file to the
    /// syncobj behind an opaque syncobj file (exported here or by another process, from this
    /// driver or another). Each import is a new handle to the same syncobj.
    ///
    /// # Errors
    /// As [`create_syncobj`](Self::create_syncobj).
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE")]
    pub fn import_syncobj(&self, file: &SyncobjFd) -> Result<Syncobj> {
        let arg = DrmSyncobjHandle {
            fd: file.as_raw_fd(),
            ..DrmSyncobjHandle::default()
        };
        uapi::syncobj_fd_to_handle(self.as_fd(), arg)
            .map(|handle| self.owning(handle))
            .map_err(kernel("ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)"))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_WAIT, {handles, timeout, flags})`—Waits for the syncobjs'
    /// fences (binary syncobjs, or timelines at their latest point); `None` waits forever.
    ///
    /// Answers the kernel's `first_signaled`: without [`WaitFlags::ALL`], the index of a
    /// syncobj that has signalled; with it, the index of the first one already signalled when
    /// the wait began, or `u32::MAX` when none was. Restarts after a signal handler with the
    /// same deadline. An empty slice is the kernel's to answer (Linux 6.12 returns at once,
    /// with 0).
    ///
    /// # Errors
    /// Before the call: [`Error::ForeignSyncobj`] for a syncobj of another device file, [`Error::InvalidFlags`] for
    /// [`WaitFlags::AVAILABLE`] (timeline waits only). Then [`Error::TimedOut`] (`ETIME`);
    /// [`Error::Unsubmitted`] (`EINVAL`) when one has no fence and the flags lack
    /// [`WaitFlags::FOR_SUBMIT`] (and, for timeline waits, [`WaitFlags::AVAILABLE`]);
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_WAIT")]
    pub fn wait(
        &self,
        syncobjs: &[&Syncobj],
        flags: WaitFlags,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_WAIT)";
        if flags.contains(WaitFlags::AVAILABLE) {
            return Err(Error::InvalidFlags {
                flags: flags.bits().into(),
            });
        }
        let handles = self.handles(call, syncobjs.iter().copied(), true)?;
        self.wait_ioctl(call, &handles, None, flags, timeout)
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, {handles, points, timeout, flags})`—Waits for
    /// timeline points (point 0 is a binary syncobj's fence); `None` waits forever.
    ///
    /// Answers `first_signaled` as [`wait`](Self::wait) does. With [`WaitFlags::AVAILABLE`]
    /// a point counts as done once it has a fence.
    ///
    /// # Errors
    /// As [`wait`](Self::wait) ([`WaitFlags::AVAILABLE`] allowed), and
    /// [`Error::Unsupported`] (`EOPNOTSUPP`) from a driver without timeline syncobjs.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT")]
    pub fn timeline_wait(
        &self,
        points: &[(&Syncobj, u64)],
        flags: WaitFlags,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT)";
        let handles = self.handles(call, points.iter().map(|(s, _)| *s), true)?;
        let values: Vec<u64> = points.iter().map(|(_, p)| *p).collect();
        self.wait_ioctl(call, &handles, Some(&values), flags, timeout)
    }

    /// The timeline wait when there are `points`, else the binary wait, restarted on `EINTR`
    /// with the same absolute timeout.
    fn wait_ioctl(
        &self,
        call: &'static str,
        handles: &[u32],
        points: Option<&[u64]>,
        flags: WaitFlags,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let wait = SyncobjWait {
            handles,
            points,
            timeout_nsec: absolute_timeout(timeout),
            flags: flags.bits(),
            pad: 0,
            deadline_nsec: flags.deadline().map_or(0, MonotonicTime::as_nanos),
        };
        let timeline = points.is_some();
        restart(|| uapi::syncobj_wait(self.as_fd(), timeline, &wait)).map_err(fence_needed(call))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_RESET, {handles})`—Removes each syncobj's fence (a timeline
    /// loses all its points).
    ///
    /// # Errors
    /// [`Error::NoSyncobjs`], [`Error::ForeignSyncobj`] before the call; [`Error::Sys`] with
    /// the kernel's errno.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_RESET")]
    pub fn reset(&self, syncobjs: &[&Syncobj]) -> Result<()> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_RESET)";
        let handles = self.handles(call, syncobjs.iter().copied(), false)?;
        uapi::syncobj_array(self.as_fd(), false, &handles, 0).map_err(kernel(call))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_SIGNAL, {handles})`—Replaces each syncobj's fence with a
    /// signalled one.
    ///
    /// # Errors
    /// As [`reset`](Self::reset).
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_SIGNAL")]
    pub fn signal(&self, syncobjs: &[&Syncobj]) -> Result<()> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_SIGNAL)";
        let handles = self.handles(call, syncobjs.iter().copied(), false)?;
        uapi::syncobj_array(self.as_fd(), true, &handles, 0).map_err(kernel(call))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, {handles, points})`—Adds each point with a
    /// signalled fence (point 0: replaces the fence, as [`signal`](Self::signal)).
    ///
    /// A point not above the timeline's last is added all the same (the kernel only logs it);
    /// [`query`](Self::query) may then answer a lower value than expected.
    ///
    /// # Errors
    /// As [`reset`](Self::reset), and [`Error::Unsupported`] (`EOPNOTSUPP`) from a driver
    /// without timeline syncobjs.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL")]
    pub fn timeline_signal(&self, points: &[(&Syncobj, u64)]) -> Result<()> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL)";
        let handles = self.handles(call, points.iter().map(|(s, _)| *s), false)?;
        let values: Vec<u64> = points.iter().map(|(_, p)| *p).collect();
        uapi::syncobj_timeline_signal(self.as_fd(), &handles, Some(&values), 0)
            .map_err(kernel(call))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_QUERY, {handles, flags})`—Each timeline's last signalled
    /// point, or with `last_submitted` (`DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED`) its last
    /// submitted one; 0 for a syncobj without points.
    ///
    /// "Last signalled" is the kernel's walk of the timeline from its newest point: the
    /// newest point of the run of signalled points it reaches, which with points added out of
    /// order may be below a higher point that has signalled.
    ///
    /// # Errors
    /// As [`timeline_signal`](Self::timeline_signal).
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_QUERY")]
    pub fn query(&self, syncobjs: &[&Syncobj], last_submitted: bool) -> Result<Vec<u64>> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_QUERY)";
        let handles = self.handles(call, syncobjs.iter().copied(), false)?;
        let mut points = vec![0u64; handles.len()];
        let flags = if last_submitted {
            uapi::DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED
        } else {
            0
        };
        uapi::syncobj_query(self.as_fd(), &handles, Some(&mut points), flags)
            .map_err(kernel(call))?;
        Ok(points)
    }

    /// The handles of `syncobjs`, checked to be this file's, and unless `empty_ok` at least
    /// one.
    fn handles<'a>(
        &self,
        call: &'static str,
        syncobjs: impl Iterator<Item = &'a Syncobj>,
        empty_ok: bool,
    ) -> Result<Vec<u32>> {
        let mut handles = Vec::new();
        for s in syncobjs {
            if !s.device.same_file(self) {
                return Err(Error::ForeignSyncobj);
            }
            handles.push(s.handle);
        }
        if handles.is_empty() && !empty_ok {
            return Err(Error::NoSyncobjs { call });
        }
        Ok(handles)
    }
}

impl Syncobj {
    /// The handle in its device file.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The device file the handle belongs to.
    pub fn device(&self) -> &DrmDevice {
        &self.device
    }

    /// A second handle to the same syncobj in the same file (exported as an opaque file and
    /// imported again; the file is closed before this returns).
    ///
    /// # Errors
    /// As [`export`](Self::export) and [`DrmDevice::import_syncobj`].
    pub fn try_clone(&self) -> Result<Syncobj> {
        self.device.import_syncobj(&self.export()?)
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, {handle})`—The syncobj as an opaque file, for
    /// another process (over a Unix socket, see [`send_fds`](crate::send_fds)) or another
    /// device to import. The file is close-on-exec.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD")]
    pub fn export(&self) -> Result<SyncobjFd> {
        let arg = DrmSyncobjHandle {
            handle: self.handle,
            ..DrmSyncobjHandle::default()
        };
        uapi::syncobj_handle_to_fd(self.device.as_fd(), arg)
            .map(SyncobjFd)
            .map_err(kernel("ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD)"))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, {handle, EXPORT_SYNC_FILE})`—The syncobj's
    /// fence now, as a sync_file (a timeline's newest point, the whole chain). Later changes
    /// to the syncobj do not affect the file.
    ///
    /// # Errors
    /// [`Error::Unsubmitted`] (`EINVAL`) when the syncobj has no fence; [`Error::Sys`] with
    /// the kernel's errno.
    pub fn export_sync_file(&self) -> Result<SyncFileFd> {
        let arg = DrmSyncobjHandle {
            handle: self.handle,
            flags: uapi::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
            ..DrmSyncobjHandle::default()
        };
        uapi::syncobj_handle_to_fd(self.device.as_fd(), arg)
            .map(SyncFileFd::from_kernel)
            .map_err(fence_needed("ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD)"))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, {handle, fd: file, IMPORT_SYNC_FILE})`—Makes the
    /// sync_file's fence this syncobj's fence, replacing any (a timeline loses its points).
    ///
    /// The import goes into this existing handle, as the kernel requires: it looks the handle
    /// up and answers `ENOENT` for one that does not exist (such as 0).
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn import_sync_file(&self, file: &SyncFileFd) -> Result<()> {
        let arg = DrmSyncobjHandle {
            handle: self.handle,
            flags: uapi::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            fd: file.as_raw_fd(),
            ..DrmSyncobjHandle::default()
        };
        uapi::syncobj_fd_to_handle(self.device.as_fd(), arg)
            .map(drop)
            .map_err(kernel("ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)"))
    }

    /// The fence of timeline point `point` as a sync_file (point 0: as
    /// [`export_sync_file`](Self::export_sync_file)): transferred to a temporary binary
    /// syncobj, exported from it, the temporary destroyed. A point already signalled whose
    /// node the timeline has dropped exports as a signalled stub.
    ///
    /// # Errors
    /// [`Error::Unsubmitted`] (`EINVAL`) when the point has not been submitted;
    /// [`Error::Sys`] with the kernel's errno.
    pub fn export_point(&self, point: u64) -> Result<SyncFileFd> {
        if point == 0 {
            return self.export_sync_file();
        }
        let binary = self.device.create_syncobj()?;
        self.transfer_to(point, &binary, 0, false)?;
        binary.export_sync_file()
    }

    /// Adds timeline point `point` with the sync_file's fence (point 0: as
    /// [`import_sync_file`](Self::import_sync_file)): imported into a temporary binary
    /// syncobj, transferred from it, the temporary destroyed.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn import_point(&self, point: u64, file: &SyncFileFd) -> Result<()> {
        if point == 0 {
            return self.import_sync_file(file);
        }
        let binary = self.device.create_syncobj()?;
        binary.import_sync_file(file)?;
        binary.transfer_to(0, self, point, false)
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_TRANSFER, {src: self@src_point, dst: dst@dst_point})`—Gives
    /// `dst` the fence of this syncobj's point `src_point` (0: its fence itself): as its fence
    /// when `dst_point` is 0, else as a new point `dst_point`. With `wait_for_submit` the
    /// kernel first waits (at most 5 seconds) for the source point to be submitted.
    ///
    /// # Errors
    /// [`Error::ForeignSyncobj`] before the call; [`Error::Unsubmitted`] (`EINVAL`) when the
    /// source point has no fence; [`Error::TimedOut`] (`ETIME`) when `wait_for_submit` ran
    /// out; [`Error::Unsupported`] (`EOPNOTSUPP`) from a driver without timeline syncobjs;
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_TRANSFER")]
    pub fn transfer_to(
        &self,
        src_point: u64,
        dst: &Syncobj,
        dst_point: u64,
        wait_for_submit: bool,
    ) -> Result<()> {
        if !dst.device.same_file(&self.device) {
            return Err(Error::ForeignSyncobj);
        }
        let arg = DrmSyncobjTransfer {
            src_handle: self.handle,
            dst_handle: dst.handle,
            src_point,
            dst_point,
            flags: if wait_for_submit {
                uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
            } else {
                0
            },
            pad: 0,
        };
        restart(|| uapi::syncobj_transfer(self.device.as_fd(), arg))
            .map_err(fence_needed("ioctl(DRM_IOCTL_SYNCOBJ_TRANSFER)"))
    }

    /// Waits for point `point` (0: a binary syncobj's fence) with `flags`; `None` waits
    /// forever. Point 0 without [`WaitFlags::AVAILABLE`] uses `DRM_IOCTL_SYNCOBJ_WAIT`, which
    /// drivers with binary syncobjs only have too; any other uses the timeline wait.
    ///
    /// # Errors
    /// As [`DrmDevice::timeline_wait`].
    pub fn wait(&self, point: u64, flags: WaitFlags, timeout: Option<Duration>) -> Result<()> {
        if point == 0 && !flags.contains(WaitFlags::AVAILABLE) {
            self.device.wait(&[self], flags, timeout).map(drop)
        } else {
            self.device
                .timeline_wait(&[(self, point)], flags, timeout)
                .map(drop)
        }
    }

    /// `DRM_IOCTL_SYNCOBJ_RESET` of this syncobj alone.
    ///
    /// # Errors
    /// As [`DrmDevice::reset`].
    pub fn reset(&self) -> Result<()> {
        self.device.reset(&[self])
    }

    /// `DRM_IOCTL_SYNCOBJ_SIGNAL` of this syncobj alone.
    ///
    /// # Errors
    /// As [`DrmDevice::signal`].
    pub fn signal(&self) -> Result<()> {
        self.device.signal(&[self])
    }

    /// `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL` of one point of this syncobj.
    ///
    /// # Errors
    /// As [`DrmDevice::timeline_signal`].
    pub fn timeline_signal(&self, point: u64) -> Result<()> {
        self.device.timeline_signal(&[(self, point)])
    }

    /// The last signalled point (`DRM_IOCTL_SYNCOBJ_QUERY`, see [`DrmDevice::query`]).
    ///
    /// # Errors
    /// As [`DrmDevice::query`].
    pub fn query(&self) -> Result<u64> {
        self.query_one(false)
    }

    /// The last submitted point (`DRM_IOCTL_SYNCOBJ_QUERY` with `LAST_SUBMITTED`).
    ///
    /// # Errors
    /// As [`DrmDevice::query`].
    pub fn last_submitted(&self) -> Result<u64> {
        self.query_one(true)
    }

    fn query_one(&self, last_submitted: bool) -> Result<u64> {
        let points = self.device.query(&[self], last_submitted)?;
        Ok(points.first().copied().unwrap_or(0))
    }

    /// `ioctl(DRM_IOCTL_SYNCOBJ_EVENTFD, {handle, flags, point, fd})`—Has the kernel add 1 to
    /// `eventfd`'s counter once point `point` (0: the binary fence) reaches `event`, which may
    /// be at once. The registration holds its own reference to the eventfd and lasts until
    /// then (or until the syncobj is freed).
    ///
    /// # Errors
    /// [`Error::Unsupported`] on kernels before 6.6 (the call is unknown there, `EINVAL`) and
    /// from drivers without timeline syncobjs (`EOPNOTSUPP`); [`Error::Sys`] with the
    /// kernel's errno (`EINVAL` when `eventfd` is not an eventfd).
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_EVENTFD")]
    pub fn register_eventfd(
        &self,
        point: u64,
        event: PointEvent,
        eventfd: impl AsFd,
    ) -> Result<()> {
        let call = "ioctl(DRM_IOCTL_SYNCOBJ_EVENTFD)";
        let dev = self.device.as_fd();
        let fd = eventfd.as_fd().as_raw_fd();
        match uapi::syncobj_eventfd(dev, self.handle, event.flags(), point, fd, 0) {
            Ok(()) => Ok(()),
            // An unknown DRM ioctl and an fd that is not an eventfd both answer EINVAL. A
            // handle that does not exist tells them apart: a kernel with the call looks it
            // up first and answers ENOENT.
            Err(Errno::INVAL) => match uapi::syncobj_eventfd(dev, 0, 0, 0, -1, 0) {
                Err(Errno::NOENT) => Err(Error::sys(call)(Errno::INVAL)),
                _ => Err(Error::Unsupported {
                    call,
                    errno: Errno::INVAL,
                }),
            },
            Err(errno) => Err(kernel(call)(errno)),
        }
    }

    /// A new eventfd (close-on-exec, non-blocking) registered on point `point` as
    /// [`register_eventfd`](Self::register_eventfd) does: it polls readable once the point
    /// reaches `event`.
    ///
    /// # Errors
    /// [`Error::Sys`] from `eventfd`; as [`register_eventfd`](Self::register_eventfd).
    pub fn eventfd(&self, point: u64, event: PointEvent) -> Result<OwnedFd> {
        let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(Error::sys("eventfd"))?;
        self.register_eventfd(point, event, &efd)?;
        Ok(efd)
    }

    /// Library fence → kernel point: once `fence` signals, CPU-signals timeline point `point`
    /// (`DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`; point 0: `DRM_IOCTL_SYNCOBJ_SIGNAL`), waking every
    /// waiter on it, in this process or another. A fence already signalled signals the point
    /// before this returns.
    ///
    /// The signal runs in the fence's signalling thread, inside its callbacks, through a
    /// handle of its own (so this `Syncobj` may be dropped meanwhile). The uAPI cannot carry
    /// an error into a point: a fence that failed signals its point all the same (waiters must
    /// not hang), and the failure is logged at `warn` with its errno. A signal the kernel
    /// refuses is logged at `error`.
    ///
    /// # Errors
    /// As [`try_clone`](Self::try_clone), for the handle the callback keeps.
    pub fn signal_point_when(&self, point: u64, fence: &Fence) -> Result<()> {
        let target = self.try_clone()?;
        let signal = move |fence: &Fence| {
            if let Some(errno) = fence.error() {
                tracing::warn!(
                    %errno,
                    point,
                    "dmabuf-linux: a fence failed; its timeline point is signalled without the \
                     error (a syncobj point cannot carry one)"
                );
            }
            let signalled = if point == 0 {
                target.signal()
            } else {
                target.timeline_signal(point)
            };
            if let Err(e) = signalled {
                tracing::error!(error = %e, point, "dmabuf-linux: signalling a syncobj point failed");
            }
        };
        match fence.add_callback(signal) {
            // Dropping the handle leaves the callback queued.
            Ok(_handle) => {}
            Err(already) => already.into_inner()(fence),
        }
        Ok(())
    }

    /// Kernel point → library fence: a fence that signals once point `point` (0: the binary
    /// fence) reaches `event`, through an eventfd the `reactor` watches (no thread of its
    /// own). For [`PointEvent::Signaled`] the fence carries the status, error and latest
    /// signal time of the point's sync file, read when the reactor sees the eventfd (a point
    /// whose fence is gone by then, reset meanwhile, signals without them); for
    /// [`PointEvent::Submitted`] it signals plainly.
    ///
    /// The fence has a context of its own, named after the device's driver and
    /// `syncobj <handle>@<point>`.
    ///
    /// # Errors
    /// As [`eventfd`](Self::eventfd), [`try_clone`](Self::try_clone) and
    /// [`Reactor::watch`].
    pub fn point_to_fence(
        &self,
        point: u64,
        event: PointEvent,
        reactor: &Reactor,
    ) -> Result<Fence> {
        let watch = PointWatch {
            eventfd: self.eventfd(point, event)?,
            syncobj: self.try_clone()?,
            point,
            event,
        };
        let timeline = format!("syncobj {}@{point}", self.handle);
        let driver = self.device.driver().name.clone();
        reactor
            .bridge(watch, &driver, &timeline, PointWatch::status)
            .map_err(|(e, _watch)| e)
    }
}

impl Drop for Syncobj {
    fn drop(&mut self) {
        if let Err(errno) = uapi::syncobj_destroy(self.device.as_fd(), self.handle, 0) {
            tracing::warn!(%errno, handle = self.handle, "dmabuf-linux: DRM_IOCTL_SYNCOBJ_DESTROY failed");
        }
    }
}

/// An eventfd registered on a point, with a handle to read the point's status through.
struct PointWatch {
    eventfd: OwnedFd,
    syncobj: Syncobj,
    point: u64,
    event: PointEvent,
}

impl PointWatch {
    fn status(&self) -> (FenceStatus, Option<MonotonicTime>) {
        if self.event == PointEvent::Submitted {
            return (FenceStatus::Signaled, None);
        }
        match self.syncobj.export_point(self.point).and_then(|f| f.info()) {
            Ok(info) => {
                let at = info.fences.iter().filter_map(|f| f.timestamp).max();
                match info.status {
                    FenceStatus::Failed(e) => (FenceStatus::Failed(e), at),
                    _ => (FenceStatus::Signaled, at),
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, point = self.point, "dmabuf-linux: a signalled point's fence could not be read");
                (FenceStatus::Signaled, None)
            }
        }
    }
}

impl AsFd for PointWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.eventfd.as_fd()
    }
}

/// An opaque syncobj file (`anon_inode:syncobj_file`): a syncobj to pass to another process
/// or import into another device file ([`DrmDevice::import_syncobj`]). It holds a reference
/// to the syncobj, which lives while any handle or file does.
#[derive(Debug)]
pub struct SyncobjFd(OwnedFd);

impl SyncobjFd {
    /// Takes `fd` if it is a syncobj file, as `/proc/self/fd` names it.
    ///
    /// # Errors
    /// The error and `fd`, unchanged: [`Error::NotSyncobjFile`] (`EINVAL`, what the kernel's
    /// import answers) for another file; [`Error::Sys`] when `/proc/self/fd` cannot be read.
    pub fn from_fd(fd: OwnedFd) -> std::result::Result<SyncobjFd, (Error, OwnedFd)> {
        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match rustix::fs::readlink(link.as_str(), Vec::new()) {
            Ok(target) if target.as_bytes() == b"anon_inode:syncobj_file" => Ok(SyncobjFd(fd)),
            Ok(_) => Err((Error::NotSyncobjFile, fd)),
            Err(errno) => Err((Error::sys("readlink(/proc/self/fd/<fd>)")(errno), fd)),
        }
    }
}

crate::owned_fd_newtype!(SyncobjFd);
