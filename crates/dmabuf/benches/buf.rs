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
//! After criterion's groups, an interleaved comparison (the number `BENCHMARKS.md` gives):
//! each framework case and the raw device map in alternating batches, the median ratio of
//! the rounds with its spread.
//!
//! Run: `cargo bench -p dmabuf --bench buf [-- interleaved]`.

use criterion::{Criterion, criterion_group};
use dmabuf::buf::exporters::{DeviceMemory, SystemHeap};
use dmabuf::buf::{
    Attachment, Device, DeviceCaps, Direction, DmaBuf, HostMemory, ImportMode, Importer, Locked,
    Memory, SgTable,
};
use dmabuf_testkit::rounds::{interleave, per_call};
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

/// One attach + map + unmap + detach of `att`'s kind.
fn cycle<M: ImportMode>(buf: &DmaBuf, attach: impl Fn() -> Attachment<M>) {
    let att = attach();
    let guard = buf.resv().lock_single();
    let m = att.map(&guard, Direction::ToDevice).expect("map");
    black_box(m.segments());
    m.unmap(&guard).expect("unmap");
    drop(guard);
    att.detach();
}

/// One map + unmap of a live attachment, the lock taken around both.
fn map_unmap(buf: &DmaBuf, att: &Attachment) {
    let guard = buf.resv().lock_single();
    let m = att.map(&guard, Direction::ToDevice).expect("map");
    black_box(m.segments());
    m.unmap(&guard).expect("unmap");
}

/// What the attach benches share: a device, a system-heap buffer, a device-memory buffer
/// (with its pool) and the raw memory of the baseline.
struct Setup {
    dev: Device,
    sys: DmaBuf,
    _vram: Arc<DeviceMemory>,
    dm: DmaBuf,
    memory: Arc<dyn Memory>,
}

impl Setup {
    fn new() -> Self {
        let dev = Device::new("bench", DeviceCaps::NONE);
        let sys = SystemHeap::new().alloc(SIZE).expect("alloc");
        let vram = DeviceMemory::new(&dev, 4 * SIZE);
        let dm = vram.alloc(SIZE).expect("alloc");
        let memory: Arc<dyn Memory> = Arc::new(HostMemory::zeroed(SIZE).expect("size"));
        Setup {
            dev,
            sys,
            _vram: vram,
            dm,
            memory,
        }
    }

    fn system_cycle(&self) {
        cycle(&self.sys, || self.sys.attach(&self.dev).expect("attach"));
    }

    fn devmem_cycle(&self) {
        cycle(&self.dm, || {
            self.dm
                .dynamic_attach(&self.dev, Arc::new(Follow))
                .expect("attach")
        });
    }

    fn raw(&self) {
        raw_map_unmap(&self.dev, &self.memory, SIZE as usize);
    }
}

fn attach_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("attach_map_unmap_detach");
    let s = Setup::new();
    g.bench_function("system", |b| b.iter(|| s.system_cycle()));
    g.bench_function("devmem_dynamic", |b| b.iter(|| s.devmem_cycle()));
    g.bench_function("raw_device_map", |b| b.iter(|| s.raw()));
    g.finish();

    let mut g = c.benchmark_group("map_unmap");
    let att = s.sys.attach(&s.dev).expect("attach");
    g.bench_function("system_static", |b| b.iter(|| map_unmap(&s.sys, &att)));
    g.bench_function("raw_device_map", |b| b.iter(|| s.raw()));
    g.finish();
}

/// The attach cycle and the live map against the raw device map, in alternating batches:
/// medians of the rounds and the spread of their ratios.
fn interleaved() {
    const ROUNDS: usize = 41;
    const ITERS: u64 = 20_000;
    println!(
        "\ninterleaved: framework / raw_device_map, {ROUNDS} alternating rounds of {ITERS} calls"
    );
    println!("| case | framework | raw device map | ratio (p25-p75) |");
    println!("|---|---|---|---|");
    let s = Setup::new();
    let att = s.sys.attach(&s.dev).expect("attach");
    let cases: [(&str, &dyn Fn()); 3] = [
        ("attach+map+unmap+detach, system, static", &|| {
            s.system_cycle()
        }),
        ("attach+map+unmap+detach, devmem, dynamic", &|| {
            s.devmem_cycle()
        }),
        ("map+unmap on a live attachment", &|| {
            map_unmap(&s.sys, &att)
        }),
    ];
    for (name, case) in cases {
        let r = interleave(
            ROUNDS,
            ITERS,
            |n| per_call(n, case),
            |n| per_call(n, || s.raw()),
        );
        let (v, b, ratio) = r.medians();
        let (lo, hi) = r.ratio_spread();
        println!("| {name} | {v:.1} ns | {b:.1} ns | {ratio:.2}x ({lo:.2}-{hi:.2}) |");
    }
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
fn main() {
    // A bench of the library, not of the validator, which starts on when `cargo bench
    // --workspace` builds the library with the `lockdep` feature.
    dmabuf::lockdep::set_enabled(false);
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench ... -- <filter>` runs the interleaved comparison only if the filter names
    // it (or there is none).
    if dmabuf_testkit::own_pass_wanted("interleaved") {
        interleaved();
    }
}
