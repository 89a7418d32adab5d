//! Error paths and descriptor hygiene, runnable on any Linux host: every constructor refuses
//! the wrong kind of descriptor with a typed error carrying the errno and gives it back, bad
//! arguments are refused before any ioctl, and no test leaks a descriptor.
//!
//! The device paths are in `tests/devices.rs`.
//!
//! Not representable in the typed API, so not tested here: a closed descriptor (`OwnedFd` and
//! `BorrowedFd` are open by construction; the nearest is an `O_PATH` one, which the kernel
//! refuses with `EBADF`) and export or import with an invalid access (`Access` has only the
//! three valid ones). The `raw` calls reach the kernel with both, and a merge or import with
//! a descriptor that is not a sync_file needs a sync_file or a dma-buf to issue it on: those
//! run in the guest (`tests/kernel_errors.rs`).

mod common;
use common::no_leak;
use dmabuf_linux::{DmaBufFd, DmaHeap, Error, SyncFileFd, Udmabuf, raw};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use rustix::io::Errno;

fn open(path: &str, flags: OFlags) -> OwnedFd {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty()).unwrap()
}

/// A few descriptors of the wrong kind, with what each is.
fn wrong_kinds() -> Vec<(&'static str, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let memfd = rustix::fs::memfd_create("native", MemfdFlags::CLOEXEC).unwrap();
    let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let eventfd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    let epoll = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let exe = std::env::current_exe().unwrap();
    vec![
        ("pipe read end", r),
        ("pipe write end", w),
        ("memfd", memfd),
        ("/dev/null", open("/dev/null", OFlags::RDWR)),
        ("regular file", std::fs::File::open(exe).unwrap().into()),
        ("procfs file", open("/proc/self/status", OFlags::RDONLY)),
        ("directory", open("/", OFlags::RDONLY | OFlags::DIRECTORY)),
        ("unix socket", sock.into()),
        ("eventfd (an anon inode, as sync_files are)", eventfd),
        ("epoll", epoll),
    ]
}

/// `O_PATH` descriptors of a device, a directory and a regular file.
fn o_paths() -> Vec<(&'static str, OwnedFd)> {
    let exe = std::env::current_exe().unwrap();
    let exe = rustix::fs::open(exe, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
    vec![
        ("/dev/null", o_path()),
        ("directory", open("/", OFlags::PATH | OFlags::DIRECTORY)),
        ("regular file", exe),
    ]
}

/// Whether `fd` lives on tmpfs (the test binary does in the guest's initramfs).
fn on_tmpfs(fd: &OwnedFd) -> bool {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let magic = rustix::fs::fstatfs(fd).unwrap().f_type as u64;
    rustix::fs::fstat(fd).is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
        && magic == TMPFS_MAGIC
}

fn o_path() -> OwnedFd {
    open("/dev/null", OFlags::PATH)
}

fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    let (a, b) = (rustix::fs::fstat(a).unwrap(), rustix::fs::fstat(b).unwrap());
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

#[test]
fn sync_file_from_fd_refuses_other_files_and_gives_them_back() {
    no_leak(|| {
        for (what, fd) in wrong_kinds() {
            let probe = fd.try_clone().unwrap();
            let (err, back) = SyncFileFd::from_fd(fd).unwrap_err();
            assert!(
                matches!(err, Error::NotSyncFile { errno } if errno == Errno::NOTTY || errno == Errno::INVAL),
                "{what}: {err:?}"
            );
            assert!(same_file(&back, &probe), "{what}: a different fd came back");
        }
    });
}

#[test]
fn sync_file_from_fd_of_an_o_path_fd_is_ebadf() {
    no_leak(|| {
        for (what, fd) in o_paths() {
            let probe = fd.try_clone().unwrap();
            let (err, back) = SyncFileFd::from_fd(fd).unwrap_err();
            assert_eq!(
                err,
                Error::Sys {
                    call: "ioctl(SYNC_IOC_FILE_INFO)",
                    errno: Errno::BADF
                },
                "{what}"
            );
            assert!(same_file(&back, &probe), "{what}: a different fd came back");
        }
    });
}

#[test]
fn dma_buf_from_fd_refuses_other_files_and_gives_them_back() {
    no_leak(|| {
        for (what, fd) in wrong_kinds() {
            let probe = fd.try_clone().unwrap();
            let (err, back) = DmaBufFd::from_fd(fd).unwrap_err();
            assert!(matches!(err, Error::NotDmaBuf { .. }), "{what}: {err:?}");
            assert!(same_file(&back, &probe), "{what}: a different fd came back");
        }
    });
}

#[test]
fn not_a_dma_buf_carries_the_errno_the_kernel_gives_dma_buf_ioctls_on_that_file() {
    no_leak(|| {
        for (what, fd) in wrong_kinds() {
            let probe = fd.try_clone().unwrap();
            let (err, _fd) = DmaBufFd::from_fd(fd).unwrap_err();
            // What the kernel answers each dma-buf ioctl issued on that file. The flags are
            // valid ones, so only the file's kind can refuse them.
            let answers = [
                raw::dma_buf_sync(probe.as_fd(), raw::DMA_BUF_SYNC_READ).map(drop),
                raw::dma_buf_export_sync_file(probe.as_fd(), 1).map(drop),
                raw::dma_buf_import_sync_file(probe.as_fd(), 1, -1),
                raw::dma_buf_set_name(probe.as_fd(), c"name"),
            ];
            for answer in answers {
                let kernel = answer.expect_err(what);
                assert!(matches!(kernel, Error::Sys { .. }), "{what}: {kernel:?}");
                assert_eq!(err.errno(), kernel.errno(), "{what}: {kernel}");
            }
        }
    });
}

#[test]
fn dma_buf_from_fd_of_an_o_path_fd_is_ebadf() {
    no_leak(|| {
        for (what, fd) in o_paths() {
            let probe = fd.try_clone().unwrap();
            let (err, back) = DmaBufFd::from_fd(fd).unwrap_err();
            assert_eq!(err, Error::PathOnly, "{what}");
            assert_eq!(err.errno(), Errno::BADF);
            assert!(same_file(&back, &probe), "{what}: a different fd came back");
        }
    });
}

#[test]
fn dma_heap_open_checks_names_then_reports_the_kernel_errno() {
    no_leak(|| {
        for bad in ["", ".", "..", "../null", "a/b", "nul\0"] {
            let err = DmaHeap::open(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err:?}");
            assert_eq!(err.errno(), Errno::INVAL);
        }
        let err = DmaHeap::open("no-such-heap-here").unwrap_err();
        assert_eq!(err.errno(), Errno::NOENT, "{err:?}");
        // Lists what exists (nothing on a host without heaps), never fails for a missing dir.
        let heaps = DmaHeap::list().unwrap();
        if !std::path::Path::new(dmabuf_linux::DMA_HEAP_DIR).exists() {
            assert!(heaps.is_empty());
        }
    });
}

/// Runs with or without the device: `Udmabuf::open` answers as `open(2)` of the node does,
/// `ENOENT` where there is none (a unit test of `udmabuf.rs` opens a missing node on every
/// host, the qemu guest included).
#[test]
fn udmabuf_open_answers_as_open_of_the_device_node() {
    no_leak(|| {
        let node = rustix::fs::open(
            dmabuf_linux::UDMABUF_PATH,
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match (Udmabuf::open(), node) {
            (Ok(_), Ok(_)) => {}
            (Err(err), Err(errno)) => {
                assert_eq!(
                    err,
                    Error::Sys {
                        call: "open(/dev/udmabuf)",
                        errno
                    }
                );
                if !std::path::Path::new(dmabuf_linux::UDMABUF_PATH).exists() {
                    assert_eq!(errno, Errno::NOENT);
                }
            }
            (ours, node) => panic!("Udmabuf::open: {ours:?}, open(2): {node:?}"),
        }
    });
}

fn sealed_memfd(len: u64, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create("udmabuf", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    if !seals.is_empty() {
        rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    }
    fd
}

#[test]
fn udmabuf_preconditions_are_typed_errors_before_the_ioctl() {
    no_leak(|| {
        let page = rustix::param::page_size() as u64;
        let good = sealed_memfd(4 * page, SealFlags::SHRINK);
        assert_eq!(Udmabuf::check_memfd(&good, 0, 4 * page), Ok(()));
        assert_eq!(Udmabuf::check_memfd(&good, page, 2 * page), Ok(()));

        assert_eq!(Udmabuf::check_memfd(&good, 0, 0), Err(Error::ZeroLength));
        assert_eq!(
            Udmabuf::check_memfd(&good, 1, page),
            Err(Error::Unaligned {
                what: "offset",
                value: 1
            })
        );
        assert_eq!(
            Udmabuf::check_memfd(&good, 0, page + 1),
            Err(Error::Unaligned {
                what: "size",
                value: page + 1
            })
        );
        let past = Udmabuf::check_memfd(&good, 2 * page, 4 * page).unwrap_err();
        assert!(matches!(past, Error::OutOfRange { .. }), "{past:?}");
        assert_eq!(
            Udmabuf::check_memfd(&good, u64::MAX - page + 1, page)
                .unwrap_err()
                .errno(),
            Errno::INVAL
        );

        let unsealed = sealed_memfd(page, SealFlags::empty());
        assert_eq!(
            Udmabuf::check_memfd(&unsealed, 0, page),
            Err(Error::MissingShrinkSeal)
        );
        let write_sealed = sealed_memfd(page, SealFlags::SHRINK | SealFlags::WRITE);
        assert_eq!(
            Udmabuf::check_memfd(&write_sealed, 0, page),
            Err(Error::WriteSealed)
        );

        // F_SEAL_FUTURE_WRITE is a write seal too (the kernel refuses it since 2024).
        let future_write = sealed_memfd(page, SealFlags::SHRINK | SealFlags::FUTURE_WRITE);
        assert_eq!(
            Udmabuf::check_memfd(&future_write, 0, page),
            Err(Error::WriteSealed)
        );
        // Other seals do not matter.
        let more = sealed_memfd(page, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL);
        assert_eq!(Udmabuf::check_memfd(&more, 0, page), Ok(()));
        // A memfd made without MFD_ALLOW_SEALING reports only F_SEAL_SEAL.
        let unsealable = rustix::fs::memfd_create("udmabuf", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&unsealable, page).unwrap();
        assert_eq!(
            Udmabuf::check_memfd(&unsealable, 0, page),
            Err(Error::MissingShrinkSeal)
        );

        // Not a memfd at all: no seals to read; udmabuf would answer EBADFD.
        for (what, fd) in wrong_kinds() {
            let err = Udmabuf::check_memfd(&fd, 0, page).unwrap_err();
            if what == "memfd" || on_tmpfs(&fd) {
                // shmem files: seals to read, but not the shrink seal (only F_SEAL_SEAL for
                // a file not made with MFD_ALLOW_SEALING); udmabuf's EINVAL.
                assert_eq!(err, Error::MissingShrinkSeal, "{what}");
                continue;
            }
            assert!(
                matches!(err, Error::NotMemfd { errno } if errno == Errno::INVAL),
                "{what}: {err:?}"
            );
            assert_eq!(err.errno(), Errno::BADFD, "{what}");
        }
        for (what, fd) in o_paths() {
            let err = Udmabuf::check_memfd(&fd, 0, page).unwrap_err();
            assert_eq!(err, Error::NotMemfd { errno: Errno::BADF }, "{what}");
            assert_eq!(err.errno(), Errno::BADFD, "{what}");
        }
    });
}

#[test]
fn errors_convert_to_io_errors_with_their_errno() {
    let errors = [
        Error::Sys {
            call: "ioctl(DMA_BUF_IOCTL_SYNC)",
            errno: Errno::NOTTY,
        },
        Error::Sys {
            call: "open",
            errno: Errno::NOENT,
        },
        Error::NotSyncFile {
            errno: Errno::NOTTY,
        },
        Error::NotDmaBuf {
            fs_magic: 0,
            errno: Errno::NOTTY,
        },
        Error::PathOnly,
        Error::NameTooLong { len: 40 },
        Error::InvalidFlags { flags: 8 },
        Error::MissingShrinkSeal,
        Error::NotMemfd {
            errno: Errno::INVAL,
        },
        Error::TimedOut,
        Error::Library(dmabuf::Error::TimedOut),
    ];
    for e in errors {
        let errno = e.errno();
        let io: std::io::Error = e.clone().into();
        assert_eq!(io.raw_os_error(), Some(errno.raw_os_error()), "{e:?}");
        assert_eq!(
            io.kind(),
            std::io::Error::from_raw_os_error(errno.raw_os_error()).kind(),
            "{e:?}"
        );
    }
    // The kinds std gives these errnos.
    let io: std::io::Error = Error::MissingShrinkSeal.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    let io: std::io::Error = Error::Sys {
        call: "open",
        errno: Errno::NOENT,
    }
    .into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    // ENOTTY stays ENOTTY (its kind has no stable name, so the errno is what tells it).
    let io: std::io::Error = Error::Sys {
        call: "ioctl",
        errno: Errno::NOTTY,
    }
    .into();
    assert_eq!(io.raw_os_error(), Some(25), "ENOTTY is 25 on Linux");
}
