//! # dmabuf-linux — real kernel dma-buf and sync_file file descriptors
//!
//! Programs that share buffers with GPUs, cameras, codecs and compositors hold kernel dma-buf and
//! sync_file descriptors. This crate wraps them, over [`rustix`], as owned types that were
//! checked to be what they claim, with every uAPI call of the two objects:
//!
//! * [`SyncFileFd`] — a kernel fence as a file (`sync_file`): `SYNC_IOC_MERGE`,
//!   `SYNC_IOC_FILE_INFO` (the two-call pattern, as owned [`SyncFileInfo`]),
//!   `SYNC_IOC_SET_DEADLINE`, and waits through `poll(POLLIN)`.
//! * [`DmaBufFd`] — a shared buffer (`dma_buf`): its size, CPU-access brackets
//!   (`DMA_BUF_IOCTL_SYNC`, as the guard [`CpuAccessGuard`]), a safe mapping
//!   ([`MappedDmaBuf`]), `DMA_BUF_SET_NAME`, sync_file export and import, readiness for reading
//!   or writing through `poll`, and its `/proc/self/fdinfo` entry ([`DmaBufFdInfo`]).
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
//! * [`raw`] — the dma-buf and sync_file calls with every field the caller's and no checks,
//!   to see the kernel's own answers to input the typed API does not let through.
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
//! * It does not allocate through GPU drivers (GEM, dumb buffers) or DRM syncobjs; only the
//!   generic allocators (dma-heaps, udmabuf) are here.
//! * It does not offer async readiness on a dma-buf fd directly; bridge a sync_file exported
//!   from it ([`DmaBufFd::export_sync_file`], [`SyncFileFd::to_fence`]) instead.
//! * Library fences do not flow into kernel buffers: user space cannot make a kernel fence
//!   it signals itself (`sw_sync` aside).
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
#![cfg(target_os = "linux")]

/// The crate's README, whose examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod dma_buf;
mod dma_heap;
mod error;
mod kernel_buffer;
mod poll;
pub mod raw;
mod reactor;
mod sync_file;
mod uapi;
mod udmabuf;
mod vgem;

pub use dma_buf::{Access, CpuAccessGuard, DMA_BUF_MAGIC, DmaBufFd, DmaBufFdInfo, MappedDmaBuf};
pub use dma_heap::{DMA_HEAP_DIR, DmaHeap};
pub use error::{Error, Result};
pub use kernel_buffer::KernelBuffer;
pub use reactor::Reactor;
pub use sync_file::{FenceInfo, FenceStatus, NAME_LEN, SyncFileFd, SyncFileInfo};
pub use udmabuf::{UDMABUF_PATH, Udmabuf};
pub use vgem::{Vgem, VgemBuffer, VgemFence};
