//! Seed 002: a driver's page lock that nests the wrong way round the reservation lock.
//!
//! # The problem
//! A graphics driver guards each buffer object's backing pages with a lock of its own (i915
//! called it `obj->mm.lock`). Its long-standing paths pin those pages while they already hold
//! the object's reservation lock: execbuf locks every object of a job, then pins each one's
//! pages. That records the order *reservation lock → page lock*.
//!
//! When the dma-buf layer started requiring the reservation lock for mapping an attachment,
//! the driver's importer code got into trouble. An imported object's pages *are* a mapping of
//! the dma-buf, so the importer's "get pages" maps the attachment — and it runs with the page
//! lock held, so it now takes the reservation lock inside the page lock: *page lock →
//! reservation lock*. Two threads running the two paths on the same object can each hold one
//! lock and wait for the other. Nobody needs to hit the deadlock for the validator to see it:
//! the order is recorded per lock *class*, so it is enough that both orders ever ran, on any
//! objects, in any thread.
//!
//! # The fix
//! The one the seed proposes: the page lock always nests inside the reservation lock. Every
//! path that gets pages takes the object's reservation lock first (an imported object shares
//! its dma-buf's reservation object, so that is the lock mapping needs) and maps with that
//! guard. Here the rule is put in the type: `get_pages` takes the reservation guard as proof,
//! so a caller cannot reach it holding only the page lock.
//!
//! # What runs
//! Both drivers pin a native object (reservation lock, then page lock), then get the pages of
//! an object imported from a camera's buffer. The broken driver takes the page lock first and
//! the validator reports the circular dependency; the fixed driver takes the reservation lock
//! first and runs clean. The two drivers use different page-lock classes, so the order the
//! broken one recorded does not count against the fixed one.
//!
//! Run: `cargo run -p dmabuf --features lockdep --example seed_002_driver_lock_inversion`.
//! The same code is checked by `tests/seed_002_driver_lock_inversion.rs`.

use dmabuf::buf::exporters::SystemHeap;
use dmabuf::buf::{Attachment, Device, DeviceCaps, Direction, DmaBuf, Mapping};
use dmabuf::lockdep::{LockClass, Mutex, Report, capture};
use dmabuf::resv::{Resv, ResvGuard};
use std::sync::Arc;

/// The broken driver's page-lock class.
pub static BROKEN_MM_LOCK: LockClass = LockClass::new("seed_002.broken.obj_mm_lock");
/// The fixed driver's page-lock class.
pub static FIXED_MM_LOCK: LockClass = LockClass::new("seed_002.fixed.obj_mm_lock");

/// A driver's buffer object (kernel: i915's `drm_i915_gem_object`).
pub struct GemObject {
    /// The object's reservation object; an imported object shares its dma-buf's.
    resv: Arc<Resv>,
    /// The backing pages and their pin count (kernel: `obj->mm`, under `obj->mm.lock`).
    mm: Mutex<Pages>,
    /// Where the pages come from.
    backing: Backing,
}

/// Where an object's pages come from.
enum Backing {
    /// The driver allocates them itself (kernel: shmem objects).
    Native,
    /// Another driver's dma-buf, attached as a static importer (kernel: i915's dma-buf
    /// objects, whose `get_pages` maps the attachment).
    Imported(Attachment),
}

/// The state `obj->mm.lock` protects.
#[derive(Default)]
struct Pages {
    /// How many users need the pages to stay.
    pin_count: usize,
    /// A native object's pages.
    native: Option<Vec<u8>>,
    /// An imported object's pages: the attachment's mapping.
    mapped: Option<Mapping>,
}

impl GemObject {
    /// A native object of `size` bytes whose page lock is of `mm_class`.
    pub fn native(mm_class: &'static LockClass, size: usize) -> Self {
        GemObject {
            resv: Arc::new(Resv::new()),
            mm: Mutex::new(
                mm_class,
                Pages {
                    native: Some(Vec::with_capacity(size)),
                    ..Pages::default()
                },
            ),
            backing: Backing::Native,
        }
    }

    /// An object wrapping `buf`, attached for `gpu` (kernel: `i915_gem_prime_import()`).
    /// Attaching is done here, from the import path, holding no lock.
    ///
    /// # Errors
    /// The attach's.
    pub fn import(
        mm_class: &'static LockClass,
        buf: &DmaBuf,
        gpu: &Device,
    ) -> dmabuf::Result<Self> {
        Ok(GemObject {
            resv: buf.resv_arc().clone(),
            mm: Mutex::new(mm_class, Pages::default()),
            backing: Backing::Imported(buf.attach(gpu)?),
        })
    }

    /// The pages' pin count.
    pub fn pin_count(&self) -> usize {
        self.mm.lock().pin_count
    }

    /// Whether the pages are there (for an imported object: mapped).
    pub fn has_pages(&self) -> bool {
        let pages = self.mm.lock();
        pages.native.is_some() || pages.mapped.is_some()
    }
}

/// Pins `obj`'s pages, getting them first if needed. The page lock nests inside the
/// reservation lock: `guard` must lock `obj`'s reservation object, and proves it is held.
///
/// # Errors
/// Mapping an imported object's attachment can fail ([`dmabuf::Error::WrongLock`] for a
/// guard of another object).
pub fn get_pages(obj: &GemObject, guard: &ResvGuard<'_>) -> dmabuf::Result<()> {
    let mut pages = obj.mm.lock();
    if let Backing::Imported(att) = &obj.backing
        && pages.mapped.is_none()
    {
        pages.mapped = Some(att.map(guard, Direction::Bidirectional)?);
    }
    pages.pin_count += 1;
    Ok(())
}

/// The broken driver's `get_pages` for imported objects (kernel: i915's
/// `i915_gem_object_get_pages_dmabuf()` under `obj->mm.lock`, after mapping started to need
/// the reservation lock): page lock first, then the reservation lock to map.
///
/// # Errors
/// The mapping's.
pub fn get_pages_page_lock_first(obj: &GemObject) -> dmabuf::Result<()> {
    let mut pages = obj.mm.lock();
    if let Backing::Imported(att) = &obj.backing
        && pages.mapped.is_none()
    {
        // Mapping needs the dma-buf's reservation lock, taken here inside the page lock.
        let guard = att.buf().resv().lock_single();
        pages.mapped = Some(att.map(&guard, Direction::Bidirectional)?);
    }
    pages.pin_count += 1;
    Ok(())
}

/// Unpins `obj`'s pages, unmapping an imported object's attachment with the last pin. Same
/// nesting as [`get_pages`].
///
/// # Errors
/// [`dmabuf::Error::WrongLock`] for a guard of another object.
pub fn put_pages(obj: &GemObject, guard: &ResvGuard<'_>) -> dmabuf::Result<()> {
    let mut pages = obj.mm.lock();
    pages.pin_count = pages.pin_count.saturating_sub(1);
    if pages.pin_count == 0
        && let Some(mapping) = pages.mapped.take()
    {
        mapping.unmap(guard).map_err(|rejected| rejected.error)?;
    }
    Ok(())
}

/// What the execbuf path does with an object it binds: lock its reservation object, then pin
/// its pages (the order every driver path already used).
///
/// # Errors
/// As [`get_pages`].
pub fn execbuf_pin(obj: &GemObject) -> dmabuf::Result<()> {
    let guard = obj.resv.lock_single();
    get_pages(obj, &guard)
}

/// Unpins what [`execbuf_pin`] pinned.
///
/// # Errors
/// As [`put_pages`].
pub fn execbuf_unpin(obj: &GemObject) -> dmabuf::Result<()> {
    let guard = obj.resv.lock_single();
    put_pages(obj, &guard)
}

/// The two objects of the story: a native one and one imported from a camera's buffer.
fn objects(mm_class: &'static LockClass) -> (GemObject, GemObject) {
    let camera_frame = SystemHeap::new().alloc(64 * 1024).expect("camera frame");
    let gpu = Device::new("gpu", DeviceCaps::NONE);
    let native = GemObject::native(mm_class, 64 * 1024);
    let imported = GemObject::import(mm_class, &camera_frame, &gpu).expect("import");
    (native, imported)
}

/// The broken driver: pins a native object (reservation lock → page lock), then gets an
/// imported object's pages with the page lock taken first (page lock → reservation lock).
/// Returns what the validator reported, and whether the pages ended up there anyway.
pub fn broken() -> (Vec<Report>, bool) {
    let (native, imported) = objects(&BROKEN_MM_LOCK);
    let (mapped, reports) = capture(|| {
        execbuf_pin(&native).expect("pin native");
        // A page fault on the imported object: the driver wants its pages now.
        get_pages_page_lock_first(&imported).expect("get pages");
        let mapped = imported.has_pages();
        execbuf_unpin(&imported).expect("unpin imported");
        execbuf_unpin(&native).expect("unpin native");
        mapped
    });
    (reports, mapped)
}

/// The fixed driver: the same two paths, both taking the reservation lock first.
pub fn fixed() -> (Vec<Report>, bool) {
    let (native, imported) = objects(&FIXED_MM_LOCK);
    let (mapped, reports) = capture(|| {
        execbuf_pin(&native).expect("pin native");
        // The page fault path now locks the object's reservation object first, like execbuf.
        execbuf_pin(&imported).expect("get pages");
        let mapped = imported.has_pages() && imported.pin_count() == 1;
        execbuf_unpin(&imported).expect("unpin imported");
        execbuf_unpin(&native).expect("unpin native");
        mapped && !imported.has_pages()
    });
    (reports, mapped)
}

fn main() {
    println!("== seed 002, broken: the page lock taken outside the reservation lock");
    println!("execbuf pins a native object:      reservation lock -> page lock");
    println!("a fault maps an imported object:   page lock -> reservation lock");
    let (reports, mapped) = broken();
    println!(
        "the pages were mapped ({mapped}); no thread deadlocked, but the validator reports {}:\n",
        reports.len()
    );
    for r in &reports {
        println!("{r}");
    }

    println!("== seed 002, fixed: the page lock always nests inside the reservation lock");
    let (reports, ok) = fixed();
    println!(
        "both paths lock the reservation object first; pages mapped and released: {ok}; reports: {}",
        reports.len()
    );
    for r in &reports {
        println!("{r}");
    }
}
