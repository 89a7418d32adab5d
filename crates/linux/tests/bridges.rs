//! Buffers crossing between the kernel and the in-process library, in both directions; each
//! test needs a device and is ignored unless asked for (`--include-ignored`, as the qemu guest
//! runs it; see `common`):
//! * a kernel dma-buf (dma-heap, vgem) as a library buffer ([`KernelBuffer`]): library
//!   importers map it and their DMA lands in the kernel buffer, and the kernel's pending
//!   fences hold library readers and writers back until they signal;
//! * a library memfd buffer as a kernel dma-buf ([`Udmabuf::create_from`]): both sides see
//!   each other's bytes;
//! * the full circle: library memfd → udmabuf → library buffer again, one set of pages.

mod common;

use common::{no_leak, system_heap, udmabuf, vgem};
use dmabuf::buf::exporters::{MemfdBuffer, MemfdHeap, SystemHeap};
use dmabuf::buf::{Device, DeviceCaps, Direction, DmaBuf, Importer, Locked, Memory};
use dmabuf_linux::{Access, Error, KernelBuffer, Reactor};
use std::sync::Arc;
use std::time::Duration;

/// A byte pattern that differs at every offset of a few pages.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// The kernel side of a library buffer made by [`KernelBuffer::export`].
fn kernel_fd(buf: &DmaBuf) -> &dmabuf_linux::DmaBufFd {
    buf.exporter_as::<KernelBuffer>()
        .expect("a kernel buffer")
        .fd()
}

struct Ignore;
impl Importer for Ignore {
    fn move_notify(&self, _locked: &Locked<'_>) {}
}

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn a_kernel_heap_buffer_is_a_library_buffer_both_ways() {
    no_leak(|| {
        let heap = system_heap();
        const LEN: usize = 3 * 64 * 1024 + 4096; // several mapping segments
        let buf = KernelBuffer::export(heap.alloc(LEN as u64).expect("alloc")).expect("wrap");
        assert_eq!(buf.size(), LEN as u64);
        assert_eq!(buf.exporter().name(), "kernel:system");

        // A library device writes by DMA; the kernel mapping sees it.
        let codec = Device::new("codec", DeviceCaps::NONE);
        let att = buf.attach(&codec).expect("attach");
        let written = pattern(LEN - 100, 7);
        {
            let g = buf.resv().lock_single();
            let m = att.map(&g, Direction::ToDevice).expect("map");
            assert!(m.segments().len() > 1);
            m.dma_write(50, &written).expect("dma write");
            m.unmap(&g).expect("unmap");
        }
        let mut seen = vec![0u8; written.len()];
        kernel_fd(&buf)
            .mmap()
            .expect("kernel mmap")
            .copy_to_slice(50, &mut seen)
            .expect("read");
        assert!(seen == written, "library DMA landed in the kernel buffer");

        // The kernel side writes; a dynamic library importer and the CPU read it.
        let fresh = pattern(LEN, 99);
        kernel_fd(&buf)
            .mmap()
            .expect("kernel mmap")
            .copy_from_slice(0, &fresh)
            .expect("write");
        let gpu = Device::new("gpu", DeviceCaps::NONE);
        let dynamic = buf.dynamic_attach(&gpu, Arc::new(Ignore)).expect("attach");
        {
            let g = buf.resv().lock_single();
            let m = dynamic.map(&g, Direction::FromDevice).expect("map");
            let mut back = vec![0u8; LEN];
            m.dma_read(0, &mut back).expect("dma read");
            assert!(back == fresh, "kernel bytes reached the library device");
            let vmap = buf.vmap(&g).expect("vmap");
            let mut head = [0u8; 16];
            vmap.memory()
                .read_at(LEN - 16, &mut head)
                .expect("cpu read");
            assert_eq!(&head[..], &fresh[LEN - 16..]);
            vmap.vunmap(&g).expect("vunmap");
            m.unmap(&g).expect("unmap");
        }
        // Out of range is a fault, not a panic.
        let g = buf.resv().lock_single();
        let vmap = buf.vmap(&g).expect("vmap");
        assert!(matches!(
            vmap.memory().read_at(LEN - 4, &mut [0u8; 8]),
            Err(dmabuf::Error::Fault { .. })
        ));
        vmap.vunmap(&g).expect("vunmap");
    });
}

#[test]
#[ignore = "needs /dev/udmabuf (runs in the qemu guest)"]
fn a_library_memfd_buffer_becomes_a_kernel_dma_buf() {
    no_leak(|| {
        let udmabuf = udmabuf();
        let buf = MemfdHeap::new().alloc(8192).expect("alloc");
        let kernel = udmabuf.create_from(&buf).expect("udmabuf");
        assert_eq!(kernel.size().expect("size"), 8192);
        assert_eq!(kernel.fdinfo().expect("fdinfo").exp_name, "udmabuf");
        let memory = buf
            .exporter_as::<MemfdBuffer>()
            .expect("memfd")
            .memory()
            .clone();

        memory.write_at(4000, b"from the library").expect("write");
        let map = kernel.mmap().expect("mmap");
        let mut seen = [0u8; 16];
        map.copy_to_slice(4000, &mut seen).expect("read");
        assert_eq!(&seen, b"from the library");

        map.copy_from_slice(8192 - 15, b"from the kernel")
            .expect("write");
        let mut back = [0u8; 15];
        memory.read_at(8192 - 15, &mut back).expect("read");
        assert_eq!(&back, b"from the kernel");
    });
}

#[test]
#[ignore = "needs /dev/udmabuf (runs in the qemu guest)"]
fn only_memfd_buffers_become_udmabufs() {
    no_leak(|| {
        let udmabuf = udmabuf();
        let buf = SystemHeap::new().alloc(4096).expect("alloc");
        let err = udmabuf.create_from(&buf).expect_err("not memfd-backed");
        assert!(matches!(err, Error::WrongExporter { .. }), "{err:?}");
        assert_eq!(err.errno(), rustix::io::Errno::INVAL);
    });
}

#[test]
#[ignore = "needs /dev/udmabuf (runs in the qemu guest)"]
fn library_memfd_through_udmabuf_and_back_is_one_set_of_pages() {
    no_leak(|| {
        let udmabuf = udmabuf();
        let original = MemfdHeap::new().alloc(3 * 4096).expect("alloc");
        let again =
            KernelBuffer::export(udmabuf.create_from(&original).expect("udmabuf")).expect("wrap");
        assert_eq!(again.exporter().name(), "kernel:udmabuf");
        let dev = Device::new("isp", DeviceCaps::NONE);
        let att = again.attach(&dev).expect("attach");
        let g = again.resv().lock_single();
        let m = att.map(&g, Direction::ToDevice).expect("map");
        m.dma_write(4096 + 5, b"full circle").expect("dma");
        m.unmap(&g).expect("unmap");
        drop(g);
        let mut seen = [0u8; 11];
        original
            .exporter_as::<MemfdBuffer>()
            .expect("memfd")
            .memory()
            .read_at(4096 + 5, &mut seen)
            .expect("read");
        assert_eq!(&seen, b"full circle");
    });
}

#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn kernel_fences_hold_library_readers_and_writers_back() {
    no_leak(|| {
        let vgem = vgem();
        let reactor = Reactor::new().expect("reactor");
        let vbuf = vgem.create_buffer(4096).expect("vgem buffer");
        let buf = KernelBuffer::export(vbuf.export().expect("export")).expect("wrap");
        // vgem exports through DRM PRIME, whose exporter name is DRM's module.
        assert_eq!(buf.exporter().name(), "kernel:drm");

        // Nothing pending: importing brings nothing, everyone is ready.
        KernelBuffer::import_kernel_fences(&buf, &reactor).expect("import");
        assert!(buf.is_ready(Access::Read) && buf.is_ready(Access::Write));

        // A kernel reader: library writers wait for it, library readers do not.
        let reader = vbuf.attach_fence(false).expect("read fence");
        KernelBuffer::import_kernel_fences(&buf, &reactor).expect("import");
        assert!(buf.is_ready(Access::Read));
        assert!(!buf.is_ready(Access::Write));
        reader.signal().expect("signal");
        buf.wait_ready(Access::Write, Some(Duration::from_secs(5)))
            .expect("the bridged reader signals");

        // A kernel writer: both wait.
        let writer = vbuf.attach_fence(true).expect("write fence");
        KernelBuffer::import_kernel_fences(&buf, &reactor).expect("import");
        assert!(!buf.is_ready(Access::Read));
        assert!(!buf.is_ready(Access::Write));
        writer.signal().expect("signal");
        buf.wait_ready(Access::Read, Some(Duration::from_secs(5)))
            .expect("the bridged writer signals");
        buf.wait_ready(Access::Write, Some(Duration::from_secs(5)))
            .expect("and nothing else is pending");

        // Only kernel buffers' fences can be brought in.
        let other = SystemHeap::new().alloc(4096).expect("alloc");
        assert!(matches!(
            KernelBuffer::import_kernel_fences(&other, &reactor),
            Err(Error::WrongExporter { .. })
        ));
        drop(reactor);
    });
}
