//! Simulated device-local memory with a capacity and eviction: the dynamic exporter (kernel:
//! a GPU driver's VRAM placement under TTM, `ttm_bo_evict()`, with `amdgpu_dma_buf`'s
//! dynamic exporting).
//!
//! A [`DeviceMemory`] pool belongs to a device and holds up to `capacity` bytes. Buffers are
//! allocated in it; when it is full, allocating evicts the least recently placed unpinned
//! buffers to host memory. Eviction locks the victim's reservation object (a trylock, as TTM
//! does without a ticket: a busy victim is skipped), waits for all its fences, calls
//! [`DmaBuf::move_notify`] and copies the bytes. Mapping an evicted buffer for the pool's
//! own device brings it back when there is room and nothing pins it.
//!
//! # Rules
//! * Allocating is a reclaim point: with the validator on, allocating in a fence signalling
//!   section is reported (it may wait for fences through eviction). Eviction runs in a
//!   reclaim scope.
//! * A pinned buffer never moves, out (eviction) or back in (a map for the pool's device
//!   maps it where it is); a buffer mapped by a static importer is pinned (the framework
//!   pins at attach for them), and so is a buffer with a live [`DmaBuf::vmap`] (the CPU
//!   view stays valid until the last `vunmap`).
//! * Importers that keep writing through a mapping after `move_notify` write into memory the
//!   buffer no longer uses: the fences they add are what make eviction wait for them.
//!
//! # Differences from the kernel
//! * One pool per device, byte-counted, least-recently-placed order; no GTT, no domains.

use super::super::memory::PAGE_SIZE;
use crate::buf::{
    Device, Direction, DmaBuf, Exporter, HostMemory, Locked, Memory, SgTable, WeakDmaBuf,
};
use crate::error::{Error, Result};
use crate::resv::Usage;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest segment a device-memory mapping has.
const MAX_SEGMENT: usize = 256 * 1024;

/// A device's local memory: a capacity, and the buffers placed in it.
///
/// ```
/// use dmabuf::buf::{Device, DeviceCaps};
/// use dmabuf::buf::exporters::{DeviceMemory, Placement};
/// let gpu = Device::new("gpu", DeviceCaps::NONE);
/// let vram = DeviceMemory::new(&gpu, 8192);
/// let a = vram.alloc(4096)?;
/// let b = vram.alloc(4096)?;
/// let c = vram.alloc(4096)?; // full: evicts `a`, the least recently placed
/// assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
/// assert_eq!(DeviceMemory::placement(&c), Some(Placement::Device));
/// assert_eq!(vram.evictions(), 1);
/// # drop(b);
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[derive(Debug)]
pub struct DeviceMemory {
    device: Device,
    capacity: u64,
    /// Bytes in use and the resident buffers, oldest placement first (a leaf lock).
    pool: Mutex<Pool>,
    evictions: AtomicU64,
    restores: AtomicU64,
}

/// The pool's books. Its lock is a leaf, and a buffer's release takes it, so no handle may
/// be dropped while it is held.
#[derive(Debug, Default)]
struct Pool {
    used: u64,
    resident: VecDeque<WeakDmaBuf>,
}

/// Where a device-memory buffer's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the pool's device memory.
    Device,
    /// Evicted to host memory.
    Host,
}

/// A device-memory buffer's exporter.
#[derive(Debug)]
pub struct DevMemBuffer {
    pool: Arc<DeviceMemory>,
    size: u64,
    /// Changed only with the buffer's reservation lock held (a leaf lock).
    state: Mutex<BufState>,
}

#[derive(Debug)]
struct BufState {
    placement: Placement,
    memory: Arc<HostMemory>,
    pins: usize,
}

impl DeviceMemory {
    /// A pool of `capacity` bytes of `device`'s local memory.
    pub fn new(device: &Device, capacity: u64) -> Arc<Self> {
        Arc::new(DeviceMemory {
            device: device.clone(),
            capacity,
            pool: Mutex::new(Pool::default()),
            evictions: AtomicU64::new(0),
            restores: AtomicU64::new(0),
        })
    }

    /// The device whose memory this is.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.pool.lock().used
    }

    /// Buffers moved out so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Buffers moved back in so far.
    pub fn restores(&self) -> u64 {
        self.restores.load(Ordering::Relaxed)
    }

    /// Where `buf`'s bytes are, if it is a buffer of a device-memory pool.
    pub fn placement(buf: &DmaBuf) -> Option<Placement> {
        buf.exporter_as::<DevMemBuffer>()
            .map(|e| e.state.lock().placement)
    }

    /// Allocates `size` zeroed bytes (rounded up to pages) in device memory, evicting others
    /// if needed. A reclaim point: do not call it in a fence signalling section.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for zero or more than the capacity; [`Error::NoMemory`] when
    /// nothing can be evicted (everything pinned or locked).
    pub fn alloc(self: &Arc<Self>, size: u64) -> Result<DmaBuf> {
        crate::validate::might_reclaim();
        let len = super::super::memory::page_align(size).ok_or(Error::InvalidSize(size))?;
        if len as u64 > self.capacity {
            return Err(Error::InvalidSize(size));
        }
        self.reserve(len as u64, None)?;
        let memory = match HostMemory::zeroed(len as u64) {
            Some(m) => Arc::new(m),
            None => {
                self.pool.lock().used -= len as u64;
                return Err(Error::NoMemory);
            }
        };
        let buf = DmaBuf::export(DevMemBuffer {
            pool: self.clone(),
            size: len as u64,
            state: Mutex::new(BufState {
                placement: Placement::Device,
                memory,
                pins: 0,
            }),
        })?;
        self.pool.lock().resident.push_back(buf.downgrade());
        Ok(buf)
    }

    /// Claims `bytes` of the pool, evicting (oldest first, skipping `except`) until they fit.
    fn reserve(&self, bytes: u64, except: Option<&DmaBuf>) -> Result<()> {
        // Victims that could not move (locked, pinned) or must not: skipped from the front.
        let mut skipped = 0;
        loop {
            let victim = {
                let mut pool = self.pool.lock();
                if pool.used + bytes <= self.capacity {
                    pool.used += bytes;
                    return Ok(());
                }
                // Never upgrade-and-drop under the pool lock: a buffer's release takes it.
                pool.resident.retain(|w| !w.is_released());
                match pool.resident.get(skipped).map(WeakDmaBuf::upgrade) {
                    Some(Some(b)) => b,
                    Some(None) => continue, // released since the retain
                    None => return Err(Error::NoMemory),
                }
            };
            if except.is_some_and(|e| e.ptr_eq(&victim)) || !self.evict(&victim)? {
                skipped += 1;
            }
        }
    }

    /// Evicts every unpinned, unlocked buffer (a test and benchmark helper); returns how many
    /// moved.
    ///
    /// # Errors
    /// As eviction: only if host memory runs out.
    pub fn evict_all(&self) -> Result<usize> {
        let victims: Vec<DmaBuf> = self
            .pool
            .lock()
            .resident
            .iter()
            .filter_map(WeakDmaBuf::upgrade)
            .collect();
        let mut moved = 0;
        for v in victims {
            if self.evict(&v)? {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Moves `victim` to host memory: trylock, wait for every fence, `move_notify`, copy.
    /// `Ok(false)` if it is locked by someone else or pinned.
    fn evict(&self, victim: &DmaBuf) -> Result<bool> {
        let _scope = crate::validate::reclaim_scope();
        let Some(exporter) = victim.exporter_as::<DevMemBuffer>() else {
            return Ok(false);
        };
        let Some(guard) = victim.resv().try_lock_single() else {
            return Ok(false);
        };
        if exporter.state.lock().pins > 0 {
            return Ok(false);
        }
        // Everything that may still touch the old placement: kernel moves, writers, readers
        // and bookkeeping work alike.
        victim.resv().wait(Usage::Bookkeep);
        victim.move_notify(&guard)?;
        let moved = {
            let mut st = exporter.state.lock();
            if st.placement == Placement::Device {
                st.memory = copy_of(&st.memory);
                st.placement = Placement::Host;
                true
            } else {
                false
            }
        };
        // The books change with the placement, under the reservation lock: a restore that
        // takes the lock next must find them already updated, or this retain would drop its
        // new entry (the pool lock is a leaf, so taking it here is fine).
        if moved {
            let mut pool = self.pool.lock();
            pool.used -= exporter.size;
            pool.resident
                .retain(|w| !w.is_released() && !w.points_to(victim));
        }
        drop(guard);
        if moved {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(moved)
    }
}

/// A fresh copy of `memory` (one copy of the bytes: the simulated migration).
fn copy_of(memory: &HostMemory) -> Arc<HostMemory> {
    Arc::new(HostMemory::from_bytes(memory.to_vec()))
}

impl DevMemBuffer {
    /// Brings an evicted buffer back into device memory, if there is room (or room can be
    /// made) and nothing pins it where it is: a pinned buffer is mapped in host memory
    /// (kernel: `amdgpu_dma_buf_map()` validates a new placement only for an unpinned BO).
    /// Called with its lock held.
    fn restore(&self, locked: &Locked<'_>) -> Result<()> {
        {
            let st = self.state.lock();
            if st.placement == Placement::Device || st.pins > 0 {
                return Ok(());
            }
        }
        if self.pool.reserve(self.size, Some(locked.buf())).is_err() {
            return Ok(()); // stays in host memory; still mappable
        }
        locked.buf().resv().wait(Usage::Bookkeep);
        if let Err(e) = locked.buf().move_notify(locked.guard()) {
            self.pool.pool.lock().used -= self.size; // the bytes reserved above
            return Err(e);
        }
        {
            let mut st = self.state.lock();
            st.memory = copy_of(&st.memory);
            st.placement = Placement::Device;
        }
        // Placement and books change together under the reservation lock (see `evict`).
        self.pool
            .pool
            .lock()
            .resident
            .push_back(locked.buf().downgrade());
        self.pool.restores.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Exporter for DevMemBuffer {
    fn name(&self) -> &str {
        "devmem"
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn is_dynamic(&self) -> bool {
        true
    }

    fn pin(&self, _locked: &Locked<'_>, _device: &Device) -> Result<()> {
        self.state.lock().pins += 1;
        Ok(())
    }

    fn unpin(&self, _locked: &Locked<'_>, _device: &Device) {
        let mut st = self.state.lock();
        st.pins = st.pins.saturating_sub(1);
    }

    fn map(&self, locked: &Locked<'_>, device: &Device, direction: Direction) -> Result<SgTable> {
        if device.same(&self.pool.device) {
            self.restore(locked)?;
        }
        let memory: Arc<dyn Memory> = self.state.lock().memory.clone();
        SgTable::map_memory(device, direction, &memory, self.size as usize, MAX_SEGMENT)
    }

    fn unmap(&self, _locked: &Locked<'_>, table: SgTable) {
        table.unmap_from_device();
    }

    /// The buffer's memory where it is now, pinned there until [`vunmap`](Self::vunmap)
    /// (kernel: `amdgpu_dma_buf_vmap()` pins, `amdgpu_dma_buf_vunmap()` unpins). The
    /// framework calls this once for all concurrent vmaps, so one pin covers them.
    fn vmap(&self, _locked: &Locked<'_>) -> Result<Arc<dyn Memory>> {
        let mut st = self.state.lock();
        st.pins += 1;
        Ok(st.memory.clone())
    }

    fn vunmap(&self, _locked: &Locked<'_>, _memory: Arc<dyn Memory>) {
        let mut st = self.state.lock();
        st.pins = st.pins.saturating_sub(1);
    }
}

impl Drop for DevMemBuffer {
    fn drop(&mut self) {
        if self.state.get_mut().placement == Placement::Device {
            self.pool.pool.lock().used -= self.size;
        }
    }
}

const _: () = assert!(MAX_SEGMENT.is_multiple_of(PAGE_SIZE));
