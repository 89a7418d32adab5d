//! The shared buffer itself (kernel: `struct dma_buf`, `dma_buf_export()`, the global buffer
//! list and debugfs `bufinfo`).
//!
//! A [`DmaBuf`] is a counted handle (cloning is the kernel's `get_dma_buf`, dropping its
//! `dma_buf_put`); the last handle releases the exporter. It carries the exporter, its size,
//! an optional name and a reservation object, its own or one shared with the exporter's other
//! objects.
//!
//! # Rules
//! * Calls that need the reservation lock take a [`ResvGuard`] of this buffer's reservation
//!   object as proof ([`Error::WrongLock`] for another one's): `vmap`, `move_notify`, and the
//!   attachment's `map`, `pin`, `unpin`.
//! * Calls that must not hold it (`attach`, `dynamic_attach`, detaching, CPU access) take it
//!   themselves or announce that they might; with the validator on, holding a reservation
//!   lock there is reported.
//!
//! # Differences from the kernel
//! * No file: a handle is the reference.
//! * The attachment list and the vmap count are guarded by small internal locks, changed only
//!   with the reservation lock held, so every ordering the kernel gives holds here too.
//! * The debug listing reads fences without taking reservation locks (the kernel locks each
//!   buffer), so it can be called from anywhere, even while holding one.

use super::attachment::AttInner;
use super::{Exporter, Locked, Memory};
use crate::error::{Error, Rejected, Result};
use crate::resv::{Resv, ResvGuard, Usage};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// The longest buffer name in bytes (kernel: `DMA_BUF_NAME_LEN` = 32, with the NUL).
pub const NAME_MAX: usize = 31;

/// Every live buffer, by id (kernel: `dmabuf_list`). A leaf lock.
static REGISTRY: Mutex<BTreeMap<u64, Weak<BufInner>>> = Mutex::new(BTreeMap::new());

/// Buffer ids (the kernel shows the file's inode number).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A shared buffer (kernel: `struct dma_buf`). Cheap to clone; clones are the same buffer.
///
/// ```
/// use dmabuf::buf::{Device, DeviceCaps, Direction, DmaBuf};
/// use dmabuf::buf::exporters::SystemHeap;
///
/// let buf = SystemHeap::new().alloc(8192)?;
/// let camera = Device::new("camera", DeviceCaps::NONE);
/// let att = buf.attach(&camera)?;
/// let guard = buf.resv().lock_single();
/// let mapping = att.map(&guard, Direction::FromDevice)?;
/// camera.dma_write(mapping.segments()[0].addr, b"frame")?;
/// mapping.unmap(&guard)?;
/// drop(guard);
/// att.detach();
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[derive(Clone)]
pub struct DmaBuf(pub(crate) Arc<BufInner>);

/// A weak handle: does not keep the buffer alive (what an exporter's eviction list holds).
#[derive(Clone, Debug)]
pub struct WeakDmaBuf(Weak<BufInner>);

pub(crate) struct BufInner {
    id: u64,
    size: u64,
    exporter: Box<dyn Exporter>,
    resv: Arc<Resv>,
    /// The user's name (kernel: `name`, under `name_lock`).
    name: Mutex<Option<String>>,
    /// Live attachments; changed only with the reservation lock held.
    pub(crate) attachments: Mutex<Vec<Weak<AttInner>>>,
    /// The shared CPU mapping and its users; changed only with the reservation lock held.
    vmap: Mutex<VmapState>,
}

#[derive(Default)]
struct VmapState {
    count: usize,
    memory: Option<Arc<dyn Memory>>,
}

impl DmaBuf {
    /// Exports `exporter`'s storage as a buffer with a reservation object of its own (kernel:
    /// `dma_buf_export()`).
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for a zero size; [`Error::InvalidExporter`] for an exporter
    /// that is dynamic and caches mappings (a cached mapping cannot follow a move).
    #[doc(alias = "dma_buf_export")]
    pub fn export(exporter: impl Exporter) -> Result<DmaBuf> {
        Self::export_with_resv(exporter, Arc::new(Resv::new()))
    }

    /// Exports with a reservation object shared with other objects of the exporter (kernel:
    /// `exp_info.resv`), so their implicit sync is one.
    ///
    /// # Errors
    /// As [`export`](Self::export).
    pub fn export_with_resv(exporter: impl Exporter, resv: Arc<Resv>) -> Result<DmaBuf> {
        let size = exporter.size();
        if size == 0 {
            return Err(Error::InvalidSize(size));
        }
        // Kernel: dma_buf_export() rejects `cache_sgt_mapping` with pin/unpin (WARN,
        // -EINVAL): every map would hand out the first table again, even after move_notify.
        if exporter.is_dynamic() && exporter.caches_mapping() {
            return Err(Error::InvalidExporter(
                "a dynamic exporter cannot cache mappings",
            ));
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::new(BufInner {
            id,
            size,
            exporter: Box::new(exporter),
            resv,
            name: Mutex::new(None),
            attachments: Mutex::new(Vec::new()),
            vmap: Mutex::new(VmapState::default()),
        });
        REGISTRY.lock().insert(id, Arc::downgrade(&inner));
        tracing::debug!(
            id,
            size,
            exporter = inner.exporter.name(),
            "dma-buf exported"
        );
        Ok(DmaBuf(inner))
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// A process-unique id (the kernel lists the file's inode number).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The exporter.
    pub fn exporter(&self) -> &dyn Exporter {
        &*self.0.exporter
    }

    /// The exporter as its concrete type, if it is an `E` (to reach a memfd, say).
    pub fn exporter_as<E: Exporter>(&self) -> Option<&E> {
        let any: &dyn std::any::Any = &*self.0.exporter;
        any.downcast_ref::<E>()
    }

    /// Whether the exporter can move the storage (kernel: `dma_buf_is_dynamic()`).
    #[doc(alias = "dma_buf_is_dynamic")]
    pub fn is_dynamic(&self) -> bool {
        self.0.exporter.is_dynamic()
    }

    /// The reservation object: the buffer's implicit-sync state and its lock.
    pub fn resv(&self) -> &Resv {
        &self.0.resv
    }

    /// The reservation object as a shared handle, for an importer's own object that must
    /// share it (kernel: `drm_gem_prime_import_dev()` sets the imported GEM object's `resv`
    /// to the dma-buf's), so that the object's implicit sync and lock are the buffer's: the
    /// importer's side of [`export_with_resv`](Self::export_with_resv). To use the object,
    /// [`resv`](Self::resv) is enough.
    pub fn resv_arc(&self) -> &Arc<Resv> {
        &self.0.resv
    }

    /// Whether two handles are the same buffer.
    pub fn ptr_eq(&self, other: &DmaBuf) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A handle that does not keep the buffer alive.
    pub fn downgrade(&self) -> WeakDmaBuf {
        WeakDmaBuf(Arc::downgrade(&self.0))
    }

    /// Number of handles (the kernel's file count).
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// The user's name, if set.
    pub fn name(&self) -> Option<String> {
        self.0.name.lock().clone()
    }

    /// Names the buffer for debugging (kernel: `DMA_BUF_SET_NAME`); replaces an earlier name.
    ///
    /// # Errors
    /// [`Error::NameTooLong`] past [`NAME_MAX`] bytes.
    #[doc(alias = "DMA_BUF_SET_NAME")]
    pub fn set_name(&self, name: &str) -> Result<()> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong { max: NAME_MAX });
        }
        *self.0.name.lock() = Some(name.to_owned());
        Ok(())
    }

    /// Checks that `guard` locks this buffer.
    pub(crate) fn locked<'g>(&'g self, guard: &'g ResvGuard<'g>) -> Result<Locked<'g>> {
        Locked::new(self, guard)
    }

    /// The live attachments, strong.
    pub(crate) fn live_attachments(&self) -> Vec<Arc<AttInner>> {
        self.0
            .attachments
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Number of live attachments.
    pub fn attachment_count(&self) -> usize {
        self.live_attachments().len()
    }

    /// Tells every dynamic importer that the storage is about to move (kernel:
    /// `dma_buf_move_notify()`): their mappings stay usable for work already fenced, but
    /// they must map again before new work. The exporter calls this with the lock held,
    /// after the buffer's fences allow the move.
    ///
    /// # Errors
    /// [`Error::WrongLock`] if `guard` locks another object.
    #[doc(alias = "dma_buf_move_notify")]
    pub fn move_notify(&self, guard: &ResvGuard<'_>) -> Result<()> {
        let locked = self.locked(guard)?;
        for att in self.live_attachments() {
            if let Some(importer) = att.importer() {
                importer.move_notify(&locked);
            }
        }
        Ok(())
    }

    /// A CPU view of the storage that stays put until [`VMap::vunmap`] (kernel:
    /// `dma_buf_vmap()`): the exporter's `vmap` runs once for all concurrent users.
    ///
    /// # Errors
    /// [`Error::WrongLock`]; the exporter's error ([`Error::Unsupported`] if it has no
    /// `vmap`).
    #[doc(alias = "dma_buf_vmap")]
    pub fn vmap(&self, guard: &ResvGuard<'_>) -> Result<VMap> {
        let locked = self.locked(guard)?;
        let mut st = self.0.vmap.lock();
        let memory = match &st.memory {
            Some(m) => m.clone(),
            None => {
                let m = self.0.exporter.vmap(&locked)?;
                st.memory = Some(m.clone());
                m
            }
        };
        st.count += 1;
        Ok(VMap {
            buf: self.clone(),
            memory,
        })
    }

    /// Number of live [`VMap`]s.
    pub fn vmap_count(&self) -> usize {
        self.0.vmap.lock().count
    }

    /// The storage for a user mapping (kernel: `dma_buf_mmap()`). Must be called without the
    /// reservation lock.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the exporter has no `mmap`.
    #[doc(alias = "dma_buf_mmap")]
    pub fn mmap(&self) -> Result<Arc<dyn Memory>> {
        self.resv().might_lock();
        self.0.exporter.mmap(self)
    }

    /// This buffer's block of the debug listing (kernel: debugfs `dma_buf/bufinfo`): size,
    /// count, exporter, id and name, its fences, and the attached devices.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:08}\t{:08x}\t{:08x}\t{:08}\t{}\t{:08}\t{}",
            self.size(),
            0,
            0,
            self.handle_count(),
            self.0.exporter.name(),
            self.id(),
            self.name().unwrap_or_default()
        );
        for (f, usage) in self.resv().snapshot(Usage::Read) {
            let _ = writeln!(out, "\t{usage} fence:{f}");
        }
        let attachments = self.live_attachments();
        out.push_str("\tAttached Devices:\n");
        for att in &attachments {
            let _ = writeln!(out, "\t{}", att.device().name());
        }
        let _ = writeln!(out, "Total {} devices attached", attachments.len());
        out
    }
}

/// The debug listing of every live buffer (kernel: debugfs `dma_buf/bufinfo`).
///
/// ```
/// let buf = dmabuf::buf::exporters::SystemHeap::new().alloc(4096)?;
/// buf.set_name("scanout")?;
/// let listing = dmabuf::buf::bufinfo();
/// assert!(listing.contains("scanout"));
/// # Ok::<(), dmabuf::Error>(())
/// ```
pub fn bufinfo() -> String {
    let buffers: Vec<DmaBuf> = REGISTRY
        .lock()
        .values()
        .filter_map(|w| w.upgrade().map(DmaBuf))
        .collect();
    let mut out = String::from("\nDma-buf Objects:\n");
    out.push_str("size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n");
    let mut bytes = 0u64;
    for b in &buffers {
        out.push_str(&b.describe());
        out.push('\n');
        bytes += b.size();
    }
    let _ = writeln!(out, "\nTotal {} objects, {} bytes", buffers.len(), bytes);
    out
}

impl WeakDmaBuf {
    /// The buffer, if it is still alive.
    pub fn upgrade(&self) -> Option<DmaBuf> {
        self.0.upgrade().map(DmaBuf)
    }

    /// Whether the buffer has been released. Unlike `upgrade`, never creates (and so never
    /// drops) a handle: safe under locks the buffer's release takes.
    pub fn is_released(&self) -> bool {
        self.0.strong_count() == 0
    }

    /// Whether this is a handle of `buf`, without upgrading.
    pub fn points_to(&self, buf: &DmaBuf) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&buf.0))
    }
}

impl Drop for BufInner {
    fn drop(&mut self) {
        REGISTRY.lock().remove(&self.id);
        let vmaps = self.vmap.get_mut().count;
        if vmaps > 0 {
            // Kernel: a BUG. A VMap keeps its buffer alive, so only a leaked one gets here.
            tracing::warn!(id = self.id, vmaps, "dma-buf released with live vmaps");
        }
    }
}

impl fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuf")
            .field("id", &self.id())
            .field("size", &self.size())
            .field("exporter", &self.0.exporter.name())
            .field("name", &self.name())
            .finish()
    }
}

/// A CPU view of a buffer's storage from [`DmaBuf::vmap`]; give it back with
/// [`vunmap`](Self::vunmap) under the lock (kernel: `dma_buf_vunmap()`).
#[must_use = "a vmap must be given back with vunmap, under the reservation lock"]
pub struct VMap {
    buf: DmaBuf,
    memory: Arc<dyn Memory>,
}

impl VMap {
    /// The storage.
    pub fn memory(&self) -> &Arc<dyn Memory> {
        &self.memory
    }

    /// Gives the view back; the last one runs the exporter's `vunmap` (kernel:
    /// `dma_buf_vunmap()`).
    ///
    /// # Errors
    /// [`Error::WrongLock`], handing the view back.
    #[doc(alias = "dma_buf_vunmap")]
    pub fn vunmap(self, guard: &ResvGuard<'_>) -> std::result::Result<(), Rejected<VMap>> {
        let buf = self.buf.clone();
        let locked = match buf.locked(guard) {
            Ok(l) => l,
            Err(error) => return Err(Rejected { error, input: self }),
        };
        let mut st = buf.0.vmap.lock();
        st.count -= 1;
        if st.count == 0
            && let Some(m) = st.memory.take()
        {
            drop(st);
            buf.0.exporter.vunmap(&locked, m);
        }
        Ok(())
    }
}

impl fmt::Debug for VMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VMap").field("buf", &self.buf).finish()
    }
}
