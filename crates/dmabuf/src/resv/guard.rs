//! The locked side of a reservation object: reserving, adding and replacing fences, locked
//! iteration, copying and describing (kernel: the `dma_resv_*` calls that assert the lock).

use super::{Resv, TableState, Usage};
use crate::error::{Error, Result};
use crate::fence::Fence;
use crate::fence::unwrap::leaves;
use crate::validate;
use dmabuf_ww::{InPlace, WwGuard};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;

/// Proof that a reservation object is locked, and the door to its writer operations.
/// Unlocks when dropped (kernel: `dma_resv_unlock`).
///
/// # Threads
/// A lock is held by one thread, and the guard is the proof of it that calls needing "the
/// reservation lock is held" take (mapping, pinning, vmap, and the exporter callbacks they
/// run). So the guard stays on the thread that locked: it is neither `Send` nor `Sync`, and
/// a `&ResvGuard` cannot reach another thread, not even in a scoped one:
///
/// ```compile_fail,E0277
/// use dmabuf::resv::Resv;
/// let resv = Resv::new();
/// let guard = resv.lock_single();
/// std::thread::scope(|s| {
///     s.spawn(|| guard.num_fences()); // error: `ResvGuard` cannot be shared between threads
/// });
/// ```
///
/// The object itself may be shared while it is locked:
///
/// ```
/// use dmabuf::resv::Resv;
/// let resv = Resv::new();
/// let guard = resv.lock_single();
/// std::thread::scope(|s| {
///     s.spawn(|| assert!(resv.is_locked()));
/// });
/// assert_eq!(guard.num_fences(), 0);
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct ResvGuard<'a> {
    resv: &'a Resv,
    guard: WwGuard<'a, TableState>,
    /// The signalling obligation started by publishing a pending fence (validator only).
    obligation: Option<validate::Section>,
    /// Not `Sync`: the guard proves that *this* thread holds the lock. (`WwGuard` is `Sync`
    /// when its data is, as `std`'s and parking_lot's guards are, since a shared guard only
    /// reads the data; the proof is this type's.)
    _one_thread: PhantomData<Cell<()>>,
}

impl<'a> ResvGuard<'a> {
    /// `guard`, of `resv`'s lock, as `resv`'s guard.
    ///
    /// # Panics
    /// If `guard` holds another object's lock: a guard names the object it locks, and data
    /// guarded by an object's lock ([`LockedBy`](super::locked_by::LockedBy)) trusts that name.
    pub(crate) fn new(resv: &'a Resv, guard: WwGuard<'a, TableState>) -> Self {
        assert!(
            std::ptr::eq(guard.mutex(), &resv.lock),
            "a reservation guard paired with another object's lock"
        );
        ResvGuard {
            resv,
            guard,
            obligation: None,
            _one_thread: PhantomData,
        }
    }

    /// The locked object.
    pub fn resv(&self) -> &'a Resv {
        self.resv
    }

    /// Unlocks now (same as dropping).
    pub fn unlock(self) {}

    /// Number of entries (signalled ones included).
    pub fn num_fences(&self) -> usize {
        self.guard.table.len()
    }

    /// Appends still promised by [`reserve_fences`](Self::reserve_fences).
    pub fn reserved(&self) -> usize {
        self.guard.reserved
    }

    /// Makes room for `n` more fences (kernel: `dma_resv_reserve_fences`): the only step that
    /// allocates. A no-op when there is room; otherwise the table grows to
    /// `max(len + n, 2 × capacity)` (the first: `max(4, n.next_power_of_two())`), leaving
    /// signalled fences behind.
    ///
    /// # Reclaim
    /// A reclaim point for the validator (an allocation that may evict buffers, and so wait
    /// on fences), also when the table has room: call it before the first pending fence is
    /// added under any guard of the thread, never in a fence signalling section (kernel: the
    /// table's `GFP_KERNEL` allocation, which lockdep reports inside a signalling section as
    /// `fs_reclaim` against `dma_fence_map`; it sees it only when the table grows).
    ///
    /// # Errors
    /// [`Error::NothingToReserve`] (`EINVAL`) for `n == 0`; [`Error::NoMemory`] (`ENOMEM`)
    /// when the larger table cannot be allocated (its size does not fit the address space,
    /// or the allocator refuses). On error nothing changes.
    #[doc(alias = "dma_resv_reserve_fences")]
    pub fn reserve_fences(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::NothingToReserve);
        }
        validate::might_reclaim();
        let table = &self.guard.table;
        let len = table.len();
        let needed = len.checked_add(n).ok_or(Error::NoMemory)?;
        if needed > table.capacity() {
            let capacity = if table.capacity() == 0 {
                n.checked_next_power_of_two().ok_or(Error::NoMemory)?.max(4)
            } else {
                needed.max(table.capacity().saturating_mul(2))
            };
            self.guard
                .table
                .try_regrow(&self.resv.fences, capacity, None)
                .ok_or(Error::NoMemory)?;
        }
        self.guard.table.grow_pool_if_starved();
        self.guard.reserved = self.guard.reserved.max(n);
        Ok(())
    }

    /// Adds `fence` with `usage` (kernel: `dma_resv_add_fence`). Cannot fail.
    ///
    /// The entry replaces, in place, one that has signalled, or one of the same context
    /// whose usage is the same or higher and which is `fence` itself or earlier than it
    /// ([`Fence::is_later_or_same`]: a distinct fence at the same seqno does not replace);
    /// otherwise it is appended, using a reserved slot. An array's or chain's leaves are
    /// added one by one.
    ///
    /// # Panics
    /// In debug builds, if an append finds no reserved slot (kernel: `BUG_ON`) — also after
    /// an unlock, since reservations do not survive one. Release builds grow the table
    /// instead and log a warning.
    pub fn add_fence(&mut self, fence: &Fence, usage: Usage) {
        if fence.is_container() {
            for leaf in leaves(fence) {
                self.add_leaf(&leaf, usage);
            }
        } else {
            self.add_leaf(fence, usage);
        }
    }

    fn add_leaf(&mut self, fence: &Fence, usage: Usage) {
        if self.obligation.is_none() && !fence.is_signaled_flag() {
            // The fence is visible to others now: until this guard drops, this thread must
            // not wait on fences, reclaim, or take locks held around fence waits.
            self.obligation = Some(validate::begin_signalling());
        }
        let table = &self.guard.table;
        if let Some(i) = table.replaceable(fence, usage) {
            self.guard.table.replace(&self.resv.fences, i, fence, usage);
            return;
        }
        if self.guard.reserved == 0 || table.len() == table.capacity() {
            if cfg!(debug_assertions) {
                panic!(
                    "dma_resv add_fence without a reserved slot: call reserve_fences under the \
                     same lock (reservations do not survive an unlock)"
                );
            }
            tracing::warn!(target: "dmabuf::resv", "add_fence without a reserved slot; growing");
            self.guard.reserved = 0;
            // Fails only if the allocator refuses one more slot, which aborts elsewhere too.
            self.reserve_fences(1)
                .expect("out of memory growing the fence table by one slot");
            return self.add_leaf(fence, usage);
        }
        self.guard.reserved -= 1;
        self.guard.table.push(&self.resv.fences, fence, usage);
    }

    /// Replaces every fence of `context` with `replacement` at `usage` (kernel:
    /// `dma_resv_replace_fences`), e.g. a preemption fence by a page-table-update fence.
    ///
    /// Any fence is accepted, as in the kernel, and stored as given: a container
    /// replacement stays one entry (its leaves might need more slots than were replaced, and
    /// replacing allocates nothing). Readers wait for it like any entry, and
    /// [`Resv::get_singleton`] looks through it.
    #[doc(alias = "dma_resv_replace_fences")]
    pub fn replace_fences(&mut self, context: u64, replacement: &Fence, usage: Usage) {
        self.guard
            .table
            .replace_context(&self.resv.fences, context, replacement, usage);
    }

    /// Every entry with usage ≤ `usage`, signalled ones included, with its usage (kernel:
    /// `dma_resv_for_each_fence`). The lock keeps the set still while the iterator lives.
    pub fn iter(&self, usage: Usage) -> LockedIter<'_> {
        LockedIter {
            entries: self.guard.table.entries().iter(),
            usage,
        }
    }

    /// Whether an entry with usage ≤ `usage` is still unsignalled: a look at the locked set,
    /// without taking a reference to any fence.
    pub(crate) fn has_unsignalled(&self, usage: Usage) -> bool {
        self.guard
            .table
            .entries()
            .iter()
            .any(|(f, u)| *u <= usage && !f.is_signaled())
    }

    /// Replaces this object's fences with `src`'s unsignalled ones, usages kept (kernel:
    /// `dma_resv_copy_fences`). `src` is read without its lock.
    ///
    /// Allocates a new table: a reclaim point, as [`reserve_fences`](Self::reserve_fences).
    pub fn copy_fences(&mut self, src: &Resv) {
        validate::might_reclaim();
        let fences = src.snapshot(Usage::Bookkeep);
        let capacity = fences.len();
        self.guard
            .table
            .try_regrow(&self.resv.fences, capacity, Some(fences))
            .expect("out of memory copying fences");
        self.guard.reserved = 0;
    }

    /// Writes the fences up to `Read` (bookkeeping ones stay hidden), one per line as
    /// `\t<usage> fence:<fence>` (kernel: `dma_resv_describe`).
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use dmabuf::resv::{Resv, Usage};
    /// let r = Resv::new();
    /// let (_s, f) = FenceContext::new("drv", "tl").next_fence();
    /// let mut g = r.lock_single();
    /// g.reserve_fences(1).unwrap();
    /// g.add_fence(&f, Usage::Write);
    /// assert!(g.describe().starts_with("\twrite fence:"));
    /// ```
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (f, u) in self.iter(Usage::Read) {
            out.push_str(&format!("\t{u} fence:{f}\n"));
        }
        out
    }
}

impl Drop for ResvGuard<'_> {
    fn drop(&mut self) {
        // Kernel: debug builds reset the reservation on unlock (`dma_resv_reset_max_fences`).
        if cfg!(debug_assertions) {
            self.guard.reserved = 0;
        }
    }
}

impl std::fmt::Debug for ResvGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResvGuard")
            .field("fences", &self.num_fences())
            .field("reserved", &self.reserved())
            .finish()
    }
}

/// A reservation guard as a [`Guards`](super::Guards) set lends it (from
/// [`iter_mut`](super::Guards::iter_mut), [`iter_sources_mut`](super::Guards::iter_sources_mut)
/// and [`get_mut`](super::Guards::get_mut)): the writer operations, and through `Deref`
/// everything a `&ResvGuard` offers, but never the guard value itself, so the set's guards
/// cannot be swapped or replaced behind their [`source`](super::Guards::source)s.
///
/// ```
/// use dmabuf::fence::FenceContext;
/// use dmabuf::resv::{Resv, Usage};
/// let (a, b) = (Resv::new(), Resv::new());
/// let objects = [&a, &b];
/// let (done, fence) = FenceContext::new("gpu", "ring").next_fence();
/// let ctx = Resv::acquire_ctx();
/// let mut guards = Resv::lock_all(&ctx, &objects)?;
/// for mut g in guards.iter_mut() {
///     g.reserve_fences(1)?;
/// }
/// for (i, mut g) in guards.iter_sources_mut() {
///     assert!(std::ptr::eq(g.resv(), objects[i]));
///     g.add_fence(&fence, if i == 0 { Usage::Write } else { Usage::Read });
/// }
/// drop(guards);
/// assert_eq!(b.get_fences(Usage::Read).len(), 1);
/// # drop(ctx);
/// # done.signal();
/// # Ok::<(), dmabuf::Error>(())
/// ```
///
/// Two lent guards cannot be swapped:
///
/// ```compile_fail,E0596
/// use dmabuf::resv::Resv;
/// let (a, b) = (Resv::new(), Resv::new());
/// let ctx = Resv::acquire_ctx();
/// let mut guards = Resv::lock_all(&ctx, &[&a, &b]).unwrap();
/// let mut it = guards.iter_mut();
/// let (mut first, mut second) = (it.next().unwrap(), it.next().unwrap());
/// std::mem::swap(&mut *first, &mut *second); // error: a lent guard reads as `&ResvGuard`
/// ```
pub struct ResvGuardMut<'g, 'a> {
    guard: &'g mut ResvGuard<'a>,
}

impl ResvGuardMut<'_, '_> {
    /// [`ResvGuard::reserve_fences`].
    ///
    /// # Errors
    /// As [`ResvGuard::reserve_fences`].
    pub fn reserve_fences(&mut self, n: usize) -> Result<()> {
        self.guard.reserve_fences(n)
    }

    /// [`ResvGuard::add_fence`].
    pub fn add_fence(&mut self, fence: &Fence, usage: Usage) {
        self.guard.add_fence(fence, usage);
    }

    /// [`ResvGuard::replace_fences`].
    pub fn replace_fences(&mut self, context: u64, replacement: &Fence, usage: Usage) {
        self.guard.replace_fences(context, replacement, usage);
    }

    /// [`ResvGuard::copy_fences`].
    pub fn copy_fences(&mut self, src: &Resv) {
        self.guard.copy_fences(src);
    }
}

impl<'a> Deref for ResvGuardMut<'_, 'a> {
    type Target = ResvGuard<'a>;

    fn deref(&self) -> &ResvGuard<'a> {
        self.guard
    }
}

impl std::fmt::Debug for ResvGuardMut<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.guard, f)
    }
}

/// A set of reservation guards lends each as a [`ResvGuardMut`].
impl<'a> InPlace for ResvGuard<'a> {
    type Mut<'s>
        = ResvGuardMut<'s, 'a>
    where
        Self: 's;

    fn in_place(&mut self) -> ResvGuardMut<'_, 'a> {
        ResvGuardMut { guard: self }
    }
}

/// Iterator returned by [`ResvGuard::iter`]: `(fence, usage)` pairs.
#[derive(Debug)]
pub struct LockedIter<'g> {
    entries: std::slice::Iter<'g, (Fence, Usage)>,
    usage: Usage,
}

impl Iterator for LockedIter<'_> {
    type Item = (Fence, Usage);

    fn next(&mut self) -> Option<(Fence, Usage)> {
        let usage = self.usage;
        self.entries
            .find(|(_, u)| *u <= usage)
            .map(|(f, u)| (f.clone(), *u))
    }
}
