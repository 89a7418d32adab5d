//! A buffer's implicit sync as its fd offers it (kernel: `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`,
//! `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`, the dma-buf fd's `poll()`).
//!
//! Bridges explicit and implicit sync: export the fences an access would wait for as a
//! [`SyncFile`]; import a sync file's fences as readers or writers; ask whether an access
//! would wait.
//!
//! # Rules
//! * Export is a snapshot: fences added later do not join the exported file.
//! * Import adds each leaf of the file (import itself never stores a container), as a writer
//!   for a write access, else as a reader; it takes the reservation lock (do not hold it).
//! * Readiness ignores BOOKKEEP fences: a read waits for writers, a write for everybody.

use super::DmaBuf;
use crate::error::Result;
use crate::resv::{Access, ReadyFuture};
use crate::sync_file::SyncFile;
use std::time::Duration;

impl DmaBuf {
    /// The fences an `access` would wait for, as a sync file (kernel:
    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`): the writers for a read, every implicit fence for a
    /// write; the signalled stub if there are none.
    ///
    /// ```
    /// use dmabuf::buf::exporters::SystemHeap;
    /// use dmabuf::resv::Access;
    /// let buf = SystemHeap::new().alloc(4096)?;
    /// assert!(buf.export_sync_file(Access::Write).is_signaled()); // idle
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    #[doc(alias = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE")]
    pub fn export_sync_file(&self, access: Access) -> SyncFile {
        SyncFile::export(self.resv(), access)
    }

    /// Adds `file`'s fences to the buffer, as writers for a write `access`, else as readers
    /// (kernel: `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`). Takes the reservation lock.
    ///
    /// # Errors
    /// As [`SyncFile::import_into`]: the reservation could not be made.
    #[doc(alias = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE")]
    pub fn import_sync_file(&self, file: &SyncFile, access: Access) -> Result<()> {
        file.import_into(self.resv(), access)
    }

    /// Whether `access` could start now without waiting (kernel: `poll()` on the dma-buf fd:
    /// `EPOLLIN` for a read, `EPOLLOUT` for a write).
    pub fn is_ready(&self, access: Access) -> bool {
        self.resv().is_ready(access)
    }

    /// Waits until `access` could start, or `timeout` passes (`None`: no limit).
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut).
    pub fn wait_ready(&self, access: Access, timeout: Option<Duration>) -> Result<()> {
        Ok(self.resv().wait_ready(access, timeout)?)
    }

    /// A future that resolves once `access` could start (the async side of `poll()`).
    pub fn ready(&self, access: Access) -> ReadyFuture<'_> {
        self.resv().ready(access)
    }
}
