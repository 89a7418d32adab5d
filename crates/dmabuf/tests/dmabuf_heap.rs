//! Port of the kernel selftest `tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c`, run
//! in-process against every heap this crate ships ([`SystemHeap`], [`MemfdHeap`]).
//!
//! Mapping: a heap fd is a [`Heap`] value; `DMA_HEAP_IOCTL_ALLOC` is [`Heap::allocate`]; the
//! buffer's mmap is [`DmaBuf::mmap`]; `DMA_BUF_IOCTL_SYNC` START/END is
//! [`DmaBuf::begin_cpu_access`] and its end; a vgem import is an attachment of another device.
//! Not ported: opening an invalid heap fd and `alloc_compat` (older and newer ioctl struct
//! sizes) — both are about the uapi, and belong to the kernel-interop layer.

use dmabuf::Errno;
use dmabuf::buf::exporters::{AllocRequest, Heap, MemfdHeap, O_CLOEXEC, O_RDWR, SystemHeap};
use dmabuf::buf::{Device, DeviceCaps, Direction, DmaBuf};

fn heaps() -> Vec<Box<dyn Heap>> {
    vec![Box::new(SystemHeap::new()), Box::new(MemfdHeap::new())]
}

const ONE_MEG: u64 = 1024 * 1024;

/// Fills the whole buffer with `byte` from the CPU, inside a SYNC bracket.
fn fill(buf: &DmaBuf, byte: u8) {
    let access = buf
        .begin_cpu_access(Direction::ToDevice)
        .expect("sync start");
    let mem = buf.mmap().expect("mmap");
    mem.write_at(0, &vec![byte; buf.size() as usize])
        .expect("write");
    access.end().expect("sync end");
}

/// Whether every byte of the buffer is `byte`, read from the CPU inside a SYNC bracket.
fn all(buf: &DmaBuf, byte: u8) -> bool {
    let access = buf
        .begin_cpu_access(Direction::FromDevice)
        .expect("sync start");
    let mut bytes = vec![!byte; buf.size() as usize];
    buf.mmap()
        .expect("mmap")
        .read_at(0, &mut bytes)
        .expect("read");
    access.end().expect("sync end");
    bytes.iter().all(|&b| b == byte)
}

// ports dmabuf-heap: test_alloc_and_import
#[test]
fn alloc_and_import() {
    for heap in heaps() {
        let buf = heap.alloc(ONE_MEG).expect("alloc");
        assert_eq!(buf.size(), ONE_MEG);
        fill(&buf, 0xa5);
        // The importing device sees the CPU's bytes through its mapping, and the CPU sees
        // what it writes back.
        let other = Device::new("importer", DeviceCaps::NONE);
        let att = buf.attach(&other).expect("import");
        let g = buf.resv().lock_single();
        let m = att.map(&g, Direction::Bidirectional).expect("map");
        let mut seen = vec![0u8; 4096];
        m.dma_read(ONE_MEG - 4096, &mut seen).expect("dma read");
        assert!(seen.iter().all(|&b| b == 0xa5), "{}", heap.name());
        m.dma_write(0, &[0x5a; 16]).expect("dma write");
        m.unmap(&g).expect("unmap");
        drop(g);
        att.detach();
        let access = buf.begin_cpu_access(Direction::FromDevice).expect("sync");
        let mut head = [0u8; 17];
        buf.mmap()
            .expect("mmap")
            .read_at(0, &mut head)
            .expect("read");
        access.end().expect("sync end");
        assert_eq!(&head[..16], &[0x5a; 16]);
        assert_eq!(head[16], 0xa5);
    }
}

// ports dmabuf-heap: test_alloc_zeroed
#[test]
fn alloc_zeroed() {
    for heap in heaps() {
        for size in [4096, ONE_MEG] {
            let dirty: Vec<DmaBuf> = (0..32)
                .map(|_| {
                    let b = heap.alloc(size).expect("alloc");
                    fill(&b, 0xff);
                    b
                })
                .collect();
            drop(dirty);
            for _ in 0..32 {
                let b = heap.alloc(size).expect("alloc again");
                assert!(all(&b, 0), "{} {size}: not zeroed", heap.name());
            }
        }
    }
}

// ports dmabuf-heap: test_alloc_errors
#[test]
fn alloc_errors() {
    for heap in heaps() {
        let bad_heap_flags = AllocRequest {
            heap_flags: 0x111111,
            ..AllocRequest::new(4096)
        };
        let e = heap.allocate(&bad_heap_flags).expect_err("heap flags");
        assert_eq!(e.errno(), Errno::EINVAL, "{}", heap.name());
        let bad_fd_flags = AllocRequest {
            fd_flags: !(O_RDWR | O_CLOEXEC),
            ..AllocRequest::new(4096)
        };
        let e = heap.allocate(&bad_fd_flags).expect_err("fd flags");
        assert_eq!(e.errno(), Errno::EINVAL, "{}", heap.name());
        let e = heap.alloc(0).expect_err("size zero");
        assert_eq!(e.errno(), Errno::EINVAL, "{}", heap.name());
        let e = heap.alloc(u64::MAX).expect_err("size overflows");
        assert_eq!(e.errno(), Errno::EINVAL, "{}", heap.name());
        heap.allocate(&AllocRequest {
            fd_flags: O_RDWR,
            ..AllocRequest::new(4096)
        })
        .expect("a subset of the valid fd flags");
    }
}
