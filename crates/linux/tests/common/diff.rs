//! What the differential tests (`sync_file_diff`, `syncobj_diff`) share: the sync files of
//! each world by index, made around pending fences of its own (the kernel's vgem fences, the
//! library's software fences) and signalled on demand, and what is compared of a sync file.
//!
//! Names aside: generated file names and leaf driver/timeline names are not compared, since
//! the kernel's carry vgem's fence contexts and the library's its own. What is compared is
//! whether a leaf is a stub (driver and timeline `stub`), which both worlds give for the same
//! cases.

use super::vgem_sync_file;
use dmabuf::{FenceContext, Signaller, SyncFile};
use dmabuf_linux::{FenceStatus, SyncFileFd, SyncFileInfo, Vgem, VgemBuffer, VgemFence};
use std::collections::HashMap;
use std::time::Duration;

/// One leaf as `SYNC_IOC_FILE_INFO` lists it, names aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub status: FenceStatus,
    /// Whether the leaf reports a signal time (`timestamp_ns != 0`).
    pub stamped: bool,
    /// Whether the leaf is a stub: driver and timeline `stub`.
    pub stub: bool,
}

/// A pending leaf.
pub const P: Leaf = Leaf {
    status: FenceStatus::Pending,
    stamped: false,
    stub: false,
};
/// A signalled leaf.
pub const S: Leaf = Leaf {
    status: FenceStatus::Signaled,
    stamped: true,
    stub: false,
};
/// A stub: what a merge of only-signalled inputs, a CPU signal and a timeline point collected
/// since it signalled give.
pub const STUB: Leaf = Leaf {
    status: FenceStatus::Signaled,
    stamped: true,
    stub: true,
};

/// Everything one sync file shows, names aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The leaves, in the order the info lists them.
    pub leaves: Vec<Leaf>,
    /// The filled call's overall status: the first pending or failed leaf's, else signalled.
    pub status: FenceStatus,
    /// The status of the file's own fence (the `num_fences == 0` query).
    pub fence_status: FenceStatus,
    /// `poll(POLLIN)` readiness.
    pub signaled: bool,
    /// The errno of a zero-timeout wait, `None` if it succeeded.
    pub wait_now: Option<i32>,
    /// The name given at merge (generated names differ by construction).
    pub name: Option<String>,
}

impl Seen {
    /// A file of `n` pending leaves.
    pub fn pending(n: usize) -> Seen {
        Seen::of(FenceStatus::Pending, vec![P; n])
    }

    /// A file with `leaves` whose fence's status is `status`.
    pub fn of(status: FenceStatus, leaves: Vec<Leaf>) -> Seen {
        let done = status == FenceStatus::Signaled;
        Seen {
            leaves,
            status,
            fence_status: status,
            signaled: done,
            wait_now: (!done).then_some(etime()),
            name: None,
        }
    }

    /// This, with the name given at merge.
    pub fn named(mut self, name: &str) -> Seen {
        self.name = Some(name.into());
        self
    }
}

/// `ETIME` as a raw errno.
pub fn etime() -> i32 {
    rustix::io::Errno::TIME.raw_os_error()
}

/// A sync file, the kernel's or the library's, as the tests look at it.
pub trait View {
    /// `SYNC_IOC_FILE_INFO`, filled.
    fn info(&self) -> SyncFileInfo;
    /// `SYNC_IOC_FILE_INFO` with `num_fences == 0`: the file's own fence's status.
    fn status(&self) -> FenceStatus;
    /// `poll(POLLIN)` without waiting.
    fn is_signaled(&self) -> bool;
    /// A zero-timeout wait: `None` if signalled, else the errno.
    fn wait_now(&self) -> Option<i32>;
}

impl View for SyncFileFd {
    fn info(&self) -> SyncFileInfo {
        SyncFileFd::info(self).expect("info")
    }
    fn status(&self) -> FenceStatus {
        SyncFileFd::status(self).expect("status")
    }
    fn is_signaled(&self) -> bool {
        SyncFileFd::is_signaled(self).expect("poll")
    }
    fn wait_now(&self) -> Option<i32> {
        let r = self.wait(Some(Duration::ZERO));
        r.err().map(|e| e.errno().raw_os_error())
    }
}

impl View for SyncFile {
    fn info(&self) -> SyncFileInfo {
        SyncFile::info(self)
    }
    fn status(&self) -> FenceStatus {
        SyncFile::status(self)
    }
    fn is_signaled(&self) -> bool {
        SyncFile::is_signaled(self)
    }
    fn wait_now(&self) -> Option<i32> {
        let r = self.wait_for_signal_timeout(Duration::ZERO);
        r.err().map(|e| e.errno().raw())
    }
}

/// Where a world's pending fences come from.
pub trait Source {
    /// The world's sync file.
    type File: View;
    /// What signals a pending fence.
    type Issuer;
    /// A new pending fence of a fence context of its own, as a sync file, and its issuer.
    fn make(&mut self) -> (Self::File, Self::Issuer);
    /// Signals a fence [`make`](Self::make) made.
    fn fire(issuer: Self::Issuer);
}

/// The kernel's pending fences: each a vgem writer fence on a vgem buffer of its own, taken
/// out as a sync_file (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`, which hands out a lone fence itself,
/// not wrapped).
pub struct VgemSource<'v> {
    vgem: &'v Vgem,
    bufs: Vec<VgemBuffer<'v>>,
}

impl<'v> Source for VgemSource<'v> {
    type File = SyncFileFd;
    type Issuer = VgemFence<'v>;
    fn make(&mut self) -> (SyncFileFd, VgemFence<'v>) {
        let (buf, fence, file) = vgem_sync_file(self.vgem);
        self.bufs.push(buf);
        (file, fence)
    }
    fn fire(issuer: VgemFence<'v>) {
        issuer.signal().expect("signal the vgem fence");
    }
}

/// The library's pending fences: each on a software context of its own, as vgem's are.
pub struct LibrarySource;

impl Source for LibrarySource {
    type File = SyncFile;
    type Issuer = Signaller;
    fn make(&mut self) -> (SyncFile, Signaller) {
        let (issuer, fence) = FenceContext::new("vgem", "unbound").next_fence();
        (SyncFile::new(fence), issuer)
    }
    fn fire(issuer: Signaller) {
        issuer.signal();
    }
}

/// One world's sync files, by index, and the issuers of the pending fences made for them.
pub struct Files<S: Source> {
    source: S,
    /// Each file, and whether it was named (at merge).
    files: Vec<(S::File, bool)>,
    issuers: HashMap<usize, S::Issuer>,
}

/// The kernel's sync files.
pub type KernelFiles<'v> = Files<VgemSource<'v>>;
/// The library's sync files.
pub type LibraryFiles = Files<LibrarySource>;

impl<'v> KernelFiles<'v> {
    /// No files yet; pending fences on `vgem`.
    pub fn new(vgem: &'v Vgem) -> Self {
        Files::with(VgemSource {
            vgem,
            bufs: Vec::new(),
        })
    }
}

impl Default for LibraryFiles {
    fn default() -> Self {
        Files::with(LibrarySource)
    }
}

impl<S: Source> Files<S> {
    fn with(source: S) -> Self {
        Files {
            source,
            files: Vec::new(),
            issuers: HashMap::new(),
        }
    }

    /// Adds `file` (named: given a name at merge); returns its index.
    pub fn add(&mut self, file: S::File, named: bool) -> usize {
        self.files.push((file, named));
        self.files.len() - 1
    }

    /// File `file`.
    pub fn get(&self, file: usize) -> &S::File {
        &self.files[file].0
    }
}

/// What the scripts do with a world's sync files, whichever the world.
pub trait SyncFiles {
    /// A sync file holding one new pending fence; returns the file's index, which also names
    /// the fence for [`signal`](Self::signal).
    fn pending(&mut self) -> usize;
    /// Signals the fence that [`pending`](Self::pending) made with file `file`.
    fn signal(&mut self, file: usize);
    /// `SYNC_IOC_FILE_INFO` of file `file`, filled.
    fn info(&self, file: usize) -> SyncFileInfo;
    /// Everything file `file` shows, its name if it was given one.
    fn seen(&self, file: usize) -> Seen;
}

impl<S: Source> SyncFiles for Files<S> {
    fn pending(&mut self) -> usize {
        let (file, issuer) = self.source.make();
        let id = self.add(file, false);
        self.issuers.insert(id, issuer);
        id
    }
    fn signal(&mut self, file: usize) {
        S::fire(self.issuers.remove(&file).expect("a pending fence's file"));
    }
    fn info(&self, file: usize) -> SyncFileInfo {
        self.get(file).info()
    }
    fn seen(&self, file: usize) -> Seen {
        let (f, named) = &self.files[file];
        let info = f.info();
        Seen {
            leaves: info
                .fences
                .iter()
                .map(|l| Leaf {
                    status: l.status,
                    stamped: l.timestamp.is_some(),
                    stub: l.driver == "stub" && l.timeline == "stub",
                })
                .collect(),
            status: info.status,
            fence_status: f.status(),
            signaled: f.is_signaled(),
            wait_now: f.wait_now(),
            name: named.then_some(info.name),
        }
    }
}

/// Asserts that what the kernel (left) and the library (right) gave agree; returns the
/// library's, for the expectations.
#[track_caller]
pub fn agree<T: PartialEq + std::fmt::Debug>(kernel: T, library: T) -> T {
    assert_eq!(
        kernel, library,
        "kernel (left) and library (right) disagree"
    );
    library
}
