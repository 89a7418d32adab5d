//! Pending kernel fences (vgem) against the in-process model: the same igt
//! `dmabuf_sync_file` export steps run on a real vgem buffer in the guest kernel and on a
//! library buffer, and every busy/idle answer must agree; a pending kernel sync_file bridged
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

/// One world's buffer: attach fences, signal them, ask for busy states.
trait World {
    fn attach(&mut self, write: bool);
    fn signal_all(&mut self);
    fn busy(&self) -> Busy;
}

/// The kernel: a vgem buffer exported as a dma-buf.
struct Kernel<'v> {
    buf: dmabuf_linux::VgemBuffer<'v>,
    fd: dmabuf_linux::DmaBufFd,
    fences: Vec<dmabuf_linux::VgemFence<'v>>,
}

impl World for Kernel<'_> {
    fn attach(&mut self, write: bool) {
        let f = self.buf.attach_fence(write).expect("vgem fence");
        self.fences.push(f);
    }
    fn signal_all(&mut self) {
        for f in self.fences.drain(..) {
            f.signal().expect("signal");
        }
    }
    fn busy(&self) -> Busy {
        [Access::Read, Access::Write, Access::ReadWrite].map(|a| {
            let poll = !self.fd.is_ready(a).expect("poll");
            let file = self
                .fd
                .export_sync_file(a)
                .expect("export")
                .wait(Some(Duration::ZERO))
                .is_err();
            (poll, file)
        })
    }
}

/// The library: a system-heap buffer with fences from a software context.
struct Library {
    buf: dmabuf::buf::DmaBuf,
    fences: Vec<Signaller>,
}

impl World for Library {
    fn attach(&mut self, write: bool) {
        let (s, f) = FenceContext::new("vgem", "unbound").next_fence();
        let mut g = self.buf.resv().lock_single();
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&f, if write { Usage::Write } else { Usage::Read });
        self.fences.push(s);
    }
    fn signal_all(&mut self) {
        for s in self.fences.drain(..) {
            s.signal();
        }
    }
    fn busy(&self) -> Busy {
        [Access::Read, Access::Write, Access::ReadWrite].map(|a| {
            (
                !self.buf.is_ready(a),
                !self.buf.export_sync_file(a).is_signaled(),
            )
        })
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

// differential: igt dmabuf_sync_file export-basic, kernel vs library
#[test]
fn export_basic_agrees_between_the_kernel_and_the_library() {
    let Some(vgem) = vgem() else { return };
    let kbuf = vgem.create_buffer(4096).expect("vgem buffer");
    let fd = kbuf.export().expect("dma-buf");
    let mut kernel = Kernel {
        buf: kbuf,
        fd,
        fences: Vec::new(),
    };
    let mut library = Library {
        buf: SystemHeap::new().alloc(4096).expect("buffer"),
        fences: Vec::new(),
    };
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
