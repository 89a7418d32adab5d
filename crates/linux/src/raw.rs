//! The dma-buf, sync_file and DRM syncobj calls exactly as the kernel takes them: every field
//! is the caller's, nothing is checked before the call, nothing is restarted, and an error is
//! the kernel's own answer ([`Error::Sys`]).
//!
//! The typed API ([`DmaBufFd`](crate::DmaBufFd), [`SyncFileFd`]) fixes what the uAPI leaves
//! open (flags from [`Access`](crate::Access), zero padding, names cut to fit) and refuses
//! some input before asking. These functions are for what it cannot express: a padding or
//! flags field the kernel does not accept yet, a descriptor number that is closed or of
//! another kind where the uAPI takes a number, a seek a dma-buf does not support. They exist
//! to see the kernel's own validation, and for a field a newer kernel may define.
//!
//! A call goes to whatever file the descriptor is. Files without these ioctls refuse them
//! (`ENOTTY` from most), but a device whose driver reads only a command's number (a
//! dma-heap, a DRM device) may run a command of its own under it, with its side effects:
//! issue these on the files they are for, or on files that are not devices.
//!
//! The descriptor a call is issued on is borrowed, so it is open. Descriptors the uAPI
//! passes as numbers inside an argument ([`SyncMergeData::fd2`], the sync file of
//! [`dma_buf_import_sync_file`]) are plain integers here, as in C: the kernel looks them up
//! and refuses what is not an open sync_file. Descriptors the kernel returns come back owned.
//!
//! The syncobj calls take a [`DrmDevice`] (a file checked to be a DRM device when opened),
//! since their arguments carry the addresses of handle and point arrays. Handles are plain
//! numbers: one made here ([`syncobj_create`], [`syncobj_fd_to_handle`]) is the caller's to
//! destroy ([`syncobj_destroy`]), or it lives as long as the device file. The arrays are
//! slices, so the kernel reads and writes only within them: `count_handles` is the handles'
//! length, and a points slice shorter than it is refused before the call
//! ([`Error::OutOfRange`]).
//!
//! Kernel: `drivers/dma-buf/dma-buf.c`, `drivers/dma-buf/sync_file.c`,
//! `drivers/gpu/drm/drm_syncobj.c`; uAPI `include/uapi/linux/dma-buf.h`, `sync_file.h`,
//! `include/uapi/drm/drm.h`.

use crate::drm::DrmDevice;
use crate::error::{Error, Result};
use crate::sync_file::SyncFileFd;
use crate::uapi;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::ffi::CStr;

pub use crate::uapi::{
    DrmSyncobjHandle as SyncobjHandle, DrmSyncobjTransfer as SyncobjTransfer, SyncFenceInfo,
    SyncobjWait,
};
pub use rustix::fs::SeekFrom;

/// `DMA_BUF_SYNC_READ`.
pub const DMA_BUF_SYNC_READ: u64 = uapi::DMA_BUF_SYNC_READ;
/// `DMA_BUF_SYNC_WRITE`.
pub const DMA_BUF_SYNC_WRITE: u64 = uapi::DMA_BUF_SYNC_WRITE;
/// `DMA_BUF_SYNC_END`: ends the bracket a START (no END bit) opened.
pub const DMA_BUF_SYNC_END: u64 = uapi::DMA_BUF_SYNC_END;

/// `ioctl(fd, DMA_BUF_IOCTL_SYNC, {flags})`, once: no check of `flags`, no restart on
/// `EINTR` or `EAGAIN`.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for flags outside READ | WRITE | END or
/// with neither READ nor WRITE; `ENOTTY` from a file that is not a dma-buf).
#[doc(alias = "DMA_BUF_IOCTL_SYNC")]
pub fn dma_buf_sync(fd: BorrowedFd<'_>, flags: u64) -> Result<()> {
    uapi::dma_buf_sync(fd, flags).map_err(Error::sys("ioctl(DMA_BUF_IOCTL_SYNC)"))
}

/// `ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, {flags})`—The sync_file of the fences `flags`
/// would wait for.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for flags outside READ | WRITE or with
/// neither; `ENOTTY` from a file that is not a dma-buf).
#[doc(alias = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE")]
pub fn dma_buf_export_sync_file(fd: BorrowedFd<'_>, flags: u32) -> Result<SyncFileFd> {
    uapi::dma_buf_export_sync_file(fd, flags)
        .map(SyncFileFd::from_kernel)
        .map_err(Error::sys("ioctl(DMA_BUF_IOCTL_EXPORT_SYNC_FILE)"))
}

/// `ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, {flags, fd: sync_file})`—Adds the fences of
/// the sync_file numbered `sync_file` to the buffer's.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for flags outside READ | WRITE or with
/// neither, and for a `sync_file` number that is not an open sync_file; `ENOTTY` from a file
/// that is not a dma-buf).
#[doc(alias = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE")]
pub fn dma_buf_import_sync_file(fd: BorrowedFd<'_>, flags: u32, sync_file: RawFd) -> Result<()> {
    uapi::dma_buf_import_sync_file(fd, flags, sync_file)
        .map_err(Error::sys("ioctl(DMA_BUF_IOCTL_IMPORT_SYNC_FILE)"))
}

/// `ioctl(fd, DMA_BUF_SET_NAME_B, name)`, with a name of any length.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for a name of 32 bytes or more before its
/// NUL; `ENOTTY` from a file that is not a dma-buf).
#[doc(alias = "DMA_BUF_SET_NAME")]
pub fn dma_buf_set_name(fd: BorrowedFd<'_>, name: &CStr) -> Result<()> {
    uapi::dma_buf_set_name(fd, name).map_err(Error::sys("ioctl(DMA_BUF_SET_NAME)"))
}

/// `lseek(fd, offset, whence)`, any of them.
///
/// A dma-buf accepts only `SEEK_END` and `SEEK_SET`, both with offset 0 (the size, and back).
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` from a dma-buf for any other seek).
pub fn lseek(fd: BorrowedFd<'_>, pos: SeekFrom) -> Result<u64> {
    rustix::fs::seek(fd, pos).map_err(Error::sys("lseek"))
}

/// `struct sync_merge_data`, without its output field `fence` (the new descriptor is what
/// [`sync_merge`] returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMergeData {
    /// `name`: the new file's name. The kernel ends it at its first NUL and at byte 31
    /// whatever that byte holds; an empty name leaves the file to be named after its fence.
    pub name: [u8; 32],
    /// `fd2`: the number of the second sync_file, any number: the kernel looks it up.
    pub fd2: RawFd,
    /// `flags`: none are defined; the kernel refuses any.
    pub flags: u32,
    /// `pad`: the kernel refuses anything but zero.
    pub pad: u32,
}

impl SyncMergeData {
    /// A merge with sync_file number `fd2`, unnamed, flags and padding zero.
    pub fn new(fd2: RawFd) -> SyncMergeData {
        SyncMergeData {
            name: [0; 32],
            fd2,
            flags: 0,
            pad: 0,
        }
    }
}

/// `ioctl(fd, SYNC_IOC_MERGE, data)`—The merged sync_file (close-on-exec).
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for non-zero `flags` or `pad`, `ENOENT`
/// when `fd2` is not an open sync_file; the answer of `fd`'s own file when it is not a
/// sync_file, `ENOTTY` from most).
#[doc(alias = "SYNC_IOC_MERGE")]
pub fn sync_merge(fd: BorrowedFd<'_>, data: &SyncMergeData) -> Result<SyncFileFd> {
    uapi::sync_merge(fd, data.name, data.fd2, data.flags, data.pad)
        .map(SyncFileFd::from_kernel)
        .map_err(Error::sys("ioctl(SYNC_IOC_MERGE)"))
}

/// `struct sync_file_info` as the kernel wrote it back, without its `sync_fence_info`
/// pointer (the entries are in the slice given to [`sync_file_info_fill`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncFileInfo {
    /// `name`: the file's name, NUL-terminated.
    pub name: [u8; 32],
    /// `status`: with no entries asked for, the file's fence's (1 signalled, 0 pending, a
    /// negative errno); filled, 1 unless a leaf is pending (0) or failed (its errno), the
    /// first such leaf's.
    pub status: i32,
    /// `flags`, as sent.
    pub flags: u32,
    /// `num_fences`: the number of leaves.
    pub num_fences: u32,
    /// `pad`, as sent.
    pub pad: u32,
}

impl From<uapi::SyncFileInfo> for SyncFileInfo {
    fn from(i: uapi::SyncFileInfo) -> SyncFileInfo {
        SyncFileInfo {
            name: i.name,
            status: i.status,
            flags: i.flags,
            num_fences: i.num_fences,
            pad: i.pad,
        }
    }
}

/// `ioctl(fd, SYNC_IOC_FILE_INFO, {flags, pad, num_fences: 0})`—The name, the file's
/// status and the number of leaves, of any file.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for non-zero `flags` or `pad`; the answer
/// of `fd`'s own file when it is not a sync_file, `ENOTTY` from most).
#[doc(alias = "SYNC_IOC_FILE_INFO")]
pub fn sync_file_info(fd: BorrowedFd<'_>, flags: u32, pad: u32) -> Result<SyncFileInfo> {
    uapi::sync_file_info_fill(fd, flags, pad, &mut [])
        .map(SyncFileInfo::from)
        .map_err(Error::sys("ioctl(SYNC_IOC_FILE_INFO)"))
}

/// `ioctl(file, SYNC_IOC_FILE_INFO, {flags, pad, num_fences: leaves.len(), sync_fence_info:
/// leaves})`—Fills `leaves` with the file's leaf fences (an empty slice asks only for the
/// count, as [`sync_file_info`]).
///
/// Only on a [`SyncFileFd`]: the argument carries the address of `leaves`, which only the
/// sync_file's own handler is known to fill within `num_fences`.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for non-zero `flags` or `pad`, and for
/// fewer entries than the file has leaves).
pub fn sync_file_info_fill(
    file: &SyncFileFd,
    flags: u32,
    pad: u32,
    leaves: &mut [SyncFenceInfo],
) -> Result<SyncFileInfo> {
    uapi::sync_file_info_fill(file.as_fd(), flags, pad, leaves)
        .map(SyncFileInfo::from)
        .map_err(Error::sys("ioctl(SYNC_IOC_FILE_INFO)"))
}

/// `ioctl(fd, SYNC_IOC_SET_DEADLINE, {deadline_ns, pad})`.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for non-zero `pad`; `ENOTTY` from Linux
/// before 6.4 and from most files that are not sync_files).
#[doc(alias = "SYNC_IOC_SET_DEADLINE")]
pub fn sync_set_deadline(fd: BorrowedFd<'_>, deadline_ns: u64, pad: u64) -> Result<()> {
    uapi::sync_set_deadline(fd, deadline_ns, pad)
        .map_err(Error::sys("ioctl(SYNC_IOC_SET_DEADLINE)"))
}

/// `DRM_SYNCOBJ_CREATE_SIGNALED`.
pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = uapi::DRM_SYNCOBJ_CREATE_SIGNALED;
/// `DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE`.
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 =
    uapi::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
/// `DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE`: import into point [`SyncobjHandle::point`]
/// (kernels newer than 6.12; older ones refuse the flag).
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE: u32 = 1 << 1;
/// `DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE`.
pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 =
    uapi::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
/// `DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE`: export point [`SyncobjHandle::point`]
/// (kernels newer than 6.12; older ones refuse the flag).
pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE: u32 = 1 << 1;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL`.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 =
    uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE`.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE: u32 = uapi::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE;
/// `DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED`.
pub const DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED: u32 =
    uapi::DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED;

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_CREATE, {flags})`—A new handle, the caller's to destroy.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for flags other than
/// [`DRM_SYNCOBJ_CREATE_SIGNALED`], `EOPNOTSUPP` from a driver without syncobjs).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_CREATE")]
pub fn syncobj_create(dev: &DrmDevice, flags: u32) -> Result<u32> {
    uapi::syncobj_create(dev.as_fd(), flags).map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_CREATE)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_DESTROY, {handle, pad})`.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for a handle the file does not have, and
/// for a non-zero `pad`).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_DESTROY")]
pub fn syncobj_destroy(dev: &DrmDevice, handle: u32, pad: u32) -> Result<()> {
    uapi::syncobj_destroy(dev.as_fd(), handle, pad)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_DESTROY)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, arg)`—The new descriptor: an opaque syncobj
/// file, or a sync_file with the export flag (its `fd` field is ignored on the way in).
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for unknown flags, a non-zero `pad`, a
/// handle the file does not have, or a sync-file export of a syncobj without a fence).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD")]
pub fn syncobj_handle_to_fd(dev: &DrmDevice, arg: &SyncobjHandle) -> Result<OwnedFd> {
    uapi::syncobj_handle_to_fd(dev.as_fd(), *arg)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, arg)`—The handle: a new one (the caller's to
/// destroy) for an opaque syncobj file, `arg.handle` itself for a sync-file import. `arg.fd`
/// is any number: the kernel looks it up.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for unknown flags, a non-zero `pad`, or
/// an `fd` that is not an open file of the kind the flags ask for; `ENOENT` for a sync-file
/// import into a handle the file does not have).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE")]
pub fn syncobj_fd_to_handle(dev: &DrmDevice, arg: &SyncobjHandle) -> Result<u32> {
    uapi::syncobj_fd_to_handle(dev.as_fd(), *arg)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_WAIT, wait)`, once (its `points` are not passed: the binary
/// wait has none): the `first_signaled` the kernel wrote.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for unknown flags or a syncobj without a
/// fence and no `WAIT_FOR_SUBMIT`; `ENOENT` for a handle the file does not have; `ETIME`;
/// `EINTR` after a signal handler).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_WAIT")]
pub fn syncobj_wait(dev: &DrmDevice, wait: &SyncobjWait<'_>) -> Result<u32> {
    let wait = SyncobjWait {
        points: None,
        ..*wait
    };
    uapi::syncobj_wait(dev.as_fd(), false, &wait)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_WAIT)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, wait)`, once: as [`syncobj_wait`], with a
/// point per handle.
///
/// # Errors
/// [`Error::OutOfRange`] before the call for fewer points than handles; then as
/// [`syncobj_wait`] (`WAIT_AVAILABLE` allowed).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT")]
pub fn syncobj_timeline_wait(dev: &DrmDevice, wait: &SyncobjWait<'_>) -> Result<u32> {
    check_points(wait.handles, wait.points.map(<[u64]>::len))?;
    uapi::syncobj_wait(dev.as_fd(), true, wait)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_RESET, {handles, count_handles, pad})`.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for no handles or a non-zero `pad`,
/// `ENOENT` when any handle is missing, and then none is reset).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_RESET")]
pub fn syncobj_reset(dev: &DrmDevice, handles: &[u32], pad: u32) -> Result<()> {
    uapi::syncobj_array(dev.as_fd(), false, handles, pad)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_RESET)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_SIGNAL, {handles, count_handles, pad})`.
///
/// # Errors
/// As [`syncobj_reset`] (none is signalled when a handle is missing).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_SIGNAL")]
pub fn syncobj_signal(dev: &DrmDevice, handles: &[u32], pad: u32) -> Result<()> {
    uapi::syncobj_array(dev.as_fd(), true, handles, pad)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_SIGNAL)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, {handles, points, count_handles,
/// flags})`—`None` points: a null array, every point 0.
///
/// # Errors
/// [`Error::OutOfRange`] before the call for fewer points than handles; then [`Error::Sys`]
/// with the kernel's errno (`EINVAL` for no handles or non-zero flags, `ENOENT` for a missing
/// handle).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL")]
pub fn syncobj_timeline_signal(
    dev: &DrmDevice,
    handles: &[u32],
    points: Option<&[u64]>,
    flags: u32,
) -> Result<()> {
    check_points(handles, points.map(<[u64]>::len))?;
    uapi::syncobj_timeline_signal(dev.as_fd(), handles, points, flags)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_QUERY, {handles, points, count_handles, flags})`—The kernel
/// writes a point per handle into `points` (`None`: a null array, which it answers `EFAULT`
/// for once it has a point to write).
///
/// # Errors
/// [`Error::OutOfRange`] before the call for fewer points than handles; then [`Error::Sys`]
/// with the kernel's errno (`EINVAL` for no handles or flags other than `LAST_SUBMITTED`,
/// `ENOENT` for a missing handle).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_QUERY")]
pub fn syncobj_query(
    dev: &DrmDevice,
    handles: &[u32],
    points: Option<&mut [u64]>,
    flags: u32,
) -> Result<()> {
    check_points(handles, points.as_ref().map(|p| p.len()))?;
    uapi::syncobj_query(dev.as_fd(), handles, points, flags)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_QUERY)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_TRANSFER, arg)`, once (a `WAIT_FOR_SUBMIT` wait is not
/// restarted).
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for a non-zero `pad`, flags other than
/// `WAIT_FOR_SUBMIT`, or a source point without a fence; `ENOENT` for a missing handle).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_TRANSFER")]
pub fn syncobj_transfer(dev: &DrmDevice, arg: &SyncobjTransfer) -> Result<()> {
    uapi::syncobj_transfer(dev.as_fd(), *arg)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_TRANSFER)"))
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_EVENTFD, {handle, flags, point, fd, pad})`. `fd` is any
/// number: the kernel looks it up.
///
/// # Errors
/// [`Error::Sys`] with the kernel's errno (`EINVAL` for flags other than `WAIT_AVAILABLE`, a
/// non-zero `pad`, an `fd` that is not an eventfd, and from kernels before 6.6, which lack
/// the call; `ENOENT` for a missing handle).
#[doc(alias = "DRM_IOCTL_SYNCOBJ_EVENTFD")]
pub fn syncobj_eventfd(
    dev: &DrmDevice,
    handle: u32,
    flags: u32,
    point: u64,
    fd: RawFd,
    pad: u32,
) -> Result<()> {
    uapi::syncobj_eventfd(dev.as_fd(), handle, flags, point, fd, pad)
        .map_err(Error::sys("ioctl(DRM_IOCTL_SYNCOBJ_EVENTFD)"))
}

/// Refuses a points array shorter than the handles (the kernel would read or write past it).
fn check_points(handles: &[u32], points: Option<usize>) -> Result<()> {
    match points {
        Some(len) if len < handles.len() => Err(Error::OutOfRange {
            offset: 0,
            len: handles.len() as u64,
            size: len as u64,
        }),
        _ => Ok(()),
    }
}
