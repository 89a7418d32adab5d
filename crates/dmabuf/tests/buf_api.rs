//! The buffer object's contract, importer by importer: static and dynamic attachments against
//! static, dynamic and caching exporters (seed 001's cached mapping on mismatch), the lock
//! proofs, pins, move_notify, vmap counting, CPU access waits, names and the debug listing.

use dmabuf::buf::exporters::{Heap, MemfdBuffer, MemfdHeap, SystemHeap};
use dmabuf::buf::{
    Device, DeviceCaps, Direction, DmaBuf, Exporter, HostMemory, Importer, Locked, Memory, SgTable,
    bufinfo,
};
use dmabuf::fence::FenceContext;
use dmabuf::resv::Usage;
use dmabuf::{Errno, Error};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// An exporter that records every callback, over host memory.
#[derive(Debug)]
struct Recorder {
    memory: Arc<HostMemory>,
    dynamic: bool,
    caches: bool,
    refuse: Option<&'static str>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn export(dynamic: bool, caches: bool) -> (DmaBuf, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let buf = DmaBuf::export(Recorder {
            memory: Arc::new(HostMemory::zeroed(8192).expect("size")),
            dynamic,
            caches,
            refuse: None,
            log: log.clone(),
        })
        .expect("export");
        (buf, log)
    }

    fn note(&self, what: String) {
        self.log.lock().push(what);
    }
}

impl Exporter for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn size(&self) -> u64 {
        self.memory.len() as u64
    }
    fn is_dynamic(&self) -> bool {
        self.dynamic
    }
    fn caches_mapping(&self) -> bool {
        self.caches
    }
    fn attach(&self, buf: &DmaBuf, device: &Device, dynamic: bool) -> dmabuf::Result<()> {
        assert!(!buf.resv().is_locked(), "attach runs unlocked");
        self.note(format!("attach {} dynamic={dynamic}", device.name()));
        match self.refuse {
            Some(why) => Err(Error::Busy(why)),
            None => Ok(()),
        }
    }
    fn detach(&self, buf: &DmaBuf, device: &Device) {
        assert!(!buf.resv().is_locked(), "detach runs unlocked");
        self.note(format!("detach {}", device.name()));
    }
    fn pin(&self, locked: &Locked<'_>, device: &Device) -> dmabuf::Result<()> {
        assert!(locked.buf().resv().is_locked());
        self.note(format!("pin {}", device.name()));
        Ok(())
    }
    fn unpin(&self, locked: &Locked<'_>, device: &Device) {
        assert!(locked.buf().resv().is_locked());
        self.note(format!("unpin {}", device.name()));
    }
    fn map(&self, locked: &Locked<'_>, device: &Device, dir: Direction) -> dmabuf::Result<SgTable> {
        assert!(locked.buf().resv().is_locked(), "map runs locked");
        self.note(format!("map {} {}", device.name(), dir.name()));
        let memory: Arc<dyn Memory> = self.memory.clone();
        SgTable::map_memory(device, dir, &memory, self.memory.len(), 4096)
    }
    fn unmap(&self, locked: &Locked<'_>, table: SgTable) {
        assert!(locked.buf().resv().is_locked(), "unmap runs locked");
        self.note(format!("unmap {}", table.device().name()));
        table.unmap_from_device();
    }
    fn vmap(&self, _locked: &Locked<'_>) -> dmabuf::Result<Arc<dyn Memory>> {
        self.note("vmap".into());
        Ok(self.memory.clone())
    }
    fn vunmap(&self, _locked: &Locked<'_>, _memory: Arc<dyn Memory>) {
        self.note("vunmap".into());
    }
    fn begin_cpu_access(&self, buf: &DmaBuf, dir: Direction) -> dmabuf::Result<()> {
        assert!(!buf.resv().is_locked());
        self.note(format!("begin_cpu {}", dir.name()));
        Ok(())
    }
    fn end_cpu_access(&self, _buf: &DmaBuf, dir: Direction) -> dmabuf::Result<()> {
        self.note(format!("end_cpu {}", dir.name()));
        Ok(())
    }
}

/// A dynamic importer counting move_notify calls.
#[derive(Default)]
struct Mover(AtomicUsize);

impl Importer for Mover {
    fn move_notify(&self, locked: &Locked<'_>) {
        assert!(locked.buf().resv().is_locked(), "move_notify runs locked");
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn taken(log: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *log.lock())
}

fn dev(name: &str) -> Device {
    Device::new(name, DeviceCaps::NONE)
}

#[test]
fn static_importer_of_a_static_exporter_maps_on_demand() {
    let (buf, log) = Recorder::export(false, false);
    let d = dev("a");
    let att = buf.attach(&d).expect("attach");
    assert!(!att.has_cached_mapping());
    assert_eq!(taken(&log), ["attach a dynamic=false"]);
    let g = buf.resv().lock_single();
    let m = att.map(&g, Direction::ToDevice).expect("map");
    assert_eq!(m.segments().len(), 2, "two pages, one segment each");
    assert!(!m.is_cached());
    m.dma_write(4090, b"across a page")
        .expect("write across segments");
    let mut back = [0u8; 13];
    m.dma_read(4090, &mut back).expect("read");
    assert_eq!(&back, b"across a page");
    m.unmap(&g).expect("unmap");
    drop(g);
    assert_eq!(taken(&log), ["map a DMA_TO_DEVICE", "unmap a"]);
    assert_eq!(d.mapped_segments(), 0);
    att.detach();
    assert_eq!(taken(&log), ["detach a"]);
    assert_eq!(buf.attachment_count(), 0);
}

#[test]
fn a_static_importer_of_a_dynamic_exporter_gets_a_pinned_cached_mapping() {
    // ports seed 001: mismatch ⇒ map at attach, bidirectional, pinning the exporter.
    let (buf, log) = Recorder::export(true, false);
    let d = dev("scanout");
    let att = buf.attach(&d).expect("attach");
    assert!(att.has_cached_mapping());
    assert_eq!(
        taken(&log),
        [
            "attach scanout dynamic=false",
            "pin scanout",
            "map scanout DMA_BIDIRECTIONAL"
        ]
    );
    let g = buf.resv().lock_single();
    for dir in [
        Direction::ToDevice,
        Direction::FromDevice,
        Direction::Bidirectional,
    ] {
        let m = att.map(&g, dir).expect("cached");
        assert!(m.is_cached());
        assert_eq!(m.direction(), Direction::Bidirectional);
        m.unmap(&g).expect("unmap is a no-op");
    }
    drop(g);
    assert!(taken(&log).is_empty(), "no exporter call after attach");
    drop(att);
    assert_eq!(
        taken(&log),
        ["unmap scanout", "unpin scanout", "detach scanout"]
    );
    assert_eq!(d.mapped_segments(), 0);
}

#[test]
fn a_dynamic_importer_of_a_static_exporter_gets_a_cached_mapping_without_pin() {
    let (buf, log) = Recorder::export(false, false);
    let d = dev("gpu");
    let att = buf
        .dynamic_attach(&d, Arc::new(Mover::default()))
        .expect("attach");
    assert_eq!(
        taken(&log),
        ["attach gpu dynamic=true", "map gpu DMA_BIDIRECTIONAL"]
    );
    let g = buf.resv().lock_single();
    assert!(att.map(&g, Direction::FromDevice).expect("map").is_cached());
    att.pin(&g).expect("pin: a no-op for a static exporter");
    att.unpin(&g).expect("unpin");
    drop(g);
    drop(att);
    assert_eq!(taken(&log), ["unmap gpu", "detach gpu"]);
}

#[test]
fn dynamic_with_dynamic_maps_on_demand_and_pins_through_the_exporter() {
    let (buf, log) = Recorder::export(true, false);
    let d = dev("gpu");
    let mover = Arc::new(Mover::default());
    let att = buf.dynamic_attach(&d, mover.clone()).expect("attach");
    assert!(!att.has_cached_mapping());
    let g = buf.resv().lock_single();
    assert_eq!(att.unpin(&g), Err(Error::Unbalanced("unpin")));
    att.pin(&g).expect("pin");
    att.pin(&g).expect("pin twice");
    assert_eq!(att.pin_count(), 2);
    att.unpin(&g).expect("unpin");
    let m = att.map(&g, Direction::FromDevice).expect("map");
    assert!(!m.is_cached());
    buf.move_notify(&g).expect("move_notify");
    assert_eq!(mover.0.load(Ordering::SeqCst), 1);
    m.unmap(&g).expect("unmap");
    drop(g);
    drop(att); // one pin left: dropped at detach
    assert_eq!(
        taken(&log),
        [
            "attach gpu dynamic=true",
            "pin gpu",
            "pin gpu",
            "unpin gpu",
            "map gpu DMA_FROM_DEVICE",
            "unmap gpu",
            "unpin gpu",
            "detach gpu"
        ]
    );
}

#[test]
fn move_notify_reaches_only_dynamic_importers() {
    let (buf, _log) = Recorder::export(true, false);
    let (m1, m2) = (Arc::new(Mover::default()), Arc::new(Mover::default()));
    let _a = buf.dynamic_attach(&dev("a"), m1.clone()).expect("a");
    let _b = buf.dynamic_attach(&dev("b"), m2.clone()).expect("b");
    let _s = buf.attach(&dev("static")).expect("static");
    let g = buf.resv().lock_single();
    buf.move_notify(&g).expect("notify");
    buf.move_notify(&g).expect("notify");
    drop(g);
    assert_eq!(m1.0.load(Ordering::SeqCst), 2);
    assert_eq!(m2.0.load(Ordering::SeqCst), 2);
    assert_eq!(buf.attachment_count(), 3);
}

#[test]
fn a_caching_exporter_answers_busy_for_another_direction() {
    // ports dma-buf.c: two mappings with different directions of one attachment.
    let (buf, log) = Recorder::export(false, true);
    let att = buf.attach(&dev("codec")).expect("attach");
    let g = buf.resv().lock_single();
    let m = att
        .map(&g, Direction::ToDevice)
        .expect("first map is cached");
    assert!(m.is_cached());
    let err = att
        .map(&g, Direction::FromDevice)
        .expect_err("other direction");
    assert_eq!(err, Error::Busy("mapped in another direction"));
    assert_eq!(err.errno(), Errno::EBUSY);
    let again = att.map(&g, Direction::ToDevice).expect("same direction");
    m.unmap(&g).expect("no-op");
    again.unmap(&g).expect("no-op");
    drop(g);
    drop(att);
    assert_eq!(
        taken(&log),
        [
            "attach codec dynamic=false",
            "map codec DMA_TO_DEVICE",
            "unmap codec",
            "detach codec"
        ]
    );
}

#[test]
fn every_locked_call_rejects_another_buffers_guard() {
    let (buf, _log) = Recorder::export(true, false);
    let (other, _) = Recorder::export(false, false);
    let att = buf
        .dynamic_attach(&dev("d"), Arc::new(Mover::default()))
        .expect("attach");
    let wrong = other.resv().lock_single();
    assert_eq!(
        att.map(&wrong, Direction::ToDevice).err(),
        Some(Error::WrongLock)
    );
    assert_eq!(att.pin(&wrong), Err(Error::WrongLock));
    assert_eq!(att.unpin(&wrong), Err(Error::WrongLock));
    assert_eq!(buf.move_notify(&wrong), Err(Error::WrongLock));
    assert_eq!(buf.vmap(&wrong).err(), Some(Error::WrongLock));
    assert_eq!(Error::WrongLock.errno(), Errno::EINVAL);
    drop(wrong);
    let right = buf.resv().lock_single();
    let m = att.map(&right, Direction::ToDevice).expect("map");
    let v = buf.vmap(&right).expect("vmap");
    drop(right);
    let wrong = other.resv().lock_single();
    let rejected = m.unmap(&wrong).expect_err("wrong lock");
    assert_eq!(rejected.error, Error::WrongLock);
    let v = v.vunmap(&wrong).expect_err("wrong lock").input;
    drop(wrong);
    let right = buf.resv().lock_single();
    rejected.input.unmap(&right).expect("handed back, unmapped");
    v.vunmap(&right).expect("handed back, vunmapped");
}

#[test]
fn vmap_is_counted_and_shared() {
    let (buf, log) = Recorder::export(false, false);
    let g = buf.resv().lock_single();
    let a = buf.vmap(&g).expect("vmap");
    let b = buf.vmap(&g).expect("vmap again");
    assert_eq!(buf.vmap_count(), 2);
    assert!(Arc::ptr_eq(a.memory(), b.memory()));
    a.vunmap(&g).expect("vunmap");
    assert_eq!(taken(&log), ["vmap"], "one exporter vmap, no vunmap yet");
    b.vunmap(&g).expect("last vunmap");
    assert_eq!(taken(&log), ["vunmap"]);
    assert_eq!(buf.vmap_count(), 0);
}

#[test]
fn a_mapping_dropped_without_unmap_is_unmapped_at_detach() {
    let (buf, log) = Recorder::export(false, false);
    let d = dev("leaky");
    let att = buf.attach(&d).expect("attach");
    {
        let g = buf.resv().lock_single();
        let _forgotten = att.map(&g, Direction::ToDevice).expect("map");
    }
    assert_eq!(d.mapped_segments(), 2, "still mapped");
    drop(att);
    assert_eq!(d.mapped_segments(), 0, "torn down at detach");
    assert_eq!(
        taken(&log),
        [
            "attach leaky dynamic=false",
            "map leaky DMA_TO_DEVICE",
            "unmap leaky",
            "detach leaky"
        ]
    );
}

#[test]
fn detaching_under_a_live_cached_mapping_unmaps_and_unpins_it_and_the_mapping_faults() {
    // Kernel: dma_buf_detach() unmaps the cached sg_table and unpins, then calls the
    // exporter's detach; importers must have unmapped their own mappings first.
    let (buf, log) = Recorder::export(true, false);
    let d = dev("scanout");
    let att = buf.attach(&d).expect("attach");
    let g = buf.resv().lock_single();
    let m = att.map(&g, Direction::Bidirectional).expect("cached");
    m.dma_write(0, b"early").expect("write while attached");
    drop(g);
    taken(&log);
    drop(att);
    assert_eq!(
        taken(&log),
        ["unmap scanout", "unpin scanout", "detach scanout"],
        "every unmap and unpin before the exporter's detach"
    );
    assert_eq!(d.mapped_segments(), 0, "no device window left behind");
    assert!(matches!(m.dma_write(0, b"late"), Err(Error::Fault { .. })));
    let mut back = [0u8; 5];
    assert!(matches!(m.dma_read(0, &mut back), Err(Error::Fault { .. })));
    let g = buf.resv().lock_single();
    m.unmap(&g).expect("unmap after detach: nothing left to do");
    assert!(taken(&log).is_empty(), "no exporter call after its detach");
    let v = buf.vmap(&g).expect("vmap");
    let mut bytes = [0u8; 5];
    v.memory().read_at(0, &mut bytes).expect("read");
    assert_eq!(&bytes, b"early", "the late write went nowhere");
    v.vunmap(&g).expect("vunmap");
}

#[test]
fn many_mappings_unmap_in_any_order_and_detach_unmaps_only_what_is_left() {
    let (buf, log) = Recorder::export(false, false);
    let d = dev("many");
    let att = buf.attach(&d).expect("attach");
    let g = buf.resv().lock_single();
    let mut maps: Vec<_> = (0..6)
        .map(|_| Some(att.map(&g, Direction::ToDevice).expect("map")))
        .collect();
    assert_eq!(d.mapped_segments(), 12, "six mappings of two pages");
    // Unmapped out of order; the freed slots serve the next maps.
    for i in [4, 0, 5, 2] {
        maps[i].take().unwrap().unmap(&g).expect("unmap");
    }
    assert_eq!(d.mapped_segments(), 4);
    let again: Vec<_> = (0..3)
        .map(|_| att.map(&g, Direction::ToDevice).expect("map"))
        .collect();
    assert_eq!(d.mapped_segments(), 10);
    again.into_iter().next().unwrap().unmap(&g).expect("unmap");
    drop(g);
    taken(&log);
    // Left: mappings 1 and 3 and two of the new ones.
    drop(att);
    assert_eq!(
        taken(&log),
        [
            "unmap many",
            "unmap many",
            "unmap many",
            "unmap many",
            "detach many"
        ]
    );
    assert_eq!(d.mapped_segments(), 0);
}

#[test]
fn detaching_under_a_live_mapping_unmaps_it_once_and_the_mapping_faults() {
    let (buf, log) = Recorder::export(false, false);
    let d = dev("codec");
    let att = buf.attach(&d).expect("attach");
    let g = buf.resv().lock_single();
    let live = att.map(&g, Direction::ToDevice).expect("map");
    let _dropped = att.map(&g, Direction::FromDevice).expect("map");
    drop(g);
    drop(_dropped);
    assert_eq!(d.mapped_segments(), 4, "two mappings of two pages");
    taken(&log);
    drop(att);
    assert_eq!(
        taken(&log),
        ["unmap codec", "unmap codec", "detach codec"],
        "the live mapping and the dropped one, then the exporter's detach"
    );
    assert_eq!(d.mapped_segments(), 0);
    let mut back = [0u8; 4];
    assert!(matches!(
        live.dma_read(0, &mut back),
        Err(Error::Fault { .. })
    ));
    drop(live);
    assert!(taken(&log).is_empty(), "dropping it later calls nobody");
}

#[test]
fn a_refused_attach_leaves_nothing_behind() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let buf = DmaBuf::export(Recorder {
        memory: Arc::new(HostMemory::zeroed(4096).expect("size")),
        dynamic: false,
        caches: false,
        refuse: Some("not reachable from this device"),
        log: log.clone(),
    })
    .expect("export");
    let err = buf.attach(&dev("far")).expect_err("refused");
    assert_eq!(err.errno(), Errno::EBUSY);
    assert_eq!(buf.attachment_count(), 0);
}

#[test]
fn a_static_importer_waits_for_kernel_fences_before_its_mapping() {
    // Kernel: dma_buf_map_attachment() waits for DMA_RESV_USAGE_KERNEL for static importers.
    let (buf, _log) = Recorder::export(false, false);
    let (mover, moving) = FenceContext::new("ttm", "move").next_fence();
    {
        let mut g = buf.resv().lock_single();
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&moving, Usage::Kernel);
    }
    let att = buf.attach(&dev("static")).expect("attach");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let g = buf.resv().lock_single();
            let m = att.map(&g, Direction::ToDevice).expect("map");
            let signalled = moving.is_signaled();
            m.unmap(&g).expect("unmap");
            signalled
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "the map waits for the move");
        mover.signal();
        assert!(waiter.join().expect("waiter"), "mapped after the move");
    });
}

#[test]
fn cpu_access_waits_for_writers_to_read_and_for_everybody_to_write() {
    let buf = SystemHeap::new().alloc(4096).expect("alloc");
    let ctx = FenceContext::new("gpu", "cpu-access");
    let (reader, read) = ctx.next_fence();
    {
        let mut g = buf.resv().lock_single();
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&read, Usage::Read);
    }
    // A CPU read waits for writers only: none.
    buf.begin_cpu_access(Direction::FromDevice)
        .expect("read access")
        .end()
        .expect("end");
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let access = buf.begin_cpu_access(Direction::ToDevice).expect("write");
            let signalled = read.is_signaled();
            drop(access);
            signalled
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!writer.is_finished(), "a CPU write waits for the reader");
        reader.signal();
        assert!(writer.join().expect("writer"));
    });
}

#[test]
fn cpu_access_calls_the_exporter_around_the_access() {
    let (buf, log) = Recorder::export(false, false);
    let access = buf
        .begin_cpu_access(Direction::Bidirectional)
        .expect("begin");
    assert_eq!(access.direction(), Direction::Bidirectional);
    drop(access);
    assert_eq!(
        taken(&log),
        ["begin_cpu DMA_BIDIRECTIONAL", "end_cpu DMA_BIDIRECTIONAL"]
    );
}

#[test]
fn names_and_the_debug_listing() {
    let buf = SystemHeap::new().alloc(12288).expect("alloc");
    assert_eq!(buf.name(), None);
    buf.set_name("camera-frame-0").expect("name");
    assert_eq!(buf.name().as_deref(), Some("camera-frame-0"));
    let long = "x".repeat(dmabuf::buf::NAME_MAX + 1);
    let err = buf.set_name(&long).expect_err("too long");
    assert_eq!(err.errno(), Errno::EINVAL);
    buf.set_name(&"y".repeat(dmabuf::buf::NAME_MAX))
        .expect("longest");
    let (_s, f) = FenceContext::new("isp", "frames").next_fence();
    {
        let mut g = buf.resv().lock_single();
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&f, Usage::Write);
    }
    let _att = buf.attach(&dev("isp0")).expect("attach");
    let own = buf.describe();
    assert!(own.starts_with("00012288\t"), "{own}");
    assert!(own.contains("\tsystem\t"), "{own}");
    assert!(
        own.contains("\twrite fence:") && own.contains(" frames isp "),
        "{own}"
    );
    assert!(own.contains("\tAttached Devices:\n\tisp0\n"), "{own}");
    assert!(own.contains("Total 1 devices attached"), "{own}");
    let all = bufinfo();
    let ours = format!("\t{:08}\t{}\n", buf.id(), "y".repeat(dmabuf::buf::NAME_MAX));
    assert!(all.contains(&ours), "{all}");
    assert!(all.contains("\tisp0\n"), "{all}");
    assert!(all.contains("Dma-buf Objects:"));
}

#[test]
fn exports_need_a_size_and_heaps_check_their_flags() {
    struct Empty;
    impl Exporter for Empty {
        fn name(&self) -> &str {
            "empty"
        }
        fn size(&self) -> u64 {
            0
        }
        fn map(&self, _: &Locked<'_>, _: &Device, _: Direction) -> dmabuf::Result<SgTable> {
            Err(Error::NoMemory)
        }
        fn unmap(&self, _: &Locked<'_>, _: SgTable) {}
    }
    assert_eq!(DmaBuf::export(Empty).err(), Some(Error::InvalidSize(0)));
    let buf = SystemHeap::new().alloc(1).expect("alloc");
    assert_eq!(buf.size(), 4096);
    assert!(buf.exporter_as::<MemfdBuffer>().is_none());
    let g = buf.resv().lock_single();
    drop(buf.vmap(&g).expect("system heap vmaps").vunmap(&g));
}

#[test]
fn an_exporter_that_moves_its_storage_cannot_cache_mappings() {
    // Kernel: dma_buf_export() WARNs and answers -EINVAL for `cache_sgt_mapping` with
    // pin/unpin: a cached table would be handed out again after move_notify, stale.
    let log = Arc::new(Mutex::new(Vec::new()));
    let err = DmaBuf::export(Recorder {
        memory: Arc::new(HostMemory::zeroed(4096).expect("size")),
        dynamic: true,
        caches: true,
        refuse: None,
        log: log.clone(),
    })
    .expect_err("dynamic and caching");
    assert!(matches!(err, Error::InvalidExporter(_)), "{err:?}");
    assert_eq!(err.errno(), Errno::EINVAL);
    assert!(taken(&log).is_empty(), "nothing was called");
    // Either alone is fine.
    let (_dynamic, _) = Recorder::export(true, false);
    let (_caching, _) = Recorder::export(false, true);
}

#[test]
fn a_memfd_buffer_is_the_same_bytes_for_devices_the_cpu_and_its_fd() {
    let heap = MemfdHeap::new();
    assert_eq!(heap.name(), "memfd");
    let buf = heap.alloc(3 * 4096).expect("alloc");
    let nic = dev("nic");
    let att = buf.attach(&nic).expect("attach");
    let g = buf.resv().lock_single();
    let m = att.map(&g, Direction::FromDevice).expect("map");
    m.dma_write(4096 * 2 - 3, b"packet").expect("dma");
    m.unmap(&g).expect("unmap");
    drop(g);
    let fd = buf.exporter_as::<MemfdBuffer>().expect("memfd").fd();
    let mut back = [0u8; 6];
    rustix::io::pread(fd, &mut back, 4096 * 2 - 3).expect("pread");
    assert_eq!(&back, b"packet");
    let cpu = buf.mmap().expect("mmap");
    let mut again = [0u8; 6];
    cpu.read_at(4096 * 2 - 3, &mut again).expect("read");
    assert_eq!(&again, b"packet");
}

#[test]
fn device_memory_evicts_the_oldest_unpinned_buffer_and_accounts_its_bytes() {
    use dmabuf::buf::exporters::{DeviceMemory, Placement};
    let gpu = dev("gpu");
    let vram = DeviceMemory::new(&gpu, 2 * 4096);
    let a = vram.alloc(4096).expect("a");
    let b = vram.alloc(4096).expect("b");
    assert_eq!(vram.used(), 8192);
    // A static importer gets a pinned cached mapping (seed 001): `a` can no longer move. The
    // display reaches device memory (peer-to-peer), so `a` is pinned where it is.
    let display = Device::new("display", DeviceCaps::PEER_TO_PEER);
    let scanout = a.attach(&display).expect("attach");
    let c = vram.alloc(4096).expect("c evicts b, the oldest unpinned");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    assert_eq!(DeviceMemory::placement(&b), Some(Placement::Host));
    assert_eq!(DeviceMemory::placement(&c), Some(Placement::Device));
    // A dynamic importer's pin holds `c` too: nothing left to evict.
    let mover = Arc::new(Mover::default());
    let gpu_att = c.dynamic_attach(&gpu, mover.clone()).expect("attach");
    {
        let g = c.resv().lock_single();
        gpu_att.pin(&g).expect("pin");
    }
    assert_eq!(vram.alloc(4096).err(), Some(Error::NoMemory));
    assert_eq!(
        vram.alloc(3 * 4096).err(),
        Some(Error::InvalidSize(3 * 4096))
    );
    // Mapping `b` for the pool's device brings it back once there is room.
    drop(scanout); // unpins `a`
    let b_att = b
        .dynamic_attach(&gpu, Arc::new(Mover::default()))
        .expect("attach");
    {
        let g = b.resv().lock_single();
        let m = b_att.map(&g, Direction::Bidirectional).expect("map");
        assert_eq!(
            DeviceMemory::placement(&b),
            Some(Placement::Device),
            "restored"
        );
        assert_eq!(
            DeviceMemory::placement(&a),
            Some(Placement::Host),
            "made room"
        );
        m.unmap(&g).expect("unmap");
    }
    assert_eq!(vram.restores(), 1);
    assert_eq!(vram.evictions(), 2);
    assert_eq!(mover.0.load(Ordering::SeqCst), 0, "pinned `c` never moved");
    drop((b_att, gpu_att, a, b, c));
    assert_eq!(vram.used(), 0, "released buffers give their bytes back");
}

#[test]
fn eviction_waits_for_the_buffers_fences_and_notifies_before_moving() {
    use dmabuf::buf::exporters::{DeviceMemory, Placement};
    let gpu = dev("gpu");
    let vram = DeviceMemory::new(&gpu, 4096);
    let a = vram.alloc(4096).expect("a");
    let mover = Arc::new(Mover::default());
    let _att = a.dynamic_attach(&gpu, mover.clone()).expect("attach");
    let (job, busy) = FenceContext::new("gpu", "ring").next_fence();
    {
        let mut g = a.resv().lock_single();
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&busy, Usage::Bookkeep);
    }
    std::thread::scope(|s| {
        let alloc = s.spawn(|| vram.alloc(4096).expect("evicts a"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!alloc.is_finished(), "eviction waits for the busy fence");
        assert_eq!(
            mover.0.load(Ordering::SeqCst),
            0,
            "and notifies only after it"
        );
        job.signal();
        drop(alloc.join().expect("alloc"));
    });
    assert_eq!(mover.0.load(Ordering::SeqCst), 1);
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
}

#[test]
fn another_process_reads_a_memfd_buffer_through_its_fd() {
    use rustix::fd::AsRawFd;
    let buf = MemfdHeap::new().alloc(4096).expect("alloc");
    let att = buf.attach(&dev("camera")).expect("attach");
    {
        let g = buf.resv().lock_single();
        let m = att.map(&g, Direction::FromDevice).expect("map");
        m.dma_write(0, b"frame from the camera").expect("dma");
        m.unmap(&g).expect("unmap");
    }
    let fd = buf.exporter_as::<MemfdBuffer>().expect("memfd").fd();
    // `head` is another process: it opens the same memfd through /proc and reads its pages.
    let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
    let out = std::process::Command::new("head")
        .args(["-c", "21", &path])
        .output()
        .expect("run head");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"frame from the camera");
}

/// A caching exporter whose first `map` maps the attachment again from inside (as a driver
/// reaching its own importer side might).
#[derive(Default)]
struct MapsAgainInside {
    memory: Option<Arc<dyn Memory>>,
    att: Mutex<Option<Arc<dmabuf::buf::Attachment>>>,
    inner: Mutex<Vec<dmabuf::buf::Mapping>>,
    maps: AtomicUsize,
    unmaps: AtomicUsize,
}

impl Exporter for MapsAgainInside {
    fn name(&self) -> &str {
        "maps-again-inside"
    }

    fn size(&self) -> u64 {
        4096
    }

    fn caches_mapping(&self) -> bool {
        true
    }

    fn map(&self, locked: &Locked<'_>, device: &Device, dir: Direction) -> dmabuf::Result<SgTable> {
        let memory = self.memory.as_ref().expect("memory");
        let table = SgTable::map_memory(device, dir, memory, 4096, 4096)?;
        let first = self.maps.fetch_add(1, Ordering::SeqCst) == 0;
        let att = self.att.lock().clone();
        if first && let Some(att) = att {
            let m = att.map(locked.guard(), Direction::Bidirectional)?;
            self.inner.lock().push(m);
        }
        Ok(table)
    }

    fn unmap(&self, _locked: &Locked<'_>, table: SgTable) {
        self.unmaps.fetch_add(1, Ordering::SeqCst);
        table.unmap_from_device();
    }
}

#[test]
fn a_caching_exporter_that_maps_the_attachment_again_inside_its_map_leaks_nothing() {
    let buf = DmaBuf::export(MapsAgainInside {
        memory: Some(Arc::new(HostMemory::zeroed(4096).expect("size"))),
        ..MapsAgainInside::default()
    })
    .expect("export");
    let exporter = buf.exporter_as::<MapsAgainInside>().expect("ours");
    let d = dev("gpu");
    let att = Arc::new(buf.attach(&d).expect("attach"));
    *exporter.att.lock() = Some(att.clone());
    let g = buf.resv().lock_single();
    // The outer map's exporter call maps the attachment again: both hand out the table
    // cached first (the inner one's), and the outer table goes straight back.
    let m = att.map(&g, Direction::Bidirectional).expect("map");
    let inner = exporter.inner.lock().pop().expect("mapped inside");
    assert!(m.is_cached() && inner.is_cached());
    assert_eq!(m.segments(), inner.segments(), "one cached table");
    assert_eq!(
        d.mapped_segments(),
        1,
        "the other table was unmapped at once"
    );
    assert_eq!(exporter.unmaps.load(Ordering::SeqCst), 1);
    m.unmap(&g).expect("unmap");
    inner.unmap(&g).expect("unmap");
    drop(g);
    exporter.att.lock().take();
    drop(Arc::into_inner(att).expect("the last handle")); // detaches
    assert_eq!(d.mapped_segments(), 0, "nothing left mapped");
    assert_eq!(exporter.maps.load(Ordering::SeqCst), 2);
    assert_eq!(
        exporter.unmaps.load(Ordering::SeqCst),
        2,
        "every table unmapped once"
    );
}

/// An exporter whose `unmap` panics.
#[derive(Debug)]
struct PanicsOnUnmap(Arc<dyn Memory>);

impl Exporter for PanicsOnUnmap {
    fn name(&self) -> &str {
        "panics-on-unmap"
    }

    fn size(&self) -> u64 {
        4096
    }

    fn map(
        &self,
        _locked: &Locked<'_>,
        device: &Device,
        dir: Direction,
    ) -> dmabuf::Result<SgTable> {
        SgTable::map_memory(device, dir, &self.0, 4096, 4096)
    }

    fn unmap(&self, _locked: &Locked<'_>, _table: SgTable) {
        panic!("exporter bug in unmap");
    }
}

#[test]
fn a_detach_whose_exporter_panics_leaves_the_attachment_off_the_buffer() {
    let buf = DmaBuf::export(PanicsOnUnmap(Arc::new(
        HostMemory::zeroed(4096).expect("size"),
    )))
    .expect("export");
    let att = buf.attach(&dev("codec")).expect("attach");
    let g = buf.resv().lock_single();
    let live = att.map(&g, Direction::ToDevice).expect("map");
    drop(g);
    assert_eq!(buf.attachment_count(), 1);
    let detach = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(att)));
    assert!(detach.is_err(), "the exporter's panic reaches the caller");
    // The mapping still holds the attachment's state, but the buffer no longer lists it, so
    // no move_notify or count sees a half-detached attachment; the lock was released.
    assert_eq!(buf.attachment_count(), 0);
    assert!(
        buf.resv().try_lock_single().is_some(),
        "lock released by the unwind"
    );
    drop(live);
}
