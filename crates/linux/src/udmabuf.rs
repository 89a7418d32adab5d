//! udmabuf: a dma-buf over the pages of a sealed memfd, through `/dev/udmabuf`.
//!
//! The kernel's preconditions are checked before the ioctl, each with its own error: the memfd
//! carries `F_SEAL_SHRINK` (its pages cannot vanish under the buffer) and no write seal
//! (`F_SEAL_WRITE`, `F_SEAL_FUTURE_WRITE`: writes through the buffer would bypass it),
//! and offset and size are page-aligned and inside the file.
//!
//! Kernel: `drivers/dma-buf/udmabuf.c`, uAPI `include/uapi/linux/udmabuf.h`.

use crate::dma_buf::DmaBufFd;
use crate::error::{Error, Result};
use crate::uapi;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, SealFlags};

/// The udmabuf device node.
pub const UDMABUF_PATH: &str = "/dev/udmabuf";

/// The open udmabuf device.
#[derive(Debug)]
pub struct Udmabuf(OwnedFd);

impl Udmabuf {
    /// `open("/dev/udmabuf", O_RDWR | O_CLOEXEC)`.
    ///
    /// Linux 4.20 added the device; distribution kernels may leave it out
    /// (`CONFIG_UDMABUF`).
    ///
    /// # Errors
    /// [`Error::Sys`] from `open` (`ENOENT`: no device).
    pub fn open() -> Result<Udmabuf> {
        Self::open_node(UDMABUF_PATH)
    }

    /// [`open`](Self::open) of the device node at `path` (a test names one that does not
    /// exist).
    fn open_node(path: &str) -> Result<Udmabuf> {
        rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map(Udmabuf)
            .map_err(Error::sys("open(/dev/udmabuf)"))
    }

    /// Checks what `UDMABUF_CREATE` requires of `memfd`, `offset` and `size`, without the
    /// device.
    ///
    /// # Errors
    /// [`Error::ZeroLength`]; [`Error::Unaligned`] for an offset or size that is not a
    /// multiple of the page size; [`Error::NotMemfd`] if `memfd` has no seals
    /// (`F_GET_SEALS` fails; the kernel's `EBADFD`); [`Error::MissingShrinkSeal`];
    /// [`Error::WriteSealed`] for `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE`;
    /// [`Error::OutOfRange`] past the end of the file; [`Error::Sys`] from `fstat`.
    pub fn check_memfd(memfd: impl AsFd, offset: u64, size: u64) -> Result<()> {
        let memfd = memfd.as_fd();
        if size == 0 {
            return Err(Error::ZeroLength);
        }
        let page = rustix::param::page_size() as u64;
        if !offset.is_multiple_of(page) {
            return Err(Error::Unaligned {
                what: "offset",
                value: offset,
            });
        }
        if !size.is_multiple_of(page) {
            return Err(Error::Unaligned {
                what: "size",
                value: size,
            });
        }
        let seals =
            rustix::fs::fcntl_get_seals(memfd).map_err(|errno| Error::NotMemfd { errno })?;
        if !seals.contains(SealFlags::SHRINK) {
            return Err(Error::MissingShrinkSeal);
        }
        if seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
            return Err(Error::WriteSealed);
        }
        let file_size = rustix::fs::fstat(memfd)
            .map_err(Error::sys("fstat"))?
            .st_size as u64;
        match offset.checked_add(size) {
            Some(end) if end <= file_size => Ok(()),
            _ => Err(Error::OutOfRange {
                offset,
                len: size,
                size: file_size,
            }),
        }
    }

    /// `ioctl(dev, UDMABUF_CREATE, {memfd, UDMABUF_FLAGS_CLOEXEC, offset, size})`—A dma-buf
    /// over `size` bytes of `memfd` from `offset`.
    ///
    /// Writes through either the memfd or a mapping of the dma-buf are seen by the other.
    ///
    /// # Errors
    /// Every error of [`check_memfd`](Self::check_memfd), before the ioctl; then
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "UDMABUF_CREATE")]
    pub fn create(&self, memfd: impl AsFd, offset: u64, size: u64) -> Result<DmaBufFd> {
        Self::check_memfd(memfd.as_fd(), offset, size)?;
        uapi::udmabuf_create(self.0.as_fd(), memfd.as_fd(), offset, size)
            .map(DmaBufFd::from_kernel)
            .map_err(Error::sys("ioctl(UDMABUF_CREATE)"))
    }

    /// A kernel dma-buf over the pages of a library memfd buffer (one from
    /// [`MemfdHeap`](dmabuf::buf::exporters::MemfdHeap)): [`create`](Self::create) on its
    /// memfd, whole. Bytes written on either side are seen by the other; fences are not
    /// shared (the library buffer's reservation object and the kernel buffer's are two).
    ///
    /// ```no_run
    /// use dmabuf::buf::exporters::MemfdHeap;
    /// use dmabuf_linux::Udmabuf;
    /// let buf = MemfdHeap::new().alloc(4096)?;
    /// let kernel = Udmabuf::open()?.create_from(&buf)?; // hand this fd to a GPU, a compositor…
    /// assert_eq!(kernel.size()?, 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WrongExporter`] if `buf` is not a memfd buffer; then as
    /// [`create`](Self::create).
    pub fn create_from(&self, buf: &dmabuf::buf::DmaBuf) -> Result<DmaBufFd> {
        let memfd = buf
            .exporter_as::<dmabuf::buf::exporters::MemfdBuffer>()
            .ok_or_else(|| Error::WrongExporter {
                exporter: buf.exporter().name().to_owned(),
            })?;
        self.create(memfd.fd(), 0, buf.size())
    }

    /// `ioctl(dev, UDMABUF_CREATE_LIST, {UDMABUF_FLAGS_CLOEXEC, count, items})`—One dma-buf
    /// over several `(memfd, offset, size)` ranges, in order.
    ///
    /// # Errors
    /// [`Error::ZeroLength`] for no items; every error of [`check_memfd`](Self::check_memfd)
    /// for each item, before the ioctl; then [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "UDMABUF_CREATE_LIST")]
    pub fn create_list(&self, items: &[(BorrowedFd<'_>, u64, u64)]) -> Result<DmaBufFd> {
        if items.is_empty() {
            return Err(Error::ZeroLength);
        }
        for &(memfd, offset, size) in items {
            Self::check_memfd(memfd, offset, size)?;
        }
        uapi::udmabuf_create_list(self.0.as_fd(), items)
            .map(DmaBufFd::from_kernel)
            .map_err(Error::sys("ioctl(UDMABUF_CREATE_LIST)"))
    }
}

impl AsFd for Udmabuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer where the device node does not exist, on any host.
    #[test]
    fn open_without_the_device_node_is_enoent() {
        let dir = std::env::temp_dir().join(format!("dmabuf-no-udmabuf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let absent = dir.join("udmabuf");
        let err = Udmabuf::open_node(absent.to_str().unwrap()).unwrap_err();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(
            err,
            Error::Sys {
                call: "open(/dev/udmabuf)",
                errno: rustix::io::Errno::NOENT
            }
        );
    }
}
