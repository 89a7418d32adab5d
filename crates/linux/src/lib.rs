//! # dmabuf-linux — real kernel dma-buf, sync_file and DRM syncobj file descriptors
//!
//! Programs that share buffers with GPUs, cameras, codecs and compositors hold kernel dma-buf,
//! sync_file and DRM syncobj descriptors. This crate wraps them, over [`rustix`], as owned
//! types that were checked to be what they claim, with every uAPI call of the three objects:
//!
//! * [`SyncFileFd`] — a kernel fence as a file (`sync_file`): `SYNC_IOC_MERGE`,
//!   `SYNC_IOC_FILE_INFO` (the two-call pattern, as owned [`SyncFileInfo`]),
//!   `SYNC_IOC_SET_DEADLINE`, and waits through `poll(POLLIN)`.
//! * [`DmaBufFd`] — a shared buffer (`dma_buf`): its size, CPU-access brackets
//!   (`DMA_BUF_IOCTL_SYNC`, as the guard [`CpuAccessGuard`]), a safe mapping
//!   ([`MappedDmaBuf`]), `DMA_BUF_SET_NAME`, sync_file export and import, readiness for reading
//!   or writing through `poll`, and its `/proc/self/fdinfo` entry ([`DmaBufFdInfo`]).
//! * [`Syncobj`] — a DRM sync object on a render node ([`DrmDevice`]), binary or timeline:
//!   create, destroy, export and import as an opaque file ([`SyncobjFd`]) or a sync_file,
//!   waits over many syncobjs and points ([`WaitFlags`]), reset, signal, timeline signal,
//!   query, transfer, and eventfd notification ([`PointEvent`]).
//! * [`send_fds`] / [`recv_fds`] — descriptors (syncobjs, dma-bufs, sync_files) passed to
//!   another process over a Unix socket (`SCM_RIGHTS`).
//! * [`DmaHeap`] — allocation from `/dev/dma_heap/<name>`.
//! * [`Udmabuf`] — a dma-buf made from a sealed memfd through `/dev/udmabuf`, with its
//!   preconditions checked before the ioctl.
//! * [`Vgem`] — the virtual GEM driver's buffers with pending kernel fences, for tests.
//! * Bridges to the in-process library: [`KernelBuffer`] makes a kernel dma-buf a library
//!   buffer that library importers attach and map (with its pending kernel fences brought
//!   into the library's implicit sync), and [`Udmabuf::create_from`] makes a library memfd
//!   buffer a kernel dma-buf over the same pages.
//! * [`Reactor`] — one epoll thread for every fd the library waits on, and the bridge from a
//!   kernel sync_file (or any pollable fd) to a library [`dmabuf::Fence`]
//!   ([`SyncFileFd::to_fence`]), carrying status, error and signal time.
//! * Syncobj bridges: a library fence signals a kernel timeline point when it signals
//!   ([`Syncobj::signal_point_when`]), and a kernel point signals a library fence through the
//!   reactor and an eventfd ([`Syncobj::point_to_fence`]).
//! * [`raw`] — the dma-buf, sync_file and syncobj calls with every field the caller's and no
//!   checks, to see the kernel's own answers to input the typed API does not let through.
//!
//! Statuses, infos and access modes are the in-process library's own types
//! ([`FenceStatus`], [`SyncFileInfo`], [`Access`]), so a kernel object and a library object
//! describe themselves in the same terms and compare with `==`.
//!
//! # Errors
//!
//! Every fallible call returns [`Error`], a small enum: [`Error::Sys`] carries the
//! [`rustix::io::Errno`] the kernel answered with and the call that answered it; the other
//! variants are checks this crate makes before calling the kernel (a name too long, a wrong kind
//! of descriptor, an unaligned offset), each with the errno the kernel would have given, through
//! [`Error::errno`]. Constructors that take an [`OwnedFd`](std::os::fd::OwnedFd) give it back
//! with the error, so nothing is closed behind the caller's back. An [`Error`] converts to a
//! [`std::io::Error`] as the OS error of its errno (`raw_os_error()` gives it back).
//!
//! # Things this crate does not do
//!
//! * It does not allocate through GPU drivers (GEM, dumb buffers) or submit GPU work; only
//!   the generic allocators (dma-heaps, udmabuf) are here, and from DRM only sync objects.
//! * It does not offer async readiness on a dma-buf fd directly; bridge a sync_file exported
//!   from it ([`DmaBufFd::export_sync_file`], [`SyncFileFd::to_fence`]) instead.
//! * Library fences do not flow into kernel buffers' reservation objects: user space cannot
//!   make a kernel fence it signals itself (`sw_sync` aside). They flow into timeline
//!   syncobjs instead ([`Syncobj::signal_point_when`]), whose points other processes and
//!   drivers wait for; a point cannot carry a fence's error.
//! * It does not use `sw_sync` (debugfs-only, absent from distribution kernels); pending kernel
//!   fences for tests come from [`Vgem`].
//! * It does not make CPU access exclusive: `DMA_BUF_IOCTL_SYNC` only keeps caches coherent;
//!   other processes and devices may still write the buffer while a bracket is open.
//!
//! The crate is Linux-only and compiles to nothing on other systems. All `unsafe` code lives in
//! the private `uapi` module, one `// SAFETY:` comment per block.
//!
//! # References
//!  - [dma-buf uAPI](https://docs.kernel.org/driver-api/dma-buf.html)
//!  - [`include/uapi/linux/dma-buf.h`, `sync_file.h`, `dma-heap.h`, `udmabuf.h`](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux)
//!  - [DRM sync objects](https://docs.kernel.org/gpu/drm-mm.html#drm-sync-objects),
//!    [`include/uapi/drm/drm.h`](https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/drm/drm.h)
#![cfg(target_os = "linux")]

/// The crate's README, whose examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// `AsFd`, `AsRawFd`, `IntoRawFd` and `From<_> for OwnedFd` for a newtype over an `OwnedFd`
/// (its field `.0`).
macro_rules! owned_fd_newtype {
    ($ty:ident) => {
        impl rustix::fd::AsFd for $ty {
            fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
                rustix::fd::AsFd::as_fd(&self.0)
            }
        }

        impl rustix::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> rustix::fd::RawFd {
                rustix::fd::AsRawFd::as_raw_fd(&self.0)
            }
        }

        impl rustix::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> rustix::fd::RawFd {
                rustix::fd::IntoRawFd::into_raw_fd(self.0)
            }
        }

        impl From<$ty> for rustix::fd::OwnedFd {
            fn from(f: $ty) -> rustix::fd::OwnedFd {
                f.0
            }
        }
    };
}
pub(crate) use owned_fd_newtype;

mod dma_buf;
mod dma_heap;
mod drm;
mod error;
mod kernel_buffer;
mod poll;
pub mod raw;
mod reactor;
mod scm;
mod sync_file;
mod syncobj;
mod uapi;
mod udmabuf;
mod vgem;

pub use dma_buf::{Access, CpuAccessGuard, DMA_BUF_MAGIC, DmaBufFd, DmaBufFdInfo, MappedDmaBuf};
pub use dma_heap::{DMA_HEAP_DIR, DmaHeap};
pub use drm::{
    DRM_CAP_PRIME, DRM_CAP_SYNCOBJ, DRM_CAP_SYNCOBJ_TIMELINE, DRM_DIR, DriverVersion,
    DrmCapabilities, DrmDevice,
};
pub use error::{Error, Result};
pub use kernel_buffer::KernelBuffer;
pub use reactor::Reactor;
pub use scm::{MAX_FDS, ReceivedFds, recv_fds, send_fds};
pub use sync_file::{FenceInfo, FenceStatus, NAME_LEN, SyncFileFd, SyncFileInfo};
pub use syncobj::{PointEvent, Syncobj, SyncobjFd, WaitFlags};
pub use udmabuf::{UDMABUF_PATH, Udmabuf};
pub use vgem::{Vgem, VgemBuffer, VgemFence};
