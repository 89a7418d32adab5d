//! Pending kernel fences (vgem) against the in-process model: igt `dmabuf_sync_file`'s export
//! cases (export-basic, export-before-signal, export-multiwait, export-wait-after-attach) and
//! import cases (import-basic, import-multiple-*, with an exported vgem sync_file standing in
//! for sw_sync) run on real kernel dma-bufs in the guest — a vgem buffer, a system-heap buffer
//! and a udmabuf buffer, the last two given vgem fences through `IMPORT_SYNC_FILE` — and on a
//! library buffer, and every busy/idle answer must agree (and match igt's expectations). A
//! pending kernel sync_file bridged through the reactor signals the library fence when vgem
//! signals.
//!
//! Each test needs the vgem driver (`/dev/dri/card*` driven by vgem), the differential ones
//! also `/dev/dma_heap/system` and `/dev/udmabuf`, and is ignored unless asked for
//! (`--include-ignored`); it runs for real in the qemu guest (Linux 6.12) and fails where a
//! device it needs is missing (see `common`).

mod common;
use common::{system_heap, udmabuf, vgem, vgem_sync_file};
use dmabuf::buf::exporters::{MemfdHeap, SystemHeap};
use dmabuf::resv::Usage;
use dmabuf::{FenceContext, Signaller};
use dmabuf_linux::{Access, FenceStatus, Reactor, Vgem};
use rustix::fd::AsFd;
use std::time::Duration;

/// The busy answers igt's `dmabuf_busy` and `dmabuf_sync_file_busy` give, for READ, WRITE
/// and RW, in that order.
type Busy = [(bool, bool); 3];

/// One world's buffer: attach fences, signal them, ask for busy states, export files.
trait World {
    /// Attaches a pending fence (writer or reader) and returns its index.
    fn attach(&mut self, write: bool) -> usize;
    /// Signals the fence `attach` returned as `id`.
    fn signal(&mut self, id: usize);
    /// `dmabuf_busy` and `dmabuf_sync_file_busy` for READ, WRITE and RW.
    fn busy(&self) -> Busy;
    /// Exports a sync file now; the closure says whether it is still busy.
    fn export(&self, access: Access) -> Box<dyn Fn() -> bool>;
    /// Signals every pending fence.
    fn signal_all(&mut self);
    /// A pending fence outside the buffer, as a sync file to import; returns its id (for
    /// `signal` and `import`).
    fn outside_fence(&mut self) -> usize;
    /// Imports the sync file of outside fence `id` into the buffer.
    fn import(&mut self, id: usize, access: Access);
}

/// The kernel: a dma-buf — a vgem buffer, which takes vgem fences directly, or a system-heap
/// or udmabuf buffer, which has no fences of its own and gets vgem fences through
/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` (as writers or readers, the same usages).
struct Kernel<'v> {
    vgem: &'v Vgem,
    /// The vgem buffer behind `fd`, if it is one.
    buf: Option<dmabuf_linux::VgemBuffer<'v>>,
    fd: dmabuf_linux::DmaBufFd,
    fences: Vec<Option<dmabuf_linux::VgemFence<'v>>>,
    /// Other vgem buffers carrying outside fences, and those fences' sync files by id.
    others: Vec<dmabuf_linux::VgemBuffer<'v>>,
    files: std::collections::HashMap<usize, dmabuf_linux::SyncFileFd>,
}

impl World for Kernel<'_> {
    fn attach(&mut self, write: bool) -> usize {
        let fence = match &self.buf {
            Some(buf) => buf.attach_fence(write).expect("vgem fence"),
            None => {
                let (fence, file) = self.vgem_file();
                let access = if write { Access::Write } else { Access::Read };
                self.fd.import_sync_file(&file, access).expect("import");
                fence
            }
        };
        self.fences.push(Some(fence));
        self.fences.len() - 1
    }
    fn signal(&mut self, id: usize) {
        if let Some(f) = self.fences[id].take() {
            f.signal().expect("signal");
        }
    }
    fn busy(&self) -> Busy {
        [Access::Read, Access::Write, Access::ReadWrite]
            .map(|a| (!self.fd.is_ready(a).expect("poll"), self.export(a)()))
    }
    fn export(&self, access: Access) -> Box<dyn Fn() -> bool> {
        let file = self.fd.export_sync_file(access).expect("export");
        Box::new(move || file.wait(Some(Duration::ZERO)).is_err())
    }
    fn signal_all(&mut self) {
        for id in 0..self.fences.len() {
            self.signal(id);
        }
    }
    fn outside_fence(&mut self) -> usize {
        let (fence, file) = self.vgem_file();
        self.fences.push(Some(fence));
        let id = self.fences.len() - 1;
        self.files.insert(id, file);
        id
    }
    fn import(&mut self, id: usize, access: Access) {
        self.fd
            .import_sync_file(&self.files[&id], access)
            .expect("import");
    }
}

impl<'v> Kernel<'v> {
    /// A pending vgem fence on a buffer of its own, and a sync file of it.
    fn vgem_file(&mut self) -> (dmabuf_linux::VgemFence<'v>, dmabuf_linux::SyncFileFd) {
        let (other, fence, file) = vgem_sync_file(self.vgem);
        self.others.push(other);
        (fence, file)
    }
}

/// The library: a system-heap buffer with fences from software contexts (vgem gives every
/// fence a context of its own).
struct Library {
    buf: dmabuf::buf::DmaBuf,
    fences: Vec<Option<Signaller>>,
    files: std::collections::HashMap<usize, dmabuf::SyncFile>,
}

impl World for Library {
    fn attach(&mut self, write: bool) -> usize {
        let (s, f) = FenceContext::new("vgem", "unbound").next_fence();
        let mut g = self.buf.resv().lock_single();
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&f, if write { Usage::Write } else { Usage::Read });
        self.fences.push(Some(s));
        self.fences.len() - 1
    }
    fn signal(&mut self, id: usize) {
        if let Some(s) = self.fences[id].take() {
            s.signal();
        }
    }
    fn busy(&self) -> Busy {
        [Access::Read, Access::Write, Access::ReadWrite]
            .map(|a| (!self.buf.is_ready(a), self.export(a)()))
    }
    fn export(&self, access: Access) -> Box<dyn Fn() -> bool> {
        let file = self.buf.export_sync_file(access);
        Box::new(move || !file.is_signaled())
    }
    fn signal_all(&mut self) {
        for id in 0..self.fences.len() {
            self.signal(id);
        }
    }
    fn outside_fence(&mut self) -> usize {
        let (s, f) = FenceContext::new("vgem", "unbound").next_fence();
        self.fences.push(Some(s));
        let id = self.fences.len() - 1;
        self.files.insert(id, dmabuf::SyncFile::new(f));
        id
    }
    fn import(&mut self, id: usize, access: Access) {
        self.buf
            .import_sync_file(&self.files[&id], access)
            .expect("import");
    }
}

/// igt `import-basic`: an imported reader blocks writers only; a writer, everyone.
fn import_basic(w: &mut dyn World) -> Vec<Busy> {
    let mut seen = vec![w.busy()];
    for access in [Access::Read, Access::Write, Access::ReadWrite] {
        let f = w.outside_fence();
        w.import(f, access);
        seen.push(w.busy());
        w.signal(f);
        seen.push(w.busy());
    }
    seen
}

/// igt `import-multiple-read-only` / `-read-write`: `N` imported readers (and a writer), files
/// exported after, readers signalled in reverse.
fn import_multiple(w: &mut dyn World, write: bool) -> Vec<(Busy, bool, bool)> {
    const N: usize = 8;
    let readers: Vec<usize> = (0..N)
        .map(|_| {
            let f = w.outside_fence();
            w.import(f, Access::Read);
            f
        })
        .collect();
    let writer = write.then(|| {
        let f = w.outside_fence();
        w.import(f, Access::Write);
        f
    });
    let (read_file, write_file) = (w.export(Access::Read), w.export(Access::Write));
    let mut seen = vec![(w.busy(), read_file(), write_file())];
    for &r in readers.iter().rev() {
        w.signal(r);
        seen.push((w.busy(), read_file(), write_file()));
    }
    if let Some(f) = writer {
        w.signal(f);
        seen.push((w.busy(), read_file(), write_file()));
    }
    seen
}

/// igt `export-basic`'s steps; returns the busy answers after each.
fn export_basic(w: &mut dyn World) -> Vec<Busy> {
    let mut seen = vec![w.busy()];
    w.attach(false);
    seen.push(w.busy());
    w.signal_all();
    seen.push(w.busy());
    w.attach(true);
    seen.push(w.busy());
    w.signal_all();
    seen.push(w.busy());
    seen
}

/// igt `export-before-signal`: files exported while fences are pending, checked after.
fn export_before_signal(w: &mut dyn World) -> Vec<bool> {
    let mut seen = Vec::new();
    let f = w.attach(false);
    let (read, write) = (w.export(Access::Read), w.export(Access::Write));
    seen.extend([read(), write()]);
    w.signal(f);
    seen.extend([read(), write()]);
    drop((read, write));
    let f = w.attach(true);
    let (read, write) = (w.export(Access::Read), w.export(Access::Write));
    seen.extend([read(), write()]);
    w.signal(f);
    seen.extend([read(), write()]);
    seen
}

/// igt `export-multiwait`: a file waits for the fences it snapshot, not for later ones.
fn export_multiwait(w: &mut dyn World) -> Vec<bool> {
    let mut seen = Vec::new();
    let a = w.attach(false);
    let b = w.attach(false);
    let file = w.export(Access::Write);
    let c = w.attach(false);
    seen.push(file());
    w.signal(a);
    seen.push(file());
    w.signal(b);
    seen.push(file());
    seen.push(w.busy()[1].0);
    w.signal(c);
    seen.push(w.busy()[1].0);
    seen
}

/// igt `export-wait-after-attach`: snapshots taken before a writer stay idle.
fn export_wait_after_attach(w: &mut dyn World) -> Vec<bool> {
    let mut seen = Vec::new();
    let (read0, write0) = (w.export(Access::Read), w.export(Access::Write));
    let f1 = w.attach(true);
    seen.extend([read0(), write0()]);
    let (read1, write1) = (w.export(Access::Read), w.export(Access::Write));
    seen.extend([read1(), write1()]);
    w.signal(f1);
    seen.extend([read1(), write1()]);
    let f2 = w.attach(true);
    seen.extend([read0(), write0(), read1(), write1()]);
    seen.extend([w.busy()[0].0, w.busy()[1].0]);
    w.signal(f2);
    seen
}

/// The kernel buffers each case runs on, by name: a vgem buffer, a system-heap buffer and a
/// udmabuf buffer.
fn kernels(vgem: &Vgem) -> Vec<(&'static str, Kernel<'_>)> {
    let kernel = |buf, fd| Kernel {
        vgem,
        buf,
        fd,
        fences: Vec::new(),
        others: Vec::new(),
        files: Default::default(),
    };
    let vbuf = vgem.create_buffer(4096).expect("vgem buffer");
    let fd = vbuf.export().expect("dma-buf");
    let heap_buf = system_heap().alloc(4096).expect("alloc");
    let memfd = MemfdHeap::new().alloc(4096).expect("memfd buffer");
    let udmabuf_buf = udmabuf().create_from(&memfd).expect("udmabuf");
    vec![
        ("vgem", kernel(Some(vbuf), fd)),
        ("system heap", kernel(None, heap_buf)),
        ("udmabuf", kernel(None, udmabuf_buf)),
    ]
}

fn library() -> Library {
    Library {
        buf: SystemHeap::new().alloc(4096).expect("buffer"),
        fences: Vec::new(),
        files: Default::default(),
    }
}

/// Runs `case` on every kernel buffer and on a library buffer and asserts they agree;
/// returns the library's answers.
fn agree<T: PartialEq + std::fmt::Debug>(vgem: &Vgem, case: impl Fn(&mut dyn World) -> T) -> T {
    let expected = case(&mut library());
    for (name, mut kernel) in kernels(vgem) {
        let got = case(&mut kernel);
        assert_eq!(
            got, expected,
            "{name}: kernel (left) and library (right) disagree"
        );
    }
    expected
}

// differential: igt dmabuf_sync_file export-before-signal, kernel vs library
#[test]
#[ignore = "needs vgem, /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn export_before_signal_agrees_between_the_kernel_and_the_library() {
    let vgem = vgem();
    let ll = agree(&vgem, export_before_signal);
    assert_eq!(ll, [false, true, false, false, true, true, false, false]);
}

// differential: igt dmabuf_sync_file export-multiwait, kernel vs library
#[test]
#[ignore = "needs vgem, /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn export_multiwait_agrees_between_the_kernel_and_the_library() {
    let vgem = vgem();
    let ll = agree(&vgem, export_multiwait);
    assert_eq!(ll, [true, true, false, true, false]);
}

// differential: igt dmabuf_sync_file export-wait-after-attach, kernel vs library
#[test]
#[ignore = "needs vgem, /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn export_wait_after_attach_agrees_between_the_kernel_and_the_library() {
    let vgem = vgem();
    let ll = agree(&vgem, export_wait_after_attach);
    assert_eq!(
        ll,
        [
            false, false, true, true, false, false, false, false, false, false, true, true
        ]
    );
}

// differential: igt dmabuf_sync_file import-basic, kernel vs library
#[test]
#[ignore = "needs vgem, /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn import_basic_agrees_between_the_kernel_and_the_library() {
    let vgem = vgem();
    let ll = agree(&vgem, import_basic);
    let idle = [(false, false); 3];
    let reader = [(false, false), (true, true), (true, true)];
    let writer = [(true, true); 3];
    assert_eq!(ll, [idle, reader, idle, writer, idle, writer, idle]);
}

// differential: igt dmabuf_sync_file import-multiple-read-only and -read-write
#[test]
#[ignore = "needs vgem, /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn import_multiple_agrees_between_the_kernel_and_the_library() {
    let vgem = vgem();
    for write in [false, true] {
        let ll = agree(&vgem, |w| import_multiple(w, write));
        // The read file waits for the writer only; the write file for every reader too.
        let (first, last) = (ll[0], ll[ll.len() - 1]);
        assert_eq!((first.1, first.2), (write, true), "write={write}");
        assert_eq!((last.1, last.2), (false, false), "write={write}");
    }
}

// differential: igt dmabuf_sync_file export-basic, kernel vs library
#[test]
#[ignore = "needs vgem, /dev/dma_heap/system and /dev/udmabuf (runs in the qemu guest)"]
fn export_basic_agrees_between_the_kernel_and_the_library() {
    let vgem = vgem();
    let l = agree(&vgem, export_basic);
    // And both match igt's expectations: a reader blocks writers only, a writer everyone.
    let idle = [(false, false); 3];
    let read_pending = [(false, false), (true, true), (true, true)];
    assert_eq!(l, [idle, read_pending, idle, [(true, true); 3], idle]);
}

#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn a_pending_kernel_sync_file_bridged_to_a_library_fence_signals_with_vgem() {
    let vgem = vgem();
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fd = buf.export().expect("dma-buf");
    let fence = buf.attach_fence(true).expect("vgem fence");
    let file = fd.export_sync_file(Access::Read).expect("export");
    let info = file.info().expect("info");
    assert_eq!(info.status, FenceStatus::Pending);
    assert_eq!(info.fences.len(), 1);
    assert_eq!(info.fences[0].driver, "vgem");
    assert!(!fd.is_ready(Access::Read).expect("poll"));
    let reactor = Reactor::new().expect("reactor");
    let lib = file.to_fence(&reactor).map_err(|(e, _)| e).expect("bridge");
    assert_eq!(lib.driver_name(), "vgem");
    assert_eq!(
        lib.wait_for_signal_timeout(Duration::from_millis(50)),
        Err(dmabuf::TimedOut),
        "pending while vgem's fence is"
    );
    fence.signal().expect("signal");
    lib.wait_for_signal_timeout(Duration::from_secs(5))
        .expect("the bridge signalled");
    assert_eq!(lib.status(), dmabuf::FenceStatus::Signaled);
    assert!(lib.timestamp().is_some());
    assert!(fd.is_ready(Access::Read).expect("poll"));
}

#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn a_pending_kernel_sync_file_is_awaitable() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let vgem = vgem();
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fence = buf.attach_fence(true).expect("vgem fence");
    let file = buf
        .export()
        .expect("dma-buf")
        .export_sync_file(Access::Read)
        .expect("export");
    let reactor = Reactor::new().expect("reactor");
    let mut ready = Box::pin(
        file.wait_async(&reactor)
            .map_err(|(e, _)| e)
            .expect("bridge"),
    );
    let mut cx = Context::from_waker(Waker::noop());
    assert!(ready.as_mut().poll(&mut cx).is_pending());
    fence.signal().expect("signal");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ready.as_mut().poll(&mut cx) == Poll::Pending {
        assert!(std::time::Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The `count:` of a dma-buf's fdinfo: references to its file (a GEM object that imported it
/// holds some).
fn file_refs(buf: &dmabuf_linux::DmaBufFd) -> u64 {
    buf.fdinfo().expect("fdinfo").count
}

#[test]
#[ignore = "needs vgem and /dev/dma_heap/system (runs in the qemu guest)"]
fn importing_one_dma_buf_twice_shares_its_handle_until_the_last_buffer_drops() {
    let vgem = vgem();
    let heap = system_heap();
    let buf = heap.alloc(4096).expect("alloc");
    let refs = file_refs(&buf);
    let first = vgem.import(&buf).expect("import");
    let second = vgem.import(&buf).expect("import again");
    // DRM_IOCTL_PRIME_FD_TO_HANDLE answers the handle this file already has for the buffer.
    assert_eq!(first.handle(), second.handle());
    assert!(file_refs(&buf) > refs, "the GEM object holds the dma-buf");
    drop(first);
    // The handle is still open for the second buffer: it exports and takes fences.
    let again = second
        .export()
        .expect("the second import still has its handle");
    assert_eq!(again.fdinfo().expect("fdinfo").exp_name, "system");
    drop(again);
    second
        .attach_fence(true)
        .expect("fence")
        .signal()
        .expect("signal");
    // A buffer made meanwhile gets a handle of its own, which the second's drop leaves alone.
    let fresh = vgem.create_buffer(4096).expect("vgem buffer");
    assert_ne!(fresh.handle(), second.handle());
    drop(second);
    assert_eq!(file_refs(&buf), refs, "the last buffer closed the handle");
    fresh.export().expect("the fresh buffer keeps its handle");

    // A dma-buf exported from this device comes back as the exporting buffer's handle.
    let own = fresh.export().expect("export");
    let back = vgem.import(&own).expect("import own");
    assert_eq!(back.handle(), fresh.handle());
    drop(back);
    fresh
        .export()
        .expect("the exporting buffer keeps its handle");
    fresh
        .attach_fence(false)
        .expect("fence")
        .signal()
        .expect("signal");
}

#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn vgem_import_of_a_file_that_is_not_a_dma_buf_is_the_kernels_einval() {
    let vgem = vgem();
    let (_buf, fence, file) = vgem_sync_file(&vgem);
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    for (what, fd) in [("sync_file", file.as_fd()), ("/dev/null", null.as_fd())] {
        let err = vgem.import(fd).expect_err(what);
        assert_eq!(
            err,
            dmabuf_linux::Error::Sys {
                call: "ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE)",
                errno: rustix::io::Errno::INVAL
            },
            "{what}"
        );
    }
    fence.signal().expect("signal");
}

#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn a_signalled_kernel_fence_keeps_its_driver_and_timeline_names_on_linux_6_12() {
    let vgem = vgem();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let (_buf, fence, file) = vgem_sync_file(&vgem);
    let pending = file.info().expect("info");
    assert_eq!(pending.status, FenceStatus::Pending);
    let names = |info: &dmabuf_linux::SyncFileInfo| {
        let leaf = &info.fences[0];
        (leaf.driver.clone(), leaf.timeline.clone())
    };
    assert_eq!(names(&pending), ("vgem".to_owned(), "unbound".to_owned()));
    fence.signal().expect("signal");
    file.wait(Some(Duration::from_secs(5))).expect("signalled");
    let signalled = file.info().expect("info");
    assert_eq!(signalled.status, FenceStatus::Signaled);
    assert_eq!(signalled.fences[0].status, FenceStatus::Signaled);
    if release.starts_with("6.12.") {
        // 6.12 keeps the fence's ops after it signals, so its names stay the driver's.
        assert_eq!(names(&signalled), names(&pending));
    } else {
        // Other releases: the driver's names, or the placeholders of a kernel that detaches a
        // signalled fence's ops (mainline since 2026).
        let placeholders = ("detached-driver".to_owned(), "signaled-timeline".to_owned());
        let after = names(&signalled);
        assert!(
            after == names(&pending) || after == placeholders,
            "Linux {}: {after:?}",
            release.trim()
        );
    }
}
