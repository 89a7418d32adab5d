//! The exporters that ship with the crate, and the heap interface they share (kernel:
//! `drivers/dma-buf/heaps/`, `udmabuf`).
//!
//! * [`SystemHeap`] — zeroed host pages (kernel: the `system` dma-heap).
//! * [`MemfdHeap`] — memfd-backed buffers another process can map (kernel: `udmabuf`).
//! * [`DeviceMemory`] — a device's local memory with a capacity: dynamic buffers that get
//!   evicted to host memory (kernel: TTM's VRAM placement).
//!
//! Every heap checks an allocation request as `DMA_HEAP_IOCTL_ALLOC` does ([`AllocRequest`]).

mod devmem;
mod memfd;
mod pages;
mod system;

pub use devmem::{DevMemBuffer, DeviceMemory, Placement};
pub use memfd::{MemfdBuffer, MemfdHeap, MemfdMemory};
pub use pages::PagesBuffer;
pub use system::{SystemBuffer, SystemHeap};

use super::DmaBuf;
use crate::error::{Error, Result};

/// `O_RDWR`, accepted in [`AllocRequest::fd_flags`].
pub const O_RDWR: u32 = 0o2;
/// `O_CLOEXEC`, accepted in [`AllocRequest::fd_flags`].
pub const O_CLOEXEC: u32 = 0o2_000_000;
/// The fd flags a heap accepts (kernel: `DMA_HEAP_VALID_FD_FLAGS`).
pub const VALID_FD_FLAGS: u32 = O_RDWR | O_CLOEXEC;
/// The heap flags a heap accepts: none are defined (kernel: `DMA_HEAP_VALID_HEAP_FLAGS`).
pub const VALID_HEAP_FLAGS: u64 = 0;

/// An allocation request (kernel: `struct dma_heap_allocation_data` without the fd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocRequest {
    /// Size in bytes; rounded up to whole pages.
    pub len: u64,
    /// Flags for the buffer's file: a subset of [`VALID_FD_FLAGS`].
    pub fd_flags: u32,
    /// Heap flags: must be [`VALID_HEAP_FLAGS`].
    pub heap_flags: u64,
}

impl AllocRequest {
    /// A request for `len` bytes, read-write and close-on-exec.
    pub fn new(len: u64) -> Self {
        AllocRequest {
            len,
            fd_flags: O_RDWR | O_CLOEXEC,
            heap_flags: 0,
        }
    }

    /// Checks the flags and size as `DMA_HEAP_IOCTL_ALLOC` does.
    ///
    /// # Errors
    /// [`Error::InvalidFlags`] for unknown fd or heap flags, [`Error::InvalidSize`] for zero.
    pub fn check(&self) -> Result<()> {
        if self.fd_flags & !VALID_FD_FLAGS != 0 {
            return Err(Error::InvalidFlags(u64::from(self.fd_flags)));
        }
        if self.heap_flags & !VALID_HEAP_FLAGS != 0 {
            return Err(Error::InvalidFlags(self.heap_flags));
        }
        if self.len == 0 {
            return Err(Error::InvalidSize(0));
        }
        Ok(())
    }
}

/// A buffer allocator (kernel: `struct dma_heap`).
pub trait Heap {
    /// The heap's name (kernel: the `/dev/dma_heap/<name>` node).
    fn name(&self) -> &str;

    /// Allocates a zeroed buffer (kernel: `DMA_HEAP_IOCTL_ALLOC`).
    ///
    /// # Errors
    /// The request's errors ([`AllocRequest::check`]); [`Error::NoMemory`].
    fn allocate(&self, request: &AllocRequest) -> Result<DmaBuf>;

    /// Allocates `len` zeroed bytes with the default flags.
    ///
    /// # Errors
    /// As [`allocate`](Self::allocate).
    fn alloc(&self, len: u64) -> Result<DmaBuf> {
        self.allocate(&AllocRequest::new(len))
    }
}
