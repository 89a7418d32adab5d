//! The dma-buf and sync_file calls exactly as the kernel takes them: every field is the
//! caller's, nothing is checked before the call, nothing is restarted, and an error is the
//! kernel's own answer ([`Error::Sys`]).
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
//! Kernel: `drivers/dma-buf/dma-buf.c`, `drivers/dma-buf/sync_file.c`; uAPI
//! `include/uapi/linux/dma-buf.h`, `sync_file.h`.

use crate::error::{Error, Result};
use crate::sync_file::SyncFileFd;
use crate::uapi;
use rustix::fd::{AsFd, BorrowedFd, RawFd};
use std::ffi::CStr;

pub use crate::uapi::SyncFenceInfo;
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
