//! The exporter's side of a buffer (kernel: `struct dma_buf_ops`).
//!
//! An exporter owns the storage. The framework calls it when importers attach, map, pin and
//! access the buffer from the CPU. Which calls run with the buffer's reservation lock held is
//! fixed (kernel: the dma-buf locking convention):
//!
//! | callback | reservation lock |
//! |---|---|
//! | `attach`, `detach`, `begin_cpu_access`, `end_cpu_access`, `mmap`, drop (release) | not held: the exporter may take it |
//! | `pin`, `unpin`, `map`, `unmap`, `vmap`, `vunmap` | held: the exporter must not take it; it gets [`Locked`] as proof |
//!
//! # Rules
//! * An exporter is dynamic ([`Exporter::is_dynamic`]) iff it can move its storage; it then
//!   honours `pin`/`unpin` and calls [`DmaBuf::move_notify`](super::DmaBuf::move_notify)
//!   (with the lock held) before it moves, and it does not ask the framework to cache
//!   mappings ([`Exporter::caches_mapping`]; the export fails).
//!
//! # Differences from the kernel
//! * One exporter value per buffer (the kernel's `dma_buf->priv`); shared state such as a
//!   device-memory pool sits behind an `Arc` in it.

use super::{Device, Direction, DmaBuf, Memory, SgTable};
use crate::error::{Error, Result};
use crate::resv::ResvGuard;
use std::sync::Arc;

/// Proof that a buffer's reservation lock is held, handed to the callbacks that run under it.
#[derive(Clone, Copy)]
pub struct Locked<'a> {
    buf: &'a DmaBuf,
    guard: &'a ResvGuard<'a>,
}

impl<'a> Locked<'a> {
    /// Checks that `guard` locks `buf`'s reservation object.
    pub(crate) fn new(buf: &'a DmaBuf, guard: &'a ResvGuard<'a>) -> Result<Self> {
        if std::ptr::eq(guard.resv(), buf.resv()) {
            Ok(Locked { buf, guard })
        } else {
            Err(Error::WrongLock)
        }
    }

    /// The locked buffer.
    pub fn buf(&self) -> &'a DmaBuf {
        self.buf
    }

    /// The guard of its reservation object (to add fences, say).
    pub fn guard(&self) -> &'a ResvGuard<'a> {
        self.guard
    }
}

impl std::fmt::Debug for Locked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked").field("buf", self.buf).finish()
    }
}

/// What an exporter does for its buffer (kernel: `struct dma_buf_ops`).
///
/// Only [`map`](Self::map), [`unmap`](Self::unmap), [`name`](Self::name) and
/// [`size`](Self::size) are required; the rest default to what the kernel does when an op is
/// missing.
pub trait Exporter: std::any::Any + Send + Sync {
    /// The exporter's name (kernel: `exp_name`).
    fn name(&self) -> &str;

    /// The buffer's size in bytes; fixed for the buffer's life (kernel: `dma_buf->size`).
    fn size(&self) -> u64;

    /// Whether the storage can move, so that importers must pin it or follow
    /// `move_notify` (kernel: an exporter with `pin`/`unpin`).
    fn is_dynamic(&self) -> bool {
        false
    }

    /// Whether the framework should keep the first mapping of each attachment and hand it out
    /// again (kernel: `cache_sgt_mapping`). A map in another direction then answers
    /// [`Error::Busy`] unless the cached one is bidirectional. Only for exporters that are not
    /// [dynamic](Self::is_dynamic): exporting one that is both fails with
    /// [`Error::InvalidExporter`].
    fn caches_mapping(&self) -> bool {
        false
    }

    /// A device attaches; [`Error::Busy`] if the storage cannot serve it (kernel: `attach`).
    /// Called without the reservation lock.
    ///
    /// # Errors
    /// Whatever refuses the attachment.
    fn attach(&self, buf: &DmaBuf, device: &Device, dynamic: bool) -> Result<()> {
        let _ = (buf, device, dynamic);
        Ok(())
    }

    /// A device detaches (kernel: `detach`). Called without the reservation lock.
    fn detach(&self, buf: &DmaBuf, device: &Device) {
        let _ = (buf, device);
    }

    /// Keeps the storage where it is until [`unpin`](Self::unpin) (kernel: `pin`), for
    /// `device`. Called with the lock held; only for dynamic exporters.
    ///
    /// # Errors
    /// [`Error::Busy`] if it cannot be pinned where `device` can reach it.
    fn pin(&self, locked: &Locked<'_>, device: &Device) -> Result<()> {
        let _ = (locked, device);
        Ok(())
    }

    /// Undoes one [`pin`](Self::pin) (kernel: `unpin`). Called with the lock held.
    fn unpin(&self, locked: &Locked<'_>, device: &Device) {
        let _ = (locked, device);
    }

    /// Maps the storage into `device`'s address space (kernel: `map_dma_buf`). Called with
    /// the lock held.
    ///
    /// # Errors
    /// [`Error::NoMemory`] and the like.
    fn map(&self, locked: &Locked<'_>, device: &Device, direction: Direction) -> Result<SgTable>;

    /// Undoes a [`map`](Self::map) (kernel: `unmap_dma_buf`). Called with the lock held.
    fn unmap(&self, locked: &Locked<'_>, table: SgTable);

    /// Prepares CPU access (flushes, migrates; kernel: `begin_cpu_access`). Called without
    /// the lock, before the framework waits for the buffer's implicit fences.
    ///
    /// # Errors
    /// Whatever prevents access.
    fn begin_cpu_access(&self, buf: &DmaBuf, direction: Direction) -> Result<()> {
        let _ = (buf, direction);
        Ok(())
    }

    /// Ends CPU access (kernel: `end_cpu_access`). Called without the lock.
    ///
    /// # Errors
    /// Whatever the exporter reports.
    fn end_cpu_access(&self, buf: &DmaBuf, direction: Direction) -> Result<()> {
        let _ = (buf, direction);
        Ok(())
    }

    /// The storage for the CPU, kept where it is until [`vunmap`](Self::vunmap) (kernel:
    /// `vmap`). Called with the lock held, once for all concurrent users.
    ///
    /// # Errors
    /// [`Error::Unsupported`] by default.
    fn vmap(&self, locked: &Locked<'_>) -> Result<Arc<dyn Memory>> {
        let _ = locked;
        Err(Error::Unsupported("vmap"))
    }

    /// Undoes [`vmap`](Self::vmap) (kernel: `vunmap`). Called with the lock held.
    fn vunmap(&self, locked: &Locked<'_>, memory: Arc<dyn Memory>) {
        let _ = (locked, memory);
    }

    /// The storage for a user mapping (kernel: `mmap`). Called without the lock.
    ///
    /// # Errors
    /// [`Error::Unsupported`] by default.
    fn mmap(&self, buf: &DmaBuf) -> Result<Arc<dyn Memory>> {
        let _ = buf;
        Err(Error::Unsupported("mmap"))
    }
}
