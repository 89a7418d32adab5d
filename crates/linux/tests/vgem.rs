//! Pending kernel fences (vgem) against the in-process model: igt `dmabuf_sync_file`'s export
//! cases (export-basic, export-before-signal, export-multiwait, export-wait-after-attach) run
//! on a real vgem buffer in the guest kernel and on a library buffer, and every busy/idle
//! answer must agree (and match igt's expectations); a pending kernel sync_file bridged
//! through the reactor signals the library fence when vgem signals.
//!
//! Needs the vgem driver (`/dev/dri/card*` driven by vgem); without it each test prints
//! `SKIPPED: <why>` to stderr and returns. They run for real in the qemu guest (Linux 6.12).

use dmabuf::buf::exporters::SystemHeap;
use dmabuf::resv::Usage;
use dmabuf::{FenceContext, Signaller};
use dmabuf_linux::{Access, FenceStatus, Reactor, Vgem};
use std::time::Duration;

fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

fn vgem() -> Option<Vgem> {
    match Vgem::open() {
        Ok(v) => Some(v),
        Err(e) => {
            skipped(&format!("no vgem device ({e})"));
            None
        }
    }
}

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
}

/// The kernel: a vgem buffer exported as a dma-buf.
struct Kernel<'v> {
    buf: dmabuf_linux::VgemBuffer<'v>,
    fd: dmabuf_linux::DmaBufFd,
    fences: Vec<Option<dmabuf_linux::VgemFence<'v>>>,
}

impl World for Kernel<'_> {
    fn attach(&mut self, write: bool) -> usize {
        self.fences
            .push(Some(self.buf.attach_fence(write).expect("vgem fence")));
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
}

/// The library: a system-heap buffer with fences from software contexts (vgem gives every
/// fence a context of its own).
struct Library {
    buf: dmabuf::buf::DmaBuf,
    fences: Vec<Option<Signaller>>,
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

fn worlds(vgem: &Vgem) -> (Kernel<'_>, Library) {
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fd = buf.export().expect("dma-buf");
    (
        Kernel {
            buf,
            fd,
            fences: Vec::new(),
        },
        Library {
            buf: SystemHeap::new().alloc(4096).expect("buffer"),
            fences: Vec::new(),
        },
    )
}

// differential: igt dmabuf_sync_file export-before-signal, kernel vs library
#[test]
fn export_before_signal_agrees_between_the_kernel_and_the_library() {
    let Some(vgem) = vgem() else { return };
    let (mut k, mut l) = worlds(&vgem);
    let (kk, ll) = (export_before_signal(&mut k), export_before_signal(&mut l));
    assert_eq!(kk, ll, "kernel (left) and library (right) disagree");
    assert_eq!(ll, [false, true, false, false, true, true, false, false]);
}

// differential: igt dmabuf_sync_file export-multiwait, kernel vs library
#[test]
fn export_multiwait_agrees_between_the_kernel_and_the_library() {
    let Some(vgem) = vgem() else { return };
    let (mut k, mut l) = worlds(&vgem);
    let (kk, ll) = (export_multiwait(&mut k), export_multiwait(&mut l));
    assert_eq!(kk, ll, "kernel (left) and library (right) disagree");
    assert_eq!(ll, [true, true, false, true, false]);
}

// differential: igt dmabuf_sync_file export-wait-after-attach, kernel vs library
#[test]
fn export_wait_after_attach_agrees_between_the_kernel_and_the_library() {
    let Some(vgem) = vgem() else { return };
    let (mut k, mut l) = worlds(&vgem);
    let (kk, ll) = (
        export_wait_after_attach(&mut k),
        export_wait_after_attach(&mut l),
    );
    assert_eq!(kk, ll, "kernel (left) and library (right) disagree");
    assert_eq!(
        ll,
        [
            false, false, true, true, false, false, false, false, false, false, true, true
        ]
    );
}

// differential: igt dmabuf_sync_file export-basic, kernel vs library
#[test]
fn export_basic_agrees_between_the_kernel_and_the_library() {
    let Some(vgem) = vgem() else { return };
    let (mut kernel, mut library) = worlds(&vgem);
    let k = export_basic(&mut kernel);
    let l = export_basic(&mut library);
    assert_eq!(k, l, "kernel (left) and library (right) disagree");
    // And both match igt's expectations: a reader blocks writers only, a writer everyone.
    let idle = [(false, false); 3];
    let read_pending = [(false, false), (true, true), (true, true)];
    assert_eq!(l, [idle, read_pending, idle, [(true, true); 3], idle]);
}

#[test]
fn a_pending_kernel_sync_file_bridged_to_a_library_fence_signals_with_vgem() {
    let Some(vgem) = vgem() else { return };
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
        lib.wait_timeout(Duration::from_millis(50)),
        Err(dmabuf::Error::TimedOut),
        "pending while vgem's fence is"
    );
    fence.signal().expect("signal");
    lib.wait_timeout(Duration::from_secs(5))
        .expect("the bridge signalled");
    assert_eq!(lib.status(), dmabuf::FenceStatus::Signaled);
    assert!(lib.timestamp().is_some());
    assert!(fd.is_ready(Access::Read).expect("poll"));
}
