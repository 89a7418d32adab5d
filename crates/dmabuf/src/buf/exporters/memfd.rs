//! memfd-backed buffers: storage another process can map (kernel: `udmabuf`, which turns a
//! memfd's pages into a dma-buf).
//!
//! The storage is a sealed-size memfd: [`MemfdBuffer::fd`] can be passed to another process
//! (over a Unix socket, say), which maps or reads the same pages. In this process every access
//! is a `pread`/`pwrite` on the fd, so no memory is shared with this process's Rust code
//! behind its back.

use super::{AllocRequest, Heap, PagesBuffer};
use crate::buf::memory::{check_range, page_align};
use crate::buf::{DmaBuf, Memory};
use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags};

/// The largest segment a memfd buffer's mapping has.
const MAX_SEGMENT: usize = 64 * 1024;

/// Allocates [`MemfdBuffer`]s.
///
/// ```
/// use dmabuf::buf::Memory;
/// use dmabuf::buf::exporters::{Heap, MemfdBuffer, MemfdHeap};
/// let buf = MemfdHeap::new().alloc(4096)?;
/// let exporter = buf.exporter_as::<MemfdBuffer>().unwrap();
/// exporter.memory().write_at(0, b"shared")?;
/// let mut back = [0u8; 6];
/// rustix::io::pread(exporter.fd(), &mut back, 0).unwrap();
/// assert_eq!(&back, b"shared");
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemfdHeap;

impl MemfdHeap {
    /// The heap.
    pub fn new() -> Self {
        MemfdHeap
    }

    /// Allocates `len` zeroed bytes (rounded up to pages).
    ///
    /// # Errors
    /// As [`Heap::allocate`].
    pub fn alloc(&self, len: u64) -> Result<DmaBuf> {
        Heap::alloc(self, len)
    }
}

impl Heap for MemfdHeap {
    fn name(&self) -> &str {
        "memfd"
    }

    fn allocate(&self, request: &AllocRequest) -> Result<DmaBuf> {
        request.check()?;
        let memory = MemfdMemory::new("dmabuf", request.len)?;
        DmaBuf::export(MemfdBuffer::new("memfd", memory, MAX_SEGMENT))
    }
}

/// Pages of a memfd, read and written with `pread`/`pwrite`.
#[derive(Debug)]
pub struct MemfdMemory {
    fd: OwnedFd,
    len: usize,
}

impl MemfdMemory {
    /// A new zeroed memfd of `len` bytes rounded up to pages, its size sealed.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for zero or an overflowing size; [`Error::NoMemory`] if the
    /// system refuses the memfd.
    pub fn new(name: &str, len: u64) -> Result<Self> {
        let size = page_align(len).ok_or(Error::InvalidSize(len))?;
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|_| Error::NoMemory)?;
        rustix::fs::ftruncate(&fd, size as u64).map_err(|_| Error::NoMemory)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(|_| Error::NoMemory)?;
        Ok(MemfdMemory { fd, len: size })
    }

    /// The memfd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Memory for MemfdMemory {
    fn len(&self) -> usize {
        self.len
    }

    fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        check_range(self.len, offset, dst.len())?;
        let mut done = 0;
        while done < dst.len() {
            let n = rustix::io::pread(&self.fd, &mut dst[done..], (offset + done) as u64)
                .map_err(|_| fault(offset, dst.len()))?;
            if n == 0 {
                return Err(fault(offset, dst.len()));
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&self, offset: usize, src: &[u8]) -> Result<()> {
        check_range(self.len, offset, src.len())?;
        let mut done = 0;
        while done < src.len() {
            let n = rustix::io::pwrite(&self.fd, &src[done..], (offset + done) as u64)
                .map_err(|_| fault(offset, src.len()))?;
            if n == 0 {
                return Err(fault(offset, src.len()));
            }
            done += n;
        }
        Ok(())
    }
}

fn fault(offset: usize, len: usize) -> Error {
    Error::Fault {
        addr: offset as u64,
        len: len as u64,
    }
}

/// A memfd buffer's exporter: a memfd's pages that never move.
pub type MemfdBuffer = PagesBuffer<MemfdMemory>;

impl PagesBuffer<MemfdMemory> {
    /// The memfd, to share with another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.memory().fd()
    }
}
