//! The kernel devices `demo --kernel` needs, looked for before any process starts, and the
//! buffers it allocates from them.
//!
//! * Buffers: the system dma-heap (`/dev/dma_heap/system`), else udmabuf (`/dev/udmabuf`)
//!   over a sealed memfd.
//! * Timelines: a DRM render node whose driver has timeline syncobjs
//!   (`DRM_CAP_SYNCOBJ_TIMELINE`), for the explicit-sync edges.
//! * Pending kernel fences: vgem (`/dev/dri/card*` of driver `vgem`), for the implicit-sync
//!   edge: user space cannot otherwise put a kernel fence it signals itself into a buffer's
//!   reservation object, and the distribution kernels have no `sw_sync`.

use dmabuf_linux::{DmaBufFd, DmaHeap, DrmDevice, MappedDmaBuf, Udmabuf, Vgem};
use rustix::fs::{MemfdFlags, SealFlags};
use std::fmt;

/// Where buffers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocator {
    /// The system dma-heap.
    SystemHeap,
    /// udmabuf over a sealed memfd.
    Udmabuf,
}

impl fmt::Display for Allocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Allocator::SystemHeap => "/dev/dma_heap/system",
            Allocator::Udmabuf => "/dev/udmabuf",
        })
    }
}

impl Allocator {
    /// A new buffer of `len` bytes (a multiple of the page size).
    ///
    /// # Errors
    /// The device or the allocation failed.
    pub fn alloc(self, len: u64) -> Result<DmaBufFd, dmabuf_linux::Error> {
        match self {
            Allocator::SystemHeap => DmaHeap::open("system")?.alloc(len),
            Allocator::Udmabuf => {
                let sys = |call| move |e| dmabuf_linux::Error::Sys { call, errno: e };
                let memfd = rustix::fs::memfd_create(
                    "dmabuf-demo",
                    MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
                )
                .map_err(sys("memfd_create"))?;
                rustix::fs::ftruncate(&memfd, len).map_err(sys("ftruncate"))?;
                rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK)
                    .map_err(sys("fcntl(F_ADD_SEALS)"))?;
                Udmabuf::open()?.create(&memfd, 0, len)
            }
        }
    }
}

/// `n` new buffers of `len` bytes from `allocator`.
///
/// # Errors
/// As [`Allocator::alloc`].
pub fn alloc_all(
    allocator: Allocator,
    n: usize,
    len: u64,
) -> Result<Vec<DmaBufFd>, dmabuf_linux::Error> {
    (0..n).map(|_| allocator.alloc(len)).collect()
}

/// A mapping of each of `buffers`, in order.
///
/// # Errors
/// A mapping failed.
pub fn map_all(buffers: &[DmaBufFd]) -> Result<Vec<MappedDmaBuf<'_>>, dmabuf_linux::Error> {
    buffers.iter().map(DmaBufFd::mmap).collect()
}

/// The devices found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// Where buffers come from.
    pub allocator: Allocator,
    /// The render node with timeline syncobjs, and its driver.
    pub render_node: String,
}

/// Looks for every device the run needs.
///
/// # Errors
/// One line for each missing device, saying what it is for and what was tried.
pub fn probe() -> Result<Devices, Vec<String>> {
    let mut missing = Vec::new();
    let allocator = match (DmaHeap::open("system"), Udmabuf::open()) {
        (Ok(_), _) => Some(Allocator::SystemHeap),
        (Err(_), Ok(_)) => Some(Allocator::Udmabuf),
        (Err(heap), Err(udmabuf)) => {
            missing.push(format!(
                "buffers: neither the system dma-heap ({heap}) nor udmabuf ({udmabuf})"
            ));
            None
        }
    };
    let render_node = match DrmDevice::find_timeline_syncobj() {
        Ok(dev) => Some(format!("{} ({})", dev.path().display(), dev.driver().name)),
        Err(e) => {
            missing.push(format!("timeline syncobjs: {e}"));
            None
        }
    };
    if let Err(e) = Vgem::open() {
        missing.push(format!(
            "pending kernel fences: no vgem device ({e}; `modprobe vgem` as root)"
        ));
    }
    match (allocator, render_node) {
        (Some(allocator), Some(render_node)) if missing.is_empty() => Ok(Devices {
            allocator,
            render_node,
        }),
        _ => Err(missing),
    }
}
