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
    // A peer reaches the buffer where the vmap holds it.
    let peer = Device::new("peer", DeviceCaps::PEER_TO_PEER);
    let att = a
        .dynamic_attach(&peer, Arc::new(Mover::default()))
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

/// A pool of one page holding `a`, which the pool's own device wrote `bytes` into.
fn a_in_device_memory(gpu: &Device, bytes: &[u8]) -> (Arc<DeviceMemory>, DmaBuf) {
    let vram = DeviceMemory::new(gpu, 4096);
    let a = vram.alloc(4096).expect("a");
    let att = a
        .dynamic_attach(gpu, Arc::new(Mover::default()))
        .expect("attach");
    let g = a.resv().lock_single();
    let m = att.map(&g, Direction::Bidirectional).expect("map");
    m.dma_write(0, bytes).expect("gpu write");
    m.unmap(&g).expect("unmap");
    drop(g);
    drop(att);
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    (vram, a)
}

#[test]
fn an_importer_without_peer_to_peer_gets_the_buffer_in_host_memory() {
    // Kernel: amdgpu_dma_buf_map() places the BO in VRAM only for a peer2peer attachment,
    // else in GTT (system memory); amdgpu_dma_buf_pin() pins in GTT for one.
    let gpu = dev("gpu");
    let (vram, a) = a_in_device_memory(&gpu, b"rendered");
    // A dynamic importer without peer-to-peer: its map moves the buffer out first.
    let mover = Arc::new(Mover::default());
    let nic = a
        .dynamic_attach(&dev("nic"), mover.clone())
        .expect("attach");
    let g = a.resv().lock_single();
    let m = nic.map(&g, Direction::ToDevice).expect("map");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    assert_eq!(vram.used(), 0, "its device memory is free again");
    assert_eq!(
        mover.0.load(Ordering::SeqCst),
        1,
        "importers heard of the move"
    );
    let mut back = [0u8; 8];
    m.dma_read(0, &mut back).expect("nic read");
    assert_eq!(&back, b"rendered", "the bytes moved with it");
    m.unmap(&g).expect("unmap");
    drop(g);
    drop(nic);
    // A peer-to-peer importer reaches device memory: the buffer stays (or goes back) there.
    let gpu_att = a
        .dynamic_attach(&gpu, Arc::new(Mover::default()))
        .expect("attach");
    let g = a.resv().lock_single();
    gpu_att
        .map(&g, Direction::Bidirectional)
        .expect("restore")
        .unmap(&g)
        .expect("unmap");
    drop(g);
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    let peer = a
        .dynamic_attach(
            &Device::new("peer", DeviceCaps::PEER_TO_PEER),
            Arc::new(Mover::default()),
        )
        .expect("attach");
    let g = a.resv().lock_single();
    let m = peer.map(&g, Direction::ToDevice).expect("map");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    m.dma_read(0, &mut back).expect("peer read");
    assert_eq!(&back, b"rendered");
    m.unmap(&g).expect("unmap");
    drop(g);
    drop((gpu_att, peer));
}

#[test]
fn a_static_importer_without_peer_to_peer_pins_the_buffer_in_host_memory() {
    let gpu = dev("gpu");
    let (vram, a) = a_in_device_memory(&gpu, b"frame");
    let camera = dev("camera");
    let att = a.attach(&camera).expect("attach: moved out, then pinned");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    assert_eq!(vram.used(), 0);
    let g = a.resv().lock_single();
    let m = att.map(&g, Direction::Bidirectional).expect("cached");
    let mut back = [0u8; 5];
    m.dma_read(0, &mut back).expect("camera read");
    assert_eq!(&back, b"frame");
    m.unmap(&g).expect("unmap");
    drop(g);
    // Pinned in host memory: the pool's device maps it there.
    let gpu_att = a.attach(&gpu).expect("attach gpu");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    drop((gpu_att, att));
}

#[test]
fn a_buffer_pinned_in_device_memory_is_busy_for_an_importer_without_peer_to_peer() {
    // Kernel: dma_buf_attach() answers -EBUSY when the storage is where the device cannot
    // reach it and cannot move.
    let gpu = dev("gpu");
    let (vram, a) = a_in_device_memory(&gpu, b"scanout");
    let display = a
        .dynamic_attach(&gpu, Arc::new(Mover::default()))
        .expect("attach");
    let g = a.resv().lock_single();
    display.pin(&g).expect("pin in device memory");
    drop(g);
    let err = a.attach(&dev("camera")).expect_err("cannot reach it");
    assert!(matches!(err, dmabuf::Error::Busy(_)), "{err:?}");
    assert_eq!(a.attachment_count(), 1, "the refused attachment is gone");
    let nic = a
        .dynamic_attach(&dev("nic"), Arc::new(Mover::default()))
        .expect("attach");
    let g = a.resv().lock_single();
    let err = nic
        .map(&g, Direction::ToDevice)
        .expect_err("cannot reach it");
    assert!(matches!(err, dmabuf::Error::Busy(_)), "{err:?}");
    assert!(matches!(nic.pin(&g), Err(dmabuf::Error::Busy(_))));
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Device));
    assert_eq!(vram.used(), 4096);
    // Unpinned, it can move out for them.
    display.unpin(&g).expect("unpin");
    let m = nic.map(&g, Direction::ToDevice).expect("map");
    assert_eq!(DeviceMemory::placement(&a), Some(Placement::Host));
    m.unmap(&g).expect("unmap");
    drop(g);
    drop((nic, display));
}

#[test]
fn a_pin_moves_the_buffer_out_when_any_attached_device_cannot_reach_device_memory() {
    // Kernel: amdgpu_dma_buf_pin() leaves VRAM out as soon as one attachment lacks peer2peer.
    let gpu = dev("gpu");
    let (_vram, a) = a_in_device_memory(&gpu, b"shared");
    let nic = a
        .dynamic_attach(&dev("nic"), Arc::new(Mover::default()))
        .expect("attach");
    let peer = a
        .dynamic_attach(
            &Device::new("peer", DeviceCaps::PEER_TO_PEER),
            Arc::new(Mover::default()),
        )
        .expect("attach");
    let g = a.resv().lock_single();
    peer.pin(&g).expect("pin");
    assert_eq!(
        DeviceMemory::placement(&a),
        Some(Placement::Host),
        "pinned where all reach"
    );
    let m = nic
        .map(&g, Direction::ToDevice)
        .expect("the nic can still map it");
    let mut back = [0u8; 6];
    m.dma_read(0, &mut back).expect("nic read");
    assert_eq!(&back, b"shared");
    m.unmap(&g).expect("unmap");
    peer.unpin(&g).expect("unpin");
    drop(g);
    drop((nic, peer));
}
