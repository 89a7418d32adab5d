//! Memory a buffer's storage lives in, as the CPU and simulated devices reach it.
//!
//! A [`Memory`] is a byte range that copies in and out (`read_at`, `write_at`) and is safe to
//! share between threads: what a kernel `struct page` list, a memfd or a device's local memory
//! is to a driver. Exporters hand it to devices (through their address spaces, see
//! [`Device`](super::Device)) and to the CPU ([`DmaBuf::vmap`](super::DmaBuf::vmap),
//! [`DmaBuf::mmap`](super::DmaBuf::mmap)).
//!
//! # Differences from the kernel
//! * There are no raw pointers to the bytes: every access is a copy under the memory's own
//!   lock, so a simulated device and the CPU can never tear a single access. What a buffer
//!   does not get for free is *ordering* between accesses: that is what fences are for, as in
//!   the kernel.

use crate::error::{Error, Result};
use parking_lot::RwLock;
use std::fmt;

/// The page size exporters round buffer sizes to (kernel: `PAGE_SIZE` on x86-64).
pub const PAGE_SIZE: usize = 4096;

/// Bytes that devices and the CPU copy in and out of.
///
/// Implementations synchronise each call internally; concurrent calls on overlapping ranges
/// see each other's bytes in some order, never a torn single call.
pub trait Memory: Send + Sync + fmt::Debug {
    /// Length in bytes.
    fn len(&self) -> usize;

    /// Whether the length is zero.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `dst.len()` bytes from `offset` into `dst`.
    ///
    /// # Errors
    /// [`Error::Fault`] if the range is outside the memory.
    fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<()>;

    /// Copies `src` to `offset`.
    ///
    /// # Errors
    /// [`Error::Fault`] if the range is outside the memory.
    fn write_at(&self, offset: usize, src: &[u8]) -> Result<()>;
}

/// Checks that `offset..offset + len` lies within `size` bytes.
pub(crate) fn check_range(size: usize, offset: usize, len: usize) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::Fault {
            addr: offset as u64,
            len: len as u64,
        }),
    }
}

/// `size` rounded up to whole pages, or `None` for zero or on overflow.
pub(crate) fn page_align(size: u64) -> Option<usize> {
    let size = usize::try_from(size).ok().filter(|&s| s > 0)?;
    size.checked_next_multiple_of(PAGE_SIZE)
}

/// Zeroed host memory in whole pages (kernel: the system heap's pages).
///
/// ```
/// use dmabuf::buf::{HostMemory, Memory};
/// let m = HostMemory::zeroed(100).unwrap();
/// assert_eq!(m.len(), 4096); // whole pages
/// m.write_at(10, b"hi")?;
/// let mut b = [0u8; 3];
/// m.read_at(9, &mut b)?;
/// assert_eq!(&b, b"\0hi");
/// # Ok::<(), dmabuf::Error>(())
/// ```
pub struct HostMemory {
    bytes: RwLock<Box<[u8]>>,
}

impl HostMemory {
    /// `size` bytes rounded up to whole pages, zeroed; `None` for zero, an overflowing size
    /// or one the allocator refuses (instead of aborting).
    pub fn zeroed(size: u64) -> Option<Self> {
        let len = page_align(size)?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(len).ok()?;
        bytes.resize(len, 0);
        Some(HostMemory {
            bytes: RwLock::new(bytes.into_boxed_slice()),
        })
    }

    /// Host memory holding `bytes` (their length should be whole pages).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        HostMemory {
            bytes: RwLock::new(bytes.into_boxed_slice()),
        }
    }

    /// A copy of every byte.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.read().to_vec()
    }
}

impl Memory for HostMemory {
    fn len(&self) -> usize {
        self.bytes.read().len()
    }

    fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        let bytes = self.bytes.read();
        check_range(bytes.len(), offset, dst.len())?;
        dst.copy_from_slice(&bytes[offset..offset + dst.len()]);
        Ok(())
    }

    fn write_at(&self, offset: usize, src: &[u8]) -> Result<()> {
        let mut bytes = self.bytes.write();
        check_range(bytes.len(), offset, src.len())?;
        bytes[offset..offset + src.len()].copy_from_slice(src);
        Ok(())
    }
}

impl fmt::Debug for HostMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostMemory")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_memory_is_zeroed_whole_pages_and_bounds_checked() {
        assert!(HostMemory::zeroed(0).is_none());
        assert!(HostMemory::zeroed(u64::MAX).is_none());
        let m = HostMemory::zeroed(PAGE_SIZE as u64 + 1).expect("size");
        assert_eq!(m.len(), 2 * PAGE_SIZE);
        assert!(m.to_vec().iter().all(|&b| b == 0));
        let mut b = [0u8; 2];
        assert_eq!(
            m.read_at(2 * PAGE_SIZE - 1, &mut b),
            Err(Error::Fault {
                addr: 2 * PAGE_SIZE as u64 - 1,
                len: 2
            })
        );
        assert!(m.write_at(usize::MAX, &b).is_err(), "overflowing offset");
        m.write_at(2 * PAGE_SIZE - 2, &[7, 8]).expect("last bytes");
        m.read_at(2 * PAGE_SIZE - 2, &mut b).expect("read back");
        assert_eq!(b, [7, 8]);
    }
}
