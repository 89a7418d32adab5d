//! Your first exporter and your first importers.
//!
//! An exporter owns storage and says how a device reaches it; importers attach devices and
//! map. This story writes a tiny exporter (a "scanout buffer" whose storage can move between
//! two memory pools), then uses it the way drivers do:
//! 1. a static importer (a display engine) attaches and maps — the buffer is dynamic, so the
//!    framework pins it and caches that mapping at attach for the static importer;
//! 2. a dynamic importer (a GPU) attaches with an [`Importer`] that hears `move_notify`, maps
//!    under the reservation lock, and writes by DMA, fencing its work;
//! 3. the CPU reads through a CPU-access bracket, which waits for the GPU's write fence;
//! 4. the exporter moves the storage: it tells the dynamic importer, which maps again.
//!
//! Run: `cargo run -p dmabuf --example first_exporter_importer`
//! (add `--features lockdep` to have the validator watch every lock and wait).

use dmabuf::buf::{
    Device, DeviceCaps, Direction, DmaBuf, Exporter, HostMemory, Importer, Locked, Memory, SgTable,
};
use dmabuf::fence::FenceContext;
use dmabuf::resv::Usage;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The exporter: storage in one of two pools; `pool` says which. Only the exporter decides
/// when the storage moves, and it must tell importers first (`move_notify`).
#[derive(Debug)]
struct Scanout {
    pools: [Arc<HostMemory>; 2],
    pool: AtomicUsize,
}

impl Exporter for Scanout {
    fn name(&self) -> &str {
        "scanout"
    }

    fn size(&self) -> u64 {
        self.pools[0].len() as u64
    }

    /// The storage can move, so importers must pin it or follow `move_notify`.
    fn is_dynamic(&self) -> bool {
        true
    }

    /// Maps the current pool into the device's address space, in 4 KiB segments. The
    /// framework calls this with the reservation lock held (`Locked` is the proof).
    fn map(
        &self,
        _locked: &Locked<'_>,
        device: &Device,
        direction: Direction,
    ) -> dmabuf::Result<SgTable> {
        let memory: Arc<dyn Memory> = self.pools[self.pool.load(Ordering::Acquire)].clone();
        SgTable::map_memory(device, direction, &memory, memory.len(), 4096)
    }

    fn unmap(&self, _locked: &Locked<'_>, table: SgTable) {
        table.unmap_from_device();
    }

    /// The storage for the CPU (kernel: `mmap`); without it a CPU mapping is refused.
    fn mmap(&self, _buf: &DmaBuf) -> dmabuf::Result<Arc<dyn Memory>> {
        Ok(self.pools[self.pool.load(Ordering::Acquire)].clone())
    }
}

impl Scanout {
    /// Moves the storage to the other pool: wait for every fence (nobody may be using it),
    /// tell the importers, copy. Runs under the buffer's reservation lock.
    fn migrate(buf: &DmaBuf) -> dmabuf::Result<()> {
        let guard = buf.resv().lock_single();
        buf.resv().wait_for_signal(Usage::Bookkeep);
        buf.move_notify(&guard)?;
        let this = buf.exporter_as::<Scanout>().expect("our exporter");
        let from = this.pool.load(Ordering::Acquire);
        let bytes = this.pools[from].to_vec();
        this.pools[1 - from].write_at(0, &bytes)?;
        this.pool.store(1 - from, Ordering::Release);
        Ok(())
    }
}

/// A dynamic importer: remembers that its mapping went stale.
#[derive(Default)]
struct Gpu {
    stale: AtomicBool,
}

impl Importer for Gpu {
    fn move_notify(&self, _locked: &Locked<'_>) {
        self.stale.store(true, Ordering::Release);
    }
}

fn main() -> dmabuf::Result<()> {
    let size = 16 * 1024;
    let buf = DmaBuf::export(Scanout {
        pools: [0, 1].map(|_| Arc::new(HostMemory::zeroed(size).expect("size"))),
        pool: AtomicUsize::new(0),
    })?;
    println!("exported {buf:?}");

    // 1. A static importer: the framework pins the dynamic buffer and caches a
    //    bidirectional mapping at attach (the kernel's rule for mismatched importers).
    let display = Device::new("display", DeviceCaps::NONE);
    let scanout = buf.attach(&display)?;
    println!(
        "display attached; cached mapping: {}",
        scanout.has_cached_mapping()
    );

    // 2. A dynamic importer maps under the lock, writes by DMA, and fences its work as a
    //    writer so that readers wait for it.
    let gpu_device = Device::new("gpu", DeviceCaps::NONE);
    let gpu = Arc::new(Gpu::default());
    let render = buf.dynamic_attach(&gpu_device, gpu.clone())?;
    let ring = FenceContext::new("gpu", "ring0");
    let (done, fence) = ring.next_fence();
    {
        let mut guard = buf.resv().lock_single();
        let mapping = render.map(&guard, Direction::Bidirectional)?;
        mapping.dma_write(0, b"rendered by the gpu")?;
        guard.reserve_fences(1)?;
        guard.add_fence(&fence, Usage::Write);
        mapping.unmap(&guard)?;
    }
    // The "hardware" finishes later; readers must not look before.
    let gpu_thread = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        done.signal();
    });

    // 3. The CPU reads inside a bracket, which waits for the write fence first.
    let cpu = buf.begin_cpu_access(Direction::FromDevice)?;
    let mut seen = [0u8; 19];
    buf.mmap()?.read_at(0, &mut seen)?;
    cpu.end()?;
    println!(
        "cpu read {:?} after the gpu's fence",
        String::from_utf8_lossy(&seen)
    );
    gpu_thread.join().expect("gpu thread");

    // 4. The exporter moves the storage; the dynamic importer hears it and maps again.
    //    (The static importer's pin would forbid a real driver to move it; this exporter
    //    copies, so both views keep the same bytes.)
    Scanout::migrate(&buf)?;
    println!(
        "moved; gpu mapping stale: {}",
        gpu.stale.load(Ordering::Acquire)
    );
    {
        let guard = buf.resv().lock_single();
        let mapping = render.map(&guard, Direction::FromDevice)?;
        gpu.stale.store(false, Ordering::Release);
        let mut again = [0u8; 19];
        mapping.dma_read(0, &mut again)?;
        assert_eq!(again, seen);
        println!(
            "gpu mapped again and reads {:?}",
            String::from_utf8_lossy(&again)
        );
        mapping.unmap(&guard)?;
    }

    render.detach();
    scanout.detach();
    Ok(())
}
