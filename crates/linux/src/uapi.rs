//! The kernel's dma-buf, sync_file, dma-heap, udmabuf and DRM (syncobj) uAPI: `#[repr(C)]`
//! structs, opcodes, and one safe function per ioctl.
//!
//! # Safety
//! This is the crate's only module with `unsafe`. Each ioctl passes exactly the struct its
//! opcode encodes (sizes checked at compile time against the uAPI headers), and each descriptor
//! the kernel returns is wrapped in an `OwnedFd` at once. The mapping helpers at the end hand
//! out slices only for the lifetime of a borrow of the mapping.
//!
//! The public `raw` module issues these calls on descriptors of any kind. Every argument is
//! exactly the size its opcode encodes, so a file whose handler does not know the opcode
//! refuses it or stays within the argument; the only addresses passed are `DMA_BUF_SET_NAME`'s
//! string, which the call only reads, and `SYNC_IOC_FILE_INFO`'s array, which is non-null only
//! for a checked sync_file. Descriptor numbers inside arguments are plain integers the kernel
//! looks up and checks itself.
//!
//! The DRM calls that carry addresses (`DRM_IOCTL_VERSION`'s string buffers, the syncobj
//! calls' arrays of handles and points) are issued only on a DRM device: the typed and the raw
//! syncobj calls take a `DrmDevice`, a character device of the DRM major (checked when it is
//! opened), whose core reads and writes no more than the lengths the argument gives.
//!
//! Kernel headers: `include/uapi/linux/{dma-buf,sync_file,dma-heap,udmabuf}.h`,
//! `include/uapi/drm/drm.h`.
#![allow(unsafe_code)]

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::Result;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, Setter, Updater, opcode};
use std::ffi::{CStr, c_void};
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU8;

// ---- dma-buf.h (ioctl group 'b') ----

/// `struct dma_buf_sync`.
#[repr(C)]
pub(crate) struct DmaBufSync {
    pub flags: u64,
}
const _: () = assert!(size_of::<DmaBufSync>() == 8);

pub(crate) const DMA_BUF_SYNC_READ: u64 = 1 << 0;
pub(crate) const DMA_BUF_SYNC_WRITE: u64 = 2;
pub(crate) const DMA_BUF_SYNC_END: u64 = 1 << 2;
pub(crate) const DMA_BUF_SYNC_VALID_FLAGS_MASK: u64 =
    DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END;
/// `DMA_BUF_NAME_LEN`, NUL included.
pub(crate) const DMA_BUF_NAME_LEN: usize = 32;

/// `struct dma_buf_export_sync_file` and `struct dma_buf_import_sync_file` (same layout).
#[repr(C)]
pub(crate) struct DmaBufSyncFile {
    pub flags: u32,
    pub fd: i32,
}
const _: () = assert!(size_of::<DmaBufSyncFile>() == 8);

const DMA_BUF_IOCTL_SYNC: Opcode = opcode::write::<DmaBufSync>(b'b', 0);
/// `_B`: the argument size is a `__u64`, the argument itself the string's address.
const DMA_BUF_SET_NAME_B: Opcode = opcode::write::<u64>(b'b', 1);
const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: Opcode = opcode::read_write::<DmaBufSyncFile>(b'b', 2);
const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: Opcode = opcode::write::<DmaBufSyncFile>(b'b', 3);

// ---- sync_file.h (ioctl group '>') ----

/// `struct sync_merge_data`.
#[repr(C)]
pub(crate) struct SyncMergeData {
    pub name: [u8; 32],
    pub fd2: i32,
    pub fence: i32,
    pub flags: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<SyncMergeData>() == 48);

/// `struct sync_fence_info`: one leaf fence as `SYNC_IOC_FILE_INFO` fills it in.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncFenceInfo {
    /// `obj_name`: the timeline's name, NUL-terminated.
    pub obj_name: [u8; 32],
    /// `driver_name`: the driver's name, NUL-terminated.
    pub driver_name: [u8; 32],
    /// `status`: 1 signalled, 0 pending, a negative errno if it failed.
    pub status: i32,
    /// `flags`: none are defined; the kernel leaves it zero.
    pub flags: u32,
    /// `timestamp_ns`: the signal time on `CLOCK_MONOTONIC`, 0 while pending.
    pub timestamp_ns: u64,
}
const _: () = assert!(size_of::<SyncFenceInfo>() == 80);

impl SyncFenceInfo {
    /// An all-zero entry, for the array the kernel fills in.
    pub const ZERO: SyncFenceInfo = SyncFenceInfo {
        obj_name: [0; 32],
        driver_name: [0; 32],
        status: 0,
        flags: 0,
        timestamp_ns: 0,
    };
}

/// `struct sync_file_info`.
#[repr(C)]
pub(crate) struct SyncFileInfo {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    /// User address of a `sync_fence_info` array.
    pub sync_fence_info: u64,
}
const _: () = assert!(size_of::<SyncFileInfo>() == 56);

/// `struct sync_set_deadline`.
#[repr(C)]
pub(crate) struct SyncSetDeadline {
    pub deadline_ns: u64,
    pub pad: u64,
}
const _: () = assert!(size_of::<SyncSetDeadline>() == 16);

const SYNC_IOC_MERGE: Opcode = opcode::read_write::<SyncMergeData>(b'>', 3);
const SYNC_IOC_FILE_INFO: Opcode = opcode::read_write::<SyncFileInfo>(b'>', 4);
const SYNC_IOC_SET_DEADLINE: Opcode = opcode::write::<SyncSetDeadline>(b'>', 5);

// ---- dma-heap.h (ioctl group 'H') ----

/// `struct dma_heap_allocation_data`.
#[repr(C)]
pub(crate) struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}
const _: () = assert!(size_of::<DmaHeapAllocationData>() == 24);

const DMA_HEAP_IOCTL_ALLOC: Opcode = opcode::read_write::<DmaHeapAllocationData>(b'H', 0);

/// The selftest's "older" `struct dma_heap_allocation_data`: no `heap_flags`. The ioctl
/// number encodes the size, and the kernel accepts a shorter argument (zero-filling the rest).
#[cfg(test)]
#[repr(C)]
pub(crate) struct DmaHeapAllocationDataOlder {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
}
#[cfg(test)]
const _: () = assert!(size_of::<DmaHeapAllocationDataOlder>() == 16);

/// The selftest's "newer" `struct dma_heap_allocation_data`: three more words the kernel
/// does not know, which it ignores.
#[cfg(test)]
#[repr(C)]
pub(crate) struct DmaHeapAllocationDataNewer {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
    pub tail: [u64; 3],
}
#[cfg(test)]
const _: () = assert!(size_of::<DmaHeapAllocationDataNewer>() == 48);

// ---- udmabuf.h (ioctl group 'u') ----

/// `UDMABUF_FLAGS_CLOEXEC`.
pub(crate) const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;

/// `struct udmabuf_create`.
#[repr(C)]
pub(crate) struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}
const _: () = assert!(size_of::<UdmabufCreate>() == 24);

/// `struct udmabuf_create_item`.
#[repr(C)]
pub(crate) struct UdmabufCreateItem {
    pub memfd: u32,
    pub pad: u32,
    pub offset: u64,
    pub size: u64,
}
const _: () = assert!(size_of::<UdmabufCreateItem>() == 24);

/// `struct udmabuf_create_list` without its trailing item array.
#[repr(C)]
pub(crate) struct UdmabufCreateList {
    pub flags: u32,
    pub count: u32,
}
const _: () = assert!(size_of::<UdmabufCreateList>() == 8);

const UDMABUF_CREATE: Opcode = opcode::write::<UdmabufCreate>(b'u', 0x42);
const UDMABUF_CREATE_LIST: Opcode = opcode::write::<UdmabufCreateList>(b'u', 0x43);

// ---- vgem (DRM): test buffers with pending fences ----

/// `struct drm_mode_create_dumb`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct DrmModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}
const _: () = assert!(size_of::<DrmModeCreateDumb>() == 32);

/// `struct drm_prime_handle`.
#[repr(C)]
pub(crate) struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}
const _: () = assert!(size_of::<DrmPrimeHandle>() == 12);

/// `struct drm_gem_close`.
#[repr(C)]
pub(crate) struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmGemClose>() == 8);

/// `struct drm_vgem_fence_attach`.
#[repr(C)]
pub(crate) struct DrmVgemFenceAttach {
    pub handle: u32,
    pub flags: u32,
    pub out_fence: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmVgemFenceAttach>() == 16);

/// `struct drm_vgem_fence_signal`.
#[repr(C)]
pub(crate) struct DrmVgemFenceSignal {
    pub fence: u32,
    pub flags: u32,
}
const _: () = assert!(size_of::<DrmVgemFenceSignal>() == 8);

/// `VGEM_FENCE_WRITE`: the fence is added as the buffer's writer.
pub(crate) const VGEM_FENCE_WRITE: u32 = 1;
/// `DRM_CLOEXEC | DRM_RDWR` for `DRM_IOCTL_PRIME_HANDLE_TO_FD`.
const DRM_PRIME_FLAGS: u32 = 0o2_000_000 | 0o2;

const DRM_IOCTL_GEM_CLOSE: Opcode = opcode::write::<DrmGemClose>(b'd', 0x09);
const DRM_IOCTL_PRIME_HANDLE_TO_FD: Opcode = opcode::read_write::<DrmPrimeHandle>(b'd', 0x2d);
const DRM_IOCTL_PRIME_FD_TO_HANDLE: Opcode = opcode::read_write::<DrmPrimeHandle>(b'd', 0x2e);
const DRM_IOCTL_VGEM_FENCE_ATTACH: Opcode = opcode::read_write::<DrmVgemFenceAttach>(b'd', 0x41);
const DRM_IOCTL_VGEM_FENCE_SIGNAL: Opcode = opcode::write::<DrmVgemFenceSignal>(b'd', 0x42);
const DRM_IOCTL_MODE_CREATE_DUMB: Opcode = opcode::read_write::<DrmModeCreateDumb>(b'd', 0xb2);

/// `ioctl(dev, DRM_IOCTL_MODE_CREATE_DUMB)`: a `width`×`height` buffer of `bpp` bits per pixel.
pub(crate) fn drm_create_dumb(
    dev: BorrowedFd<'_>,
    width: u32,
    height: u32,
    bpp: u32,
) -> Result<DrmModeCreateDumb> {
    let mut arg = DrmModeCreateDumb {
        width,
        height,
        bpp,
        ..DrmModeCreateDumb::default()
    };
    // SAFETY: DRM_IOCTL_MODE_CREATE_DUMB takes a `struct drm_mode_create_dumb`, mirrored by
    // `DrmModeCreateDumb`; the kernel fills handle, pitch and size.
    unsafe {
        rustix::ioctl::ioctl(dev, Updater::<DRM_IOCTL_MODE_CREATE_DUMB, _>::new(&mut arg))?;
    }
    Ok(arg)
}

/// `ioctl(dev, DRM_IOCTL_GEM_CLOSE, {handle})`.
pub(crate) fn drm_gem_close(dev: BorrowedFd<'_>, handle: u32) -> Result<()> {
    let arg = DrmGemClose { handle, pad: 0 };
    // SAFETY: DRM_IOCTL_GEM_CLOSE reads a `struct drm_gem_close`, mirrored by `DrmGemClose`.
    unsafe { rustix::ioctl::ioctl(dev, Setter::<DRM_IOCTL_GEM_CLOSE, _>::new(arg)) }
}

/// `ioctl(dev, DRM_IOCTL_PRIME_HANDLE_TO_FD, {handle, DRM_CLOEXEC | DRM_RDWR})`: a dma-buf.
pub(crate) fn drm_prime_handle_to_fd(dev: BorrowedFd<'_>, handle: u32) -> Result<OwnedFd> {
    let mut arg = DrmPrimeHandle {
        handle,
        flags: DRM_PRIME_FLAGS,
        fd: -1,
    };
    // SAFETY: DRM_IOCTL_PRIME_HANDLE_TO_FD takes a `struct drm_prime_handle`, mirrored by
    // `DrmPrimeHandle`; on success the kernel wrote a new descriptor into `fd`.
    unsafe {
        rustix::ioctl::ioctl(
            dev,
            Updater::<DRM_IOCTL_PRIME_HANDLE_TO_FD, _>::new(&mut arg),
        )?;
    }
    // SAFETY: the descriptor was just installed for us by the successful ioctl.
    Ok(unsafe { take_fd(arg.fd) })
}

/// `ioctl(dev, DRM_IOCTL_PRIME_FD_TO_HANDLE, {fd})`: the device's GEM handle for a dma-buf.
pub(crate) fn drm_prime_fd_to_handle(dev: BorrowedFd<'_>, dma_buf: BorrowedFd<'_>) -> Result<u32> {
    let mut arg = DrmPrimeHandle {
        handle: 0,
        flags: 0,
        fd: dma_buf.as_raw_fd(),
    };
    // SAFETY: DRM_IOCTL_PRIME_FD_TO_HANDLE takes a `struct drm_prime_handle`, mirrored by
    // `DrmPrimeHandle`; the kernel reads `fd` (borrowed for the call) and writes `handle`.
    unsafe {
        rustix::ioctl::ioctl(
            dev,
            Updater::<DRM_IOCTL_PRIME_FD_TO_HANDLE, _>::new(&mut arg),
        )?;
    }
    Ok(arg.handle)
}

/// `ioctl(dev, DRM_IOCTL_VGEM_FENCE_ATTACH, {handle, flags})`: a pending fence on the buffer.
pub(crate) fn vgem_fence_attach(dev: BorrowedFd<'_>, handle: u32, flags: u32) -> Result<u32> {
    let mut arg = DrmVgemFenceAttach {
        handle,
        flags,
        out_fence: 0,
        pad: 0,
    };
    // SAFETY: DRM_IOCTL_VGEM_FENCE_ATTACH takes a `struct drm_vgem_fence_attach`, mirrored by
    // `DrmVgemFenceAttach`; the kernel writes the fence id into `out_fence`.
    unsafe {
        rustix::ioctl::ioctl(
            dev,
            Updater::<DRM_IOCTL_VGEM_FENCE_ATTACH, _>::new(&mut arg),
        )?;
    }
    Ok(arg.out_fence)
}

/// `ioctl(dev, DRM_IOCTL_VGEM_FENCE_SIGNAL, {fence})`.
pub(crate) fn vgem_fence_signal(dev: BorrowedFd<'_>, fence: u32) -> Result<()> {
    let arg = DrmVgemFenceSignal { fence, flags: 0 };
    // SAFETY: DRM_IOCTL_VGEM_FENCE_SIGNAL reads a `struct drm_vgem_fence_signal`, mirrored by
    // `DrmVgemFenceSignal`.
    unsafe { rustix::ioctl::ioctl(dev, Setter::<DRM_IOCTL_VGEM_FENCE_SIGNAL, _>::new(arg)) }
}

// ---- DRM core: device identity, capabilities and sync objects (drm.h, ioctl group 'd') ----

/// `#[repr(C)]` mirrors of uAPI structs whose fields the crate fills in itself, each with its
/// size checked at compile time against the header's.
macro_rules! uapi_structs {
    ($($(#[$doc:meta])* $name:ident($size:literal) { $($field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub(crate) struct $name {
            $(pub $field: $ty,)*
        }
        const _: () = assert!(size_of::<$name>() == $size);
    )*};
}

uapi_structs! {
    /// `struct drm_version`: the driver's version and its three strings, each a user buffer
    /// the kernel fills up to its length and whose full length it writes back.
    DrmVersion(64) {
        version_major: i32, version_minor: i32, version_patchlevel: i32,
        name_len: usize, name: u64, date_len: usize, date: u64, desc_len: usize, desc: u64,
    }
    /// `struct drm_get_cap`.
    DrmGetCap(16) { capability: u64, value: u64 }
    /// `struct drm_syncobj_create`.
    DrmSyncobjCreate(8) { handle: u32, flags: u32 }
    /// `struct drm_syncobj_destroy`.
    DrmSyncobjDestroy(8) { handle: u32, pad: u32 }
    /// `struct drm_syncobj_wait`, `handles` being the address of `count_handles` `u32`s.
    DrmSyncobjWait(40) {
        handles: u64, timeout_nsec: i64, count_handles: u32, flags: u32,
        first_signaled: u32, pad: u32, deadline_nsec: u64,
    }
    /// `struct drm_syncobj_timeline_wait`: `drm_syncobj_wait` with `points`, the address of
    /// `count_handles` `u64`s (or 0: every point 0).
    DrmSyncobjTimelineWait(48) {
        handles: u64, points: u64, timeout_nsec: i64, count_handles: u32, flags: u32,
        first_signaled: u32, pad: u32, deadline_nsec: u64,
    }
    /// `struct drm_syncobj_eventfd`.
    DrmSyncobjEventfd(24) { handle: u32, flags: u32, point: u64, fd: i32, pad: u32 }
    /// `struct drm_syncobj_array` (RESET, SIGNAL).
    DrmSyncobjArray(16) { handles: u64, count_handles: u32, pad: u32 }
    /// `struct drm_syncobj_timeline_array` (TIMELINE_SIGNAL, QUERY).
    DrmSyncobjTimelineArray(24) { handles: u64, points: u64, count_handles: u32, flags: u32 }
}

/// `struct drm_syncobj_handle`, with the `point` field newer kernels appended (with the
/// `_TIMELINE` flags that read it). The DRM core copies as many bytes as the opcode encodes
/// and zero-fills or drops the rest, so older kernels take this size too: they never read
/// `point`, and refuse the flag that would.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrmSyncobjHandle {
    /// `handle`: the syncobj's handle in the device file.
    pub handle: u32,
    /// `flags`: `DRM_SYNCOBJ_{HANDLE_TO_FD,FD_TO_HANDLE}_FLAGS_*`.
    pub flags: u32,
    /// `fd`: the descriptor, written by HANDLE_TO_FD, read by FD_TO_HANDLE.
    pub fd: i32,
    /// `pad`: must be zero.
    pub pad: u32,
    /// `point`: the timeline point of the `_TIMELINE` flags, on kernels that have them.
    pub point: u64,
}
const _: () = assert!(size_of::<DrmSyncobjHandle>() == 24);

/// `struct drm_syncobj_transfer`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrmSyncobjTransfer {
    /// `src_handle`.
    pub src_handle: u32,
    /// `dst_handle`.
    pub dst_handle: u32,
    /// `src_point`: 0 takes the syncobj's fence itself.
    pub src_point: u64,
    /// `dst_point`: 0 replaces the fence (binary); another adds that point (timeline).
    pub dst_point: u64,
    /// `flags`: 0 or `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`.
    pub flags: u32,
    /// `pad`: must be zero.
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmSyncobjTransfer>() == 32);

const DRM_IOCTL_VERSION: Opcode = opcode::read_write::<DrmVersion>(b'd', 0x00);
const DRM_IOCTL_GET_CAP: Opcode = opcode::read_write::<DrmGetCap>(b'd', 0x0c);
const DRM_IOCTL_SYNCOBJ_CREATE: Opcode = opcode::read_write::<DrmSyncobjCreate>(b'd', 0xbf);
const DRM_IOCTL_SYNCOBJ_DESTROY: Opcode = opcode::read_write::<DrmSyncobjDestroy>(b'd', 0xc0);
const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: Opcode = opcode::read_write::<DrmSyncobjHandle>(b'd', 0xc1);
const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: Opcode = opcode::read_write::<DrmSyncobjHandle>(b'd', 0xc2);
const DRM_IOCTL_SYNCOBJ_WAIT: Opcode = opcode::read_write::<DrmSyncobjWait>(b'd', 0xc3);
const DRM_IOCTL_SYNCOBJ_RESET: Opcode = opcode::read_write::<DrmSyncobjArray>(b'd', 0xc4);
const DRM_IOCTL_SYNCOBJ_SIGNAL: Opcode = opcode::read_write::<DrmSyncobjArray>(b'd', 0xc5);
const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: Opcode =
    opcode::read_write::<DrmSyncobjTimelineWait>(b'd', 0xca);
const DRM_IOCTL_SYNCOBJ_QUERY: Opcode = opcode::read_write::<DrmSyncobjTimelineArray>(b'd', 0xcb);
const DRM_IOCTL_SYNCOBJ_TRANSFER: Opcode = opcode::read_write::<DrmSyncobjTransfer>(b'd', 0xcc);
const DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: Opcode =
    opcode::read_write::<DrmSyncobjTimelineArray>(b'd', 0xcd);
const DRM_IOCTL_SYNCOBJ_EVENTFD: Opcode = opcode::read_write::<DrmSyncobjEventfd>(b'd', 0xcf);

/// `DRM_SYNCOBJ_CREATE_SIGNALED`.
pub(crate) const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1 << 0;
/// `DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE`.
pub(crate) const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1 << 0;
/// `DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE`.
pub(crate) const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1 << 0;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL`.
pub(crate) const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1 << 0;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`.
pub(crate) const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 1 << 1;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`.
pub(crate) const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = 1 << 2;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE`.
pub(crate) const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE: u32 = 1 << 3;
/// `DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED`.
pub(crate) const DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED: u32 = 1 << 0;

/// Runs the read-write ioctl `OPCODE` on `fd` with `arg`.
///
/// # Safety
/// `OPCODE` must be an ioctl of `fd`'s driver that takes a `T` (its size is the one the
/// opcode encodes, so the DRM core copies exactly `T` in and out), and every address inside
/// `arg` must be valid for what that ioctl reads and writes through it during the call.
unsafe fn read_write<const OPCODE: Opcode, T>(fd: BorrowedFd<'_>, arg: &mut T) -> Result<()> {
    // SAFETY: forwarded from the caller; `arg` is a live, exclusive `T` for the call.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<OPCODE, T>::new(arg)) }
}

/// The user address of a slice's first element, 0 for an empty one (the kernel reads none).
fn address<T>(slice: &[T]) -> u64 {
    if slice.is_empty() {
        0
    } else {
        slice.as_ptr() as u64
    }
}

/// `ioctl(dev, DRM_IOCTL_VERSION)` with buffers of the given sizes: the driver's version, and
/// its name, date and description, each cut to its buffer. The lengths in the answer are the
/// strings' full lengths.
pub(crate) fn drm_version(
    dev: BorrowedFd<'_>,
    name: &mut [u8],
    date: &mut [u8],
    desc: &mut [u8],
) -> Result<DrmVersion> {
    let mut arg = DrmVersion {
        version_major: 0,
        version_minor: 0,
        version_patchlevel: 0,
        name_len: name.len(),
        name: address(name),
        date_len: date.len(),
        date: address(date),
        desc_len: desc.len(),
        desc: address(desc),
    };
    // SAFETY: DRM_IOCTL_VERSION takes a `struct drm_version`, mirrored by `DrmVersion`, and
    // only on a DRM device, which `dev` is for every caller (`DrmDevice` checks it with this
    // call, whose buffers are then empty: null addresses and zero lengths). The kernel writes
    // at most `*_len` bytes to each address, and each address is that of a live, exclusive
    // buffer of exactly that length (or null with length 0).
    unsafe { read_write::<DRM_IOCTL_VERSION, _>(dev, &mut arg)? };
    Ok(arg)
}

/// `ioctl(dev, DRM_IOCTL_GET_CAP, {capability})`: its value.
pub(crate) fn drm_get_cap(dev: BorrowedFd<'_>, capability: u64) -> Result<u64> {
    let mut arg = DrmGetCap {
        capability,
        value: 0,
    };
    // SAFETY: DRM_IOCTL_GET_CAP takes a `struct drm_get_cap`, mirrored by `DrmGetCap`, which
    // holds no address.
    unsafe { read_write::<DRM_IOCTL_GET_CAP, _>(dev, &mut arg)? };
    Ok(arg.value)
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_CREATE, {flags})`: the new handle.
pub(crate) fn syncobj_create(dev: BorrowedFd<'_>, flags: u32) -> Result<u32> {
    let mut arg = DrmSyncobjCreate { handle: 0, flags };
    // SAFETY: the opcode takes a `struct drm_syncobj_create`, mirrored by `DrmSyncobjCreate`,
    // which holds no address.
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_CREATE, _>(dev, &mut arg)? };
    Ok(arg.handle)
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_DESTROY, {handle, pad})`.
pub(crate) fn syncobj_destroy(dev: BorrowedFd<'_>, handle: u32, pad: u32) -> Result<()> {
    let mut arg = DrmSyncobjDestroy { handle, pad };
    // SAFETY: the opcode takes a `struct drm_syncobj_destroy`, mirrored by
    // `DrmSyncobjDestroy`, which holds no address.
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_DESTROY, _>(dev, &mut arg) }
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, arg)`: the new descriptor (an opaque syncobj
/// file, or a sync_file with the export flag).
pub(crate) fn syncobj_handle_to_fd(dev: BorrowedFd<'_>, arg: DrmSyncobjHandle) -> Result<OwnedFd> {
    let mut arg = DrmSyncobjHandle { fd: -1, ..arg };
    // SAFETY: the opcode takes a `struct drm_syncobj_handle`, mirrored by `DrmSyncobjHandle`,
    // which holds no address; on success the kernel wrote a new descriptor into `fd`.
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, _>(dev, &mut arg)? };
    // SAFETY: the descriptor was just installed for us by the successful ioctl.
    Ok(unsafe { take_fd(arg.fd) })
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, arg)`: the handle (a new one for an opaque
/// file; `arg.handle` itself for a sync_file import). `arg.fd` is only a number: the kernel
/// looks it up and checks its kind.
pub(crate) fn syncobj_fd_to_handle(dev: BorrowedFd<'_>, arg: DrmSyncobjHandle) -> Result<u32> {
    let mut arg = arg;
    // SAFETY: the opcode takes a `struct drm_syncobj_handle`, mirrored by `DrmSyncobjHandle`,
    // which holds no address (the descriptor is a number the kernel looks up itself and takes
    // its own reference to).
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, _>(dev, &mut arg)? };
    Ok(arg.handle)
}

/// The arguments of `DRM_IOCTL_SYNCOBJ_WAIT` and `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT` (`struct
/// drm_syncobj_wait`, `struct drm_syncobj_timeline_wait`) with their arrays as slices:
/// `count_handles` is `handles.len()`, and the kernel's answer `first_signaled` is the call's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncobjWait<'a> {
    /// `handles`.
    pub handles: &'a [u32],
    /// `points` (timeline waits only): one per handle; `None` passes a null array, which the
    /// kernel reads as every point 0.
    pub points: Option<&'a [u64]>,
    /// `timeout_nsec`: an absolute `CLOCK_MONOTONIC` time; 0 only looks.
    pub timeout_nsec: i64,
    /// `flags`: `DRM_SYNCOBJ_WAIT_FLAGS_*`.
    pub flags: u32,
    /// `pad`.
    pub pad: u32,
    /// `deadline_nsec`: read with `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE`.
    pub deadline_nsec: u64,
}

/// The address of `points` for `handles`, 0 for `None`; `EINVAL` when it is shorter (the
/// kernel would read or write past it).
fn points_address(handles: &[u32], points: Option<&[u64]>) -> Result<u64> {
    match points {
        Some(p) if p.len() < handles.len() => Err(rustix::io::Errno::INVAL),
        Some(p) => Ok(address(p)),
        None => Ok(0),
    }
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, wait)` when `timeline`, else
/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_WAIT, wait)` (which has no points): `first_signaled`.
pub(crate) fn syncobj_wait(
    dev: BorrowedFd<'_>,
    timeline: bool,
    wait: &SyncobjWait<'_>,
) -> Result<u32> {
    let mut arg = DrmSyncobjTimelineWait {
        handles: address(wait.handles),
        points: points_address(wait.handles, wait.points)?,
        timeout_nsec: wait.timeout_nsec,
        count_handles: count(wait.handles)?,
        flags: wait.flags,
        first_signaled: 0,
        pad: wait.pad,
        deadline_nsec: wait.deadline_nsec,
    };
    if timeline {
        // SAFETY: the opcode takes a `struct drm_syncobj_timeline_wait`, mirrored by
        // `DrmSyncobjTimelineWait`; the kernel reads `count_handles` `u32`s at `handles` and
        // as many `u64`s at `points` (unless null), the addresses of live slices at least
        // that long (checked by `points_address`), unchanged during the call.
        unsafe { read_write::<DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, _>(dev, &mut arg)? };
        return Ok(arg.first_signaled);
    }
    let mut arg = DrmSyncobjWait {
        handles: arg.handles,
        timeout_nsec: arg.timeout_nsec,
        count_handles: arg.count_handles,
        flags: arg.flags,
        first_signaled: 0,
        pad: arg.pad,
        deadline_nsec: arg.deadline_nsec,
    };
    // SAFETY: the opcode takes a `struct drm_syncobj_wait`, mirrored by `DrmSyncobjWait`; the
    // kernel reads `count_handles` `u32`s at `handles`, the address of a live slice of that
    // length (null when empty), unchanged during the call.
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_WAIT, _>(dev, &mut arg)? };
    Ok(arg.first_signaled)
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_RESET or _SIGNAL, {handles, count_handles, pad})`.
pub(crate) fn syncobj_array(
    dev: BorrowedFd<'_>,
    signal: bool,
    handles: &[u32],
    pad: u32,
) -> Result<()> {
    let mut arg = DrmSyncobjArray {
        handles: address(handles),
        count_handles: count(handles)?,
        pad,
    };
    // SAFETY: both opcodes take a `struct drm_syncobj_array`, mirrored by `DrmSyncobjArray`;
    // the kernel reads `count_handles` `u32`s at `handles`, the address of a live slice of
    // that length (null when empty).
    unsafe {
        if signal {
            read_write::<DRM_IOCTL_SYNCOBJ_SIGNAL, _>(dev, &mut arg)
        } else {
            read_write::<DRM_IOCTL_SYNCOBJ_RESET, _>(dev, &mut arg)
        }
    }
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, {handles, points, count_handles, flags})`.
/// `points` (null when `None`: every point 0) must hold at least as many entries as
/// `handles`.
pub(crate) fn syncobj_timeline_signal(
    dev: BorrowedFd<'_>,
    handles: &[u32],
    points: Option<&[u64]>,
    flags: u32,
) -> Result<()> {
    let mut arg = DrmSyncobjTimelineArray {
        handles: address(handles),
        points: points_address(handles, points)?,
        count_handles: count(handles)?,
        flags,
    };
    // SAFETY: the opcode takes a `struct drm_syncobj_timeline_array`, mirrored by
    // `DrmSyncobjTimelineArray`; the kernel reads `count_handles` `u32`s at `handles` and as
    // many `u64`s at `points` (unless null), live slices at least that long (checked by
    // `points_address`).
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, _>(dev, &mut arg) }
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_QUERY, {handles, points, count_handles, flags})`: the kernel
/// writes one point per handle into `points` (null when `None`), which must hold at least as
/// many entries as `handles`.
pub(crate) fn syncobj_query(
    dev: BorrowedFd<'_>,
    handles: &[u32],
    points: Option<&mut [u64]>,
    flags: u32,
) -> Result<()> {
    let points = match points {
        Some(p) => {
            points_address(handles, Some(p))?;
            if p.is_empty() {
                0
            } else {
                p.as_mut_ptr() as u64
            }
        }
        None => 0,
    };
    let mut arg = DrmSyncobjTimelineArray {
        handles: address(handles),
        points,
        count_handles: count(handles)?,
        flags,
    };
    // SAFETY: the opcode takes a `struct drm_syncobj_timeline_array`, mirrored by
    // `DrmSyncobjTimelineArray`; the kernel reads `count_handles` `u32`s at `handles` and
    // writes at most as many `u64`s at `points` (unless null), the addresses of a live slice
    // and of a live, exclusive one, each at least that long (checked by `points_address`).
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_QUERY, _>(dev, &mut arg) }
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_TRANSFER, arg)`.
pub(crate) fn syncobj_transfer(dev: BorrowedFd<'_>, arg: DrmSyncobjTransfer) -> Result<()> {
    let mut arg = arg;
    // SAFETY: the opcode takes a `struct drm_syncobj_transfer`, mirrored by
    // `DrmSyncobjTransfer`, which holds no address.
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_TRANSFER, _>(dev, &mut arg) }
}

/// `ioctl(dev, DRM_IOCTL_SYNCOBJ_EVENTFD, {handle, flags, point, fd, pad})`. `fd` is only a
/// number: the kernel looks it up, checks it is an eventfd and takes its own reference.
pub(crate) fn syncobj_eventfd(
    dev: BorrowedFd<'_>,
    handle: u32,
    flags: u32,
    point: u64,
    fd: i32,
    pad: u32,
) -> Result<()> {
    let mut arg = DrmSyncobjEventfd {
        handle,
        flags,
        point,
        fd,
        pad,
    };
    // SAFETY: the opcode takes a `struct drm_syncobj_eventfd`, mirrored by
    // `DrmSyncobjEventfd`, which holds no address.
    unsafe { read_write::<DRM_IOCTL_SYNCOBJ_EVENTFD, _>(dev, &mut arg) }
}

/// A slice's length as the uAPI's `count_handles`.
fn count<T>(slice: &[T]) -> Result<u32> {
    u32::try_from(slice.len()).map_err(|_| rustix::io::Errno::INVAL)
}

// ---- ioctl patterns rustix lacks ----

/// An ioctl whose argument is a pointer to `T` the kernel only reads, and whose return value
/// is a new file descriptor (udmabuf's pattern).
struct FdReturning<const OPCODE: Opcode, T> {
    arg: *mut c_void,
    _input: std::marker::PhantomData<T>,
}

// SAFETY: `as_ptr` returns the pointer given at construction, which points to a `T` that the
// caller keeps alive across the call; the kernel only reads it (IS_MUTATING false), and a
// non-negative return value of these opcodes is a new descriptor owned by the caller.
unsafe impl<const OPCODE: Opcode, T> Ioctl for FdReturning<OPCODE, T> {
    type Output = OwnedFd;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> Result<OwnedFd> {
        // SAFETY: rustix calls this only for a successful (non-negative) return, which for
        // these opcodes is a descriptor the kernel just installed for us.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// An ioctl whose argument is an address passed as the integer itself (`DMA_BUF_SET_NAME`).
struct PointerArg<const OPCODE: Opcode> {
    arg: *mut c_void,
}

// SAFETY: the pointer is passed through unchanged; the caller guarantees what it points to
// (a NUL-terminated string the kernel only reads).
unsafe impl<const OPCODE: Opcode> Ioctl for PointerArg<OPCODE> {
    type Output = ();
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut c_void) -> Result<()> {
        Ok(())
    }
}

/// Wraps a descriptor number the kernel just wrote into an ioctl struct.
///
/// # Safety
/// `raw` must be a descriptor the kernel returned to us by the ioctl that just succeeded, owned
/// by nobody else.
unsafe fn take_fd(raw: i32) -> OwnedFd {
    // SAFETY: forwarded from the caller.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

// ---- dma-buf ioctls ----

/// `ioctl(fd, DMA_BUF_IOCTL_SYNC, {flags})`, once (no restart).
pub(crate) fn dma_buf_sync(fd: BorrowedFd<'_>, flags: u64) -> Result<()> {
    let mut arg = DmaBufSync { flags };
    // SAFETY: DMA_BUF_IOCTL_SYNC takes a `struct dma_buf_sync`, which `DmaBufSync` mirrors;
    // the kernel only reads it.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<DMA_BUF_IOCTL_SYNC, _>::new(&mut arg)) }
}

/// `ioctl(fd, DMA_BUF_SET_NAME_B, name)`.
pub(crate) fn dma_buf_set_name(fd: BorrowedFd<'_>, name: &CStr) -> Result<()> {
    let ctl = PointerArg::<DMA_BUF_SET_NAME_B> {
        arg: name.as_ptr().cast_mut().cast(),
    };
    // SAFETY: DMA_BUF_SET_NAME takes the address of a NUL-terminated string, which `name` is
    // and stays during the call; the kernel copies at most DMA_BUF_NAME_LEN bytes and never
    // writes through it.
    unsafe { rustix::ioctl::ioctl(fd, ctl) }
}

/// `ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, {flags, fd})`.
pub(crate) fn dma_buf_export_sync_file(fd: BorrowedFd<'_>, flags: u32) -> Result<OwnedFd> {
    let mut arg = DmaBufSyncFile { flags, fd: -1 };
    // SAFETY: the opcode takes a `struct dma_buf_export_sync_file`, mirrored by
    // `DmaBufSyncFile`; the kernel writes `fd`.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            Updater::<DMA_BUF_IOCTL_EXPORT_SYNC_FILE, _>::new(&mut arg),
        )?;
    }
    // SAFETY: on success `arg.fd` is a new sync_file descriptor installed for us.
    Ok(unsafe { take_fd(arg.fd) })
}

/// `ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, {flags, sync_file})`. `sync_file` is only a
/// number in the argument: the kernel looks it up in this process's table and refuses one that
/// is not an open sync_file.
pub(crate) fn dma_buf_import_sync_file(
    fd: BorrowedFd<'_>,
    flags: u32,
    sync_file: i32,
) -> Result<()> {
    let mut arg = DmaBufSyncFile {
        flags,
        fd: sync_file,
    };
    // SAFETY: the opcode takes a `struct dma_buf_import_sync_file`, mirrored by
    // `DmaBufSyncFile`; the kernel only reads it (the descriptor number included, which it
    // looks up and checks itself) and takes its own reference to the fence.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            Updater::<DMA_BUF_IOCTL_IMPORT_SYNC_FILE, _>::new(&mut arg),
        )
    }
}

// ---- sync_file ioctls ----

/// `ioctl(fd, SYNC_IOC_MERGE, {name, fd2, flags, pad})`: the merged sync_file. `fd2` is only a
/// number in the argument: the kernel looks it up and refuses one that is not an open
/// sync_file.
pub(crate) fn sync_merge(
    fd: BorrowedFd<'_>,
    name: [u8; 32],
    fd2: i32,
    flags: u32,
    pad: u32,
) -> Result<OwnedFd> {
    let mut arg = SyncMergeData {
        name,
        fd2,
        fence: -1,
        flags,
        pad,
    };
    // SAFETY: SYNC_IOC_MERGE takes a `struct sync_merge_data`, mirrored by `SyncMergeData`;
    // the kernel reads it (looking `fd2` up and checking it itself) and writes `fence`.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<SYNC_IOC_MERGE, _>::new(&mut arg))? };
    // SAFETY: on success `arg.fence` is a new sync_file descriptor installed for us.
    Ok(unsafe { take_fd(arg.fence) })
}

/// `ioctl(fd, SYNC_IOC_FILE_INFO, {num_fences: 0})`: name, overall status, leaf count.
pub(crate) fn sync_file_info_count(fd: BorrowedFd<'_>) -> Result<SyncFileInfo> {
    sync_file_info_fill(fd, 0, 0, &mut [])
}

/// `ioctl(fd, SYNC_IOC_FILE_INFO, {flags, pad, num_fences: out.len(), sync_fence_info: out})`;
/// with an empty `out`, only counts.
pub(crate) fn sync_file_info_fill(
    fd: BorrowedFd<'_>,
    flags: u32,
    pad: u32,
    out: &mut [SyncFenceInfo],
) -> Result<SyncFileInfo> {
    let mut arg = SyncFileInfo {
        name: [0; 32],
        status: 0,
        flags,
        num_fences: u32::try_from(out.len()).unwrap_or(u32::MAX),
        pad,
        sync_fence_info: if out.is_empty() {
            0
        } else {
            out.as_mut_ptr() as u64
        },
    };
    // SAFETY: SYNC_IOC_FILE_INFO takes a `struct sync_file_info`, mirrored by `SyncFileInfo`.
    // With an empty `out` the address is null and nothing is written through it. Otherwise
    // `sync_fence_info` points to `out`, at least `num_fences` writable `SyncFenceInfo`s (the
    // uAPI's `struct sync_fence_info`), and the callers pass a non-empty `out` only for a
    // checked sync_file, whose handler writes at most `num_fences` entries (it refuses with
    // EINVAL if the file has more); `flags` and `pad` only decide whether it refuses.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<SYNC_IOC_FILE_INFO, _>::new(&mut arg))? };
    Ok(arg)
}

/// `ioctl(fd, SYNC_IOC_SET_DEADLINE, {deadline_ns, pad})`.
pub(crate) fn sync_set_deadline(fd: BorrowedFd<'_>, deadline_ns: u64, pad: u64) -> Result<()> {
    let mut arg = SyncSetDeadline { deadline_ns, pad };
    // SAFETY: SYNC_IOC_SET_DEADLINE takes a `struct sync_set_deadline`, mirrored by
    // `SyncSetDeadline`; the kernel only reads it.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<SYNC_IOC_SET_DEADLINE, _>::new(&mut arg)) }
}

// ---- dma-heap and udmabuf ioctls ----

/// `ioctl(heap, DMA_HEAP_IOCTL_ALLOC, {len, fd_flags, heap_flags})`: the new dma-buf.
pub(crate) fn dma_heap_alloc(
    heap: BorrowedFd<'_>,
    len: u64,
    fd_flags: u32,
    heap_flags: u64,
) -> Result<OwnedFd> {
    let mut arg = DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags,
        heap_flags,
    };
    // SAFETY: DMA_HEAP_IOCTL_ALLOC takes a `struct dma_heap_allocation_data`, mirrored by
    // `DmaHeapAllocationData`; the kernel writes `fd`.
    unsafe { rustix::ioctl::ioctl(heap, Updater::<DMA_HEAP_IOCTL_ALLOC, _>::new(&mut arg))? };
    // SAFETY: on success `arg.fd` is a new dma-buf descriptor installed for us.
    Ok(unsafe { take_fd(arg.fd as i32) })
}

/// `DMA_HEAP_IOCTL_ALLOC` with the older, shorter argument (selftest `alloc_compat`).
#[cfg(test)]
pub(crate) fn dma_heap_alloc_older(
    heap: BorrowedFd<'_>,
    len: u64,
    fd_flags: u32,
) -> Result<OwnedFd> {
    const OLDER: Opcode = opcode::read_write::<DmaHeapAllocationDataOlder>(b'H', 0);
    let mut arg = DmaHeapAllocationDataOlder {
        len,
        fd: 0,
        fd_flags,
    };
    // SAFETY: the opcode encodes `size_of::<DmaHeapAllocationDataOlder>()`, so the kernel
    // reads and writes back exactly that many bytes of `arg` (it zero-fills the fields it
    // misses); it writes `fd`.
    unsafe { rustix::ioctl::ioctl(heap, Updater::<OLDER, _>::new(&mut arg))? };
    // SAFETY: on success `arg.fd` is a new dma-buf descriptor installed for us.
    Ok(unsafe { take_fd(arg.fd as i32) })
}

/// `DMA_HEAP_IOCTL_ALLOC` with the newer, longer argument whose unknown `tail` the kernel
/// ignores (selftest `alloc_compat`).
#[cfg(test)]
pub(crate) fn dma_heap_alloc_newer(
    heap: BorrowedFd<'_>,
    len: u64,
    fd_flags: u32,
    tail: [u64; 3],
) -> Result<OwnedFd> {
    const NEWER: Opcode = opcode::read_write::<DmaHeapAllocationDataNewer>(b'H', 0);
    let mut arg = DmaHeapAllocationDataNewer {
        len,
        fd: 0,
        fd_flags,
        heap_flags: 0,
        tail,
    };
    // SAFETY: the opcode encodes `size_of::<DmaHeapAllocationDataNewer>()`; the kernel
    // copies at most that many bytes in and out of `arg` and writes `fd`.
    unsafe { rustix::ioctl::ioctl(heap, Updater::<NEWER, _>::new(&mut arg))? };
    // SAFETY: on success `arg.fd` is a new dma-buf descriptor installed for us.
    Ok(unsafe { take_fd(arg.fd as i32) })
}

/// `ioctl(dev, UDMABUF_CREATE, {memfd, flags, offset, size})`: the new dma-buf.
pub(crate) fn udmabuf_create(
    dev: BorrowedFd<'_>,
    memfd: BorrowedFd<'_>,
    offset: u64,
    size: u64,
) -> Result<OwnedFd> {
    let arg = UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: UDMABUF_FLAGS_CLOEXEC,
        offset,
        size,
    };
    let ctl = FdReturning::<UDMABUF_CREATE, UdmabufCreate> {
        arg: (&raw const arg).cast_mut().cast(),
        _input: std::marker::PhantomData,
    };
    // SAFETY: UDMABUF_CREATE reads a `struct udmabuf_create` (mirrored by `UdmabufCreate`,
    // alive on this stack frame during the call) and returns the new descriptor.
    unsafe { rustix::ioctl::ioctl(dev, ctl) }
}

/// `ioctl(dev, UDMABUF_CREATE_LIST, {flags, count, list})`: one dma-buf over several ranges.
pub(crate) fn udmabuf_create_list(
    dev: BorrowedFd<'_>,
    items: &[(BorrowedFd<'_>, u64, u64)],
) -> Result<OwnedFd> {
    // The header is 8 bytes and the items 8-aligned: an u64 buffer holds both exactly.
    let mut buf: Vec<u64> = Vec::with_capacity(1 + 3 * items.len());
    let head = UdmabufCreateList {
        flags: UDMABUF_FLAGS_CLOEXEC,
        count: u32::try_from(items.len()).unwrap_or(u32::MAX),
    };
    buf.push(pack(head.flags, head.count));
    for (memfd, offset, size) in items {
        let item = UdmabufCreateItem {
            memfd: memfd.as_raw_fd() as u32,
            pad: 0,
            offset: *offset,
            size: *size,
        };
        buf.extend([pack(item.memfd, item.pad), item.offset, item.size]);
    }
    let ctl = FdReturning::<UDMABUF_CREATE_LIST, UdmabufCreateList> {
        arg: buf.as_mut_ptr().cast(),
        _input: std::marker::PhantomData,
    };
    // SAFETY: `buf` holds a `struct udmabuf_create_list` followed by `count` `struct
    // udmabuf_create_item`s in the uAPI layout (8-byte header, 24-byte items), alive during the call; the kernel
    // only reads it and returns the new descriptor.
    unsafe { rustix::ioctl::ioctl(dev, ctl) }
}

/// Two `u32` fields as one native-endian `u64`, as they lie in memory.
fn pack(first: u32, second: u32) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&first.to_ne_bytes());
    bytes[4..].copy_from_slice(&second.to_ne_bytes());
    u64::from_ne_bytes(bytes)
}

// ---- mappings ----

/// A shared read-write mapping of a whole file; unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`.
    pub(crate) fn new(fd: impl AsFd, len: usize) -> Result<Mapping> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh mapping chosen by the kernel (no address hint) overlaps no Rust
        // object; it is owned by the returned `Mapping` and unmapped exactly once, on drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::FAULT)?;
        Ok(Mapping { ptr, len })
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapped bytes, for as long as `self` is borrowed, as atomics: other mappings of
    /// the same buffer (in this process or another), other threads and devices may change
    /// them at any moment, so no `&[u8]` or `&mut [u8]` over them may exist.
    pub(crate) fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: `ptr..ptr+len` is a live readable and writable mapping owned by `self`,
        // unmapped only on drop, which the borrow prevents. `AtomicU8` has the size and
        // alignment of `u8`, and every access this crate makes to the bytes goes through these
        // atomics (byte-sized, never mixed with other sizes), so threads of this process using
        // other mappings of the same pages race only atomically; writers in other processes or
        // devices are outside this program. The callers bracket every use with
        // DMA_BUF_IOCTL_SYNC, as the uAPI asks, for cache coherence.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU8>(), self.len) }
    }
}

// SAFETY: the mapping is memory of the whole process, not of a thread: unmapping it from
// another thread is as valid as from this one, and `bytes` borrows `self`, so moving the owner
// moves every right to the bytes with it.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and no slice of it outlives the
        // borrow of `self`, which has ended.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::warn!(errno = %e, "munmap of a dma-buf mapping failed");
        }
    }
}
