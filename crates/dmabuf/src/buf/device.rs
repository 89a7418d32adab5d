//! Devices and their address spaces (kernel: `struct device` and its DMA/IOMMU mappings).
//!
//! A [`Device`] is something that does DMA: a GPU-like engine, a codec, a camera, a NIC. It
//! has a name, capabilities, and an address space: exporters map [`Memory`] into it when an
//! importer maps an attachment, which gives the importer a scatter list of
//! [`Segment`]s (device address, length); the device then reads and writes through those
//! addresses ([`Device::dma_read`], [`Device::dma_write`]). An address that maps nothing
//! faults, as it would on an IOMMU: a mapping used after it was unmapped is caught.
//!
//! # Differences from the kernel
//! * Each device has its own flat address space with a bump allocator, and a mapping points
//!   at a [`Memory`] object, not at physical pages: after an exporter moves a buffer, an
//!   importer that keeps writing through its stale mapping writes into the old memory, where
//!   the buffer's new owner will never see it — the bug that fences and `move_notify`
//!   prevent, made visible.

use super::memory::PAGE_SIZE;
use super::{Memory, Segment};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The first device address handed out (0 stays invalid).
const FIRST_ADDRESS: u64 = 0x1_0000_0000;

/// What a device can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceCaps {
    /// It can reach another device's local memory directly (kernel: an importer with
    /// `allow_peer2peer`); otherwise exporters must place shared storage in host memory.
    pub peer_to_peer: bool,
}

impl DeviceCaps {
    /// No special capabilities.
    pub const NONE: DeviceCaps = DeviceCaps {
        peer_to_peer: false,
    };

    /// Peer-to-peer capable.
    pub const PEER_TO_PEER: DeviceCaps = DeviceCaps { peer_to_peer: true };
}

/// A device that does DMA. Cheap to clone: clones are the same device.
///
/// ```
/// use dmabuf::buf::{Device, DeviceCaps, HostMemory};
/// use std::sync::Arc;
/// let gpu = Device::new("gpu0", DeviceCaps::NONE);
/// let mem = Arc::new(HostMemory::zeroed(4096).unwrap());
/// let seg = gpu.map(mem.clone(), 0, 4096)?;
/// gpu.dma_write(seg.addr + 8, b"pixels")?;
/// let mut back = [0u8; 6];
/// gpu.dma_read(seg.addr + 8, &mut back)?;
/// assert_eq!(&back, b"pixels");
/// gpu.unmap(seg)?;
/// assert!(gpu.dma_read(seg.addr, &mut back).is_err()); // faults once unmapped
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[derive(Clone)]
pub struct Device(Arc<Inner>);

struct Inner {
    name: String,
    caps: DeviceCaps,
    /// The address space (a leaf lock: nothing is called while it is held).
    space: Mutex<Space>,
}

/// A device's address space.
struct Space {
    /// The next address to hand out.
    next: u64,
    /// Mapped windows by start address.
    windows: BTreeMap<u64, Window>,
}

/// One mapped range.
struct Window {
    len: u64,
    memory: Arc<dyn Memory>,
    offset: usize,
}

impl Device {
    /// A new device.
    pub fn new(name: impl Into<String>, caps: DeviceCaps) -> Self {
        Device(Arc::new(Inner {
            name: name.into(),
            caps,
            space: Mutex::new(Space {
                next: FIRST_ADDRESS,
                windows: BTreeMap::new(),
            }),
        }))
    }

    /// The device's name (kernel: `dev_name()`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Its capabilities.
    pub fn caps(&self) -> DeviceCaps {
        self.0.caps
    }

    /// Whether `self` and `other` are the same device.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Maps `len` bytes of `memory` from `offset` into this device's address space (kernel:
    /// `dma_map_sgtable()`, for an exporter's `map_dma_buf`).
    ///
    /// # Errors
    /// [`Error::Fault`] if the range is not inside `memory` or `len` is zero;
    /// [`Error::NoMemory`] if the address space is exhausted.
    pub fn map(&self, memory: Arc<dyn Memory>, offset: usize, len: u64) -> Result<Segment> {
        let fits = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .and_then(|l| offset.checked_add(l))
            .is_some_and(|end| end <= memory.len());
        if !fits {
            return Err(Error::Fault {
                addr: offset as u64,
                len,
            });
        }
        let mut space = self.0.space.lock();
        let addr = space.next;
        let span = len
            .checked_next_multiple_of(PAGE_SIZE as u64)
            .ok_or(Error::NoMemory)?;
        space.next = addr.checked_add(span).ok_or(Error::NoMemory)?;
        space.windows.insert(
            addr,
            Window {
                len,
                memory,
                offset,
            },
        );
        Ok(Segment { addr, len })
    }

    /// Removes a mapping made by [`map`](Self::map) (kernel: `dma_unmap_sgtable()`).
    ///
    /// # Errors
    /// [`Error::Fault`] if `segment` is not a live mapping of this device.
    pub fn unmap(&self, segment: Segment) -> Result<()> {
        let mut space = self.0.space.lock();
        match space.windows.get(&segment.addr) {
            Some(w) if w.len == segment.len => {
                space.windows.remove(&segment.addr);
                Ok(())
            }
            _ => Err(Error::Fault {
                addr: segment.addr,
                len: segment.len,
            }),
        }
    }

    /// The memory behind `addr..addr + len`, and the offset in it.
    fn resolve(&self, addr: u64, len: usize) -> Result<(Arc<dyn Memory>, usize)> {
        let fault = Error::Fault {
            addr,
            len: len as u64,
        };
        let space = self.0.space.lock();
        let (&start, w) = space
            .windows
            .range(..=addr)
            .next_back()
            .ok_or(fault.clone())?;
        let within = addr - start;
        match within.checked_add(len as u64) {
            Some(end) if end <= w.len => Ok((w.memory.clone(), w.offset + within as usize)),
            _ => Err(fault),
        }
    }

    /// The device reads `dst.len()` bytes at device address `addr` (one DMA transfer; it may
    /// not cross a mapping's end).
    ///
    /// # Errors
    /// [`Error::Fault`] if the range is not inside one live mapping.
    pub fn dma_read(&self, addr: u64, dst: &mut [u8]) -> Result<()> {
        let (memory, offset) = self.resolve(addr, dst.len())?;
        memory.read_at(offset, dst)
    }

    /// The device writes `src` at device address `addr` (one DMA transfer).
    ///
    /// # Errors
    /// [`Error::Fault`] if the range is not inside one live mapping.
    pub fn dma_write(&self, addr: u64, src: &[u8]) -> Result<()> {
        let (memory, offset) = self.resolve(addr, src.len())?;
        memory.write_at(offset, src)
    }

    /// Number of live mappings in the address space (a leak check for tests).
    pub fn mapped_segments(&self) -> usize {
        self.0.space.lock().windows.len()
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.0.name)
            .field("caps", &self.0.caps)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HostMemory;

    #[test]
    fn accesses_must_stay_inside_one_live_mapping() {
        let dev = Device::new("dev", DeviceCaps::NONE);
        let mem: Arc<dyn Memory> = Arc::new(HostMemory::zeroed(8192).expect("size"));
        assert!(dev.map(mem.clone(), 0, 0).is_err(), "empty");
        assert!(dev.map(mem.clone(), 4096, 8192).is_err(), "past the end");
        let a = dev.map(mem.clone(), 4096, 100).expect("map");
        let b = dev.map(mem.clone(), 0, 4096).expect("map");
        assert_ne!(a.addr, b.addr);
        assert_eq!(dev.mapped_segments(), 2);
        dev.dma_write(a.addr + 99, &[1]).expect("last byte");
        assert!(
            dev.dma_write(a.addr + 99, &[1, 2]).is_err(),
            "crosses the end"
        );
        assert!(dev.dma_write(a.addr - 1, &[1]).is_err(), "before the first");
        let mut x = [0u8; 1];
        mem.read_at(4096 + 99, &mut x).expect("read");
        assert_eq!(x, [1], "written at the mapped offset");
        assert!(
            dev.unmap(Segment {
                addr: a.addr,
                len: 99
            })
            .is_err(),
            "wrong length"
        );
        dev.unmap(a).expect("unmap");
        assert!(dev.unmap(a).is_err(), "twice");
        assert!(
            dev.dma_read(a.addr, &mut x).is_err(),
            "stale address faults"
        );
        assert_eq!(dev.mapped_segments(), 1);
    }
}
