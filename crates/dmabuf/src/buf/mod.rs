//! Shared buffers (kernel: `struct dma_buf` and its attachments): exporters own storage,
//! importers attach devices and map it, the reservation object orders their accesses.
//!
//! * [`DmaBuf`] — the buffer: exporter, size, name, reservation object; `vmap`, `mmap`,
//!   `move_notify`, the debug listing ([`bufinfo`]).
//! * [`Exporter`] — the exporter's callbacks (kernel: `dma_buf_ops`); [`Locked`] is the proof
//!   handed to the ones that run under the reservation lock.
//! * [`Attachment`] — a device attached as a [`Static`] or [`Dynamic`] importer
//!   ([`Importer`] receives `move_notify`); [`Mapping`] — an attachment mapped for a
//!   [`Direction`]: its scatter list ([`SgTable`]) of [`Segment`]s of the device's address
//!   space.
//! * [`Device`] — something that does DMA through its own address space; [`Memory`] — bytes
//!   devices and the CPU copy in and out of.
//! * [`CpuAccess`] — the begin/end CPU access bracket.
//! * Implicit sync as the fd offers it: [`DmaBuf::export_sync_file`],
//!   [`DmaBuf::import_sync_file`], [`DmaBuf::is_ready`] and its waits (the poll rules).
//! * [`exporters`] — three exporters: the system heap, memfd-backed buffers another process
//!   can map, and a device's local memory whose buffers are evicted to host memory (the
//!   dynamic one).
//!
//! # The locking convention (kernel: dma-buf.c, "locking convention")
//! | call | reservation lock |
//! |---|---|
//! | [`Attachment::map`], [`Mapping::unmap`], [`Attachment::pin`], [`Attachment::unpin`], [`DmaBuf::vmap`], [`VMap::vunmap`], [`DmaBuf::move_notify`] | held: each takes the guard as proof |
//! | [`DmaBuf::attach`], [`DmaBuf::dynamic_attach`], detach (drop), [`DmaBuf::begin_cpu_access`], [`CpuAccess::end`], [`DmaBuf::mmap`], [`DmaBuf::import_sync_file`] | not held: they take it, or might; the validator reports a holder |
//!
//! Kernel: `drivers/dma-buf/dma-buf.c`, `include/linux/dma-buf.h`.

mod attachment;
mod cpu_access;
mod device;
mod direction;
mod dma_buf;
mod exporter;
pub mod exporters;
mod implicit_sync;
mod kept;
mod mapping;
mod memory;
mod sg;

pub use attachment::{Attachment, Dynamic, ImportMode, Importer, Static};
pub use cpu_access::CpuAccess;
pub use device::{Device, DeviceCaps};
pub use direction::Direction;
pub use dma_buf::{DmaBuf, NAME_MAX, VMap, WeakDmaBuf, bufinfo};
pub use exporter::{Exporter, Locked};
pub use mapping::Mapping;
pub use memory::{HostMemory, Memory, PAGE_SIZE};
pub use sg::{Segment, SgTable};
