//! Kernel sync files: a fence as a file descriptor (kernel: `struct sync_file`).
//!
//! A [`SyncFileFd`] owns a descriptor checked to be a sync_file. It merges with another
//! (`SYNC_IOC_MERGE`), describes its leaf fences (`SYNC_IOC_FILE_INFO`, asked twice: once for
//! the count, once to fill), forwards deadlines (`SYNC_IOC_SET_DEADLINE`), and waits through
//! `poll(POLLIN)`, which the kernel raises once the fence has signalled.
//!
//! Its info is the in-process model's own [`SyncFileInfo`] and [`FenceInfo`], and statuses are
//! [`FenceStatus`]: a kernel file and a library one describe themselves in the same terms, so
//! they compare directly.
//!
//! Kernel: `drivers/dma-buf/sync_file.c`, uAPI `include/uapi/linux/sync_file.h`.

use crate::error::{Error, Result};
use crate::{poll, uapi};
pub use dmabuf::FenceStatus;
use dmabuf::MonotonicTime;
pub use dmabuf::sync_file::{FenceInfo, SyncFileInfo};
use rustix::event::PollFlags;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use std::time::Duration;

/// Size of the uAPI's name fields, NUL included: names hold at most `NAME_LEN - 1` bytes.
pub const NAME_LEN: usize = 32;

/// A leaf's info from the uAPI struct.
fn fence_info(raw: &uapi::SyncFenceInfo) -> FenceInfo {
    FenceInfo {
        timeline: c_name(&raw.obj_name),
        driver: c_name(&raw.driver_name),
        status: FenceStatus::from_raw(raw.status),
        timestamp: (raw.timestamp_ns != 0).then(|| MonotonicTime::from_nanos(raw.timestamp_ns)),
    }
}

/// An owned kernel sync_file descriptor.
#[derive(Debug)]
pub struct SyncFileFd(OwnedFd);

impl SyncFileFd {
    /// `ioctl(fd, SYNC_IOC_FILE_INFO, {num_fences: 0})`—Takes `fd` if it is a sync_file.
    ///
    /// The probe asks only for the leaf count, which every sync_file answers and other files
    /// refuse. The errno of a refusal is the one every sync_file call issued on that
    /// descriptor gets (its own file's answer: `ENOTTY` from most, `EINVAL` from some
    /// devices). The same descriptor given as the *other* file of a call gets what that call
    /// answers instead: `ENOENT` as the second file of a merge, `EINVAL` as the sync file
    /// of [`DmaBufFd::import_sync_file`](crate::DmaBufFd::import_sync_file); both calls take
    /// any descriptor there and hand it to the kernel, so they give those errnos themselves.
    ///
    /// # Errors
    /// The error and `fd`, unchanged: [`Error::NotSyncFile`] when the probe is refused with
    /// `ENOTTY` or `EINVAL`; [`Error::Sys`] otherwise (e.g. `EBADF` for an `O_PATH`
    /// descriptor).
    ///
    /// # References
    ///  - [sync_file](https://docs.kernel.org/driver-api/sync_file.html)
    pub fn from_fd(fd: OwnedFd) -> std::result::Result<SyncFileFd, (Error, OwnedFd)> {
        match uapi::sync_file_info_count(fd.as_fd()) {
            Ok(_) => Ok(SyncFileFd(fd)),
            Err(errno @ (Errno::NOTTY | Errno::INVAL)) => Err((Error::NotSyncFile { errno }, fd)),
            Err(errno) => Err((Error::sys("ioctl(SYNC_IOC_FILE_INFO)")(errno), fd)),
        }
    }

    /// Wraps a descriptor the kernel just returned as a sync_file.
    pub(crate) fn from_kernel(fd: OwnedFd) -> SyncFileFd {
        SyncFileFd(fd)
    }

    /// `ioctl(self, SYNC_IOC_MERGE, {name, fd2: other})`—A new sync_file signalled when both
    /// are.
    ///
    /// The kernel flattens both into their leaves, keeps the latest leaf per context and drops
    /// leaves already signalled (all signalled: one signalled stub). Both inputs stay valid.
    /// The new descriptor is close-on-exec.
    ///
    /// `name` never fails the call: as the kernel keeps a name, it ends at its first NUL and
    /// after at most 31 bytes, here cut on a character boundary so that the name the file
    /// reports is valid UTF-8 and the one [`dmabuf::SyncFile::merge`] gives for the same
    /// input. An empty name leaves the kernel to name the file after its fence.
    ///
    /// `other` is any descriptor, usually a [`SyncFileFd`]: the kernel checks it is a
    /// sync_file.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno: `ENOENT` when `other` is not a sync_file.
    ///
    /// # References
    ///  - [`sync_file.h`](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/sync_file.h)
    #[doc(alias = "SYNC_IOC_MERGE")]
    pub fn merge(&self, name: &str, other: impl AsFd) -> Result<SyncFileFd> {
        let fd2 = other.as_fd().as_raw_fd();
        uapi::sync_merge(self.0.as_fd(), name_field(name), fd2, 0, 0)
            .map(SyncFileFd)
            .map_err(Error::sys("ioctl(SYNC_IOC_MERGE)"))
    }

    /// `ioctl(self, SYNC_IOC_FILE_INFO)`, twice—The name, overall status and every leaf.
    ///
    /// The first call asks for the count, the second fills an array that size.
    ///
    /// A leaf that has signalled keeps its driver and timeline names on Linux 6.12 (the fence
    /// keeps its driver's ops). Mainline kernels from 2026 that detach a signalled fence's ops
    /// report fixed placeholder names for it instead.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "SYNC_IOC_FILE_INFO")]
    pub fn info(&self) -> Result<SyncFileInfo> {
        let call = "ioctl(SYNC_IOC_FILE_INFO)";
        let head = uapi::sync_file_info_count(self.0.as_fd()).map_err(Error::sys(call))?;
        let mut leaves = vec![uapi::SyncFenceInfo::ZERO; head.num_fences as usize];
        let full = if leaves.is_empty() {
            head
        } else {
            uapi::sync_file_info_fill(self.0.as_fd(), 0, 0, &mut leaves)
                .map_err(Error::sys(call))?
        };
        leaves.truncate(full.num_fences as usize);
        Ok(SyncFileInfo {
            name: c_name(&full.name),
            status: FenceStatus::from_raw(full.status),
            fences: leaves.iter().map(fence_info).collect(),
        })
    }

    /// `ioctl(self, SYNC_IOC_FILE_INFO, {num_fences: 0})`—The overall status only.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn status(&self) -> Result<FenceStatus> {
        uapi::sync_file_info_count(self.0.as_fd())
            .map(|i| FenceStatus::from_raw(i.status))
            .map_err(Error::sys("ioctl(SYNC_IOC_FILE_INFO)"))
    }

    /// `ioctl(self, SYNC_IOC_SET_DEADLINE, {deadline_ns})`—Hints that the fence is wanted by
    /// `deadline_ns` on `CLOCK_MONOTONIC`.
    ///
    /// Drivers may raise clocks to meet it; most ignore it. Linux before 6.4 lacks the ioctl
    /// and answers `ENOTTY`.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "SYNC_IOC_SET_DEADLINE")]
    pub fn set_deadline(&self, deadline_ns: u64) -> Result<()> {
        uapi::sync_set_deadline(self.0.as_fd(), deadline_ns, 0)
            .map_err(Error::sys("ioctl(SYNC_IOC_SET_DEADLINE)"))
    }

    /// `poll(self, POLLIN, timeout)`—Waits until the fence signals; `None` waits forever.
    ///
    /// Restarts on `EINTR` with the time left. A fence that failed still signals: read
    /// [`status`](Self::status) for the error.
    ///
    /// # Errors
    /// [`Error::TimedOut`] (`ETIME`) when the time runs out; [`Error::Sys`] from `poll`.
    ///
    /// # References
    ///  - [Linux `poll`](https://man7.org/linux/man-pages/man2/poll.2.html)
    pub fn wait(&self, timeout: Option<Duration>) -> Result<()> {
        poll::wait_one(self.0.as_fd(), PollFlags::IN, timeout)
    }

    /// `poll(self, POLLIN, 0)`—Whether the fence has signalled, without waiting.
    ///
    /// # Errors
    /// [`Error::Sys`] from `poll`.
    pub fn is_signaled(&self) -> Result<bool> {
        poll::poll_one(self.0.as_fd(), PollFlags::IN, Some(Duration::ZERO))
            .map(|r| r.contains(PollFlags::IN))
    }
}

crate::owned_fd_newtype!(SyncFileFd);

/// `name` in the uAPI's 32-byte, NUL-terminated field: up to its first NUL, at most
/// `NAME_LEN - 1` bytes, cut on a character boundary.
fn name_field(name: &str) -> [u8; NAME_LEN] {
    let name = name.find('\0').map_or(name, |nul| &name[..nul]);
    let name = &name[..name.floor_char_boundary(NAME_LEN - 1)];
    let mut field = [0u8; NAME_LEN];
    field[..name.len()].copy_from_slice(name.as_bytes());
    field
}

/// The text of a NUL-terminated uAPI name field (lossy: the kernel does not promise UTF-8).
pub(crate) fn c_name(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_names_are_cut_to_fit_never_refused() {
        let f = name_field(&"a".repeat(31));
        assert_eq!(c_name(&f), "a".repeat(31));
        assert_eq!(f[31], 0);
        assert_eq!(c_name(&name_field(&"a".repeat(100))), "a".repeat(31));
        assert_eq!(c_name(&name_field("left\0right")), "left");
        assert_eq!(name_field("\0hidden"), [0; NAME_LEN]);
        // 31 bytes would end inside the 16th two-byte character: it goes whole.
        assert_eq!(c_name(&name_field(&"é".repeat(20))), "é".repeat(15));
        // The library's merge keeps the same name.
        let (_issuer, fence) = dmabuf::FenceContext::new("t", "t").next_fence();
        let file = dmabuf::SyncFile::new(fence);
        for name in [
            "a",
            "left\0right",
            &"é".repeat(20),
            &"x".repeat(40),
            "ab€€€€€€€€€€€",
        ] {
            let library = dmabuf::SyncFile::merge(name, &file, &file);
            assert_eq!(c_name(&name_field(name)), library.name(), "{name:?}");
        }
    }

    #[test]
    fn c_name_stops_at_nul_or_end() {
        assert_eq!(c_name(b"stub\0junk"), "stub");
        assert_eq!(c_name(b"full"), "full");
    }

    #[test]
    fn status_round_trips_the_kernel_integers() {
        use dmabuf::Errno as LibErrno;
        for s in [
            FenceStatus::Pending,
            FenceStatus::Signaled,
            FenceStatus::Failed(LibErrno::ENOENT),
        ] {
            assert_eq!(FenceStatus::from_raw(s.to_raw()), s);
        }
        assert_eq!(
            FenceStatus::from_raw(i32::MIN),
            FenceStatus::Failed(LibErrno::EINVAL)
        );
        assert_eq!(
            FenceStatus::from_raw(-5000),
            FenceStatus::Failed(LibErrno::EINVAL)
        );
    }
}
