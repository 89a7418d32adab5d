//! The device-memory exporter's placement rules, case by case: what may move a buffer (eviction,
//! a map for the pool's own device) and what must keep it where it is (a pin, a live vmap).

use dmabuf::buf::exporters::{DeviceMemory, Placement};
use dmabuf::buf::{Device, DeviceCaps, Direction, DmaBuf, Importer, Locked};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn dev(name: &str) -> Device {
    Device::new(name, DeviceCaps::NONE)
}

/// A dynamic importer counting move_notify calls.
#[derive(Default)]
struct Mover(AtomicUsize);

impl Importer for Mover {
    fn move_notify(&self, _locked: &Locked<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `len` bytes of `buf` read through a vmap.
fn cpu_read(buf: &DmaBuf, len: usize) -> Vec<u8> {
    let g = buf.resv().lock_single();
    let v = buf.vmap(&g).expect("vmap");
    let mut bytes = vec![0u8; len];
    v.memory().read_at(0, &mut bytes).expect("read");
    v.vunmap(&g).expect("vunmap");
    bytes
}

/// A pool of two pages holding `b` and `c`, with `a` evicted to host memory by `c`.
fn a_evicted(gpu: &Device) -> (Arc<DeviceMemory>, DmaBuf, DmaBuf, DmaBuf) {
    let vram = DeviceMemory::new(gpu, 2 * 4096);
    let a = vram.alloc(4096).expect("a");
    let b = vram.alloc(4096).expect("b");
    let c = vram.alloc(4096).expect("c evicts a");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    (vram, a, b, c)
}

#[test]
fn a_map_for_the_pool_device_does_not_restore_a_buffer_a_static_importer_pinned() {
    // Kernel: amdgpu_dma_buf_map() moves the BO only `if (!bo->tbo.pin_count)`.
    let gpu = dev("gpu");
    let (vram, a, b, c) = a_evicted(&gpu);
    // Static importer, dynamic exporter: pinned and mapped at attach, in host memory.
    let camera = dev("camera");
    let cam_att = a.attach(&camera).expect("attach camera");
    drop(c); // room in device memory again
    // The pool's own device maps `a` (a static attach maps at once): it must stay put.
    let gpu_att = a.attach(&gpu).expect("attach gpu");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    assert_eq!(vram.restores(), 0);
    let g = a.resv().lock_single();
    let cm = cam_att
        .map(&g, Direction::Bidirectional)
        .expect("camera map");
    let gm = gpu_att.map(&g, Direction::Bidirectional).expect("gpu map");
    cm.dma_write(0, b"camera").expect("camera write");
    let mut back = [0u8; 6];
    gm.dma_read(0, &mut back).expect("gpu read");
    assert_eq!(&back, b"camera", "both devices see one placement");
    cm.unmap(&g).expect("unmap");
    gm.unmap(&g).expect("unmap");
    drop(g);
    assert_eq!(&cpu_read(&a, 6), b"camera");
    drop((cam_att, gpu_att, b));
}

#[test]
fn a_map_for_the_pool_device_does_not_restore_a_buffer_a_dynamic_importer_pinned() {
    let gpu = dev("gpu");
    let (vram, a, b, c) = a_evicted(&gpu);
    let nic = a
        .dynamic_attach(&dev("nic"), Arc::new(Mover::default()))
        .expect("attach nic");
    let mover = Arc::new(Mover::default());
    let gpu_att = a.dynamic_attach(&gpu, mover.clone()).expect("attach gpu");
    drop(c);
    let g = a.resv().lock_single();
    nic.pin(&g).expect("pin");
    let nm = nic.map(&g, Direction::Bidirectional).expect("nic map");
    let gm = gpu_att.map(&g, Direction::Bidirectional).expect("gpu map");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    assert_eq!(mover.0.load(Ordering::SeqCst), 0, "nothing moved");
    nm.dma_write(0, b"packet").expect("nic write");
    let mut back = [0u8; 6];
    gm.dma_read(0, &mut back).expect("gpu read");
    assert_eq!(&back, b"packet");
    gm.unmap(&g).expect("unmap");
    nm.unmap(&g).expect("unmap");
    // Unpinned, the next map for the pool's device brings it back.
    nic.unpin(&g).expect("unpin");
    let gm = gpu_att.map(&g, Direction::Bidirectional).expect("gpu map");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    assert_eq!(vram.restores(), 1);
    gm.unmap(&g).expect("unmap");
    drop(g);
    assert_eq!(&cpu_read(&a, 6), b"packet", "the bytes moved with it");
    drop((nic, gpu_att, b));
}

#[test]
fn a_live_vmap_keeps_the_buffer_where_it_is() {
    // Kernel: amdgpu_dma_buf_vmap() pins the BO, amdgpu_dma_buf_vunmap() unpins it.
    let gpu = dev("gpu");
    let vram = DeviceMemory::new(&gpu, 4096);
    let a = vram.alloc(4096).expect("a");
    let g = a.resv().lock_single();
    let v1 = a.vmap(&g).expect("vmap");
    let v2 = a.vmap(&g).expect("vmap again: the same view");
    drop(g);
    assert_eq!(
        vram.evict_all().expect("evict"),
        0,
        "vmapped: nothing moves"
    );
    assert_eq!(vram.alloc(4096).err(), Some(dmabuf::Error::NoMemory));
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    v1.memory().write_at(0, b"cpu").expect("cpu write");
    let att = a
        .dynamic_attach(&dev("nic"), Arc::new(Mover::default()))
        .expect("attach");
    let g = a.resv().lock_single();
    let m = att.map(&g, Direction::ToDevice).expect("map");
    let mut back = [0u8; 3];
    m.dma_read(0, &mut back).expect("device read");
    assert_eq!(&back, b"cpu", "the device sees what the CPU wrote");
    m.unmap(&g).expect("unmap");
    v1.vunmap(&g).expect("vunmap");
    drop(g);
    assert_eq!(vram.evict_all().expect("evict"), 0, "one vmap still live");
    let g = a.resv().lock_single();
    v2.vunmap(&g).expect("last vunmap");
    drop(g);
    assert_eq!(
        vram.evict_all().expect("evict"),
        1,
        "unpinned by the last vunmap"
    );
    assert_eq!(&cpu_read(&a, 3), b"cpu");
    drop(att);
}

#[test]
fn a_live_vmap_keeps_an_evicted_buffer_out_of_device_memory() {
    let gpu = dev("gpu");
    let (vram, a, b, c) = a_evicted(&gpu);
    drop(c);
    let g = a.resv().lock_single();
    let v = a.vmap(&g).expect("vmap");
    drop(g);
    let att = a
        .dynamic_attach(&gpu, Arc::new(Mover::default()))
        .expect("attach");
    let g = a.resv().lock_single();
    let m = att.map(&g, Direction::Bidirectional).expect("map");
    assert_eq!(
        DeviceMemory::placement(&a),
        Some(Placement::Host),
        "not restored"
    );
    m.dma_write(0, b"gpu").expect("gpu write");
    let mut back = [0u8; 3];
    v.memory().read_at(0, &mut back).expect("cpu read");
    assert_eq!(&back, b"gpu", "the CPU view is the buffer's memory");
    m.unmap(&g).expect("unmap");
    v.vunmap(&g).expect("vunmap");
    let m = att.map(&g, Direction::Bidirectional).expect("map");
    assert_eq!(
        DeviceMemory::placement(&a),
        Some(Placement::Device),
        "restored"
    );
    assert_eq!(vram.restores(), 1);
    m.unmap(&g).expect("unmap");
    drop(g);
    drop((att, b));
}

#[test]
fn detaching_under_a_live_cached_mapping_leaves_no_window_onto_memory_the_buffer_left() {
    // The camera's pin goes with its attachment; its cached mapping must go with it, or the
    // camera keeps writing into memory eviction copied the buffer out of.
    let gpu = dev("gpu");
    let vram = DeviceMemory::new(&gpu, 4096);
    let a = vram.alloc(4096).expect("a");
    let camera = Device::new("camera", DeviceCaps::PEER_TO_PEER);
    let att = a.attach(&camera).expect("attach: pinned, cached mapping");
    let g = a.resv().lock_single();
    let m = att.map(&g, Direction::Bidirectional).expect("map");
    drop(g);
    assert_eq!(vram.evict_all().expect("evict"), 0, "pinned while attached");
    drop(att);
    assert_eq!(
        camera.mapped_segments(),
        0,
        "detach unmapped the cached mapping"
    );
    assert_eq!(
        vram.evict_all().expect("evict"),
        1,
        "and unpinned the buffer"
    );
    assert!(matches!(
        m.dma_write(0, b"late"),
        Err(dmabuf::Error::Fault { .. })
    ));
    assert_eq!(cpu_read(&a, 4), [0; 4], "no write landed anywhere");
    let g = a.resv().lock_single();
    m.unmap(&g).expect("unmap after detach");
    drop(g);
    assert_eq!(camera.mapped_segments(), 0);
}
