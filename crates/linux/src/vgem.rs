//! vgem, the kernel's virtual GEM driver: buffers with *pending* kernel fences, for tests
//! (kernel: `drivers/gpu/drm/vgem`).
//!
//! Distribution kernels have no `sw_sync`, so vgem is the one way to get a real dma-buf whose
//! reservation object holds an unsignalled kernel fence: [`VgemBuffer::attach_fence`] adds one
//! (as writer or reader) and [`VgemFence::signal`] signals it. The kernel signals a vgem fence
//! by itself after about ten seconds; tests signal well before.
//!
//! The device is found through sysfs: the `/dev/dri/card*` node whose device (or its driver)
//! is `vgem`.
//!
//! DRM gives a buffer object one GEM handle per open device file: importing a dma-buf the file
//! already has a handle for (imported before, or exported from it) answers that same handle.
//! A [`Vgem`] counts the [`VgemBuffer`]s sharing each handle and closes it with the last.

use crate::dma_buf::{DmaBufFd, dma_buf_size};
use crate::error::{Error, Result};
use crate::uapi;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// An open vgem device.
#[derive(Debug)]
pub struct Vgem {
    fd: OwnedFd,
    /// The [`VgemBuffer`]s holding each GEM handle of this file. Handles are created, counted
    /// and closed under this lock, so a close cannot fall between the kernel answering an
    /// import with an existing handle and the count going up.
    handles: Mutex<HashMap<u32, usize>>,
}

impl Vgem {
    /// `open("/dev/dri/cardN")` for the card whose driver is `vgem`.
    ///
    /// # Errors
    /// [`Error::Sys`] with `ENOENT` when no vgem device exists (the module is not loaded).
    pub fn open() -> Result<Vgem> {
        let call = "open(/dev/dri/card<vgem>)";
        let cards = std::fs::read_dir("/sys/class/drm")
            .map_err(|_| Error::sys(call)(rustix::io::Errno::NOENT))?;
        for card in cards.flatten() {
            let name = card.file_name();
            let Some(name) = name.to_str() else { continue };
            let is_card = name
                .strip_prefix("card")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            // vgem's device has no bound driver: it is the platform device named `vgem`.
            let named_vgem = |link: &str| {
                std::fs::read_link(card.path().join(link))
                    .is_ok_and(|d| d.file_name().is_some_and(|f| f == "vgem"))
            };
            if is_card && (named_vgem("device/driver") || named_vgem("device")) {
                let fd = rustix::fs::open(
                    format!("/dev/dri/{name}"),
                    OFlags::RDWR | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Error::sys(call))?;
                return Ok(Vgem {
                    fd,
                    handles: Mutex::new(HashMap::new()),
                });
            }
        }
        Err(Error::sys(call)(rustix::io::Errno::NOENT))
    }

    /// `ioctl(DRM_IOCTL_MODE_CREATE_DUMB)`—A buffer of at least `size` bytes (whole 4 KiB
    /// rows).
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn create_buffer(&self, size: u64) -> Result<VgemBuffer<'_>> {
        let rows = u32::try_from(size.div_ceil(4096).max(1)).map_err(|_| {
            Error::sys("ioctl(DRM_IOCTL_MODE_CREATE_DUMB)")(rustix::io::Errno::INVAL)
        })?;
        let mut handles = self.handles();
        let dumb = uapi::drm_create_dumb(self.fd.as_fd(), 1024, rows, 32)
            .map_err(Error::sys("ioctl(DRM_IOCTL_MODE_CREATE_DUMB)"))?;
        *handles.entry(dumb.handle).or_default() += 1;
        Ok(VgemBuffer {
            vgem: self,
            handle: dumb.handle,
            size: dumb.size,
        })
    }

    /// `ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE)`—Imports a dma-buf (from a heap, udmabuf, another
    /// driver) as a vgem buffer object, the way a GPU driver imports a shared buffer. The
    /// buffer object keeps the dma-buf alive until it is dropped.
    ///
    /// Importing a dma-buf this `Vgem` already holds (imported before, or exported from one of
    /// its buffers) gives a buffer sharing the existing GEM handle, as the kernel answers
    /// with it: each buffer works on its own, and the handle is closed with the last of them.
    ///
    /// `buf` is any descriptor, usually a [`DmaBufFd`]: the kernel checks it is a dma-buf.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno: `EINVAL` when `buf` is not a dma-buf.
    pub fn import(&self, buf: impl AsFd) -> Result<VgemBuffer<'_>> {
        let mut buffer = {
            let mut handles = self.handles();
            let handle = uapi::drm_prime_fd_to_handle(self.fd.as_fd(), buf.as_fd())
                .map_err(Error::sys("ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE)"))?;
            *handles.entry(handle).or_default() += 1;
            VgemBuffer {
                vgem: self,
                handle,
                size: 0,
            }
        };
        // On failure the buffer drops, which lets go of the handle again.
        buffer.size = dma_buf_size(buf.as_fd())?;
        Ok(buffer)
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<u32, usize>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AsFd for Vgem {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A vgem buffer object; its GEM handle is closed (`DRM_IOCTL_GEM_CLOSE`) when the last
/// buffer holding it is dropped. Its exported dma-bufs keep the memory alive on their own.
#[derive(Debug)]
pub struct VgemBuffer<'a> {
    vgem: &'a Vgem,
    handle: u32,
    size: u64,
}

impl<'a> VgemBuffer<'a> {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The GEM handle in the device file (shared with other buffers of the same object, see
    /// [`Vgem::import`]).
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// `ioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD)`—The buffer as a dma-buf.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn export(&self) -> Result<DmaBufFd> {
        let fd = uapi::drm_prime_handle_to_fd(self.vgem.fd.as_fd(), self.handle)
            .map_err(Error::sys("ioctl(DRM_IOCTL_PRIME_HANDLE_TO_FD)"))?;
        DmaBufFd::from_fd(fd).map_err(|(e, _)| e)
    }

    /// `ioctl(DRM_IOCTL_VGEM_FENCE_ATTACH)`—A new pending fence in the buffer's reservation
    /// object, as its writer (`write`) or a reader.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno (`EBUSY` for a writer while another fence is
    /// pending, as vgem requires).
    pub fn attach_fence(&self, write: bool) -> Result<VgemFence<'a>> {
        let flags = if write { uapi::VGEM_FENCE_WRITE } else { 0 };
        let id = uapi::vgem_fence_attach(self.vgem.fd.as_fd(), self.handle, flags)
            .map_err(Error::sys("ioctl(DRM_IOCTL_VGEM_FENCE_ATTACH)"))?;
        Ok(VgemFence {
            vgem: self.vgem,
            id: Some(id),
        })
    }
}

impl Drop for VgemBuffer<'_> {
    fn drop(&mut self) {
        let mut handles = self.vgem.handles();
        let Some(holders) = handles.get_mut(&self.handle) else {
            tracing::error!(
                handle = self.handle,
                "vgem: a buffer's handle was not counted"
            );
            return;
        };
        *holders -= 1;
        if *holders > 0 {
            return;
        }
        handles.remove(&self.handle);
        if let Err(e) = uapi::drm_gem_close(self.vgem.fd.as_fd(), self.handle) {
            tracing::warn!(errno = %e, "vgem: GEM_CLOSE failed");
        }
    }
}

/// A pending vgem fence; signalled when dropped if not before.
#[derive(Debug)]
pub struct VgemFence<'a> {
    vgem: &'a Vgem,
    id: Option<u32>,
}

impl VgemFence<'_> {
    /// `ioctl(DRM_IOCTL_VGEM_FENCE_SIGNAL)`.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno (`ETIMEDOUT` if the kernel's own timeout
    /// signalled it first).
    pub fn signal(mut self) -> Result<()> {
        self.signal_now()
    }

    fn signal_now(&mut self) -> Result<()> {
        match self.id.take() {
            Some(id) => uapi::vgem_fence_signal(self.vgem.fd.as_fd(), id)
                .map_err(Error::sys("ioctl(DRM_IOCTL_VGEM_FENCE_SIGNAL)")),
            None => Ok(()),
        }
    }
}

impl Drop for VgemFence<'_> {
    fn drop(&mut self) {
        let _ = self.signal_now();
    }
}
