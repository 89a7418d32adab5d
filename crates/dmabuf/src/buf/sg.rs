//! Scatter lists (kernel: `struct scatterlist`, `struct sg_table`).
//!
//! An exporter answers a map request with an [`SgTable`]: the buffer's storage as
//! [`Segment`]s of the importing device's address space, in buffer order. Importers hold it
//! through a [`Mapping`](super::Mapping).

use super::{Device, Direction, Memory};
use crate::error::Result;
use std::sync::Arc;

/// One contiguous range of a mapping, in the mapping device's address space (kernel: a
/// scatterlist entry's `dma_address` and `dma_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Device address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A buffer's storage as seen by one device: segments of its address space, in buffer order
/// (kernel: `struct sg_table` after `dma_map_sgtable()`).
#[derive(Debug)]
pub struct SgTable {
    device: Device,
    direction: Direction,
    segments: Vec<Segment>,
}

impl SgTable {
    /// A table of `segments` already mapped into `device`.
    pub fn new(device: Device, direction: Direction, segments: Vec<Segment>) -> Self {
        SgTable {
            device,
            direction,
            segments,
        }
    }

    /// Maps `len` bytes of `memory` into `device` as segments of at most `max_segment` bytes
    /// each (a helper for exporters' `map`).
    ///
    /// # Errors
    /// As [`Device::map`]; segments mapped before a failure are unmapped again.
    pub fn map_memory(
        device: &Device,
        direction: Direction,
        memory: &Arc<dyn Memory>,
        len: usize,
        max_segment: usize,
    ) -> Result<Self> {
        let mut table = SgTable::new(device.clone(), direction, Vec::new());
        let mut offset = 0;
        while offset < len {
            let chunk = (len - offset).min(max_segment.max(1));
            match device.map(memory.clone(), offset, chunk as u64) {
                Ok(seg) => table.segments.push(seg),
                Err(e) => {
                    table.unmap_from_device();
                    return Err(e);
                }
            }
            offset += chunk;
        }
        Ok(table)
    }

    /// Unmaps every segment from the device (a helper for exporters' `unmap`).
    pub fn unmap_from_device(self) {
        for seg in &self.segments {
            // A table only holds segments it mapped; a failure means a double unmap, which
            // the table's ownership rules out.
            let _ = self.device.unmap(*seg);
        }
    }

    /// The same segments as a table of their own, for unmapping a table that is still shared
    /// (the framework's revoke at detach): `unmap_from_device` on the copy removes the
    /// windows every holder of the original used.
    pub(crate) fn same_segments(&self) -> SgTable {
        SgTable::new(self.device.clone(), self.direction, self.segments.clone())
    }

    /// The device whose address space the segments are in.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The direction it was mapped for.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The segments, in buffer order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Whether the table maps nothing.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The device address of buffer offset `offset`, and how many bytes follow it in the
    /// same segment.
    pub fn address_of(&self, offset: u64) -> Option<(u64, u64)> {
        let mut start = 0;
        for seg in &self.segments {
            if offset < start + seg.len {
                let within = offset - start;
                return Some((seg.addr + within, seg.len - within));
            }
            start += seg.len;
        }
        None
    }
}
