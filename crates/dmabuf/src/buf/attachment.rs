//! Importers' attachments (kernel: `struct dma_buf_attachment`, `dma_buf_attach()`,
//! `dma_buf_dynamic_attach()`, `dma_buf_map_attachment()`, `dma_buf_pin()`,
//! `dma_buf_detach()`).
//!
//! An importer attaches a [`Device`] to a buffer, then maps the attachment to get the storage
//! as segments of that device's address space (a [`Mapping`]). A *static* importer
//! ([`Static`]) expects the storage to stay put while mapped; a *dynamic* one ([`Dynamic`])
//! gives an [`Importer`] whose `move_notify` the exporter calls before moving it, and may
//! [`pin`](Attachment::pin) it instead.
//!
//! # Rules
//! * Mapping, unmapping, pinning and unpinning need the buffer's reservation lock: they take
//!   its guard as proof. Attaching and detaching must not hold it (they take it).
//! * When importer and exporter disagree on being dynamic, the attachment is mapped once at
//!   attach time, bidirectionally, pinning a dynamic exporter, and every map hands out that
//!   mapping; detaching tears it down (seed 001: the caching that let static and dynamic
//!   drivers share buffers without changing their locking).
//! * A static importer's map waits for the buffer's KERNEL fences (moves and clears) first.
//! * Only dynamic attachments can pin; an unpin needs a pin.
//! * Unmap every mapping before detaching (kernel: the same rule for `dma_buf_detach()`).
//!   Detaching tears down whatever is left, as `dma_buf_detach()` does the cached mapping:
//!   every table the attachment handed out is unmapped, the cached one included, before the
//!   pin that held the storage under it goes and before the exporter's `detach`. A
//!   [`Mapping`] that outlives its attachment is dead: its device windows are closed, so an
//!   access through it faults ([`Error::Fault`]) rather than reach memory the buffer may have
//!   left, and its `unmap` does nothing.
//!
//! # Differences from the kernel
//! * Follows the 2019–2025 generation for mismatched importers (seed 001; mainline replaced it
//!   with pinning on map in 2025).
//! * A mapping dropped without `unmap` is not lost: the attachment unmaps it at detach (the
//!   kernel leaks it, with a warning at best). Detaching drops the attachment's remaining pins
//!   too, with a warning.
//! * A mapping still held at detach is unmapped there, with a warning (in the kernel its
//!   `sg_table` is freed or leaked under the importer: a use after free).

use super::exporter::Locked;
use super::kept::{Kept, Tables};
use super::{Device, Direction, DmaBuf, Mapping, SgTable};
use crate::error::{Error, Result};
use crate::resv::locked_by::LockedBy;
use crate::resv::{ResvGuard, Usage};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A dynamic importer's callback (kernel: `struct dma_buf_attach_ops`).
pub trait Importer: Send + Sync {
    /// The exporter is about to move the storage (kernel: `move_notify`). Called with the
    /// buffer's reservation lock held ([`Locked`]). Mappings stay usable for work already
    /// fenced in the buffer's reservation object, but new work must map again; work that
    /// cannot be stopped at once must be covered by a fence added now.
    fn move_notify(&self, locked: &Locked<'_>);
}

mod sealed {
    pub trait Sealed {}
}

/// How an attachment's importer treats the storage: [`Static`] (expects it to stay put) or
/// [`Dynamic`] (follows `move_notify`), as the type parameter of [`Attachment`] that decides
/// which calls it has.
pub trait ImportMode: sealed::Sealed + Send + Sync + 'static {
    /// Whether the importer follows `move_notify`.
    const DYNAMIC: bool;
}

/// An importer that expects the storage to stay put while mapped (kernel: `dma_buf_attach`).
#[derive(Debug)]
pub enum Static {}
/// An importer that follows `move_notify` and may pin (kernel: `dma_buf_dynamic_attach`).
#[derive(Debug)]
pub enum Dynamic {}

impl sealed::Sealed for Static {}
impl sealed::Sealed for Dynamic {}
impl ImportMode for Static {
    const DYNAMIC: bool = false;
}
impl ImportMode for Dynamic {
    const DYNAMIC: bool = true;
}

/// A device attached to a buffer (kernel: `struct dma_buf_attachment`). Dropping it
/// detaches (kernel: `dma_buf_detach()`), which takes the reservation lock: do not hold it.
/// Detaching unmaps every [`Mapping`] of the attachment still alive (see the module's rules):
/// unmap them first.
///
/// The locking convention is in the types. Mapping needs the guard of the buffer's
/// reservation lock:
/// ```compile_fail
/// # use dmabuf::buf::{Device, DeviceCaps, Direction, exporters::SystemHeap};
/// let buf = SystemHeap::new().alloc(4096).unwrap();
/// let att = buf.attach(&Device::new("d", DeviceCaps::NONE)).unwrap();
/// let mapping = att.map(Direction::ToDevice); // no guard: does not compile
/// ```
/// and only a dynamic importer pins:
/// ```compile_fail
/// # use dmabuf::buf::{Device, DeviceCaps, exporters::SystemHeap};
/// let buf = SystemHeap::new().alloc(4096).unwrap();
/// let att = buf.attach(&Device::new("d", DeviceCaps::NONE)).unwrap(); // static
/// let guard = buf.resv().lock_single();
/// att.pin(&guard).unwrap(); // no `pin` on Attachment<Static>
/// ```
/// ```
/// # use dmabuf::buf::{Device, DeviceCaps, Direction, Importer, Locked, exporters::SystemHeap};
/// # use std::sync::Arc;
/// struct Follow;
/// impl Importer for Follow {
///     fn move_notify(&self, _locked: &Locked<'_>) {}
/// }
/// let buf = SystemHeap::new().alloc(4096)?;
/// let att = buf.dynamic_attach(&Device::new("d", DeviceCaps::NONE), Arc::new(Follow))?;
/// let guard = buf.resv().lock_single();
/// att.pin(&guard)?;
/// let mapping = att.map(&guard, Direction::ToDevice)?;
/// mapping.unmap(&guard)?;
/// att.unpin(&guard)?;
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[must_use = "dropping an attachment detaches it"]
pub struct Attachment<M: ImportMode = Static> {
    inner: Arc<AttInner>,
    _mode: PhantomData<M>,
}

pub(crate) struct AttInner {
    buf: DmaBuf,
    device: Device,
    importer: Option<Arc<dyn Importer>>,
    /// Reached and changed only with the buffer's reservation lock held.
    state: LockedBy<AttState>,
    /// Whether `state` holds a cached mapping, for readers without the lock (written under
    /// it).
    has_cached: AtomicBool,
    /// The importer's pins, for readers without the lock (written under it).
    pins: AtomicUsize,
    /// Mappings dropped without `unmap` (their tables wait for detach; those dropped after
    /// detach are counted too, and read by nobody).
    dropped: AtomicUsize,
}

#[derive(Default)]
struct AttState {
    /// The mapping handed out on every map (mismatch, or an exporter that caches).
    cached: Option<Arc<SgTable>>,
    /// Pinned at attach for the cached mapping (dynamic exporter, static importer).
    pinned_for_cache: bool,
    /// What detach needs of every other table handed out and not unmapped yet: those of
    /// live mappings, and those of mappings dropped without `unmap`. Detach unmaps them all.
    mapped: Tables,
    /// Detached: every table is unmapped, and nothing is unmapped here any more.
    detached: bool,
}

impl AttInner {
    pub(crate) fn importer(&self) -> Option<&Arc<dyn Importer>> {
        self.importer.as_ref()
    }

    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    pub(super) fn buf(&self) -> &DmaBuf {
        &self.buf
    }

    /// Takes the table in `slot` off the tables detach unmaps, for its mapping's own unmap;
    /// `false` if the attachment detached already (detaching unmapped it).
    pub(super) fn forget_table(&self, guard: &ResvGuard<'_>, slot: usize) -> bool {
        let mut st = self.state.borrow_mut(guard);
        if st.detached {
            return false;
        }
        let kept = st.mapped.remove(slot);
        debug_assert!(kept, "a mapping's slot is kept until its unmap or detach");
        true
    }

    /// Counts a mapping dropped without `unmap`.
    pub(super) fn dropped_without_unmap(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl DmaBuf {
    /// Attaches `device` as a static importer (kernel: `dma_buf_attach()`). Takes the
    /// reservation lock: the caller must not hold it.
    ///
    /// # Errors
    /// The exporter's refusal ([`Error::Busy`]: it cannot serve this device); a failed
    /// mapping when it must map at attach time.
    #[doc(alias = "dma_buf_attach")]
    pub fn attach(&self, device: &Device) -> Result<Attachment<Static>> {
        Ok(Attachment {
            inner: self.attach_inner(device, None)?,
            _mode: PhantomData,
        })
    }

    /// Attaches `device` as a dynamic importer that follows `importer`'s `move_notify`
    /// (kernel: `dma_buf_dynamic_attach()`). Takes the reservation lock.
    ///
    /// # Errors
    /// As [`attach`](Self::attach).
    #[doc(alias = "dma_buf_dynamic_attach")]
    pub fn dynamic_attach(
        &self,
        device: &Device,
        importer: Arc<dyn Importer>,
    ) -> Result<Attachment<Dynamic>> {
        Ok(Attachment {
            inner: self.attach_inner(device, Some(importer))?,
            _mode: PhantomData,
        })
    }

    fn attach_inner(
        &self,
        device: &Device,
        importer: Option<Arc<dyn Importer>>,
    ) -> Result<Arc<AttInner>> {
        let dynamic = importer.is_some();
        self.exporter().attach(self, device, dynamic)?;
        let att = Arc::new(AttInner {
            buf: self.clone(),
            device: device.clone(),
            importer,
            state: LockedBy::new(self.resv(), AttState::default()),
            has_cached: AtomicBool::new(false),
            pins: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let guard = self.resv().lock_single();
        self.0.attachments.lock().push(Arc::downgrade(&att));
        if dynamic != self.is_dynamic()
            && let Err(e) = att.map_at_attach(&guard)
        {
            self.unlist(&att);
            att.state.borrow_mut(&guard).detached = true;
            drop(guard);
            self.exporter().detach(self, device);
            return Err(e);
        }
        drop(guard);
        Ok(att)
    }
}

impl DmaBuf {
    /// Takes `att` off the buffer's attachments.
    fn unlist(&self, att: &Arc<AttInner>) {
        self.0
            .attachments
            .lock()
            .retain(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(att)));
    }
}

impl AttInner {
    /// Maps bidirectionally at attach, pinning a dynamic exporter, and caches the result.
    fn map_at_attach(&self, guard: &ResvGuard<'_>) -> Result<()> {
        let buf = &self.buf;
        let locked = buf.locked(guard)?;
        let exporter = buf.exporter();
        let pin = buf.is_dynamic();
        if pin {
            exporter.pin(&locked, &self.device)?;
        }
        match exporter.map(&locked, &self.device, Direction::Bidirectional) {
            Ok(table) => {
                let mut st = self.state.borrow_mut(guard);
                st.cached = Some(Arc::new(table));
                st.pinned_for_cache = pin;
                self.has_cached.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                if pin {
                    exporter.unpin(&locked, &self.device);
                }
                Err(e)
            }
        }
    }
}

impl<M: ImportMode> Attachment<M> {
    /// The buffer.
    pub fn buf(&self) -> &DmaBuf {
        &self.inner.buf
    }

    /// The attached device.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// Whether the importer is dynamic (kernel: `dma_buf_attachment_is_dynamic()`).
    #[doc(alias = "dma_buf_attachment_is_dynamic")]
    pub fn is_dynamic(&self) -> bool {
        M::DYNAMIC
    }

    /// Whether maps hand out one cached mapping.
    pub fn has_cached_mapping(&self) -> bool {
        self.inner.has_cached.load(Ordering::Acquire)
    }

    /// Maps the buffer into the device's address space (kernel: `dma_buf_map_attachment()`),
    /// with the reservation lock held. A static importer first waits for the buffer's KERNEL
    /// fences.
    ///
    /// # Errors
    /// [`Error::WrongLock`]; [`Error::Busy`] for a direction other than a cached mapping's
    /// (unless that is bidirectional); the exporter's errors.
    #[doc(alias = "dma_buf_map_attachment")]
    pub fn map(&self, guard: &ResvGuard<'_>, direction: Direction) -> Result<Mapping> {
        let att = &self.inner;
        let buf = &att.buf;
        let locked = buf.locked(guard)?;
        if !M::DYNAMIC {
            // Memory management (moves, clears) must be done before a static importer
            // touches the storage, cached mapping or not; it waits with the lock held, as the
            // kernel does. Looking at the locked set first spares the common case, nothing
            // pending, the unlocked reader's protocol.
            crate::validate::might_wait();
            if guard.has_unsignalled(Usage::Kernel) {
                buf.resv().wait_for_signal(Usage::Kernel);
            }
        }
        {
            let st = att.state.borrow_mut(guard);
            if let Some(table) = &st.cached {
                let cached_dir = table.direction();
                if cached_dir != direction && cached_dir != Direction::Bidirectional {
                    return Err(Error::Busy("mapped in another direction"));
                }
                return Ok(Mapping::cached(att.clone(), table.clone()));
            }
        }
        let table = buf.exporter().map(&locked, &att.device, direction)?;
        if buf.exporter().caches_mapping() {
            let mut st = att.state.borrow_mut(guard);
            if let Some(cached) = &st.cached {
                // The exporter's `map` mapped this attachment itself (through an importer's
                // callback): the first table cached stays, this one goes back.
                let cached = cached.clone();
                drop(st);
                buf.exporter().unmap(&locked, table);
                return Ok(Mapping::cached(att.clone(), cached));
            }
            let table = Arc::new(table);
            st.cached = Some(table.clone());
            att.has_cached.store(true, Ordering::Release);
            return Ok(Mapping::cached(att.clone(), table));
        }
        let slot = att
            .state
            .borrow_mut(guard)
            .mapped
            .insert(Kept::of(&table, &att.device));
        Ok(Mapping::own(att.clone(), table, slot))
    }

    /// Detaches now (same as dropping; kernel: `dma_buf_detach()`): unmaps what is still
    /// mapped, drops the pins, then calls the exporter's `detach`.
    pub fn detach(self) {}
}

impl Attachment<Dynamic> {
    /// Keeps the storage where it is until [`unpin`](Self::unpin) (kernel: `dma_buf_pin()`),
    /// for long-lived uses such as scanout. A no-op for a static exporter.
    ///
    /// # Errors
    /// [`Error::WrongLock`]; the exporter's [`Error::Busy`].
    #[doc(alias = "dma_buf_pin")]
    pub fn pin(&self, guard: &ResvGuard<'_>) -> Result<()> {
        let att = &self.inner;
        let locked = att.buf.locked(guard)?;
        if att.buf.is_dynamic() {
            att.buf.exporter().pin(&locked, &att.device)?;
        }
        // Changed only under the lock: a load and a store are enough.
        att.pins
            .store(att.pins.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Undoes one [`pin`](Self::pin) (kernel: `dma_buf_unpin()`).
    ///
    /// # Errors
    /// [`Error::WrongLock`]; [`Error::Unbalanced`] without a pin.
    #[doc(alias = "dma_buf_unpin")]
    pub fn unpin(&self, guard: &ResvGuard<'_>) -> Result<()> {
        let att = &self.inner;
        let locked = att.buf.locked(guard)?;
        // Changed only under the lock: a load and a store are enough.
        let pins = att.pins.load(Ordering::Relaxed);
        if pins == 0 {
            return Err(Error::Unbalanced("unpin"));
        }
        att.pins.store(pins - 1, Ordering::Relaxed);
        if att.buf.is_dynamic() {
            att.buf.exporter().unpin(&locked, &att.device);
        }
        Ok(())
    }

    /// The importer's pins.
    pub fn pin_count(&self) -> usize {
        self.inner.pins.load(Ordering::Relaxed)
    }
}

impl<M: ImportMode> Drop for Attachment<M> {
    fn drop(&mut self) {
        let att = &self.inner;
        let buf = &att.buf;
        {
            let guard = buf.resv().lock_single();
            let Ok(locked) = buf.locked(&guard) else {
                return; // unreachable: the guard locks this buffer
            };
            let (cached, pinned_for_cache, mapped) = {
                let mut st = att.state.borrow_mut(&guard);
                st.detached = true;
                (
                    st.cached.take(),
                    std::mem::take(&mut st.pinned_for_cache),
                    // Usually nothing is left: then nothing is moved.
                    (!st.mapped.is_empty()).then(|| std::mem::take(&mut st.mapped)),
                )
            };
            att.has_cached.store(false, Ordering::Release);
            // Changed only under the lock: a load and a store (no read-modify-write).
            let pins = att.pins.load(Ordering::Relaxed);
            att.pins.store(0, Ordering::Relaxed);
            // Off the buffer's list before any exporter callback: a panic in one leaves no
            // detached attachment for `move_notify` to call.
            buf.unlist(att);
            let exporter = buf.exporter();
            // Kernel: dma_buf_detach() unmaps the cached table and unpins. Here every table
            // goes, the ones live `Mapping`s still hold too: their windows close with the
            // pin that kept the storage under them, so a late access faults instead of
            // reaching memory the buffer may have left, and nothing leaks.
            let mut live = 0usize;
            if let Some(table) = cached {
                // The attachment's own, unless a live mapping shares it.
                let table = Arc::try_unwrap(table).unwrap_or_else(|shared| {
                    live += 1;
                    shared.same_segments()
                });
                exporter.unmap(&locked, table);
            }
            // Every table left is a live mapping's or one dropped without unmap.
            let mut left = 0usize;
            for kept in mapped.into_iter().flat_map(Tables::into_kept) {
                left += 1;
                exporter.unmap(&locked, kept.into_table(&att.device));
            }
            let dropped = att.dropped.load(Ordering::Relaxed).min(left);
            live += left - dropped;
            if pinned_for_cache {
                exporter.unpin(&locked, &att.device);
            }
            if live > 0 {
                tracing::warn!(
                    device = att.device.name(),
                    count = live,
                    "detached under live mappings: unmapped, they fault from now on"
                );
            }
            if dropped > 0 {
                tracing::warn!(
                    device = att.device.name(),
                    count = dropped,
                    "mappings dropped without unmap, unmapped at detach"
                );
            }
            if pins > 0 {
                tracing::warn!(device = att.device.name(), pins, "detached while pinned");
                if buf.is_dynamic() {
                    for _ in 0..pins {
                        exporter.unpin(&locked, &att.device);
                    }
                }
            }
        }
        buf.exporter().detach(buf, &att.device);
    }
}

impl<M: ImportMode> std::fmt::Debug for Attachment<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("buf", &self.inner.buf)
            .field("device", &self.inner.device.name())
            .field("dynamic", &M::DYNAMIC)
            .finish()
    }
}
