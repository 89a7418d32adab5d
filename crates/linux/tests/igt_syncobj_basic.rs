//! igt `syncobj_basic` against the kernel: a DRM render node with syncobjs (the virtio GPU in
//! the qemu guest). Bad input goes through `dmabuf_linux::raw`, so each answer is the kernel's
//! own; the typed API's answer to the same input, where it can express it, is checked beside.
//!
//! Every subtest is ported; none needs a pending fence.
//!
//! Each test needs the render node and is ignored unless asked for (`--include-ignored`); it
//! runs in the qemu guest (Linux 6.12) and fails where the device is missing (see `common`).

mod common;
use common::{drm, errno_of, live_handles, no_leak};
use dmabuf_linux::raw::{self, SyncobjHandle};
use dmabuf_linux::{Error, SyncobjFd, WaitFlags};
use rustix::fd::{AsFd, AsRawFd};
use rustix::io::Errno;
use std::time::Duration;

/// A handle number no file holds.
const BAD: u32 = 0xdead_beef;

// ports igt syncobj_basic: bad-destroy
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_destroy() {
    let dev = drm();
    let err = raw::syncobj_destroy(&dev, BAD, 0).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
}

// ports igt syncobj_basic: bad-create-flags
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_create_flags() {
    let dev = drm();
    let err = raw::syncobj_create(&dev, 0xdead_beef).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    assert!(live_handles(&dev).is_empty(), "no handle was made");
}

/// What [`refused`] fills in from a live syncobj.
#[derive(Clone, Copy)]
enum Fill {
    /// Nothing: the argument as given.
    Nothing,
    /// Its handle.
    Handle,
    /// The descriptor of an opaque file of it.
    File,
}

/// The kernel's errno for `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD` (`export`) or `_FD_TO_HANDLE` with
/// `arg`, given a live syncobj's handle or file as `fill` says; the call must leave no
/// descriptor and no handle behind.
fn refused(export: bool, fill: Fill, arg: SyncobjHandle) -> Errno {
    let mut errno = None;
    no_leak(|| {
        let dev = drm();
        let live = dev.create_syncobj().unwrap();
        let file = live.export().unwrap();
        let arg = match fill {
            Fill::Nothing => arg,
            Fill::Handle => SyncobjHandle {
                handle: live.handle(),
                ..arg
            },
            Fill::File => SyncobjHandle {
                fd: file.as_raw_fd(),
                ..arg
            },
        };
        errno = Some(if export {
            raw::syncobj_handle_to_fd(&dev, &arg).unwrap_err().errno()
        } else {
            raw::syncobj_fd_to_handle(&dev, &arg).unwrap_err().errno()
        });
        assert_eq!(live_handles(&dev), [live.handle()], "no handle was made");
    });
    errno.expect("answered")
}

/// igt's `0xdeadbeef` in a field of an otherwise empty argument.
const DEADBEEF: u32 = 0xdead_beef;

// ports igt syncobj_basic: bad-handle-to-fd
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_handle_to_fd() {
    let arg = SyncobjHandle {
        handle: BAD,
        ..SyncobjHandle::default()
    };
    assert_eq!(refused(true, Fill::Nothing, arg), Errno::INVAL);
}

// ports igt syncobj_basic: bad-fd-to-handle
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_fd_to_handle() {
    let arg = SyncobjHandle {
        fd: -1,
        ..SyncobjHandle::default()
    };
    assert_eq!(refused(false, Fill::Nothing, arg), Errno::INVAL);
}

// ports igt syncobj_basic: illegal-fd-to-handle
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn illegal_fd_to_handle() {
    no_leak(|| {
        // The device file itself: open, but not a syncobj file.
        let dev = drm();
        let arg = SyncobjHandle {
            fd: dev.as_fd().as_raw_fd(),
            ..SyncobjHandle::default()
        };
        let errno = raw::syncobj_fd_to_handle(&dev, &arg).unwrap_err().errno();
        assert_eq!(errno, Errno::INVAL);
        assert!(live_handles(&dev).is_empty());
        // The typed API refuses it before the kernel, with the same errno.
        let file = dev.as_fd().try_clone_to_owned().unwrap();
        let (typed, _file) = SyncobjFd::from_fd(file).unwrap_err();
        assert!(matches!(typed, Error::NotSyncobjFile), "{typed:?}");
        assert_eq!(typed.errno(), errno);
    });
}

// ports igt syncobj_basic: bad-flags-handle-to-fd
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_flags_handle_to_fd() {
    let arg = SyncobjHandle {
        flags: DEADBEEF,
        ..SyncobjHandle::default()
    };
    assert_eq!(refused(true, Fill::Handle, arg), Errno::INVAL);
}

// ports igt syncobj_basic: bad-flags-fd-to-handle
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_flags_fd_to_handle() {
    let arg = SyncobjHandle {
        flags: DEADBEEF,
        ..SyncobjHandle::default()
    };
    assert_eq!(refused(false, Fill::File, arg), Errno::INVAL);
}

// ports igt syncobj_basic: bad-pad-handle-to-fd
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_pad_handle_to_fd() {
    let arg = SyncobjHandle {
        pad: DEADBEEF,
        ..SyncobjHandle::default()
    };
    assert_eq!(refused(true, Fill::Handle, arg), Errno::INVAL);
}

// ports igt syncobj_basic: bad-pad-fd-to-handle
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_pad_fd_to_handle() {
    let arg = SyncobjHandle {
        pad: DEADBEEF,
        ..SyncobjHandle::default()
    };
    assert_eq!(refused(false, Fill::File, arg), Errno::INVAL);
}

// ports igt syncobj_basic: bad-destroy-pad
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn bad_destroy_pad() {
    let dev = drm();
    let syncobj = dev.create_syncobj().unwrap();
    let err = raw::syncobj_destroy(&dev, syncobj.handle(), 0xdead_beef).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    // Refused: the handle is still there, and the typed drop destroys it.
    assert_eq!(live_handles(&dev), [syncobj.handle()]);
    drop(syncobj);
    assert!(live_handles(&dev).is_empty());
}

// ports igt syncobj_basic: create-signaled
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn create_signaled() {
    let dev = drm();
    let syncobj = dev.create_syncobj_signaled().unwrap();
    let first = dev.wait(&[&syncobj], WaitFlags::ANY, Some(Duration::ZERO));
    assert_eq!(first.expect("signalled"), 0);
    // Without the flag there is no fence to wait for.
    let empty = dev.create_syncobj().unwrap();
    let err = dev.wait(&[&empty], WaitFlags::ANY, Some(Duration::ZERO));
    assert_eq!(errno_of(err), Some(Errno::INVAL));
}

// ports igt syncobj_basic: test-valid-cycle
#[test]
#[ignore = "needs a DRM render node with syncobjs (runs in the qemu guest)"]
fn test_valid_cycle() {
    no_leak(|| {
        let dev = drm();
        let first = dev.create_syncobj().unwrap();
        let file = first.export().unwrap();
        let second = dev.import_syncobj(&file).unwrap();
        drop(file);
        // No de-duplication: the import is a new handle to the same syncobj.
        assert_ne!(first.handle(), second.handle());
        second.signal().unwrap();
        first
            .wait(0, WaitFlags::ANY, Some(Duration::ZERO))
            .expect("the same syncobj");
        drop((first, second));
        assert!(live_handles(&dev).is_empty());
    });
}
