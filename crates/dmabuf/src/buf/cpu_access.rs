//! CPU access brackets (kernel: `dma_buf_begin_cpu_access()`, `dma_buf_end_cpu_access()`,
//! `DMA_BUF_IOCTL_SYNC`).
//!
//! Before the CPU reads or writes a buffer's storage it brackets the access: the exporter
//! gets to flush or migrate, and the framework waits for the implicit fences the access
//! depends on — the writers for a read, everybody for a write. A bracket makes the CPU's view
//! coherent; it does not exclude devices.
//!
//! # Rules
//! * Neither call may hold the reservation lock (the exporter may take it); with the
//!   validator on, holding one is reported.

use super::{Direction, DmaBuf};
use crate::error::Result;

/// An open CPU access bracket; dropping it ends the access.
#[must_use = "dropping the bracket ends the CPU access at once"]
#[derive(Debug)]
pub struct CpuAccess<'a> {
    buf: &'a DmaBuf,
    direction: Direction,
    ended: bool,
}

impl DmaBuf {
    /// Begins CPU access in `direction` (kernel: `dma_buf_begin_cpu_access()`): the
    /// exporter's hook, then a wait for the implicit fences — writers for a read
    /// ([`Direction::FromDevice`]), readers and writers for a write.
    ///
    /// ```
    /// use dmabuf::buf::{Direction, exporters::SystemHeap};
    /// let buf = SystemHeap::new().alloc(4096)?;
    /// let cpu = buf.begin_cpu_access(Direction::ToDevice)?;
    /// buf.mmap()?.write_at(0, b"hello")?;
    /// cpu.end()?;
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    ///
    /// # Errors
    /// The exporter's error.
    #[doc(alias = "dma_buf_begin_cpu_access")]
    pub fn begin_cpu_access(&self, direction: Direction) -> Result<CpuAccess<'_>> {
        self.resv().might_lock();
        self.exporter().begin_cpu_access(self, direction)?;
        self.resv()
            .wait_for_signal(crate::resv::Usage::rw(direction.cpu_writes()));
        Ok(CpuAccess {
            buf: self,
            direction,
            ended: false,
        })
    }
}

impl CpuAccess<'_> {
    /// The bracket's direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Ends the access (kernel: `dma_buf_end_cpu_access()`), reporting the exporter's error.
    ///
    /// # Errors
    /// The exporter's error.
    #[doc(alias = "dma_buf_end_cpu_access")]
    pub fn end(mut self) -> Result<()> {
        self.ended = true;
        self.finish()
    }

    fn finish(&self) -> Result<()> {
        self.buf.resv().might_lock();
        self.buf.exporter().end_cpu_access(self.buf, self.direction)
    }
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        if !self.ended
            && let Err(e) = self.finish()
        {
            tracing::warn!(error = %e, "end_cpu_access failed");
        }
    }
}
