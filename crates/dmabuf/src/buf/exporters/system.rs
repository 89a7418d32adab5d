//! The system heap: zeroed host pages (kernel: `drivers/dma-buf/heaps/system_heap.c`).
//!
//! A static exporter: the pages never move. Mappings cover the buffer in segments of at most
//! [`SystemHeap::max_segment`] bytes, as the kernel heap hands out high-order page chunks.

use super::{AllocRequest, Heap};
use crate::buf::{Device, Direction, DmaBuf, Exporter, HostMemory, Locked, Memory, SgTable};
use crate::error::{Error, Result};
use std::sync::Arc;

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
        DmaBuf::export(SystemBuffer {
            size: memory.len() as u64,
            memory: Arc::new(memory),
            max_segment: self.max_segment,
        })
    }
}

/// A system-heap buffer's exporter.
#[derive(Debug)]
pub struct SystemBuffer {
    memory: Arc<HostMemory>,
    size: u64,
    max_segment: usize,
}

impl SystemBuffer {
    /// The pages.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.memory
    }
}

impl Exporter for SystemBuffer {
    fn name(&self) -> &str {
        "system"
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn map(&self, _locked: &Locked<'_>, device: &Device, direction: Direction) -> Result<SgTable> {
        let memory: Arc<dyn Memory> = self.memory.clone();
        SgTable::map_memory(
            device,
            direction,
            &memory,
            self.size as usize,
            self.max_segment,
        )
    }

    fn unmap(&self, _locked: &Locked<'_>, table: SgTable) {
        table.unmap_from_device();
    }

    fn vmap(&self, _locked: &Locked<'_>) -> Result<Arc<dyn Memory>> {
        Ok(self.memory.clone())
    }

    fn mmap(&self, _buf: &DmaBuf) -> Result<Arc<dyn Memory>> {
        Ok(self.memory.clone())
    }
}
