//! Helpers shared by the test programs: descriptor counting, serial execution, the devices.
//!
//! A test that needs a device (`/dev/dma_heap/system`, `/dev/udmabuf`, vgem) is
//! `#[ignore]`d with the devices it needs as the reason, so a host without them reports it as
//! ignored rather than passed. Such tests run when asked for, with `--include-ignored` (the
//! qemu guest, the workspace's `vm/run`, runs every test program so) or `--ignored`, and then
//! the device helpers below expect the device: a missing one fails the test with the open
//! error. No test skips itself.
// Each test program uses a different subset.
#![allow(dead_code)]

pub mod diff;
pub mod scenarios;

use std::sync::Mutex;

/// Tests that count `/proc/self/fd` run one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Descriptors open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Runs `body` alone and asserts it closed every descriptor it opened.
pub fn no_leak(body: impl FnOnce()) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    body();
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// A pending vgem fence (a writer) on a vgem buffer of its own, and a sync file of it, as
/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` gives it: the test's stand-in for a sw_sync point. Keep
/// the buffer while the fence matters.
pub fn vgem_sync_file(
    vgem: &dmabuf_linux::Vgem,
) -> (
    dmabuf_linux::VgemBuffer<'_>,
    dmabuf_linux::VgemFence<'_>,
    dmabuf_linux::SyncFileFd,
) {
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fence = buf.attach_fence(true).expect("vgem fence");
    let file = buf
        .export()
        .expect("dma-buf")
        .export_sync_file(dmabuf_linux::Access::Read)
        .expect("export");
    (buf, fence, file)
}

/// The system heap. Panics when `/dev/dma_heap/system` cannot be opened.
#[track_caller]
pub fn system_heap() -> dmabuf_linux::DmaHeap {
    match dmabuf_linux::DmaHeap::open("system") {
        Ok(heap) => heap,
        Err(e) => needs("/dev/dma_heap/system", e),
    }
}

/// The udmabuf device. Panics when `/dev/udmabuf` cannot be opened.
#[track_caller]
pub fn udmabuf() -> dmabuf_linux::Udmabuf {
    match dmabuf_linux::Udmabuf::open() {
        Ok(dev) => dev,
        Err(e) => needs("/dev/udmabuf", e),
    }
}

/// The vgem device. Panics when there is none.
#[track_caller]
pub fn vgem() -> dmabuf_linux::Vgem {
    match dmabuf_linux::Vgem::open() {
        Ok(vgem) => vgem,
        Err(e) => needs("a vgem device", e),
    }
}

#[track_caller]
fn needs(device: &str, e: dmabuf_linux::Error) -> ! {
    panic!("this test needs {device}, which cannot be opened here: {e}")
}

/// The first render node with timeline syncobjs (the virtio GPU in the guest). Panics when
/// there is none.
#[track_caller]
pub fn drm() -> dmabuf_linux::DrmDevice {
    match dmabuf_linux::DrmDevice::find_timeline_syncobj() {
        Ok(dev) => dev,
        Err(e) => needs("a DRM render node with timeline syncobjs", e),
    }
}

/// In a child process [`spawn_child`] started: its end of the socket to the parent (the
/// child's standard input). `None` in the test binary's own process.
pub fn child_socket() -> Option<std::os::unix::net::UnixStream> {
    use std::os::fd::AsFd;
    if !dmabuf_testkit::is_child() {
        return None;
    }
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .expect("dup stdin");
    Some(fd.into())
}

/// Runs `test` of this test binary in a child process whose standard input is `socket`, on a
/// thread of its own; joining the thread fails if the child did.
pub fn spawn_child(
    test: &'static str,
    socket: std::os::unix::net::UnixStream,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let stdin = std::process::Stdio::from(std::os::fd::OwnedFd::from(socket));
        let (status, stderr) = dmabuf_testkit::in_child_with(test, |cmd| {
            cmd.arg("--include-ignored").stdin(stdin);
        });
        assert!(
            status.success(),
            "{test} in its child process: {status}\n{stderr}"
        );
    })
}

/// A pending vgem fence attached to a syncobj or one of its timeline points: the stand-in for a
/// sw_sync timeline holding one fence. [`signal`](Self::signal) signals it; dropping it
/// signals it too.
pub struct Attached<'v> {
    fence: Option<dmabuf_linux::VgemFence<'v>>,
    _buf: dmabuf_linux::VgemBuffer<'v>,
}

impl Attached<'_> {
    /// Signals the fence (once).
    pub fn signal(&mut self) {
        if let Some(f) = self.fence.take() {
            f.signal().expect("signal the vgem fence");
        }
    }
}

/// Attaches a new pending vgem fence to `syncobj` at `point` (0: as its fence), as a
/// sync_file import (through a binary syncobj and a transfer for a point).
pub fn attach<'v>(
    vgem: &'v dmabuf_linux::Vgem,
    syncobj: &dmabuf_linux::Syncobj,
    point: u64,
) -> Attached<'v> {
    let (buf, fence, file) = vgem_sync_file(vgem);
    syncobj
        .import_point(point, &file)
        .expect("import the fence");
    Attached {
        fence: Some(fence),
        _buf: buf,
    }
}

/// Attaches a vgem fence to `syncobj` at `point` and signals it.
pub fn trigger(vgem: &dmabuf_linux::Vgem, syncobj: &dmabuf_linux::Syncobj, point: u64) {
    attach(vgem, syncobj, point).signal();
}

/// The syncobj handles `dev`'s file holds among 1 to 64, each probed with a wait that only
/// looks: only a handle the file does not have answers `ENOENT`.
pub fn live_handles(dev: &dmabuf_linux::DrmDevice) -> Vec<u32> {
    (1..=64)
        .filter(|&h| {
            let look = dmabuf_linux::raw::SyncobjWait {
                handles: &[h],
                ..Default::default()
            };
            dmabuf_linux::raw::syncobj_wait(dev, &look)
                .map_or_else(|e| e.errno() != rustix::io::Errno::NOENT, |_| true)
        })
        .collect()
}

/// The kernel's answer as an errno: `None` for success.
pub fn errno_of<T>(r: Result<T, dmabuf_linux::Error>) -> Option<rustix::io::Errno> {
    r.err().map(|e| e.errno())
}
