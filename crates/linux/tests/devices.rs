//! The device paths: dma-heap allocation, udmabuf creation, CPU-access brackets, mapping,
//! names and fdinfo, sync_file export, import, merge and info on real buffers.
//!
//! Each test needs `/dev/dma_heap/system` or `/dev/udmabuf` (one also vgem) and is ignored
//! unless asked for (`--include-ignored`); it runs for real in the qemu guest (Linux 6.12) and
//! fails where a device it needs is missing (see `common`).

mod common;
use common::{no_leak, system_heap, udmabuf, vgem};
use dmabuf_linux::{Access, DmaBufFd, Error, FenceStatus, SyncFileFd};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{MemfdFlags, OFlags, SealFlags};
use rustix::io::Errno;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const MIB: u64 = 1 << 20;

// ports dmabuf-heap selftest: alloc_and_import
#[test]
#[ignore = "needs /dev/dma_heap/system and vgem (runs in the qemu guest)"]
fn heap_alloc_map_sync_and_size() {
    no_leak(|| {
        let heap = system_heap();
        let buf = heap.alloc(MIB).unwrap();
        assert_eq!(buf.size().unwrap(), MIB);
        let map = buf.mmap().unwrap();
        assert_eq!(map.len() as u64, MIB);
        map.write(|b| b.iter().for_each(|x| x.store(0x5a, Relaxed)))
            .unwrap();
        assert!(
            map.read(|b| b.iter().all(|x| x.load(Relaxed) == 0x5a))
                .unwrap()
        );
        // Two mappings of one buffer see each other's bytes at once: the views are atomics,
        // so a write through one while the other is being read is no aliasing violation.
        let other = buf.mmap().unwrap();
        let seen = map
            .write(|w| {
                w[7].store(0xa5, Relaxed);
                other.read(|r| r[7].load(Relaxed)).unwrap()
            })
            .unwrap();
        assert_eq!(seen, 0xa5);
        drop(other);
        map.copy_from_slice(10, b"hello").unwrap();
        let mut got = [0u8; 5];
        map.copy_to_slice(10, &mut got).unwrap();
        assert_eq!(&got, b"hello");
        assert!(matches!(
            map.copy_to_slice(MIB as usize - 2, &mut got),
            Err(Error::OutOfRange { .. })
        ));
        drop(map);
        // The selftest's import (optional there): a GPU-like driver (vgem) takes the buffer
        // through PRIME; re-exporting the imported object gives back the heap's buffer.
        let vgem = vgem();
        let imported = vgem.import(&buf).unwrap();
        assert_eq!(imported.size(), MIB);
        let again = imported.export().unwrap();
        assert_eq!(again.fdinfo().unwrap().exp_name, "system");
        assert_eq!(again.size().unwrap(), MIB);
        drop((again, imported));
        let guard = buf.begin_cpu_access(Access::ReadWrite).unwrap();
        guard.end().unwrap();
        // The kernel's flag check, bypassed locally only for valid flags.
        assert!(matches!(buf.sync(0), Err(Error::InvalidFlags { flags: 0 })));
    });
}

// ports dmabuf-heap selftest: alloc_zeroed (fewer buffers: TCG is slow)
#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn heap_alloc_is_zeroed() {
    no_leak(|| {
        let heap = system_heap();
        for _ in 0..4 {
            let buf = heap.alloc(4096).unwrap();
            buf.mmap()
                .unwrap()
                .write(|b| b.iter().for_each(|x| x.store(0xff, Relaxed)))
                .unwrap();
        }
        for _ in 0..4 {
            let buf = heap.alloc(4096).unwrap();
            assert!(
                buf.mmap()
                    .unwrap()
                    .read(|b| b.iter().all(|x| x.load(Relaxed) == 0))
                    .unwrap()
            );
        }
    });
}

// ports dmabuf-heap selftest: alloc_errors
#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn heap_alloc_errors() {
    no_leak(|| {
        let heap = system_heap();
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
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn dma_buf_name_fdinfo_and_from_fd_round_trip() {
    no_leak(|| {
        let heap = system_heap();
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
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn idle_buffer_exports_a_signalled_stub_and_polls_ready() {
    no_leak(|| {
        let heap = system_heap();
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
            // A name too long for the field is cut, as the kernel keeps it, never refused.
            let cut = sf.merge(&"m".repeat(32), &other).unwrap();
            assert_eq!(cut.info().unwrap().name, "m".repeat(31));

            // Importing a signalled fence leaves the buffer ready.
            buf.import_sync_file(&merged, access).unwrap();
            assert!(buf.is_ready(Access::Write).unwrap());
        }
    });
}

#[test]
#[ignore = "needs /dev/udmabuf (runs in the qemu guest)"]
fn udmabuf_shares_pages_with_its_memfd() {
    no_leak(|| {
        let dev = udmabuf();
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

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn heap_alloc_sizes_the_kernel_answers() {
    no_leak(|| {
        let heap = system_heap();
        // Not page-aligned: the kernel rounds up to whole pages.
        let page = rustix::param::page_size() as u64;
        assert_eq!(heap.alloc(1).unwrap().size().unwrap(), page);
        assert_eq!(heap.alloc(page + 1).unwrap().size().unwrap(), 2 * page);
        // Lengths that round up past the top of the address space wrap to 0: EINVAL from the
        // kernel, not ENOMEM (nothing is allocated).
        for len in [u64::MAX, u64::MAX - page + 2] {
            let err = heap.alloc(len).unwrap_err();
            assert_eq!(
                err,
                Error::Sys {
                    call: "ioctl(DMA_HEAP_IOCTL_ALLOC)",
                    errno: Errno::INVAL
                },
                "{len:#x}"
            );
        }
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn heap_alloc_flags_are_checked_and_a_read_only_buffer_refuses_mapping() {
    no_leak(|| {
        let heap = system_heap();
        for bad in [
            OFlags::APPEND,
            OFlags::PATH,
            OFlags::NONBLOCK,
            OFlags::DIRECT,
        ] {
            let err = heap.alloc_with(4096, OFlags::RDWR | bad, 0).unwrap_err();
            assert!(
                matches!(err, Error::InvalidFlags { .. }),
                "{bad:?}: {err:?}"
            );
            assert_eq!(err.errno(), Errno::INVAL);
        }
        for heap_flags in [1, 1 << 63] {
            assert_eq!(
                heap.alloc_with(4096, OFlags::RDWR, heap_flags).unwrap_err(),
                Error::InvalidFlags { flags: heap_flags }
            );
        }
        // Allowed, but a buffer not open read-write cannot be mapped: EACCES from mmap.
        for mode in [OFlags::RDONLY, OFlags::WRONLY] {
            let buf = heap.alloc_with(4096, mode | OFlags::CLOEXEC, 0).unwrap();
            let fl = rustix::fs::fcntl_getfl(&buf).unwrap();
            assert_eq!(fl & OFlags::ACCMODE, mode, "the kernel applies the mode");
            assert_eq!(
                buf.mmap().unwrap_err(),
                Error::Sys {
                    call: "mmap",
                    errno: Errno::ACCESS
                },
                "{mode:?}"
            );
        }
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn device_fds_are_neither_dma_bufs_nor_sync_files() {
    no_leak(|| {
        let heap = system_heap();
        let fd = heap.as_fd().try_clone_to_owned().unwrap();
        let (err, fd) = DmaBufFd::from_fd(fd).unwrap_err();
        assert!(matches!(err, Error::NotDmaBuf { .. }), "{err:?}");
        // The heap's ioctl refuses numbers past its own with EINVAL.
        let (err, _fd) = SyncFileFd::from_fd(fd).unwrap_err();
        assert_eq!(
            err,
            Error::NotSyncFile {
                errno: Errno::INVAL
            }
        );

        let dev = udmabuf();
        let fd = dev.as_fd().try_clone_to_owned().unwrap();
        let (err, fd) = DmaBufFd::from_fd(fd).unwrap_err();
        assert!(matches!(err, Error::NotDmaBuf { .. }), "{err:?}");
        let (err, _fd) = SyncFileFd::from_fd(fd).unwrap_err();
        assert_eq!(
            err,
            Error::NotSyncFile {
                errno: Errno::NOTTY
            }
        );
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn dma_buf_sync_flags_and_names_are_checked() {
    no_leak(|| {
        let heap = system_heap();
        let buf = heap.alloc(4096).unwrap();
        // END alone, unknown bits, everything: refused before the ioctl, as the kernel would.
        for flags in [0, 4, 8, 1 | 8, 2 | 16, u64::MAX] {
            let err = buf.sync(flags).unwrap_err();
            assert_eq!(err, Error::InvalidFlags { flags });
            assert_eq!(err.errno(), Errno::INVAL);
        }
        // The valid ones pass through the kernel (START then END, for each access).
        for rw in [1, 2, 3] {
            buf.sync(rw).unwrap();
            buf.sync(rw | 4).unwrap();
        }

        // The kernel reads a C string: the name ends at the first NUL.
        buf.set_name("a\0b").unwrap();
        assert_eq!(buf.fdinfo().unwrap().name.as_deref(), Some("a"));
        let longest = "n".repeat(31);
        buf.set_name(&longest).unwrap();
        assert_eq!(
            buf.fdinfo().unwrap().name.as_deref(),
            Some(longest.as_str())
        );
        assert_eq!(
            buf.set_name(&"n".repeat(100)).unwrap_err(),
            Error::NameTooLong { len: 100 }
        );
        assert_eq!(
            buf.fdinfo().unwrap().name.as_deref(),
            Some(longest.as_str())
        );
    });
}

#[test]
#[ignore = "needs /dev/udmabuf (runs in the qemu guest)"]
fn udmabuf_bad_input_is_refused_with_typed_errors() {
    no_leak(|| {
        let dev = udmabuf();
        let page = rustix::param::page_size() as u64;
        let good = memfd(4 * page, SealFlags::SHRINK);

        assert_eq!(dev.create(&good, 0, 0).unwrap_err(), Error::ZeroLength);
        assert_eq!(
            dev.create(&good, page / 2, page).unwrap_err(),
            Error::Unaligned {
                what: "offset",
                value: page / 2
            }
        );
        assert_eq!(
            dev.create(&good, 0, page + 512).unwrap_err(),
            Error::Unaligned {
                what: "size",
                value: page + 512
            }
        );
        assert!(matches!(
            dev.create(&good, 3 * page, 2 * page).unwrap_err(),
            Error::OutOfRange { .. }
        ));
        assert_eq!(
            dev.create(memfd(page, SealFlags::empty()), 0, page)
                .unwrap_err(),
            Error::MissingShrinkSeal
        );
        assert_eq!(
            dev.create(memfd(page, SealFlags::SHRINK | SealFlags::WRITE), 0, page)
                .unwrap_err(),
            Error::WriteSealed
        );
        // A memfd made without MFD_ALLOW_SEALING reports only F_SEAL_SEAL.
        let unsealable = rustix::fs::memfd_create("bad-input", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&unsealable, page).unwrap();
        assert_eq!(
            dev.create(&unsealable, 0, page).unwrap_err(),
            Error::MissingShrinkSeal
        );

        // Not memfds: a dma-buf, a procfs file, a pipe.
        let dmabuf = dev.create(&good, 0, page).unwrap();
        let status = rustix::fs::open(
            "/proc/self/status",
            OFlags::RDONLY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let (pipe, _w) = rustix::pipe::pipe().unwrap();
        for (what, fd) in [
            ("dma-buf", dmabuf.as_fd()),
            ("procfs", status.as_fd()),
            ("pipe", pipe.as_fd()),
        ] {
            let err = dev.create(fd, 0, page).unwrap_err();
            assert!(matches!(err, Error::NotMemfd { .. }), "{what}: {err:?}");
        }

        // Past the driver's size limit (module parameter size_limit_mb, 64 MiB by default):
        // the kernel refuses before touching a page.
        let big = memfd(65 << 20, SealFlags::SHRINK);
        assert_eq!(
            dev.create(&big, 0, 65 << 20).unwrap_err(),
            Error::Sys {
                call: "ioctl(UDMABUF_CREATE)",
                errno: Errno::INVAL
            }
        );

        // Lists: empty, one bad item among good ones, more items than the driver's
        // list_limit (1024 by default).
        assert_eq!(dev.create_list(&[]).unwrap_err(), Error::ZeroLength);
        let unsealed = memfd(page, SealFlags::empty());
        assert_eq!(
            dev.create_list(&[(good.as_fd(), 0, page), (unsealed.as_fd(), 0, page)])
                .unwrap_err(),
            Error::MissingShrinkSeal
        );
        let many = vec![(good.as_fd(), 0, page); 1025];
        assert_eq!(
            dev.create_list(&many).unwrap_err(),
            Error::Sys {
                call: "ioctl(UDMABUF_CREATE_LIST)",
                errno: Errno::INVAL
            }
        );
        dev.create_list(&many[..1024]).unwrap();
    });
}

// The kernel refuses F_SEAL_FUTURE_WRITE as it does F_SEAL_WRITE (since the December 2024
// fix, in 6.12 stable too); so does the check before the ioctl, with Error::WriteSealed.
#[test]
#[ignore = "needs /dev/udmabuf (runs in the qemu guest)"]
fn udmabuf_refuses_a_future_write_seal() {
    no_leak(|| {
        let dev = udmabuf();
        let page = rustix::param::page_size() as u64;
        let fd = memfd(page, SealFlags::SHRINK | SealFlags::FUTURE_WRITE);
        let err = dev.create(&fd, 0, page).unwrap_err();
        assert_eq!(err, Error::WriteSealed);
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system and vgem (runs in the qemu guest)"]
fn a_writer_publishes_its_fence_then_writes_inside_its_own_bracket() {
    no_leak(|| {
        let heap = system_heap();
        let (buf, other) = (heap.alloc(4096).unwrap(), heap.alloc(4096).unwrap());
        let (map, other_map) = (buf.mmap().unwrap(), other.mmap().unwrap());
        let vgem = vgem();
        let job = vgem.create_buffer(4096).unwrap();
        // The bracket first: its START waits for the fences already there (none).
        let bracket = buf.begin_cpu_access(Access::Write).unwrap();
        let fence = job.attach_fence(true).unwrap();
        let file = job
            .export()
            .unwrap()
            .export_sync_file(Access::Read)
            .unwrap();
        buf.import_sync_file(&file, Access::Write).unwrap();
        // Readers now wait for the writer, who writes behind its own fence.
        assert!(!buf.is_ready(Access::Read).unwrap());
        map.copy_from_slice_in(&bracket, 0, b"frame").unwrap();
        assert!(matches!(
            map.copy_from_slice_in(&bracket, 4090, b"too long"),
            Err(Error::OutOfRange { .. })
        ));
        // Another buffer's bracket, or one open for reading only, is refused.
        let foreign = other.begin_cpu_access(Access::Write).unwrap();
        let e = map.copy_from_slice_in(&foreign, 0, b"x").unwrap_err();
        assert!(matches!(e, Error::WrongBracket(_)), "{e}");
        assert_eq!(e.errno(), Errno::INVAL);
        foreign.end().unwrap();
        let reading = other.begin_cpu_access(Access::Read).unwrap();
        let e = other_map.copy_from_slice_in(&reading, 0, b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the CPU-access bracket given is open for reading only"
        );
        reading.end().unwrap();
        bracket.end().unwrap();
        assert!(!buf.is_ready(Access::Read).unwrap());
        fence.signal().unwrap();
        assert!(buf.is_ready(Access::Read).unwrap());
        let mut got = [0u8; 5];
        map.copy_to_slice(0, &mut got).unwrap();
        assert_eq!(&got, b"frame");
    });
}
