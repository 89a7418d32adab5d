//! The dma-buf locking convention checked by the validator (feature `lockdep`): every call
//! that must not hold a reservation lock is reported when it does, and the calls that need it
//! cannot be made without its guard (see the compile-fail examples on
//! [`dmabuf::buf::Attachment`]). Correct use is silent.
#![cfg(feature = "lockdep")]

use dmabuf::buf::exporters::SystemHeap;
use dmabuf::buf::{Device, DeviceCaps, Direction, DmaBuf, Importer, Locked};
use dmabuf::lockdep::{Kind, LockClass, Mutex, Report, capture, signalling};
use std::sync::Arc;

struct Follow;
impl Importer for Follow {
    fn move_notify(&self, _locked: &Locked<'_>) {}
}

fn bufs() -> (DmaBuf, DmaBuf, Device) {
    let heap = SystemHeap::new();
    (
        heap.alloc(4096).expect("alloc"),
        heap.alloc(4096).expect("alloc"),
        Device::new("dev", DeviceCaps::NONE),
    )
}

/// Runs `f` while holding `other`'s reservation lock and returns what the validator said.
///
/// The validator checks each chain of held locks once per process (as lockdep does), so
/// every test first takes a lock of its own class `case` to give its chain a key of its own.
fn holding(case: &str, other: &DmaBuf, f: impl FnOnce()) -> Vec<Report> {
    let outer = Mutex::new(LockClass::leak(format!("validator_buf.{case}")), ());
    let ((), reports) = capture(|| {
        let _outer = outer.lock();
        let _held = other.resv().lock_single();
        f();
    });
    reports
}

fn recursive(reports: &[Report]) -> bool {
    reports.iter().any(|r| r.kind == Kind::RecursiveLocking)
}

#[test]
fn the_convention_followed_is_silent() {
    let (buf, _, dev) = bufs();
    let ((), reports) = capture(|| {
        let att = buf.attach(&dev).expect("attach");
        let dynamic = buf.dynamic_attach(&dev, Arc::new(Follow)).expect("attach");
        {
            let g = buf.resv().lock_single();
            att.map(&g, Direction::ToDevice)
                .expect("map")
                .unmap(&g)
                .expect("unmap");
            dynamic.pin(&g).expect("pin");
            dynamic.unpin(&g).expect("unpin");
            buf.vmap(&g).expect("vmap").vunmap(&g).expect("vunmap");
            buf.move_notify(&g).expect("notify");
        }
        buf.begin_cpu_access(Direction::Bidirectional)
            .expect("begin")
            .end()
            .expect("end");
        buf.mmap().expect("mmap");
        drop((att, dynamic));
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn attach_holding_a_reservation_lock_is_reported() {
    let (buf, other, dev) = bufs();
    let reports = holding("attach", &other, || drop(buf.attach(&dev).expect("attach")));
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn dynamic_attach_holding_a_reservation_lock_is_reported() {
    let (buf, other, dev) = bufs();
    let reports = holding("dynamic_attach", &other, || {
        drop(buf.dynamic_attach(&dev, Arc::new(Follow)).expect("attach"));
    });
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn detach_holding_a_reservation_lock_is_reported() {
    let (buf, other, dev) = bufs();
    let att = buf.attach(&dev).expect("attach");
    let reports = holding("detach", &other, || att.detach());
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn begin_cpu_access_holding_a_reservation_lock_is_reported() {
    let (buf, other, _) = bufs();
    let reports = holding("begin_cpu_access", &other, || {
        let access = buf.begin_cpu_access(Direction::FromDevice).expect("begin");
        std::mem::forget(access); // end is checked on its own below
    });
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn end_cpu_access_holding_a_reservation_lock_is_reported() {
    let (buf, other, _) = bufs();
    let access = buf.begin_cpu_access(Direction::FromDevice).expect("begin");
    let reports = holding("end_cpu_access", &other, || access.end().expect("end"));
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn mmap_holding_a_reservation_lock_is_reported() {
    let (buf, other, _) = bufs();
    let reports = holding("mmap", &other, || drop(buf.mmap().expect("mmap")));
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn an_exporter_that_locks_inside_a_locked_callback_is_reported() {
    // map runs with the buffer's lock held: an exporter taking a reservation lock there (here
    // another buffer's, so the test does not hang on its own) is the recursion lockdep sees.
    use dmabuf::buf::{Exporter, HostMemory, Memory, SgTable};
    struct Greedy {
        memory: Arc<HostMemory>,
        other: DmaBuf,
    }
    impl Exporter for Greedy {
        fn name(&self) -> &str {
            "greedy"
        }
        fn size(&self) -> u64 {
            self.memory.len() as u64
        }
        fn map(&self, _: &Locked<'_>, dev: &Device, dir: Direction) -> dmabuf::Result<SgTable> {
            let _wrong = self.other.resv().lock_single();
            let memory: Arc<dyn Memory> = self.memory.clone();
            SgTable::map_memory(dev, dir, &memory, 4096, 4096)
        }
        fn unmap(&self, _: &Locked<'_>, table: SgTable) {
            table.unmap_from_device();
        }
    }
    let (_, other, dev) = bufs();
    let buf = DmaBuf::export(Greedy {
        memory: Arc::new(HostMemory::zeroed(4096).expect("size")),
        other,
    })
    .expect("export");
    let att = buf.attach(&dev).expect("attach");
    let outer = Mutex::new(LockClass::leak("validator_buf.greedy_map"), ());
    let ((), reports) = capture(|| {
        let _outer = outer.lock();
        let g = buf.resv().lock_single();
        att.map(&g, Direction::ToDevice)
            .expect("map")
            .unmap(&g)
            .expect("unmap");
    });
    assert!(recursive(&reports), "{reports:?}");
}

#[test]
fn cpu_access_inside_a_fence_signalling_section_is_reported() {
    // Seed 000's pattern on the CPU side: a completion path that may take the reservation
    // lock (begin_cpu_access might, for the exporter) inside a signalling section.
    let (buf, _, _) = bufs();
    let ((), reports) = capture(|| {
        let _section = signalling::begin_signalling();
        drop(buf.begin_cpu_access(Direction::FromDevice).expect("begin"));
    });
    assert!(
        reports.iter().any(|r| r.kind == Kind::SignallingDeadlock),
        "{reports:?}"
    );
}

#[test]
fn allocating_device_memory_in_a_signalling_section_is_reported() {
    // The allocator may evict, and eviction waits for fences: a reclaim point.
    use dmabuf::buf::exporters::DeviceMemory;
    let vram = DeviceMemory::new(&Device::new("gpu", DeviceCaps::NONE), 1 << 20);
    let ((), reports) = capture(|| {
        let _section = signalling::begin_signalling();
        drop(vram.alloc(4096).expect("alloc"));
    });
    assert!(
        reports.iter().any(|r| r.kind == Kind::ReclaimInSignalling),
        "{reports:?}"
    );
}

#[test]
fn import_sync_file_holding_a_reservation_lock_is_reported() {
    let (buf, other, _) = bufs();
    let (_s, f) = dmabuf::FenceContext::new("test", "import").next_fence();
    let file = dmabuf::SyncFile::new(f);
    let reports = holding("import_sync_file", &other, || {
        buf.import_sync_file(&file, dmabuf::resv::Access::Write)
            .expect("import");
    });
    assert!(recursive(&reports), "{reports:?}");
}
