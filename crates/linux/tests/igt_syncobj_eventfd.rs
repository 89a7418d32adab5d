//! igt `syncobj_eventfd` against the kernel: eventfds registered on syncobj points of a DRM
//! render node (the virtio GPU in the qemu guest; `DRM_IOCTL_SYNCOBJ_EVENTFD` is Linux 6.6 and
//! later), with vgem fences where igt attaches sw_sync fences. Registrations go through the
//! typed API (`Syncobj::eventfd`), bad input through `dmabuf_linux::raw`.
//!
//! Every subtest is ported.
//!
//! Each test needs the render node (most also vgem) and is ignored unless asked for
//! (`--include-ignored`); it runs in the qemu guest (Linux 6.12) and fails where a device is
//! missing (see `common`).

mod common;
use common::{attach, drm, no_leak, vgem};
use dmabuf_linux::{PointEvent, Syncobj, raw};
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec, eventfd};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;

fn new_eventfd() -> OwnedFd {
    eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).expect("eventfd")
}

/// Whether `efd` polls readable within `ms` milliseconds.
fn readable_within(efd: &OwnedFd, ms: i64) -> bool {
    let timeout = Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    let mut fds = [PollFd::new(efd, PollFlags::IN)];
    rustix::event::poll(&mut fds, Some(&timeout)).expect("poll") == 1
}

/// igt's `ev_fd_assert_unsignaled`: nothing within 10 ms, and a read finds nothing.
fn assert_unsignaled(efd: &OwnedFd) {
    assert!(!readable_within(efd, 10), "the eventfd was signalled");
    let read = rustix::io::read(efd, &mut [0u8; 8]);
    assert_eq!(read.unwrap_err(), Errno::AGAIN);
}

/// igt's `ev_fd_assert_signaled`: readable within 5 s, and a read takes the count.
fn assert_signaled(efd: &OwnedFd) {
    assert!(readable_within(efd, 5000), "the eventfd was not signalled");
    assert_eq!(rustix::io::read(efd, &mut [0u8; 8]), Ok(8));
}

/// The kernel's answer to `DRM_IOCTL_SYNCOBJ_EVENTFD` with these fields, on a syncobj created
/// signalled (`handle: None`) or on `handle`.
fn eventfd_errno(handle: Option<u32>, flags: u32, fd: Option<&OwnedFd>, pad: u32) -> Errno {
    let mut errno = None;
    no_leak(|| {
        let dev = drm();
        let syncobj = dev.create_syncobj_signaled().unwrap();
        let efd = new_eventfd();
        let fd = fd.unwrap_or(&efd).as_raw_fd();
        let handle = handle.unwrap_or(syncobj.handle());
        let answer = raw::syncobj_eventfd(&dev, handle, flags, 0, fd, pad);
        errno = Some(answer.unwrap_err().errno());
    });
    errno.expect("answered")
}

// ports igt syncobj_eventfd: invalid-bad-flags
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs (runs in the qemu guest)"]
fn invalid_bad_flags() {
    assert_eq!(eventfd_errno(None, 0xdead_beef, None, 0), Errno::INVAL);
}

// ports igt syncobj_eventfd: invalid-illegal-handle
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs (runs in the qemu guest)"]
fn invalid_illegal_handle() {
    assert_eq!(eventfd_errno(Some(0), 0, None, 0), Errno::NOENT);
}

// ports igt syncobj_eventfd: invalid-illegal-eventfd
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs (runs in the qemu guest)"]
fn invalid_illegal_eventfd() {
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    assert_eq!(eventfd_errno(None, 0, Some(&null), 0), Errno::INVAL);
    // The typed call passes the kernel's answer on: the call exists, the file is wrong.
    let dev = drm();
    let syncobj = dev.create_syncobj_signaled().unwrap();
    let err = syncobj
        .register_eventfd(0, PointEvent::Signaled, &null)
        .unwrap_err();
    assert!(matches!(err, dmabuf_linux::Error::Sys { .. }), "{err:?}");
    assert_eq!(err.errno(), Errno::INVAL);
}

// ports igt syncobj_eventfd: invalid-bad-pad
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs (runs in the qemu guest)"]
fn invalid_bad_pad() {
    assert_eq!(eventfd_errno(None, 0, None, 0xdead_beef), Errno::INVAL);
}

/// The two eventfds of igt's scenarios on point `point` of `syncobj`: one for the point
/// signalled, one for it available.
fn register(syncobj: &Syncobj, point: u64) -> (OwnedFd, OwnedFd) {
    let wait = syncobj
        .eventfd(point, PointEvent::Signaled)
        .expect("eventfd");
    let avail = syncobj
        .eventfd(point, PointEvent::Submitted)
        .expect("eventfd");
    (wait, avail)
}

/// igt's `test_wait`: registered on a point with a pending fence, the "available" eventfd is
/// signalled at once, the other when the fence signals.
fn wait(point: u64) {
    let dev = drm();
    let vgem = vgem();
    let syncobj = dev.create_syncobj().unwrap();
    let mut fence = attach(&vgem, &syncobj, point);
    let (wait, avail) = register(&syncobj, point);
    assert_unsignaled(&wait);
    assert_signaled(&avail);
    fence.signal();
    assert_signaled(&wait);
}

/// igt's `test_wait_before_signal`: registered before the point exists, neither is signalled;
/// attaching a pending fence signals "available", signalling it the other.
fn wait_before_signal(point: u64) {
    let dev = drm();
    let vgem = vgem();
    let syncobj = dev.create_syncobj().unwrap();
    let (wait, avail) = register(&syncobj, point);
    assert_unsignaled(&wait);
    assert_unsignaled(&avail);
    let mut fence = attach(&vgem, &syncobj, point);
    assert_unsignaled(&wait);
    assert_signaled(&avail);
    fence.signal();
    assert_signaled(&wait);
}

/// igt's `test_wait_signaled`: registered on a point already signalled, both are signalled at
/// once.
fn wait_signaled(point: u64) {
    let dev = drm();
    let vgem = vgem();
    let syncobj = dev.create_syncobj().unwrap();
    attach(&vgem, &syncobj, point).signal();
    let (wait, avail) = register(&syncobj, point);
    assert_signaled(&wait);
    assert_signaled(&avail);
}

// ports igt syncobj_eventfd: binary-wait
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn binary_wait() {
    wait(0);
}

// ports igt syncobj_eventfd: binary-wait-before-signal
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn binary_wait_before_signal() {
    wait_before_signal(0);
}

// ports igt syncobj_eventfd: binary-wait-signaled
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn binary_wait_signaled() {
    wait_signaled(0);
}

// ports igt syncobj_eventfd: timeline-wait
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn timeline_wait() {
    wait(1);
}

// ports igt syncobj_eventfd: timeline-wait-before-signal
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn timeline_wait_before_signal() {
    wait_before_signal(1);
}

// ports igt syncobj_eventfd: timeline-wait-signaled
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn timeline_wait_signaled() {
    wait_signaled(1);
}
