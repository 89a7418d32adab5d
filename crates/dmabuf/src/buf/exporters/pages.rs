//! The static exporter shared by the system heap and memfd buffers: memory that never
//! moves, mapped whole, offered to the CPU through `vmap` and `mmap`.

use crate::buf::{Device, Direction, DmaBuf, Exporter, Locked, Memory, SgTable};
use crate::error::Result;
use std::sync::Arc;

/// A buffer whose storage `M` stays put for its whole life (kernel: the system heap's and
/// udmabuf's `dma_buf_ops`). See [`SystemBuffer`](super::SystemBuffer) and
/// [`MemfdBuffer`](super::MemfdBuffer).
pub struct PagesBuffer<M> {
    name: &'static str,
    memory: Arc<M>,
    /// The same storage, as the mappings take it.
    shared: Arc<dyn Memory>,
    size: u64,
    max_segment: usize,
}

impl<M: std::fmt::Debug> std::fmt::Debug for PagesBuffer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagesBuffer")
            .field("name", &self.name)
            .field("memory", &self.memory)
            .field("size", &self.size)
            .field("max_segment", &self.max_segment)
            .finish()
    }
}

impl<M: Memory + 'static> PagesBuffer<M> {
    pub(super) fn new(name: &'static str, memory: M, max_segment: usize) -> Self {
        let size = memory.len() as u64;
        let memory = Arc::new(memory);
        PagesBuffer {
            name,
            size,
            shared: memory.clone(),
            memory,
            max_segment,
        }
    }

    /// The storage.
    pub fn memory(&self) -> &Arc<M> {
        &self.memory
    }
}

impl<M: Memory + 'static> Exporter for PagesBuffer<M> {
    fn name(&self) -> &str {
        self.name
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn map(&self, _locked: &Locked<'_>, device: &Device, direction: Direction) -> Result<SgTable> {
        SgTable::map_memory(
            device,
            direction,
            &self.shared,
            self.size as usize,
            self.max_segment,
        )
    }

    fn unmap(&self, _locked: &Locked<'_>, table: SgTable) {
        table.unmap_from_device();
    }

    fn vmap(&self, _locked: &Locked<'_>) -> Result<Arc<dyn Memory>> {
        Ok(self.shared.clone())
    }

    fn mmap(&self, _buf: &DmaBuf) -> Result<Arc<dyn Memory>> {
        Ok(self.shared.clone())
    }
}
