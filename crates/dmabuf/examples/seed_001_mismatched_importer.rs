//! Seed 001: a static importer that maps deep in its submit path, and the cached mapping that
//! lets it stop.
//!
//! # The problem
//! When dma-buf mappings started to need the buffer's reservation lock (so that exporters
//! could move buffers around under it), many importers could not follow. A *static* importer
//! — one that does not take part in moves — typically maps an imported buffer where it first
//! needs it: deep in its submit path, holding its own driver locks. Taking the reservation
//! lock there orders *driver lock → reservation lock*. Meanwhile the driver has paths that run
//! under a reservation lock and need its driver lock — here its GPU side, whose invalidation
//! callback is called by the exporter's eviction with the victim's reservation lock held, and
//! takes the driver lock to tear down the GPU's bindings (*reservation lock → driver lock*).
//! Two orders, one cycle.
//!
//! # The fix
//! The framework's answer in the seed: when importer and exporter disagree about being
//! dynamic, map at *attach* time, bidirectionally, pinning a dynamic exporter's storage, and
//! keep that mapping until detach. Drivers attach from their import path (fd to handle), which
//! runs with no driver lock held, so the reservation lock is taken in a harmless place. This
//! library does exactly that for a static attachment to a dynamic exporter (see
//! `dmabuf::buf::Attachment`). The driver's part is to take the mapping once, at import, and
//! let its submit path use it without mapping again. (In the kernel of that time a static
//! importer's later map calls got the cached mapping back without touching the lock; here
//! `Attachment::map` always asks for the reservation guard, so the lock shows at every map
//! site, and the fixed flip path simply has none.) The price is the pin: the exporter cannot
//! evict the buffer while the importer has it attached.
//!
//! # What runs
//! One driver has a GPU with device memory (a dynamic exporter, `DeviceMemory`) and a display
//! engine (a static importer). The GPU renders two frames, filling its memory; the display
//! imports the second one as a scanout buffer; rendering a third frame evicts the first, and
//! the GPU's invalidation takes the driver lock under the evicted frame's reservation lock.
//! Then the display flips to the scanout buffer. The broken display maps in its flip path,
//! under the driver lock: the validator reports the cycle. The fixed display uses the mapping
//! it took at import and runs clean; evicting everything afterwards leaves its pinned scanout
//! buffer in device memory. The two drivers use different driver-lock classes, so the order
//! the broken one recorded does not count against the fixed one.
//!
//! Run: `cargo run -p dmabuf --features lockdep --example seed_001_mismatched_importer`.
//! The same code is checked by `tests/seed_001_mismatched_importer.rs`.

use dmabuf::buf::exporters::{DeviceMemory, Placement};
use dmabuf::buf::{
    Attachment, Device, DeviceCaps, Direction, DmaBuf, Dynamic, Importer, Locked, Mapping,
};
use dmabuf::lockdep::{LockClass, Mutex, Report, capture};
use std::sync::Arc;

/// The broken driver's lock class.
pub static BROKEN_DRIVER_LOCK: LockClass = LockClass::new("seed_001.broken.driver_lock");
/// The fixed driver's lock class.
pub static FIXED_DRIVER_LOCK: LockClass = LockClass::new("seed_001.fixed.driver_lock");

/// A frame's size: one page.
const FRAME: u64 = 4096;

/// Where the display maps its scanout buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// On every flip, under the driver lock (broken).
    MapInFlip,
    /// Once, at import; flips use that mapping (fixed).
    MapAtImport,
}

/// What the driver lock protects.
#[derive(Debug, Default)]
struct DriverState {
    /// Buffers the GPU has valid bindings for.
    bound: Vec<u64>,
    /// Bindings torn down by the GPU's invalidation callback.
    invalidations: u64,
    /// Flips the display did.
    flips: u64,
}

/// The GPU's side of a dynamic attachment: its invalidation callback.
struct GpuInvalidate {
    state: Arc<Mutex<DriverState>>,
}

impl Importer for GpuInvalidate {
    fn move_notify(&self, locked: &Locked<'_>) {
        // Called by the exporter with the moving buffer's reservation lock held.
        let mut st = self.state.lock();
        let id = locked.buf().id();
        st.bound.retain(|&b| b != id);
        st.invalidations += 1;
    }
}

/// A GPU and a display engine under one driver lock (kernel: a driver with a big lock, such
/// as i915's old `struct_mutex`).
pub struct Driver {
    design: Design,
    gpu: Device,
    display: Device,
    vram: Arc<DeviceMemory>,
    /// The driver lock.
    state: Arc<Mutex<DriverState>>,
}

/// A frame the GPU rendered, with the GPU's dynamic attachment.
pub struct Frame {
    /// The buffer, in the GPU's device memory (exported dynamically).
    pub buf: DmaBuf,
    _att: Attachment<Dynamic>,
}

/// The display's import of a scanout buffer (static).
pub struct Scanout {
    att: Attachment,
    /// The mapping taken at import ([`Design::MapAtImport`]).
    mapping: Option<Mapping>,
}

impl Scanout {
    /// Whether the attachment hands out one cached mapping.
    pub fn has_cached_mapping(&self) -> bool {
        self.att.has_cached_mapping()
    }

    /// The mapping taken at import, if any.
    pub fn mapping(&self) -> Option<&Mapping> {
        self.mapping.as_ref()
    }

    /// Detaches, giving the import-time mapping back first.
    pub fn release(mut self) {
        if let Some(mapping) = self.mapping.take() {
            let guard = self.att.buf().resv().lock_single();
            mapping.unmap(&guard).expect("the buffer's own lock");
        }
    }
}

impl Driver {
    /// A driver whose display follows `design`, with a driver lock of `lock_class` and room
    /// for two frames in device memory.
    pub fn new(design: Design, lock_class: &'static LockClass) -> Self {
        let gpu = Device::new("gpu", DeviceCaps::NONE);
        Driver {
            design,
            vram: DeviceMemory::new(&gpu, 2 * FRAME),
            gpu,
            // The display engine scans out of the GPU's memory directly (peer-to-peer), so
            // its pin keeps a frame in device memory.
            display: Device::new("display", DeviceCaps::PEER_TO_PEER),
            state: Arc::new(Mutex::new(lock_class, DriverState::default())),
        }
    }

    /// The GPU's device memory.
    pub fn vram(&self) -> &Arc<DeviceMemory> {
        &self.vram
    }

    /// GPU bindings invalidated so far, and flips done.
    pub fn stats(&self) -> (u64, u64) {
        let st = self.state.lock();
        (st.invalidations, st.flips)
    }

    /// The GPU renders `pixels` into a new frame: allocate (may evict older frames), attach
    /// dynamically, map and write under the frame's reservation lock, then record the binding
    /// under the driver lock — reservation lock first, as everywhere in this driver.
    ///
    /// # Errors
    /// Allocation and mapping can fail.
    pub fn render(&self, pixels: &[u8]) -> dmabuf::Result<Frame> {
        let buf = self.vram.alloc(FRAME)?;
        let att = buf.dynamic_attach(
            &self.gpu,
            Arc::new(GpuInvalidate {
                state: self.state.clone(),
            }),
        )?;
        {
            let guard = buf.resv().lock_single();
            let mapping = att.map(&guard, Direction::Bidirectional)?;
            mapping.dma_write(0, pixels)?;
            mapping.unmap(&guard).map_err(|r| r.error)?;
        }
        self.state.lock().bound.push(buf.id());
        Ok(Frame { buf, _att: att })
    }

    /// The display imports `buf` (kernel: the fd-to-handle ioctl). Runs with no driver lock.
    /// Attaching statically to a dynamic exporter makes the library map (and pin) here; the
    /// fixed display takes that mapping now and keeps it.
    ///
    /// # Errors
    /// Attaching and mapping can fail.
    pub fn import_scanout(&self, buf: &DmaBuf) -> dmabuf::Result<Scanout> {
        let att = buf.attach(&self.display)?;
        let mapping = match self.design {
            Design::MapInFlip => None,
            Design::MapAtImport => {
                let guard = buf.resv().lock_single();
                Some(att.map(&guard, Direction::Bidirectional)?)
            }
        };
        Ok(Scanout { att, mapping })
    }

    /// The display flips to `scanout` and scans out its first `len` bytes, under the driver
    /// lock (kernel: deep in the display's commit path).
    ///
    /// # Errors
    /// Mapping and DMA can fail.
    pub fn flip(&self, scanout: &Scanout, len: usize) -> dmabuf::Result<Vec<u8>> {
        let mut st = self.state.lock();
        let mut pixels = vec![0u8; len];
        match &scanout.mapping {
            // The fixed display: the mapping taken at import, no reservation lock needed.
            Some(mapping) => mapping.dma_read(0, &mut pixels)?,
            None => {
                // Mapping needs the buffer's reservation lock: taken under the driver lock.
                let buf = scanout.att.buf();
                let guard = buf.resv().lock_single();
                let mapping = scanout.att.map(&guard, Direction::ToDevice)?;
                mapping.dma_read(0, &mut pixels)?;
                mapping.unmap(&guard).map_err(|r| r.error)?;
            }
        }
        st.flips += 1;
        Ok(pixels)
    }
}

/// What a run of the story ended with.
pub struct Outcome {
    /// Every report found.
    pub reports: Vec<Report>,
    /// What the display scanned out.
    pub scanned_out: Vec<u8>,
    /// GPU bindings invalidated by evictions (the third frame's and `evict_all`'s).
    pub invalidations: u64,
    /// Flips done.
    pub flips: u64,
    /// Whether the scanout attachment has the library's cached mapping.
    pub scanout_cached: bool,
    /// The import-time mapping: whether it is the cached one, and its direction.
    pub import_mapping: Option<(bool, Direction)>,
    /// Frames `evict_all` moved out after the flip.
    pub evicted_after_flip: usize,
    /// Where the scanout buffer was after that.
    pub scanout_placement: Option<Placement>,
}

/// The story with a display following `design` and a driver lock of `lock_class`.
pub fn run(design: Design, lock_class: &'static LockClass) -> Outcome {
    let driver = Driver::new(design, lock_class);
    let (outcome, reports) = capture(|| {
        let first = driver.render(b"frame 1").expect("render");
        let second = driver.render(b"frame 2").expect("render");
        let scanout = driver.import_scanout(&second.buf).expect("import");
        // Device memory is full: the third frame evicts the first, whose invalidation takes
        // the driver lock under the first frame's reservation lock.
        let third = driver.render(b"frame 3").expect("render");
        let scanned_out = driver.flip(&scanout, 7).expect("flip");
        // Memory pressure again: everything that can move, moves. The pinned scanout stays.
        let evicted_after_flip = driver.vram().evict_all().expect("evict");
        let (invalidations, flips) = driver.stats();
        let outcome = Outcome {
            reports: Vec::new(),
            scanned_out,
            invalidations,
            flips,
            scanout_cached: scanout.has_cached_mapping(),
            import_mapping: scanout.mapping().map(|m| (m.is_cached(), m.direction())),
            evicted_after_flip,
            scanout_placement: DeviceMemory::placement(&second.buf),
        };
        scanout.release();
        drop((first, second, third));
        outcome
    });
    Outcome { reports, ..outcome }
}

/// The broken display: maps in its flip path, under the driver lock.
pub fn broken() -> Outcome {
    run(Design::MapInFlip, &BROKEN_DRIVER_LOCK)
}

/// The fixed display: maps at import, flips through that mapping.
pub fn fixed() -> Outcome {
    run(Design::MapAtImport, &FIXED_DRIVER_LOCK)
}

fn main() {
    println!("== seed 001, broken: the static display maps in its flip path");
    println!("GPU invalidation (eviction): reservation lock -> driver lock");
    println!("display flip:                driver lock -> reservation lock (to map)");
    let out = broken();
    println!(
        "scanned out {:?}; nothing blocked, but the validator reports {}:\n",
        String::from_utf8_lossy(&out.scanned_out),
        out.reports.len()
    );
    for r in &out.reports {
        println!("{r}");
    }

    println!("== seed 001, fixed: the display maps once at import and flips through it");
    let out = fixed();
    println!(
        "scanned out {:?}; the GPU's invalidation still ran under reservation locks {} \
         time(s); reports: {}",
        String::from_utf8_lossy(&out.scanned_out),
        out.invalidations,
        out.reports.len()
    );
    for r in &out.reports {
        println!("{r}");
    }
    if let Some((cached, direction)) = out.import_mapping {
        println!(
            "the import-time mapping is the attachment's cached one: {cached}, {}",
            direction.name()
        );
    }
    println!(
        "evicting everything moved {} frame(s); the scanout buffer stayed in {:?} memory \
         (pinned for the cached mapping)",
        out.evicted_after_flip,
        out.scanout_placement.expect("a device-memory buffer")
    );
}
