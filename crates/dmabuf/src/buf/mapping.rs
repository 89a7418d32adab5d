//! Mapped attachments (kernel: the `sg_table` of `dma_buf_map_attachment()`,
//! `dma_buf_unmap_attachment()`).
//!
//! [`Attachment::map`](super::Attachment::map) gives a [`Mapping`]: the buffer as segments of
//! the attached device's address space, through which the device reads and writes. It is
//! given back with [`Mapping::unmap`] under the reservation lock.
//!
//! # Rules
//! * Unmapping needs the buffer's reservation lock: it takes its guard as proof.
//! * A cached mapping (mapped once at attach for a mismatched importer, or kept for an
//!   exporter that caches) belongs to the attachment: its `unmap` does nothing.
//! * A mapping that outlives its attachment is dead: detaching unmapped it, so an access
//!   through it faults ([`Error::Fault`]) and its `unmap` does nothing.

use super::attachment::AttInner;
use super::{Direction, Segment, SgTable};
use crate::error::{Error, Rejected, Result};
use crate::resv::ResvGuard;
use std::sync::Arc;

/// A mapped attachment: the buffer as segments of the device's address space (kernel: the
/// `sg_table` from `dma_buf_map_attachment()`). Give it back with [`unmap`](Self::unmap)
/// under the reservation lock, before the attachment detaches: detaching unmaps it, and an
/// access through it faults from then on.
#[must_use = "a mapping should be given back with unmap, under the reservation lock"]
pub struct Mapping {
    att: Arc<AttInner>,
    table: Held,
}

/// The table a [`Mapping`] holds.
enum Held {
    /// Its own, which the attachment knows too (a copy of its segments in `slot`, for
    /// detach).
    Own { table: SgTable, slot: usize },
    /// The attachment's cached table.
    Cached(Arc<SgTable>),
    /// Given back by `unmap` (seen only by `drop`).
    Gone,
}

impl Mapping {
    /// A mapping of its own `table`, which the attachment keeps in `slot`.
    pub(super) fn own(att: Arc<AttInner>, table: SgTable, slot: usize) -> Self {
        Mapping {
            att,
            table: Held::Own { table, slot },
        }
    }

    /// A mapping of the attachment's cached table.
    pub(super) fn cached(att: Arc<AttInner>, table: Arc<SgTable>) -> Self {
        Mapping {
            att,
            table: Held::Cached(table),
        }
    }

    fn table(&self) -> &SgTable {
        match &self.table {
            Held::Own { table, .. } => table,
            Held::Cached(table) => table,
            // Only `unmap` sets it, and consumes the mapping.
            Held::Gone => unreachable!(),
        }
    }

    /// The segments, in buffer order.
    pub fn segments(&self) -> &[Segment] {
        self.table().segments()
    }

    /// The scatter list.
    pub fn sg_table(&self) -> &SgTable {
        self.table()
    }

    /// The direction it was mapped for.
    pub fn direction(&self) -> Direction {
        self.table().direction()
    }

    /// Whether this is the attachment's cached mapping (unmap then does nothing).
    pub fn is_cached(&self) -> bool {
        matches!(self.table, Held::Cached(_))
    }

    /// The device reads `dst.len()` bytes at buffer offset `offset` through this mapping,
    /// transfer by transfer across segments.
    ///
    /// # Errors
    /// [`Error::Fault`] past the mapping's end or through an address that maps nothing.
    pub fn dma_read(&self, offset: u64, dst: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < dst.len() {
            let (addr, run) = self.locate(offset, done, dst.len())?;
            self.att
                .device()
                .dma_read(addr, &mut dst[done..done + run])?;
            done += run;
        }
        Ok(())
    }

    /// The device writes `src` at buffer offset `offset` through this mapping.
    ///
    /// # Errors
    /// As [`dma_read`](Self::dma_read).
    pub fn dma_write(&self, offset: u64, src: &[u8]) -> Result<()> {
        let mut done = 0usize;
        while done < src.len() {
            let (addr, run) = self.locate(offset, done, src.len())?;
            self.att.device().dma_write(addr, &src[done..done + run])?;
            done += run;
        }
        Ok(())
    }

    /// The device address and run length for byte `done` of an access of `total` at `offset`.
    fn locate(&self, offset: u64, done: usize, total: usize) -> Result<(u64, usize)> {
        let at = offset + done as u64;
        let (addr, avail) = self.table().address_of(at).ok_or(Error::Fault {
            addr: at,
            len: (total - done) as u64,
        })?;
        Ok((addr, (total - done).min(avail as usize)))
    }

    /// Unmaps (kernel: `dma_buf_unmap_attachment()`), with the reservation lock held. A
    /// cached mapping stays for the next map. After its attachment detached there is nothing
    /// left to unmap: detaching unmapped it.
    ///
    /// # Errors
    /// [`Error::WrongLock`], handing the mapping back.
    #[doc(alias = "dma_buf_unmap_attachment")]
    pub fn unmap(mut self, guard: &ResvGuard<'_>) -> std::result::Result<(), Rejected<Mapping>> {
        let locked = match self.att.buf().locked(guard) {
            Ok(l) => l,
            Err(error) => return Err(Rejected { error, input: self }),
        };
        // A cached table is the attachment's; an own table the attachment no longer knows
        // was unmapped at detach.
        if let Held::Own { table, slot } = std::mem::replace(&mut self.table, Held::Gone)
            && self.att.forget_table(guard, slot)
        {
            self.att.buf().exporter().unmap(&locked, table);
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if matches!(self.table, Held::Own { .. }) {
            // Dropped without `unmap`: detach unmaps it, and counts it as such.
            self.att.dropped_without_unmap();
        }
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("device", &self.att.device().name())
            .field("segments", &self.segments())
            .field("cached", &self.is_cached())
            .finish()
    }
}
