//! The system heap: zeroed host pages (kernel: `drivers/dma-buf/heaps/system_heap.c`).
//!
//! A static exporter: the pages never move. Mappings cover the buffer in segments of at most
//! [`SystemHeap::max_segment`] bytes, as the kernel heap hands out high-order page chunks.

use super::{AllocRequest, Heap, PagesBuffer};
use crate::buf::{DmaBuf, HostMemory};
use crate::error::{Error, Result};

/// The largest segment the system heap maps (kernel: order-4 pages, 64 KiB).
const MAX_SEGMENT: usize = 64 * 1024;

/// Allocates [`SystemBuffer`]s.
///
/// ```
/// use dmabuf::buf::exporters::{Heap, SystemHeap};
/// let buf = SystemHeap::new().alloc(100)?;
/// assert_eq!(buf.size(), 4096);
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SystemHeap {
    max_segment: usize,
}

impl Default for SystemHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemHeap {
    /// The heap.
    pub fn new() -> Self {
        SystemHeap {
            max_segment: MAX_SEGMENT,
        }
    }

    /// The same heap mapping in segments of at most `bytes` (at least one page).
    pub fn with_max_segment(bytes: usize) -> Self {
        SystemHeap {
            max_segment: bytes.max(crate::buf::PAGE_SIZE),
        }
    }

    /// The largest segment a mapping has.
    pub fn max_segment(&self) -> usize {
        self.max_segment
    }

    /// Allocates `len` zeroed bytes (rounded up to pages).
    ///
    /// # Errors
    /// As [`Heap::allocate`].
    pub fn alloc(&self, len: u64) -> Result<DmaBuf> {
        Heap::alloc(self, len)
    }
}

impl Heap for SystemHeap {
    fn name(&self) -> &str {
        "system"
    }

    fn allocate(&self, request: &AllocRequest) -> Result<DmaBuf> {
        request.check()?;
        let memory = HostMemory::zeroed(request.len).ok_or(if request.len > isize::MAX as u64 {
            Error::InvalidSize(request.len)
        } else {
            Error::NoMemory
        })?;
        DmaBuf::export(SystemBuffer::new("system", memory, self.max_segment))
    }
}

/// A system-heap buffer's exporter: zeroed host pages that never move.
pub type SystemBuffer = PagesBuffer<HostMemory>;
