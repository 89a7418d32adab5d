//! The typed syncobj API against the kernel, beyond igt's suites: finding and opening render
//! nodes, the typed errors and what they carry, no descriptor or handle left behind on any
//! error path, a kernel fence taken through a binary syncobj into a timeline and back out as a
//! sync file, the bridges between library fences and kernel points (both ways), and a
//! parent and a child process sharing a dma-buf and a timeline over a Unix socket.
//!
//! The tests that need a device are ignored unless asked for (`--include-ignored`); they run
//! in the qemu guest (Linux 6.12: the virtio GPU's render node, vgem, the system dma-heap) and
//! fail where a device is missing (see `common`). The others run anywhere.

mod common;
use common::{attach, child_socket, drm, errno_of, live_handles, no_leak, spawn_child, vgem};
use dmabuf::{FenceContext, FenceStatus};
use dmabuf_linux::{
    DrmDevice, Error, PointEvent, Reactor, SyncobjFd, WaitFlags, raw, recv_fds, send_fds,
};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Long enough for anything that must happen, short of vgem's own ten-second signal.
const LONG: Duration = Duration::from_secs(5);

#[test]
fn a_file_that_is_not_a_drm_device_or_a_host_without_one_gets_a_typed_error() {
    no_leak(|| {
        let err = DrmDevice::open("/dev/null").unwrap_err();
        assert!(matches!(err, Error::NotDrmDevice), "{err:?}");
        assert_eq!(err.errno(), Errno::NOTTY);
        let err = DrmDevice::open("/nonexistent/renderD128").unwrap_err();
        assert_eq!(err.errno(), Errno::NOENT);
        // A directory without render nodes: nothing to find, and the error says so.
        let empty = std::env::temp_dir().join(format!("dmabuf-no-dri-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let err = DrmDevice::find_timeline_syncobj_in(&empty).unwrap_err();
        std::fs::remove_dir(&empty).unwrap();
        assert!(matches!(err, Error::NoTimelineSyncobj { .. }), "{err:?}");
        assert_eq!(err.errno(), Errno::NODEV);
        assert!(err.to_string().contains("no render node under"), "{err}");
    });
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn the_render_node_is_found_with_its_driver_and_capabilities() {
    no_leak(|| {
        let dev = drm();
        assert_eq!(dev.driver().name, "virtio_gpu");
        let caps = dev.capabilities();
        assert!(caps.syncobj && caps.syncobj_timeline, "{caps:?}");
        assert_eq!(dev.cap(dmabuf_linux::DRM_CAP_SYNCOBJ_TIMELINE).unwrap(), 1);
        assert_eq!(dev.cap(0xffff).unwrap_err().errno(), Errno::INVAL);
        let again = DrmDevice::open(dev.path()).expect("open by path");
        assert_eq!(again.driver(), dev.driver());
        assert!(!again.same_file(&dev) && dev.clone().same_file(&dev));

        // vgem's render node has no syncobjs: creating one is unsupported, by the kernel's
        // EOPNOTSUPP.
        let vgem = render_nodes()
            .into_iter()
            .find(|d| d.driver().name == "vgem")
            .expect("vgem's render node");
        assert!(!vgem.capabilities().syncobj);
        let err = vgem.create_syncobj().unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert_eq!(err.errno(), Errno::OPNOTSUPP);
    });
}

/// Every render node under `/dev/dri`, opened.
fn render_nodes() -> Vec<DrmDevice> {
    std::fs::read_dir(dmabuf_linux::DRM_DIR)
        .expect("/dev/dri")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        .map(|e| DrmDevice::open(e.path()).expect("a render node"))
        .collect()
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn no_descriptor_or_handle_is_left_behind_on_any_error_path() {
    no_leak(|| {
        let dev = drm();
        let other = drm();
        let vgem = vgem();
        let timeline = dev.create_syncobj().unwrap();
        let empty = dev.create_syncobj().unwrap();
        let foreign = other.create_syncobj().unwrap();
        timeline.timeline_signal(5).unwrap();
        let held = [timeline.handle(), empty.handle()];
        assert_eq!(live_handles(&dev), held);

        // A sync file of no fence; a point not submitted (through a temporary syncobj).
        let err = empty.export_sync_file().unwrap_err();
        assert!(matches!(err, Error::Unsubmitted { .. }), "{err:?}");
        assert_eq!(err.errno(), Errno::INVAL);
        let err = timeline.export_point(7).unwrap_err();
        assert!(matches!(err, Error::Unsubmitted { .. }), "{err:?}");
        // Waits: no fence, a point not submitted, out of time.
        let look = Some(Duration::ZERO);
        assert_eq!(
            errno_of(empty.wait(0, WaitFlags::ANY, look)),
            Some(Errno::INVAL)
        );
        let err = timeline.wait(6, WaitFlags::FOR_SUBMIT, look).unwrap_err();
        assert!(matches!(err, Error::TimedOut), "{err:?}");
        let err = timeline.transfer_to(9, &empty, 0, false).unwrap_err();
        assert!(matches!(err, Error::Unsubmitted { .. }), "{err:?}");
        // Syncobjs of another file, refused before the kernel would misread their handles.
        for err in [
            dev.wait(&[&timeline, &foreign], WaitFlags::ANY, look)
                .unwrap_err(),
            dev.reset(&[&foreign]).unwrap_err(),
            dev.timeline_signal(&[(&foreign, 1)]).unwrap_err(),
            dev.query(&[&foreign], false).unwrap_err(),
            timeline.transfer_to(5, &foreign, 1, false).unwrap_err(),
        ] {
            assert!(matches!(err, Error::ForeignSyncobj), "{err:?}");
            assert_eq!(err.errno(), Errno::NOENT);
        }
        let err = dev.signal(&[]).unwrap_err();
        assert!(matches!(err, Error::NoSyncobjs { .. }), "{err:?}");
        let err = dev.wait(&[&empty], WaitFlags::AVAILABLE, look).unwrap_err();
        assert!(matches!(err, Error::InvalidFlags { .. }), "{err:?}");
        // An eventfd that is not one: the probe that tells it from an older kernel leaves
        // nothing behind either.
        let err = timeline
            .register_eventfd(5, PointEvent::Signaled, dev.as_fd())
            .unwrap_err();
        assert!(matches!(err, Error::Sys { .. }), "{err:?}");
        // A file that is not a syncobj file.
        let (err, _fd) = SyncobjFd::from_fd(rustix::io::dup(dev.as_fd()).unwrap()).unwrap_err();
        assert!(matches!(err, Error::NotSyncobjFile), "{err:?}");

        // Successful paths through temporaries and second handles leave none behind either.
        let (_buf, fence, file) = common::vgem_sync_file(&vgem);
        timeline.import_point(8, &file).unwrap();
        let exported = timeline.export_point(8).unwrap();
        drop(timeline.try_clone().unwrap());
        drop(dev.import_syncobj(&timeline.export().unwrap()).unwrap());
        fence.signal().unwrap();
        exported.wait(Some(LONG)).unwrap();
        assert_eq!(live_handles(&dev), held);

        drop((timeline, empty));
        assert!(live_handles(&dev).is_empty());
        // The next handle is the lowest again: nothing holds a number.
        assert_eq!(dev.create_syncobj().unwrap().handle(), 1);
    });
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn a_kernel_fence_goes_through_a_binary_syncobj_into_a_timeline_and_back_out() {
    no_leak(|| {
        let dev = drm();
        let vgem = vgem();
        let (_buf, fence, file) = common::vgem_sync_file(&vgem);
        // A sync-file import needs an existing handle: 0 is none (drm-rs passes it).
        let into_zero = raw::SyncobjHandle {
            fd: file.as_raw_fd(),
            flags: raw::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            ..Default::default()
        };
        let err = raw::syncobj_fd_to_handle(&dev, &into_zero).unwrap_err();
        assert_eq!(err.errno(), Errno::NOENT);

        let binary = dev.create_syncobj().unwrap();
        binary
            .import_sync_file(&file)
            .expect("into the existing handle");
        let timeline = dev.create_syncobj().unwrap();
        binary.transfer_to(0, &timeline, 3, false).unwrap();
        assert_eq!(timeline.last_submitted().unwrap(), 3);
        assert_eq!(timeline.query().unwrap(), 0);
        let back = timeline.export_point(3).unwrap();
        let info = back.info().unwrap();
        assert_eq!(info.status, FenceStatus::Pending);
        assert_eq!(info.fences.len(), 1, "{info:?}");
        assert_eq!(info.fences[0].driver, "vgem");

        fence.signal().unwrap();
        back.wait(Some(LONG)).unwrap();
        assert_eq!(timeline.query().unwrap(), 3);
        // The file, the point and the binary syncobj all saw the same fence signal.
        let at = back.info().unwrap().fences[0].timestamp;
        assert!(at.is_some());
        assert_eq!(file.info().unwrap().fences[0].timestamp, at);
        binary
            .wait(0, WaitFlags::ANY, Some(Duration::ZERO))
            .unwrap();
    });
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs (runs in the qemu guest)"]
fn a_library_fence_signals_a_kernel_point_when_it_signals() {
    no_leak(|| {
        let dev = drm();
        let timeline = dev.create_syncobj().unwrap();
        let watcher = timeline.try_clone().unwrap();
        let ctx = FenceContext::new("test", "render");

        let (done, fence) = ctx.next_fence();
        timeline.signal_point_when(5, &fence).unwrap();
        // The bridge holds a handle of its own: this one may go.
        drop(timeline);
        let look = Some(Duration::ZERO);
        assert_eq!(
            watcher.last_submitted().unwrap(),
            0,
            "nothing before the fence"
        );
        let err = watcher.wait(5, WaitFlags::FOR_SUBMIT, look).unwrap_err();
        assert!(matches!(err, Error::TimedOut), "{err:?}");
        done.signal();
        watcher
            .wait(5, WaitFlags::ANY, look)
            .expect("signalled with the fence");
        assert_eq!(watcher.query().unwrap(), 5);

        // A fence already signalled signals its point at once; a failed one signals it too
        // (a point cannot carry the error).
        let (done, fence) = ctx.next_fence();
        done.signal();
        watcher.signal_point_when(6, &fence).unwrap();
        assert_eq!(watcher.query().unwrap(), 6);
        let (done, fence) = ctx.next_fence();
        watcher.signal_point_when(7, &fence).unwrap();
        done.signal_with_error(dmabuf::Errno::EIO);
        assert_eq!(watcher.query().unwrap(), 7);
        // Point 0 is the binary fence.
        let binary = dev.create_syncobj().unwrap();
        let (done, fence) = ctx.next_fence();
        binary.signal_point_when(0, &fence).unwrap();
        done.signal();
        binary.wait(0, WaitFlags::ANY, look).expect("signalled");
        drop((watcher, binary));
        assert!(
            live_handles(&dev).is_empty(),
            "the bridges' handles are gone"
        );
    });
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn a_kernel_point_signals_a_library_fence_through_the_reactor() {
    no_leak(|| {
        let reactor = Reactor::new().unwrap();
        let dev = drm();
        let vgem = vgem();
        let timeline = dev.create_syncobj().unwrap();

        // A host signal of the point.
        let signaled = timeline
            .point_to_fence(3, PointEvent::Signaled, &reactor)
            .unwrap();
        assert!(!signaled.is_signaled());
        assert_eq!(reactor.pending(), 1);
        timeline.timeline_signal(3).unwrap();
        signaled.wait_timeout(LONG).expect("signalled");
        assert_eq!(signaled.status(), FenceStatus::Signaled);
        assert_eq!(signaled.driver_name(), "virtio_gpu");

        // A device fence at point 4: submitted first, signalled later, with its time.
        let submitted = timeline
            .point_to_fence(4, PointEvent::Submitted, &reactor)
            .unwrap();
        let signaled = timeline
            .point_to_fence(4, PointEvent::Signaled, &reactor)
            .unwrap();
        let mut fence = attach(&vgem, &timeline, 4);
        submitted.wait_timeout(LONG).expect("submitted");
        assert!(!signaled.is_signaled());
        fence.signal();
        signaled.wait_timeout(LONG).expect("signalled");
        let kernel_time = timeline.export_point(4).unwrap().info().unwrap().fences[0].timestamp;
        assert!(kernel_time.is_some());
        assert_eq!(
            signaled.timestamp(),
            kernel_time,
            "the device fence's own time"
        );

        // Already signalled: at once.
        let late = timeline
            .point_to_fence(2, PointEvent::Signaled, &reactor)
            .unwrap();
        late.wait_timeout(LONG).expect("signalled at once");
        let deadline = std::time::Instant::now() + LONG;
        while reactor.pending() != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(reactor.pending(), 0, "every eventfd served and closed");
        drop(timeline);
        assert!(live_handles(&dev).is_empty());
    });
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn waits_take_a_deadline_hint() {
    no_leak(|| {
        let dev = drm();
        let vgem = vgem();
        let timeline = dev.create_syncobj().unwrap();
        let mut fence = attach(&vgem, &timeline, 1);
        let soon = dmabuf::MonotonicTime::now() + Duration::from_millis(1);
        let flags = WaitFlags::ALL.with_deadline(soon);
        assert_eq!(
            flags.bits(),
            raw::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | raw::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE
        );
        // The hint reaches the fence (vgem ignores it); the wait still waits for the signal.
        let short = Some(Duration::from_millis(20));
        let err = timeline.wait(1, flags, short).unwrap_err();
        assert!(matches!(err, Error::TimedOut), "{err:?}");
        let err = timeline.wait(0, flags, short).unwrap_err();
        assert!(matches!(err, Error::TimedOut), "binary wait: {err:?}");
        fence.signal();
        timeline.wait(1, flags, Some(LONG)).expect("signalled");
        timeline.wait(0, flags, Some(LONG)).expect("signalled");
    });
}

/// The timeline point the parent signals in [`a_child_process_waits_for_a_point_then_reads_the_parents_bytes`].
const POINT: u64 = 7;
/// What the parent writes into the shared buffer.
const BYTES: &[u8] = b"written by the parent before point 7";

/// The child's side: receives the dma-buf and the timeline, waits for [`POINT`] to be
/// submitted and signalled (it is neither when the wait begins), reads the buffer and sends
/// what it read back.
fn child(socket: UnixStream) {
    let mut buf = [0u8; 16];
    let got = recv_fds(&socket, &mut buf, 2).expect("the parent's descriptors");
    assert_eq!(&buf[..got.bytes], b"buffer+timeline");
    let mut fds = got.fds.into_iter();
    let dmabuf = dmabuf_linux::DmaBufFd::from_fd(fds.next().unwrap()).expect("a dma-buf");
    let file = SyncobjFd::from_fd(fds.next().unwrap()).expect("a syncobj file");
    // A device file of the child's own: handles are per file.
    let dev = drm();
    let timeline = dev.import_syncobj(&file).unwrap();
    assert_eq!(
        timeline.last_submitted().unwrap(),
        0,
        "nothing submitted yet"
    );
    send_fds(&socket, b"waiting", &[]).unwrap();
    timeline
        .wait(POINT, WaitFlags::FOR_SUBMIT, Some(LONG))
        .expect("the parent signals the point");
    let mut seen = vec![0u8; BYTES.len()];
    dmabuf.mmap().unwrap().copy_to_slice(0, &mut seen).unwrap();
    send_fds(&socket, &seen, &[]).unwrap();
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and /dev/dma_heap/system (runs in the qemu guest)"]
fn a_child_process_waits_for_a_point_then_reads_the_parents_bytes() {
    if let Some(socket) = child_socket() {
        return child(socket);
    }
    no_leak(|| {
        let dev = drm();
        let buffer = common::system_heap().alloc(4096).unwrap();
        let timeline = dev.create_syncobj().unwrap();
        let (parent, child_end) = UnixStream::pair().unwrap();
        let run = spawn_child(
            "a_child_process_waits_for_a_point_then_reads_the_parents_bytes",
            child_end,
        );
        let exported: OwnedFd = timeline.export().unwrap().into();
        send_fds(
            &parent,
            b"buffer+timeline",
            &[buffer.as_fd(), exported.as_fd()],
        )
        .unwrap();
        drop(exported);
        let mut buf = [0u8; 64];
        let got = recv_fds(&parent, &mut buf, 0).unwrap();
        assert_eq!(&buf[..got.bytes], b"waiting");
        // The child waits. The parent's work: write the buffer, then finish a library fence
        // bridged to the point.
        std::thread::sleep(Duration::from_millis(100));
        let (done, fence) = FenceContext::new("parent", "cpu").next_fence();
        timeline.signal_point_when(POINT, &fence).unwrap();
        buffer.mmap().unwrap().copy_from_slice(0, BYTES).unwrap();
        done.signal();
        let got = recv_fds(&parent, &mut buf, 0).unwrap();
        assert_eq!(&buf[..got.bytes], BYTES, "the child saw the parent's bytes");
        run.join().expect("the child passed");
    });
}
