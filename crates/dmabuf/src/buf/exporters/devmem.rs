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
//! * A device without [`DeviceCaps::peer_to_peer`](crate::buf::DeviceCaps) cannot reach
//!   another device's memory: mapping or pinning for one moves the buffer out to host memory
//!   first, and answers [`Error::Busy`] if it is pinned in device memory (for a static
//!   importer, at attach). The pool's own device and peer-to-peer devices map it where it is.
//! * Importers that keep writing through a mapping after `move_notify` write into memory the
//!   buffer no longer uses: the fences they add are what make eviction wait for them.
//!
//! # Differences from the kernel
//! * One pool per device, byte-counted, least-recently-placed order; no GTT, no domains.
//! * Whether a device reaches device memory is its [`DeviceCaps`](crate::buf::DeviceCaps)
//!   (the kernel's importer asks with `allow_peer2peer` and the exporter's `attach` checks
//!   the PCI topology).
//! * A pin looks at the devices attached when it is made: if all reach device memory the
//!   buffer is pinned there, and a device that cannot reach it and attaches later gets
//!   [`Error::Busy`] from its map (and from its attach, for a static importer, which pins)
//!   until the pin goes. The kernel decides the same way at pin time (amdgpu pins in GTT
//!   only when some attachment is not peer-to-peer) and leaves the late importer to fail
//!   its own mapping.

use crate::buf::memory::{PAGE_SIZE, page_align};
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

/// Why a device without peer-to-peer cannot map or pin a buffer ([`Error::Busy`]).
const UNREACHABLE: &str = "pinned in device memory, which this device cannot reach";

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
    occupancy: Mutex<Occupancy>,
    evictions: AtomicU64,
    restores: AtomicU64,
}

/// What occupies the device memory: its books. Its lock is a leaf, and a buffer's release
/// takes it, so no handle may be dropped while it is held.
#[derive(Debug, Default)]
struct Occupancy {
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
    /// The device memory the buffer belongs to (and is in, when placed there).
    device_memory: Arc<DeviceMemory>,
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
            occupancy: Mutex::new(Occupancy::default()),
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
        self.occupancy.lock().used
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
        let len = page_align(size).ok_or(Error::InvalidSize(size))?;
        if len as u64 > self.capacity {
            return Err(Error::InvalidSize(size));
        }
        self.reserve(len as u64, None)?;
        let memory = match HostMemory::zeroed(len as u64) {
            Some(m) => Arc::new(m),
            None => {
                self.occupancy.lock().used -= len as u64;
                return Err(Error::NoMemory);
            }
        };
        let buf = DmaBuf::export(DevMemBuffer {
            device_memory: self.clone(),
            size: len as u64,
            state: Mutex::new(BufState {
                placement: Placement::Device,
                memory,
                pins: 0,
            }),
        })?;
        self.occupancy.lock().resident.push_back(buf.downgrade());
        Ok(buf)
    }

    /// Claims `bytes` of the pool, evicting (oldest first, skipping `except`) until they fit.
    fn reserve(&self, bytes: u64, except: Option<&DmaBuf>) -> Result<()> {
        // Victims that could not move (locked, pinned) or must not: skipped from the front.
        let mut skipped = 0;
        loop {
            let victim = {
                let mut occupancy = self.occupancy.lock();
                if occupancy.used + bytes <= self.capacity {
                    occupancy.used += bytes;
                    return Ok(());
                }
                // Never upgrade-and-drop under the occupancy lock: a buffer's release takes it.
                occupancy.resident.retain(|w| !w.is_released());
                match occupancy.resident.get(skipped).map(WeakDmaBuf::upgrade) {
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
            .occupancy
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

    /// Moves `victim` to host memory: trylock, then [`DevMemBuffer::move_out`].
    /// `Ok(false)` if it is locked by someone else or pinned.
    fn evict(&self, victim: &DmaBuf) -> Result<bool> {
        let _scope = crate::validate::reclaim_scope();
        let Some(exporter) = victim.exporter_as::<DevMemBuffer>() else {
            return Ok(false);
        };
        let Some(guard) = victim.resv().try_lock_single() else {
            return Ok(false);
        };
        let locked = victim.locked(&guard)?;
        exporter.move_out(&locked)
    }
}

/// A fresh copy of `memory` (one copy of the bytes: the simulated migration).
fn copy_of(memory: &HostMemory) -> Arc<HostMemory> {
    Arc::new(HostMemory::from_bytes(memory.to_vec()))
}

impl DevMemBuffer {
    /// Moves the buffer to host memory, with its lock held: waits for every fence, calls
    /// `move_notify`, copies, and updates the pool's books. `Ok(false)` if it is in host
    /// memory already or pinned.
    fn move_out(&self, locked: &Locked<'_>) -> Result<bool> {
        {
            let st = self.state.lock();
            if st.placement == Placement::Host || st.pins > 0 {
                return Ok(false);
            }
        }
        let buf = locked.buf();
        // Everything that may still touch the old placement: kernel moves, writers, readers
        // and bookkeeping work alike.
        buf.resv().wait_for_signal(Usage::Bookkeep);
        buf.move_notify(locked.guard())?;
        {
            let mut st = self.state.lock();
            st.memory = copy_of(&st.memory);
            st.placement = Placement::Host;
        }
        // The books change with the placement, under the reservation lock: a restore that
        // takes the lock next must find them already updated, or this retain would drop its
        // new entry (the occupancy lock is a leaf, so taking it here is fine).
        {
            let mut occupancy = self.device_memory.occupancy.lock();
            occupancy.used -= self.size;
            occupancy
                .resident
                .retain(|w| !w.is_released() && !w.points_to(buf));
        }
        self.device_memory.evictions.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Whether `device` reaches the pool's device memory: the pool's own device, or a
    /// peer-to-peer capable one.
    fn reaches_device_memory(&self, device: &Device) -> bool {
        device.same(&self.device_memory.device) || device.caps().peer_to_peer
    }

    /// Puts the buffer where `device` can reach it, with its lock held: back into device
    /// memory for the pool's own device (if it can move), out to host memory for a device
    /// without peer-to-peer (kernel: `amdgpu_dma_buf_map()` places a BO in VRAM only for a
    /// peer2peer attachment, in GTT otherwise).
    ///
    /// # Errors
    /// [`Error::Busy`] if it is pinned in device memory and `device` cannot reach that.
    fn place_for(&self, locked: &Locked<'_>, device: &Device) -> Result<()> {
        if device.same(&self.device_memory.device) {
            return self.restore(locked);
        }
        if self.reaches_device_memory(device) || self.move_out(locked)? {
            return Ok(());
        }
        match self.state.lock().placement {
            Placement::Host => Ok(()),
            Placement::Device => Err(Error::Busy(UNREACHABLE)),
        }
    }

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
        if self
            .device_memory
            .reserve(self.size, Some(locked.buf()))
            .is_err()
        {
            return Ok(()); // stays in host memory; still mappable
        }
        locked.buf().resv().wait_for_signal(Usage::Bookkeep);
        if let Err(e) = locked.buf().move_notify(locked.guard()) {
            self.device_memory.occupancy.lock().used -= self.size; // the bytes reserved above
            return Err(e);
        }
        {
            let mut st = self.state.lock();
            st.memory = copy_of(&st.memory);
            st.placement = Placement::Device;
        }
        // Placement and books change together under the reservation lock (see `move_out`).
        self.device_memory
            .occupancy
            .lock()
            .resident
            .push_back(locked.buf().downgrade());
        self.device_memory.restores.fetch_add(1, Ordering::Relaxed);
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

    /// Pins the buffer where it is, moving it out to host memory first unless `device` and
    /// every attached device reach device memory (kernel: `amdgpu_dma_buf_pin()` pins in GTT
    /// unless every attachment does peer-to-peer), so no attached device is left unable to
    /// map it.
    ///
    /// # Errors
    /// [`Error::Busy`] if it is pinned in device memory and `device` cannot reach that.
    fn pin(&self, locked: &Locked<'_>, device: &Device) -> Result<()> {
        let all_reach = self.reaches_device_memory(device)
            && locked
                .buf()
                .live_attachments()
                .iter()
                .all(|att| self.reaches_device_memory(att.device()));
        // Out to host memory if it can move; if it cannot (pinned in device memory already),
        // only a device that reaches it there may pin it.
        if !all_reach
            && !self.move_out(locked)?
            && !self.reaches_device_memory(device)
            && self.state.lock().placement == Placement::Device
        {
            return Err(Error::Busy(UNREACHABLE));
        }
        self.state.lock().pins += 1;
        Ok(())
    }

    fn unpin(&self, _locked: &Locked<'_>, _device: &Device) {
        let mut st = self.state.lock();
        st.pins = st.pins.saturating_sub(1);
    }

    fn map(&self, locked: &Locked<'_>, device: &Device, direction: Direction) -> Result<SgTable> {
        self.place_for(locked, device)?;
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
            self.device_memory.occupancy.lock().used -= self.size;
        }
    }
}

const _: () = assert!(MAX_SEGMENT.is_multiple_of(PAGE_SIZE));
