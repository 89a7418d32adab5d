//! A kernel dma-buf as a library buffer: an [`Exporter`] over a [`DmaBufFd`].
//!
//! [`KernelBuffer::export`] maps the kernel buffer once and exports a library
//! [`DmaBuf`] whose storage is that mapping, so library importers ([`Device`]s) attach, map,
//! pin and read or write it like any library buffer, and the bytes land in the kernel buffer
//! that GPUs, codecs or other processes share.
//!
//! # Rules it keeps
//! * Every byte the library reads or writes goes through a `DMA_BUF_IOCTL_SYNC` bracket of
//!   the matching direction, opened and closed around that one copy, as the uAPI asks of CPU
//!   access; copies within this process are serialised, so no two of its threads touch the
//!   mapping at once.
//! * The storage never moves: the exporter is static, so dynamic importers get the
//!   seed-001 treatment (mapped and cached at attach).
//! * Implicit sync crosses one way. [`KernelBuffer::import_kernel_fences`] brings the kernel
//!   buffer's pending fences into the library buffer's reservation object (the kernel's
//!   writers as library writers, everyone as library readers), bridged by a [`Reactor`]:
//!   library readers then wait for kernel writers, library writers for everybody.
//!
//! # Differences from the kernel
//! * The library's fences do not flow back: user space cannot make a kernel fence that it
//!   signals (that is `sw_sync`, absent from distribution kernels), so a kernel importer
//!   does not wait for library work on this buffer. Synchronise explicitly, or signal
//!   through a device that owns kernel fences.
//! * Library importers reach the memory through CPU copies of the mapping; a kernel importer
//!   would get a scatter-gather table of pages.

use crate::dma_buf::{load_bytes, store_bytes};
use crate::error::{Error, Result};
use crate::{Access, DmaBufFd, Reactor, uapi};
use dmabuf::buf::{Device, Direction, DmaBuf, Exporter, Locked, Memory, SgTable};
use dmabuf::sync_file::SyncFile;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex, PoisonError};

/// The largest segment of a library mapping of a kernel buffer.
const MAX_SEGMENT: usize = 64 * 1024;

/// The exporter of a library [`DmaBuf`] made from a kernel dma-buf.
///
/// ```no_run
/// use dmabuf::buf::{Device, DeviceCaps, Direction};
/// use dmabuf_linux::{DmaHeap, KernelBuffer};
///
/// let kernel = DmaHeap::open("system")?.alloc(4096)?;
/// let buf = KernelBuffer::export(kernel)?;
/// let codec = Device::new("codec", DeviceCaps::NONE);
/// let attachment = buf.attach(&codec)?;
/// let guard = buf.resv().lock_single();
/// let mapping = attachment.map(&guard, Direction::ToDevice)?;
/// mapping.dma_write(0, b"frame")?; // lands in the kernel buffer
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct KernelBuffer {
    name: String,
    size: u64,
    memory: Arc<KernelMemory>,
}

impl KernelBuffer {
    /// Maps `fd` and exports it as a library buffer named `kernel:<exporter>` after the
    /// kernel's exporter (`exp_name` in its fdinfo, e.g. `kernel:system`).
    ///
    /// # Errors
    /// [`Error::Sys`] if the size, fdinfo or `mmap` fails (some exporters cannot be mapped);
    /// [`Error::ZeroLength`] for an empty buffer.
    pub fn export(fd: DmaBufFd) -> Result<DmaBuf> {
        let size = fd.size()?;
        if size == 0 {
            return Err(Error::ZeroLength);
        }
        let exporter = fd.fdinfo()?.exp_name;
        let len = usize::try_from(size).map_err(|_| Error::Sys {
            call: "mmap",
            errno: rustix::io::Errno::NOMEM,
        })?;
        let map = uapi::Mapping::new(&fd, len).map_err(Error::sys("mmap(dma-buf)"))?;
        let buffer = KernelBuffer {
            name: format!("kernel:{exporter}"),
            size,
            memory: Arc::new(KernelMemory {
                fd,
                map: Mutex::new(map),
                len,
            }),
        };
        DmaBuf::export(buffer).map_err(Error::from)
    }

    /// The kernel buffer.
    pub fn fd(&self) -> &DmaBufFd {
        &self.memory.fd
    }

    /// Brings the kernel buffer's pending implicit fences into `buf` (a buffer this exporter
    /// made): the fences a kernel reader waits for become library writers, and all of them
    /// become library readers, each a library fence bridged through `reactor` (it signals
    /// when the kernel's does, with its error). Fences already signalled are skipped. Call it
    /// before library work that must follow kernel work queued so far.
    ///
    /// # Errors
    /// [`Error::InvalidFlags`] if `buf` is not a kernel buffer's; [`Error::Sys`] from
    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` or the reactor; a library error if the reservation
    /// refuses the fences.
    pub fn import_kernel_fences(buf: &DmaBuf, reactor: &Reactor) -> Result<()> {
        let this = buf
            .exporter_as::<KernelBuffer>()
            .ok_or_else(|| Error::WrongExporter {
                exporter: buf.exporter().name().to_owned(),
            })?;
        // The kernel's writers (what its readers wait for) first, then everyone.
        for (kernel, library) in [(Access::Read, Access::Write), (Access::Write, Access::Read)] {
            let file = this.fd().export_sync_file(kernel)?;
            if file.is_signaled()? {
                continue;
            }
            let fence = file.to_fence(reactor).map_err(|(e, _file)| e)?;
            buf.import_sync_file(&SyncFile::new(fence), library)?;
        }
        Ok(())
    }

    fn memory(&self) -> Arc<dyn Memory> {
        self.memory.clone()
    }
}

impl Exporter for KernelBuffer {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn map(
        &self,
        _locked: &Locked<'_>,
        device: &Device,
        direction: Direction,
    ) -> dmabuf::Result<SgTable> {
        SgTable::map_memory(
            device,
            direction,
            &self.memory(),
            self.memory.len,
            MAX_SEGMENT,
        )
    }

    fn unmap(&self, _locked: &Locked<'_>, table: SgTable) {
        table.unmap_from_device();
    }

    fn vmap(&self, _locked: &Locked<'_>) -> dmabuf::Result<Arc<dyn Memory>> {
        Ok(self.memory())
    }

    fn mmap(&self, _buf: &DmaBuf) -> dmabuf::Result<Arc<dyn Memory>> {
        Ok(self.memory())
    }
}

/// The mapping of a kernel dma-buf, read and written in `DMA_BUF_IOCTL_SYNC` brackets.
struct KernelMemory {
    fd: DmaBufFd,
    /// One copy at a time: the lock makes the copies of this process's threads exclusive.
    map: Mutex<uapi::Mapping>,
    len: usize,
}

impl std::fmt::Debug for KernelMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelMemory")
            .field("fd", &self.fd)
            .field("len", &self.len)
            .finish()
    }
}

impl KernelMemory {
    /// Runs `copy` on the mapping inside a bracket for `access`.
    fn bracketed(
        &self,
        access: Access,
        offset: usize,
        len: usize,
        copy: impl FnOnce(&[AtomicU8]),
    ) -> dmabuf::Result<()> {
        let range = offset
            .checked_add(len)
            .filter(|&end| end <= self.len)
            .map(|end| offset..end)
            .ok_or(dmabuf::Error::Fault {
                addr: offset as u64,
                len: len as u64,
            })?;
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let bracket = self.fd.begin_cpu_access(access)?;
        copy(&map.bytes()[range]);
        Ok(bracket.end()?)
    }
}

impl Memory for KernelMemory {
    fn len(&self) -> usize {
        self.len
    }

    fn read_at(&self, offset: usize, dst: &mut [u8]) -> dmabuf::Result<()> {
        self.bracketed(Access::Read, offset, dst.len(), |bytes| {
            load_bytes(bytes, dst);
        })
    }

    fn write_at(&self, offset: usize, src: &[u8]) -> dmabuf::Result<()> {
        self.bracketed(Access::Write, offset, src.len(), |bytes| {
            store_bytes(bytes, src);
        })
    }
}
