//! Buffers: the attach/map/unmap/detach cycle of an importer, and eviction, each beside the
//! raw work underneath it in the same group.
//!
//! * `attach_map_unmap_detach/{system,devmem_dynamic}` — a device attaches to a 64 KiB
//!   buffer, maps it (lock held), unmaps and detaches: a system-heap buffer with a static
//!   importer, and a device-memory buffer with a dynamic importer. Baseline `raw_device_map`:
//!   the same segments mapped into and unmapped from the device directly (`Device::map` /
//!   `unmap`, what the exporters do inside), with no buffer, lock or attachment around them.
//! * `map_unmap/*` — map and unmap on a live attachment only, same baseline.
//! * `evict_restore/64KiB` — a 64 KiB device-memory buffer with one dynamic importer is
//!   evicted (lock, fence wait, move_notify, copy out) and brought back by a map (copy in);
//!   baseline `two_copies`: the two 64 KiB copies into fresh allocations alone.
//!
//! Run: `cargo bench -p dmabuf --bench buf`.

use criterion::{Criterion, criterion_group, criterion_main};
use dmabuf::buf::exporters::{DeviceMemory, SystemHeap};
use dmabuf::buf::{Device, DeviceCaps, Direction, HostMemory, Importer, Locked, Memory, SgTable};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const SIZE: u64 = 64 * 1024;

struct Follow;
impl Importer for Follow {
    fn move_notify(&self, _locked: &Locked<'_>) {}
}

fn raw_map_unmap(dev: &Device, memory: &Arc<dyn Memory>, max_segment: usize) {
    let t = SgTable::map_memory(dev, Direction::ToDevice, memory, SIZE as usize, max_segment)
        .expect("map");
    black_box(t.segments());
    t.unmap_from_device();
}

fn attach_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("attach_map_unmap_detach");
    let dev = Device::new("bench", DeviceCaps::NONE);
    let sys = SystemHeap::new().alloc(SIZE).expect("alloc");
    g.bench_function("system", |b| {
        b.iter(|| {
            let att = sys.attach(&dev).expect("attach");
            let guard = sys.resv().lock_single();
            let m = att.map(&guard, Direction::ToDevice).expect("map");
            black_box(m.segments());
            m.unmap(&guard).expect("unmap");
            drop(guard);
            att.detach();
        });
    });
    let vram = DeviceMemory::new(&dev, 4 * SIZE);
    let dm = vram.alloc(SIZE).expect("alloc");
    g.bench_function("devmem_dynamic", |b| {
        b.iter(|| {
            let att = dm.dynamic_attach(&dev, Arc::new(Follow)).expect("attach");
            let guard = dm.resv().lock_single();
            let m = att.map(&guard, Direction::ToDevice).expect("map");
            black_box(m.segments());
            m.unmap(&guard).expect("unmap");
            drop(guard);
            att.detach();
        });
    });
    let memory: Arc<dyn Memory> = Arc::new(HostMemory::zeroed(SIZE).expect("size"));
    g.bench_function("raw_device_map", |b| {
        b.iter(|| raw_map_unmap(&dev, &memory, SIZE as usize));
    });
    g.finish();

    let mut g = c.benchmark_group("map_unmap");
    let att = sys.attach(&dev).expect("attach");
    g.bench_function("system_static", |b| {
        b.iter(|| {
            let guard = sys.resv().lock_single();
            let m = att.map(&guard, Direction::ToDevice).expect("map");
            black_box(m.segments());
            m.unmap(&guard).expect("unmap");
        });
    });
    g.bench_function("raw_device_map", |b| {
        b.iter(|| raw_map_unmap(&dev, &memory, SIZE as usize));
    });
    g.finish();
}

fn eviction(c: &mut Criterion) {
    let mut g = c.benchmark_group("evict_restore");
    let dev = Device::new("gpu", DeviceCaps::NONE);
    let vram = DeviceMemory::new(&dev, 4 * SIZE);
    let buf = vram.alloc(SIZE).expect("alloc");
    let att = buf.dynamic_attach(&dev, Arc::new(Follow)).expect("attach");
    g.bench_function("64KiB", |b| {
        b.iter(|| {
            assert_eq!(vram.evict_all().expect("evict"), 1);
            let guard = buf.resv().lock_single();
            let m = att
                .map(&guard, Direction::Bidirectional)
                .expect("map restores");
            m.unmap(&guard).expect("unmap");
        });
    });
    let mut vram_bytes = vec![1u8; SIZE as usize];
    g.bench_function("two_copies", |b| {
        b.iter(|| {
            // What eviction and restore must do at least: copy the bytes out to fresh host
            // memory and back in to fresh device memory.
            let host = black_box(vram_bytes.clone());
            vram_bytes = black_box(host.clone());
        });
    });
    g.finish();
    drop(att);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = attach_cycle, eviction
}
criterion_main!(benches);
