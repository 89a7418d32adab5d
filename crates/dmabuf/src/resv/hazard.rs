//! Reader slots: how a reader that walks a snapshot without the lock tells the writer which
//! snapshot it is reading, so the writer reuses or frees only snapshots nobody reads (hazard
//! pointers; kernel: the RCU read-side critical section around a `dma_resv_list` walk).
//!
//! Every thread that reads gets a slot, one cache line of its own, from a process-wide list
//! that only grows (a thread that ends hands its slot on to the next thread that needs one).
//! A reader ([`protect`]) writes the snapshot's address into its slot and, after a full
//! barrier, loads the published pointer again: if it is still the same, the writer cannot have
//! missed the slot, and the reader walks. Otherwise it tries the pointer it just loaded,
//! which happens only when a writer published in between: the reader never waits for a
//! writer. The writer ([`scan`]), after publishing and a full fence of its own, reads every
//! slot; a snapshot no slot names is read by nobody and never will be again.
//!
//! Cost: a reader makes one atomic exchange on its own slot (the store and the full barrier
//! in one instruction on x86) and touches nothing else but what it reads; the writer reads
//! every slot when it looks for a buffer to reuse (one cache line per thread that ever read;
//! the table does so only when it has no spare buffer left).

use crate::sync::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, atomic_fence, store_then_load};
use std::ptr;

/// One thread's slot, alone on its cache lines (a neighbour's writes do not move it).
#[repr(align(128))]
struct Slot {
    /// The address of the snapshot being read, 0 when none.
    reading: AtomicUsize,
    /// Whether a thread owns the slot.
    taken: AtomicBool,
    /// The slot added before this one (set once, before the slot is linked in).
    next: AtomicPtr<Slot>,
}

#[cfg(not(loom))]
static HEAD: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());

#[cfg(not(loom))]
fn head() -> &'static AtomicPtr<Slot> {
    &HEAD
}

#[cfg(loom)]
loom::lazy_static! {
    static ref HEAD: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());
}

#[cfg(loom)]
fn head() -> &'static AtomicPtr<Slot> {
    &HEAD
}

/// The slot after `p` in the list, or the first for `p == head().load()`.
fn slot_at(p: *mut Slot) -> Option<&'static Slot> {
    // SAFETY: every non-null pointer in the list comes from `Box::leak` in `claim`, and slots
    // are never freed, so it is valid for reads for the rest of the program.
    #[allow(unsafe_code)]
    unsafe {
        p.as_ref()
    }
}

/// Takes a free slot, or adds one to the list. Lock-free: a new slot is linked with one
/// compare-and-swap that fails only when another thread linked one first.
fn claim() -> &'static Slot {
    let mut p = head().load(Ordering::Acquire);
    while let Some(slot) = slot_at(p) {
        if !slot.taken.load(Ordering::Relaxed)
            && slot
                .taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return slot;
        }
        p = slot.next.load(Ordering::Acquire);
    }
    let slot: &'static Slot = Box::leak(Box::new(Slot {
        reading: AtomicUsize::new(0),
        taken: AtomicBool::new(true),
        next: AtomicPtr::new(ptr::null_mut()),
    }));
    let new = ptr::from_ref(slot).cast_mut();
    let mut first = head().load(Ordering::Relaxed);
    loop {
        slot.next.store(first, Ordering::Relaxed);
        // SeqCst, not only Release: a writer's `scan` (a SeqCst fence, then this head) must
        // not miss a slot whose reader's SeqCst check load still read the old pointer.
        match head().compare_exchange_weak(first, new, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => return slot,
            Err(now) => first = now,
        }
    }
}

/// Gives a slot back for another thread to take.
fn release(slot: &Slot) {
    slot.reading.store(0, Ordering::Release);
    slot.taken.store(false, Ordering::Release);
}

/// A thread's own slot, given back when the thread ends.
struct Local(&'static Slot);

impl Drop for Local {
    fn drop(&mut self) {
        release(self.0);
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static LOCAL: Local = Local(claim());
}

#[cfg(loom)]
loom::thread_local! {
    static LOCAL: Local = Local(claim());
}

/// Clears the slot when the read ends, also when it unwinds.
struct Reading<'a>(&'a Slot);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        // Release: everything the reader read happens before a writer that sees the slot
        // cleared reuses what it read.
        self.0.reading.store(0, Ordering::Release);
    }
}

/// A slot claimed for one call, given back when the call ends, also when it unwinds.
struct Claimed(&'static Slot);

impl Drop for Claimed {
    fn drop(&mut self) {
        release(self.0);
    }
}

/// Calls `read` with the value of `src`, which the writer will neither free nor reuse until
/// `read` returns (a null pointer is passed as it is). `read` must not run code outside this
/// crate that could itself read a snapshot.
///
/// Never waits: it loads `src` again only when a writer stored a new value since the last
/// load. A nested call (from `read`) or a call from a thread-local destructor uses a slot of
/// its own for the time of the call.
#[inline]
pub(crate) fn protect<T, R>(src: &AtomicPtr<T>, read: impl FnOnce(*const T) -> R) -> R {
    match LOCAL.try_with(|local| local.0) {
        Ok(slot) if slot.reading.load(Ordering::Relaxed) == 0 => protect_in(slot, src, read),
        _ => {
            let slot = Claimed(claim());
            protect_in(slot.0, src, read)
        }
    }
}

#[inline]
fn protect_in<T, R>(slot: &Slot, src: &AtomicPtr<T>, read: impl FnOnce(*const T) -> R) -> R {
    let mut p = src.load(Ordering::Acquire);
    loop {
        if p.is_null() {
            // Nothing to keep: a slot left from an earlier round names nothing now.
            slot.reading.store(0, Ordering::Relaxed);
            return read(p);
        }
        // The slot's store is ordered before the load of `src`: a writer's `scan` either sees
        // the slot, or its fence comes first, and then its publication (before that fence)
        // is what the load sees. The store is a release: a writer that sees this value has
        // also seen the end of the previous walk (the slot cleared before it), so it may
        // reuse what that walk read.
        let now = store_then_load(&slot.reading, p.addr(), src);
        let same = now == p;
        // The pointer just loaded is the one used (the same address, maybe a new value at it).
        p = now;
        if same {
            break;
        }
    }
    let _reading = Reading(slot);
    read(p)
}

/// Writer side: calls `seen` with the address of every snapshot being read now. Once a pointer
/// that [`protect`] readers load has been stored over (before this call, by any thread), a
/// reader still reading its old value is seen; readers that start later read the newer one.
pub(crate) fn scan(mut seen: impl FnMut(usize)) {
    // Pairs with the barrier in `protect_in`.
    atomic_fence(Ordering::SeqCst);
    let mut p = head().load(Ordering::Acquire);
    while let Some(slot) = slot_at(p) {
        let addr = slot.reading.load(Ordering::Acquire);
        if addr != 0 {
            seen(addr);
        }
        p = slot.next.load(Ordering::Acquire);
    }
}
