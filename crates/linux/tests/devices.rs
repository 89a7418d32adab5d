//! The device paths: dma-heap allocation, udmabuf creation, CPU-access brackets, mapping,
//! names and fdinfo, sync_file export, import, merge and info on real buffers.
//!
//! Each test needs `/dev/dma_heap/system` or `/dev/udmabuf` and, without it, prints
//! `SKIPPED: <why>` to stderr and returns. They run for real in the qemu guest (Linux 6.12).

mod common;
use common::{no_leak, skipped};
use dmabuf_linux::{Access, DmaBufFd, DmaHeap, Error, FenceStatus, SyncFileFd, Udmabuf};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{MemfdFlags, OFlags, SealFlags};
use rustix::io::Errno;
use std::time::Duration;

fn system_heap() -> Option<DmaHeap> {
    match DmaHeap::open("system") {
        Ok(h) => Some(h),
        Err(e) => {
            skipped(&format!("/dev/dma_heap/system missing ({e})"));
            None
        }
    }
}

fn udmabuf() -> Option<Udmabuf> {
    match Udmabuf::open() {
        Ok(u) => Some(u),
        Err(e) => {
            skipped(&format!("/dev/udmabuf missing ({e})"));
            None
        }
    }
}

const MIB: u64 = 1 << 20;

// ports dmabuf-heap selftest: alloc_and_import (without the vgem import)
#[test]
fn heap_alloc_map_sync_and_size() {
    no_leak(|| {
        let Some(heap) = system_heap() else { return };
        let buf = heap.alloc(MIB).unwrap();
        assert_eq!(buf.size().unwrap(), MIB);
        let mut map = buf.mmap().unwrap();
        assert_eq!(map.len() as u64, MIB);
        map.write(|b| b.fill(0x5a)).unwrap();
        assert!(map.read(|b| b.iter().all(|&x| x == 0x5a)).unwrap());
        map.copy_from_slice(10, b"hello").unwrap();
        let mut got = [0u8; 5];
        map.copy_to_slice(10, &mut got).unwrap();
        assert_eq!(&got, b"hello");
        assert!(matches!(
            map.copy_to_slice(MIB as usize - 2, &mut got),
            Err(Error::OutOfRange { .. })
        ));
        drop(map);
        let guard = buf.begin_cpu_access(Access::ReadWrite).unwrap();
        guard.end().unwrap();
        // The kernel's flag check, bypassed locally only for valid flags.
        assert!(matches!(buf.sync(0), Err(Error::InvalidFlags { flags: 0 })));
    });
}

// ports dmabuf-heap selftest: alloc_zeroed (fewer buffers: TCG is slow)
#[test]
fn heap_alloc_is_zeroed() {
    no_leak(|| {
        let Some(heap) = system_heap() else { return };
        for _ in 0..4 {
            let buf = heap.alloc(4096).unwrap();
            buf.mmap().unwrap().write(|b| b.fill(0xff)).unwrap();
        }
        for _ in 0..4 {
            let buf = heap.alloc(4096).unwrap();
            assert!(
                buf.mmap()
                    .unwrap()
                    .read(|b| b.iter().all(|&x| x == 0))
                    .unwrap()
            );
        }
    });
}

// ports dmabuf-heap selftest: alloc_errors
#[test]
fn heap_alloc_errors() {
    no_leak(|| {
        let Some(heap) = system_heap() else { return };
        assert_eq!(
            heap.alloc_with(4096, OFlags::RDWR, 0x111111)
                .unwrap_err()
                .errno(),
            Errno::INVAL
        );
        assert_eq!(
            heap.alloc_with(4096, OFlags::RDWR | OFlags::NONBLOCK, 0)
                .unwrap_err()
                .errno(),
            Errno::INVAL
        );
        assert_eq!(heap.alloc(0).unwrap_err(), Error::ZeroLength);
    });
}

#[test]
fn dma_buf_name_fdinfo_and_from_fd_round_trip() {
    no_leak(|| {
        let Some(heap) = system_heap() else { return };
        let buf = heap.alloc(MIB).unwrap();
        let info = buf.fdinfo().unwrap();
        assert_eq!(
            (info.size, info.exp_name.as_str(), info.name.as_deref()),
            (MIB, "system", None)
        );
        buf.set_name("frame 7").unwrap();
        assert_eq!(buf.fdinfo().unwrap().name.as_deref(), Some("frame 7"));
        assert_eq!(
            buf.set_name(&"x".repeat(32)).unwrap_err(),
            Error::NameTooLong { len: 32 }
        );

        let fd: OwnedFd = buf.into();
        let buf = DmaBufFd::from_fd(fd).unwrap();
        // A dma-buf is not a sync file, and the fd comes back.
        let (err, fd) = SyncFileFd::from_fd(buf.into()).unwrap_err();
        assert!(matches!(err, Error::NotSyncFile { .. }), "{err:?}");
        DmaBufFd::from_fd(fd).unwrap();
    });
}

#[test]
fn idle_buffer_exports_a_signalled_stub_and_polls_ready() {
    no_leak(|| {
        let Some(heap) = system_heap() else { return };
        let buf = heap.alloc(MIB).unwrap();
        for access in [Access::Read, Access::Write, Access::ReadWrite] {
            assert!(buf.is_ready(access).unwrap());
            buf.wait_ready(access, Some(Duration::ZERO)).unwrap();
            let sf = buf.export_sync_file(access).unwrap();
            assert!(sf.is_signaled().unwrap());
            sf.wait(Some(Duration::from_secs(1))).unwrap();
            assert_eq!(sf.status().unwrap(), FenceStatus::Signaled);
            let info = sf.info().unwrap();
            assert_eq!(info.status, FenceStatus::Signaled);
            assert_eq!(info.num_fences(), 1);
            assert_eq!(info.fences[0].driver, "stub");
            assert!(info.fences[0].timestamp.is_some());
            sf.set_deadline(0).unwrap();

            // A sync file is not a dma-buf, and the fd comes back.
            let (err, fd) = DmaBufFd::from_fd(sf.into()).unwrap_err();
            assert!(matches!(err, Error::NotDmaBuf { .. }), "{err:?}");
            let sf = SyncFileFd::from_fd(fd).unwrap();

            // Merging two signalled files: signalled, named; don't count leaves (stubs fold).
            let other = buf.export_sync_file(Access::Read).unwrap();
            let merged = sf.merge("both", &other).unwrap();
            let info = merged.info().unwrap();
            assert_eq!(
                (info.name.as_str(), info.status),
                ("both", FenceStatus::Signaled)
            );
            assert_eq!(
                sf.merge(&"m".repeat(32), &other).unwrap_err(),
                Error::NameTooLong { len: 32 }
            );

            // Importing a signalled fence leaves the buffer ready.
            buf.import_sync_file(&merged, access).unwrap();
            assert!(buf.is_ready(Access::Write).unwrap());
        }
    });
}

#[test]
fn udmabuf_shares_pages_with_its_memfd() {
    no_leak(|| {
        let Some(dev) = udmabuf() else { return };
        let page = rustix::param::page_size() as u64;
        let memfd =
            rustix::fs::memfd_create("udmabuf", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .unwrap();
        rustix::fs::ftruncate(&memfd, 4 * page).unwrap();
        // Without the shrink seal: refused before the ioctl.
        assert_eq!(
            dev.create(&memfd, 0, 4 * page).unwrap_err(),
            Error::MissingShrinkSeal
        );
        rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK).unwrap();

        let buf = dev.create(&memfd, page, 2 * page).unwrap();
        assert_eq!(buf.size().unwrap(), 2 * page);
        assert_eq!(buf.fdinfo().unwrap().exp_name, "udmabuf");
        buf.mmap()
            .unwrap()
            .copy_from_slice(0, b"through the dma-buf")
            .unwrap();
        let mut back = [0u8; 19];
        rustix::io::pread(&memfd, &mut back, page).unwrap();
        assert_eq!(&back, b"through the dma-buf");

        let list = dev
            .create_list(&[(memfd.as_fd(), 0, page), (memfd.as_fd(), 2 * page, page)])
            .unwrap();
        assert_eq!(list.size().unwrap(), 2 * page);

        let sf = buf.export_sync_file(Access::Write).unwrap();
        buf.import_sync_file(&sf, Access::Write).unwrap();
        buf.wait_ready(Access::Write, Some(Duration::from_secs(1)))
            .unwrap();
    });
}

/// A memfd of `len` bytes with `seals` added (none if empty).
fn memfd(len: u64, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create("bad-input", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    if !seals.is_empty() {
        rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    }
    fd
}

// The kernel refuses F_SEAL_FUTURE_WRITE as it does F_SEAL_WRITE (since the December 2024
// fix, in 6.12 stable too); the check before the ioctl used to let it through to an untyped
// EINVAL.
#[test]
fn udmabuf_refuses_a_future_write_seal() {
    no_leak(|| {
        let Some(dev) = udmabuf() else { return };
        let page = rustix::param::page_size() as u64;
        let fd = memfd(page, SealFlags::SHRINK | SealFlags::FUTURE_WRITE);
        let err = dev.create(&fd, 0, page).unwrap_err();
        assert_eq!(err, Error::WriteSealed);
    });
}
