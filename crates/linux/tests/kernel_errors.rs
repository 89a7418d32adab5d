//! Errors the kernel gives itself, compared with the typed API's: bad input handed to the kernel
//! through `dmabuf_linux::raw` (flags, padding, closed or wrong-kind descriptor numbers,
//! seeks a dma-buf refuses, names too long) must get an `Error::Sys` with the errno the
//! typed API's own check gives for the same input, and a descriptor of the wrong kind must
//! get, from the typed API, the errno the kernel answers the same call with. Merge names are
//! cut as the kernel keeps them, never refused.
//!
//! Each test needs `/dev/dma_heap/system` (one also vgem) and is ignored unless asked for
//! (`--include-ignored`); it runs for real in the qemu guest (Linux 6.12) and fails where a
//! device it needs is missing (see `common`).

mod common;
use common::{no_leak, system_heap, vgem, vgem_sync_file};
use dmabuf_linux::raw::{self, SeekFrom, SyncFenceInfo, SyncMergeData};
use dmabuf_linux::{Access, DmaBufFd, Error, FenceStatus, SyncFileFd};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

fn dev_null() -> OwnedFd {
    rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).unwrap()
}

/// A descriptor number that is not open: one just closed (the tests of this program run one
/// at a time, so nothing reopens it meanwhile).
fn closed_fd() -> RawFd {
    let fd = dev_null();
    let n = fd.as_raw_fd();
    drop(fd);
    n
}

/// Asserts `kernel` is the kernel's own refusal with `errno`.
#[track_caller]
fn kernel_says<T: std::fmt::Debug>(kernel: Result<T, Error>, errno: Errno, what: &str) -> Error {
    let err = kernel.expect_err(what);
    assert!(matches!(err, Error::Sys { .. }), "{what}: {err:?}");
    assert_eq!(err.errno(), errno, "{what}: {err}");
    err
}

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn a_wrong_kind_of_file_gets_the_kernels_errno_in_every_role() {
    no_leak(|| {
        let heap = system_heap();
        let buf = heap.alloc(4096).unwrap();
        let file = buf.export_sync_file(Access::Read).unwrap();
        let null = dev_null();
        let wrong: [(&str, BorrowedFd<'_>); 2] =
            [("dma-buf", buf.as_fd()), ("/dev/null", null.as_fd())];
        for (what, fd) in wrong {
            // The second file of a merge: ENOENT.
            let kernel = raw::sync_merge(file.as_fd(), &SyncMergeData::new(fd.as_raw_fd()));
            let kernel = kernel_says(kernel, Errno::NOENT, what);
            assert_eq!(file.merge("m", fd).unwrap_err(), kernel, "{what}");

            // The sync file of an import: EINVAL.
            let kernel = raw::dma_buf_import_sync_file(buf.as_fd(), 1, fd.as_raw_fd());
            let kernel = kernel_says(kernel, Errno::INVAL, what);
            assert_eq!(
                buf.import_sync_file(fd, Access::Read).unwrap_err(),
                kernel,
                "{what}"
            );

            // The file a sync_file ioctl is issued on: what `SyncFileFd::from_fd` says.
            let (err, _fd) = SyncFileFd::from_fd(fd.try_clone_to_owned().unwrap()).unwrap_err();
            assert!(matches!(err, Error::NotSyncFile { .. }), "{what}: {err:?}");
            let answers = [
                raw::sync_file_info(fd, 0, 0).map(drop),
                raw::sync_merge(fd, &SyncMergeData::new(file.as_raw_fd())).map(drop),
                raw::sync_set_deadline(fd, 0, 0),
            ];
            for kernel in answers {
                kernel_says(kernel, err.errno(), what);
            }
            assert_eq!(err.errno(), Errno::NOTTY, "{what}");
        }

        // A sync_file or /dev/null taken for a dma-buf: every dma-buf ioctl on it is ENOTTY,
        // which `DmaBufFd::from_fd` says.
        let wrong: [(&str, BorrowedFd<'_>); 2] =
            [("sync_file", file.as_fd()), ("/dev/null", null.as_fd())];
        for (what, fd) in wrong {
            let (err, _fd) = DmaBufFd::from_fd(fd.try_clone_to_owned().unwrap()).unwrap_err();
            assert!(matches!(err, Error::NotDmaBuf { .. }), "{what}: {err:?}");
            assert_eq!(err.errno(), Errno::NOTTY, "{what}");
            let answers = [
                raw::dma_buf_sync(fd, raw::DMA_BUF_SYNC_READ),
                raw::dma_buf_sync(fd, raw::DMA_BUF_SYNC_READ | raw::DMA_BUF_SYNC_END),
                raw::dma_buf_export_sync_file(fd, 1).map(drop),
                raw::dma_buf_import_sync_file(fd, 1, file.as_raw_fd()),
                raw::dma_buf_set_name(fd, c"name"),
            ];
            for kernel in answers {
                kernel_says(kernel, err.errno(), what);
            }
        }
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn bad_dma_buf_input_reaches_the_kernel_and_gets_the_errno_the_typed_checks_give() {
    no_leak(|| {
        let heap = system_heap();
        let buf = heap.alloc(4096).unwrap();
        let file = buf.export_sync_file(Access::Read).unwrap();

        // DMA_BUF_IOCTL_SYNC: END alone, unknown bits, everything.
        for flags in [0, 4, 8, 1 | 8, 2 | 16, 3 | 4 | 8, u64::MAX] {
            let what = format!("sync {flags:#x}");
            let kernel = kernel_says(raw::dma_buf_sync(buf.as_fd(), flags), Errno::INVAL, &what);
            assert_eq!(
                buf.sync(flags).unwrap_err().errno(),
                kernel.errno(),
                "{what}"
            );
        }
        // EXPORT_SYNC_FILE and IMPORT_SYNC_FILE take READ, WRITE or both, nothing else.
        for flags in [0, 4, 1 | 4, 3 | 4, 8, u32::MAX] {
            let what = format!("export {flags:#x}");
            kernel_says(
                raw::dma_buf_export_sync_file(buf.as_fd(), flags),
                Errno::INVAL,
                &what,
            );
            let what = format!("import {flags:#x}");
            let kernel = raw::dma_buf_import_sync_file(buf.as_fd(), flags, file.as_raw_fd());
            kernel_says(kernel, Errno::INVAL, &what);
        }
        for flags in [1, 2, 3] {
            raw::dma_buf_export_sync_file(buf.as_fd(), flags).unwrap();
            raw::dma_buf_import_sync_file(buf.as_fd(), flags, file.as_raw_fd()).unwrap();
        }
        // IMPORT_SYNC_FILE with a number that is no open file.
        for fd in [closed_fd(), -1, i32::MAX] {
            let what = format!("import fd {fd}");
            kernel_says(
                raw::dma_buf_import_sync_file(buf.as_fd(), 1, fd),
                Errno::INVAL,
                &what,
            );
        }

        // A dma-buf seeks only to its end or its start, by 0.
        let size = buf.size().unwrap();
        assert_eq!(raw::lseek(buf.as_fd(), SeekFrom::End(0)).unwrap(), size);
        assert_eq!(raw::lseek(buf.as_fd(), SeekFrom::Start(0)).unwrap(), 0);
        for pos in [
            SeekFrom::Current(0),
            SeekFrom::End(1),
            SeekFrom::End(-1),
            SeekFrom::Start(1),
            SeekFrom::Data(0),
            SeekFrom::Hole(0),
        ] {
            kernel_says(
                raw::lseek(buf.as_fd(), pos),
                Errno::INVAL,
                &format!("{pos:?}"),
            );
        }

        // DMA_BUF_SET_NAME: the kernel takes at most 31 bytes and the NUL.
        raw::dma_buf_set_name(buf.as_fd(), c"0123456789012345678901234567890").unwrap();
        for len in [32, 33, 100] {
            let name = std::ffi::CString::new("n".repeat(len)).unwrap();
            let what = format!("name of {len} bytes");
            let kernel = kernel_says(
                raw::dma_buf_set_name(buf.as_fd(), &name),
                Errno::INVAL,
                &what,
            );
            let typed = buf.set_name(name.to_str().unwrap()).unwrap_err();
            assert_eq!(typed, Error::NameTooLong { len });
            assert_eq!(typed.errno(), kernel.errno(), "{what}");
        }
        assert_eq!(
            buf.fdinfo().unwrap().name.as_deref(),
            Some("0123456789012345678901234567890")
        );
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system and vgem (runs in the qemu guest)"]
fn bad_sync_file_input_reaches_the_kernel_and_gets_its_errno() {
    no_leak(|| {
        let heap = system_heap();
        let buf = heap.alloc(4096).unwrap();
        let file = buf.export_sync_file(Access::Read).unwrap();
        let other = buf.export_sync_file(Access::Write).unwrap();

        // SYNC_IOC_MERGE: flags and pad must be zero, fd2 an open sync_file.
        let good = SyncMergeData::new(other.as_raw_fd());
        raw::sync_merge(file.as_fd(), &good).unwrap();
        for (what, data) in [
            ("flags", SyncMergeData { flags: 1, ..good }),
            (
                "flags",
                SyncMergeData {
                    flags: u32::MAX,
                    ..good
                },
            ),
            ("pad", SyncMergeData { pad: 1, ..good }),
        ] {
            kernel_says(raw::sync_merge(file.as_fd(), &data), Errno::INVAL, what);
        }
        for fd in [closed_fd(), -1, i32::MAX] {
            let what = format!("merge with fd {fd}");
            let data = SyncMergeData::new(fd);
            kernel_says(raw::sync_merge(file.as_fd(), &data), Errno::NOENT, &what);
        }

        // SYNC_IOC_FILE_INFO: flags and pad must be zero, counting or filling.
        let head = raw::sync_file_info(file.as_fd(), 0, 0).unwrap();
        assert_eq!(head.num_fences, 1);
        assert_eq!(head.status, 1);
        let mut leaves = [SyncFenceInfo::ZERO; 2];
        let full = raw::sync_file_info_fill(&file, 0, 0, &mut leaves).unwrap();
        assert_eq!(full.num_fences, 1);
        assert_eq!(leaves[0].status, 1);
        assert_eq!(
            leaves[1],
            SyncFenceInfo::ZERO,
            "only as many as the file has"
        );
        for (flags, pad) in [(1, 0), (u32::MAX, 0), (0, 1), (0, u32::MAX)] {
            let what = format!("info flags {flags:#x} pad {pad:#x}");
            kernel_says(
                raw::sync_file_info(file.as_fd(), flags, pad),
                Errno::INVAL,
                &what,
            );
            let kernel = raw::sync_file_info_fill(&file, flags, pad, &mut leaves);
            kernel_says(kernel, Errno::INVAL, &what);
        }

        // SYNC_IOC_SET_DEADLINE: pad must be zero.
        raw::sync_set_deadline(file.as_fd(), 1, 0).unwrap();
        for pad in [1, u64::MAX] {
            let kernel = raw::sync_set_deadline(file.as_fd(), 1, pad);
            kernel_says(kernel, Errno::INVAL, &format!("deadline pad {pad:#x}"));
        }

        // Filling fewer entries than the file has leaves: EINVAL (vgem makes pending leaves
        // that a merge keeps apart).
        let vgem = vgem();
        let (_a, fa, a) = vgem_sync_file(&vgem);
        let (_b, fb, b) = vgem_sync_file(&vgem);
        let both = a.merge("both", &b).unwrap();
        let mut one = [SyncFenceInfo::ZERO; 1];
        kernel_says(
            raw::sync_file_info_fill(&both, 0, 0, &mut one),
            Errno::INVAL,
            "1 of 2",
        );
        let mut two = [SyncFenceInfo::ZERO; 2];
        let full = raw::sync_file_info_fill(&both, 0, 0, &mut two).unwrap();
        assert_eq!(full.num_fences, 2);
        assert_eq!(full.status, 0, "pending");
        assert!(two.iter().all(|l| l.status == 0 && l.timestamp_ns == 0));
        fa.signal().unwrap();
        fb.signal().unwrap();
    });
}

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn merge_cuts_a_long_or_nul_holding_name_as_the_kernel_keeps_it() {
    no_leak(|| {
        let heap = system_heap();
        let buf = heap.alloc(4096).unwrap();
        let a = buf.export_sync_file(Access::Read).unwrap();
        let b = buf.export_sync_file(Access::Write).unwrap();
        let (_issuer, fence) = dmabuf::FenceContext::new("t", "t").next_fence();
        let library = dmabuf::SyncFile::new(fence);

        let names = [
            "merged".to_owned(),
            "x".repeat(31),
            "x".repeat(32),
            "x".repeat(100),
            "left\0right".to_owned(),
            "é".repeat(20),
            format!("ab{}", "€".repeat(12)),
        ];
        for name in &names {
            let merged = a.merge(name, &b).expect("a name never fails a merge");
            let kept = merged.info().unwrap().name;
            assert!(kept.len() <= 31, "{name:?}: {kept:?}");
            assert!(name.starts_with(&kept), "{name:?}: {kept:?}");
            let lib = dmabuf::SyncFile::merge(name, &library, &library);
            assert_eq!(
                kept,
                lib.name(),
                "{name:?}: kernel and library keep the same name"
            );
        }
        // An empty name, or one starting with NUL, leaves the kernel to name the file after
        // its fence.
        for name in ["", "\0hidden"] {
            let kept = a.merge(name, &b).unwrap().info().unwrap().name;
            assert!(!kept.is_empty() && kept != "hidden", "{name:?}: {kept:?}");
        }

        // The kernel itself keeps 31 bytes of a full 32-byte field, whatever they are: cut
        // inside a character, the name it reports is no longer UTF-8 (the typed API cuts on a
        // character boundary so that never happens through `merge`).
        let mut data = SyncMergeData::new(b.as_raw_fd());
        data.name = [b'z'; 32];
        let kept = raw::sync_merge(a.as_fd(), &data)
            .unwrap()
            .info()
            .unwrap()
            .name;
        assert_eq!(kept, "z".repeat(31));
        data.name = [0; 32];
        let accents = "é".repeat(16);
        data.name.copy_from_slice(&accents.as_bytes()[..32]);
        let head = raw::sync_file_info(raw::sync_merge(a.as_fd(), &data).unwrap().as_fd(), 0, 0);
        let head = head.unwrap();
        assert_eq!(&head.name[..31], &accents.as_bytes()[..31]);
        assert_eq!(head.name[31], 0);
        assert!(std::str::from_utf8(&head.name[..31]).is_err());
        assert_eq!(
            a.merge(&accents, &b).unwrap().info().unwrap().name,
            "é".repeat(15)
        );
        assert_eq!(a.info().unwrap().status, FenceStatus::Signaled);
    });
}
