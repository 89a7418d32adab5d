//! The fence table of a reservation object: immutable snapshots that readers walk without the
//! lock and without ever waiting (kernel: `struct dma_resv_list` under RCU).
//!
//! # Design
//! The writer (holding the reservation lock) keeps the entries in a plain list, [`Table`],
//! each entry a counted [`Fence`] and its [`Usage`]. Every change (an append, a replacement in
//! place, [`replace_context`](Table::replace_context), a larger table, a copy) is published
//! as a new snapshot: an array of words, the number of entries then each entry as a fence's
//! address with the usage in its two low bits (a [`RawFence`]), written whole into a buffer
//! nobody reads and then published with one release store of its address ([`Published`]). A
//! snapshot never changes while it is published or read, so a reader sees one set that the
//! object held at one moment: no torn entry, no mix of two states, no restart.
//!
//! A reader ([`Published::read`]) loads the address, announces it in its thread's reader
//! slot (`hazard.rs`), and walks. That costs one full fence and no read-modify-write, and the
//! reader never waits for a writer: it loads the address again only if a writer published in
//! between. It takes a counted handle of each fence it keeps, and leaves its slot before
//! running any code outside the crate (fence ops that poll, a caller's closure).
//!
//! Snapshots hold no references. A fence stays alive while a reader may still turn its
//! address into a handle: the writer's list holds one reference per entry, and a fence the
//! writer takes out (replaced, pruned, copied over) goes to a graveyard, where it stays until
//! no retired snapshot that a reader slot names shows it (the RCU way: freed once nobody can
//! read it). So a change touches no other fence's reference count, and a reader touches only
//! those of the fences it keeps.
//!
//! Buffers are recycled, [`POOL`] per capacity at first: the published one and two spares.
//! A change takes a spare; the buffer it replaces is retired, and becomes a spare again once
//! no reader slot names it ([`Table::reclaim`], which runs when no spare is left). Only
//! [`Table::try_regrow`] and [`Table::grow_pool_if_starved`] allocate, both from
//! [`reserve_fences`](super::ResvGuard::reserve_fences) (or a copy), so appending within a
//! reservation and replacing allocate nothing, as in the kernel. A writer that found every
//! spare still read had to wait for a walk to end; its next reservation adds a buffer, up to
//! [`MAX_POOL`], so that many readers preempted inside walks stop holding it up.
//!
//! # Memory
//! For capacity `c` (a word is 8 bytes): the writer's list, `16 c` bytes, and its contexts,
//! `8 c`; three buffers of `c + 1` words; graveyard room for `3 c` fences, `24 c` bytes; the
//! lists of spare and of retired buffers, 168 bytes. In all `72 c + 192` bytes beside the
//! object (480 for the first reservation's 4), in 8 allocations; each buffer a starved writer
//! adds costs `16 c + 56` bytes more, at most five of them. The kernel's list is `8 c` bytes
//! and a header. A removed fence outlives its removal by the walks that may still see it, and
//! at most until the writer next looks at the reader slots. Each thread that ever walked a
//! table keeps one 128-byte reader slot for the life of the process, handed on when it ends.
//!
//! # Differences from the kernel
//! * The kernel replaces an entry in place (a reader may see the old list with the new fence)
//!   and frees the old fence after an RCU grace period; here a replacement is a new snapshot,
//!   and the old fence waits in the graveyard until no reader slot names a snapshot showing
//!   it. A reader's result is always one state the object held.
//! * A writer that finds every spare buffer (or the graveyard's room) still read waits for
//!   one of those walks to end; that takes as many readers stopped inside walks of different
//!   snapshots as there are spares, and a walk runs no code outside the crate and never
//!   blocks. The kernel's writer frees through `call_rcu` and never waits for readers.
//! * Unlocked iteration copies one snapshot and never restarts on its own; the kernel's walk
//!   restarts when the list is replaced under it.

use super::Usage;
use super::hazard;
use crate::fence::{Fence, RawFence};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering, UnsafeCell, spin_hint};
use std::marker::PhantomData;
use std::ptr;

/// Buffers per capacity at first: the published one and two spares.
pub(crate) const POOL: usize = 3;

/// Buffers per capacity at most: a writer that had to wait for readers gets one more at each
/// reservation, up to this many.
pub(crate) const MAX_POOL: usize = 8;

/// One word of a snapshot: the number of entries, or an entry ([`RawFence::to_bits`]).
type Word = UnsafeCell<usize>;

/// A snapshot's storage: `capacity + 1` words, the number of entries then the entries.
struct Buffer {
    words: Box<[Word]>,
    /// Writer only: a reader slot named this buffer at the last [`Table::reclaim`].
    pinned: bool,
}

impl Buffer {
    /// A buffer for `capacity` entries, or `None` if the allocator refuses.
    fn try_new(capacity: usize) -> Option<Buffer> {
        let words = capacity.checked_add(1)?;
        let mut v = Vec::new();
        v.try_reserve_exact(words).ok()?;
        v.extend((0..words).map(|_| UnsafeCell::new(0)));
        Some(Buffer {
            words: v.into_boxed_slice(),
            pinned: false,
        })
    }

    fn capacity(&self) -> usize {
        self.words.len() - 1
    }

    /// What readers load: the address of the first word.
    fn first(&self) -> *mut Word {
        self.words.as_ptr().cast_mut()
    }

    fn addr(&self) -> usize {
        self.words.as_ptr().addr()
    }

    /// Writer only, while no reader can see the buffer (a spare): writes the number of
    /// entries and `live`.
    fn fill(&self, live: &[(Fence, Usage)]) {
        debug_assert!(live.len() <= self.capacity());
        let entries = live
            .iter()
            .map(|(f, u)| RawFence::new(f, *u as u8).to_bits());
        for (word, bits) in self
            .words
            .iter()
            .zip([live.len()].into_iter().chain(entries))
        {
            // SAFETY: the buffer is a spare: not published, and no reader slot named it when
            // it was last retired, so nobody reads it now (a reader that loaded its address
            // before fails its check, the address having been published over).
            #[allow(unsafe_code)]
            word.with_mut(|w| unsafe { *w = bits });
        }
    }

    /// Writer only: whether the entries show `fence`.
    fn shows(&self, fence: &Fence) -> bool {
        // SAFETY: only the writer writes words, and it is the caller; reading beside readers
        // is fine.
        #[allow(unsafe_code)]
        let read = |word: &Word| word.with(|w| unsafe { *w });
        let len = read(&self.words[0]);
        self.words[1..=len]
            .iter()
            .any(|w| RawFence::from_bits(read(w)).is(fence))
    }
}

/// The snapshot readers see (kernel: the RCU-protected `dma_resv.fences` pointer): the first
/// word of the published buffer, or null for no entries.
pub(crate) struct Published {
    head: AtomicPtr<Word>,
    /// The writer's capacity, for describing.
    capacity: AtomicUsize,
}

impl Published {
    /// No entries (allocates nothing).
    pub(crate) fn new() -> Self {
        Published {
            head: AtomicPtr::new(ptr::null_mut()),
            capacity: AtomicUsize::new(0),
        }
    }

    /// Calls `look` with the entries of the current snapshot, which no writer changes or
    /// frees until `look` returns. Never waits.
    ///
    /// `look` runs inside the reader's protection: it must not run code outside the crate
    /// (no [`Fence::is_signaled`], which may poll a driver; no caller's closure). It may
    /// take counted handles and read flags.
    #[inline]
    pub(crate) fn read<R>(&self, look: impl FnOnce(Entries<'_>) -> R) -> R {
        hazard::protect(&self.head, |first| {
            let (at, left) = if first.is_null() {
                (first, 0)
            } else {
                // SAFETY: a published buffer's first word, protected until `look` returns,
                // and written (with the rest) before it was published (release store, read
                // with acquire).
                #[allow(unsafe_code)]
                unsafe {
                    (first.add(1), (*first).with(|w| *w))
                }
            };
            look(Entries {
                at,
                left,
                _snapshot: PhantomData,
            })
        })
    }

    /// The capacity the writer had at its last change.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }
}

/// The entries of one snapshot, in table order, while it is protected.
#[derive(Clone)]
pub(crate) struct Entries<'a> {
    /// The next entry's word (when `left > 0`).
    at: *const Word,
    /// Entries not read yet.
    left: usize,
    _snapshot: PhantomData<&'a Word>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    #[inline]
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.left == 0 {
            return None;
        }
        // SAFETY: `at` is one of the `left` entry words that follow the count in a buffer
        // protected for 'a, written before it was published (release store, read with
        // acquire); the count is at most the buffer's capacity. Only the last step makes
        // `at` point one past the buffer, which is allowed.
        #[allow(unsafe_code)]
        let bits = unsafe {
            let bits = (*self.at).with(|w| *w);
            self.at = self.at.add(1);
            bits
        };
        self.left -= 1;
        Some(Entry {
            raw: RawFence::from_bits(bits),
            _snapshot: PhantomData,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Entries<'_> {}

/// One entry of a protected snapshot.
pub(crate) struct Entry<'a> {
    raw: RawFence,
    _snapshot: PhantomData<&'a Word>,
}

impl Entry<'_> {
    /// The entry's usage.
    pub(crate) fn usage(&self) -> Usage {
        Usage::from_raw(self.raw.tag())
    }

    /// Whether the fence has signalled, where no polling is needed to tell
    /// ([`Fence::is_signaled_unpolled`]).
    pub(crate) fn is_signaled_unpolled(&self) -> Option<bool> {
        // SAFETY: the snapshot is protected, so the writer keeps a counted handle to every
        // fence it shows (in its list or its graveyard) until the protection ends.
        #[allow(unsafe_code)]
        unsafe {
            self.raw.peek(Fence::is_signaled_unpolled)
        }
    }

    /// Whether the fence's signalled flag is set (no polling).
    pub(crate) fn is_signaled_flag(&self) -> bool {
        self.is_signaled_unpolled() == Some(true)
    }

    /// A counted handle to the fence.
    pub(crate) fn fence(&self) -> Fence {
        // SAFETY: as in `is_signaled_unpolled`.
        #[allow(unsafe_code)]
        unsafe {
            self.raw.to_fence()
        }
    }
}

/// What the writer did, for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Snapshots published.
    pub(crate) published: u64,
    /// Looks at the reader slots for buffers and fences to reuse or free.
    pub(crate) reclaims: u64,
    /// Of those, the ones that found what they needed still read and had to look again.
    pub(crate) waits: u64,
    /// Fences freed from the graveyard.
    pub(crate) buried: u64,
}

/// The writer's side of the table, under the reservation lock.
pub(crate) struct Table {
    /// The entries, in order, each with a counted handle.
    live: Vec<(Fence, Usage)>,
    /// Each entry's context, beside `live`: the writer's scans compare contexts without
    /// reading the fences' first cache line, which readers write (reference counts).
    contexts: Vec<u64>,
    /// Entries a snapshot holds: `live` never grows past it.
    capacity: usize,
    /// The published buffer (none for capacity 0).
    current: Option<Buffer>,
    /// Buffers of this capacity nobody reads.
    free: Vec<Buffer>,
    /// Buffers published before, which readers may still read.
    retired: Vec<Buffer>,
    /// Fences removed from `live` that a retired snapshot may still show.
    graveyard: Vec<Fence>,
    /// Buffers per capacity ([`POOL`] to [`MAX_POOL`]).
    pool: usize,
    /// The writer waited for readers since the pool last grew.
    starved: bool,
    stats: Stats,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    /// No entries, no capacity: allocates nothing.
    pub(crate) fn new() -> Self {
        Table {
            live: Vec::new(),
            contexts: Vec::new(),
            capacity: 0,
            current: None,
            free: Vec::new(),
            retired: Vec::new(),
            graveyard: Vec::new(),
            pool: POOL,
            starved: false,
            stats: Stats::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The entries, in order.
    pub(crate) fn entries(&self) -> &[(Fence, Usage)] {
        &self.live
    }

    /// What the writer did so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    /// The entry that `fence` added with `usage` replaces (kernel: the loop of
    /// `dma_resv_add_fence()`): the first that has signalled, or is of the same context, of
    /// the same usage or higher, and `fence` itself or earlier than it.
    pub(crate) fn replaceable(&self, fence: &Fence, usage: Usage) -> Option<usize> {
        let context = fence.context();
        self.live
            .iter()
            .zip(&self.contexts)
            .position(|((old, old_usage), &old_context)| {
                let same_or_later = old_context == context
                    && *old_usage >= usage
                    && fence.is_later_or_same(old).unwrap_or(false);
                same_or_later || old.is_signaled()
            })
    }

    /// Replaces entry `i` and publishes. Allocates nothing.
    pub(crate) fn replace(&mut self, published: &Published, i: usize, fence: &Fence, usage: Usage) {
        self.prepare(1);
        let (old, _) = std::mem::replace(&mut self.live[i], (fence.clone(), usage));
        self.contexts[i] = fence.context();
        self.graveyard.push(old);
        self.publish(published);
    }

    /// Appends an entry and publishes; the caller checked there is room. Allocates nothing.
    pub(crate) fn push(&mut self, published: &Published, fence: &Fence, usage: Usage) {
        assert!(
            self.live.len() < self.capacity,
            "no room in the fence table"
        );
        self.prepare(0);
        self.live.push((fence.clone(), usage));
        self.contexts.push(fence.context());
        self.publish(published);
    }

    /// Replaces every entry of `context` with `fence` at `usage` and publishes once if any
    /// was. Allocates nothing.
    pub(crate) fn replace_context(
        &mut self,
        published: &Published,
        context: u64,
        fence: &Fence,
        usage: Usage,
    ) {
        let n = self.contexts.iter().filter(|&&c| c == context).count();
        if n == 0 {
            return;
        }
        self.prepare(n);
        for ((f, u), c) in self.live.iter_mut().zip(&mut self.contexts) {
            if *c == context {
                self.graveyard.push(std::mem::replace(f, fence.clone()));
                *u = usage;
                *c = fence.context();
            }
        }
        self.publish(published);
    }

    /// A new set of entries with room for `capacity`, in new buffers, the old ones retired:
    /// `copy`'s entries (at most `capacity`), every old entry buried; or without `copy`, the
    /// old entries whose fence has not signalled, moved over, the others buried. The only
    /// step that allocates; `None`, with nothing changed, if the allocator refuses.
    pub(crate) fn try_regrow(
        &mut self,
        published: &Published,
        capacity: usize,
        copy: Option<Vec<(Fence, Usage)>>,
    ) -> Option<()> {
        let keep_old = copy.is_none();
        let mut live = copy.unwrap_or_default();
        debug_assert!(live.len() <= capacity && self.live.len() <= capacity);
        live.try_reserve_exact(capacity - live.len()).ok()?;
        let mut contexts = Vec::new();
        contexts.try_reserve_exact(capacity).ok()?;
        let buffers = if capacity == 0 { 0 } else { self.pool };
        let mut free = Vec::new();
        free.try_reserve_exact(buffers).ok()?;
        for _ in 0..buffers {
            free.push(Buffer::try_new(capacity)?);
        }
        let graveyard_room = self
            .live
            .len()
            .checked_add(self.pool.checked_mul(capacity)?)?;
        self.graveyard.try_reserve(graveyard_room).ok()?;
        self.retired.try_reserve(1 + self.pool).ok()?;

        // Nothing fails from here on.
        let old = std::mem::replace(&mut self.live, live);
        if keep_old {
            for (f, u) in old {
                if f.is_signaled() {
                    self.graveyard.push(f);
                } else {
                    self.live.push((f, u));
                }
            }
        } else {
            self.graveyard.extend(old.into_iter().map(|(f, _)| f));
        }
        contexts.extend(self.live.iter().map(|(f, _)| f.context()));
        self.contexts = contexts;
        self.capacity = capacity;
        self.free = free;
        published.capacity.store(capacity, Ordering::Relaxed);
        if capacity == 0 {
            published.head.store(ptr::null_mut(), Ordering::Release);
            if let Some(b) = self.current.take() {
                self.retired.push(b);
            }
        } else {
            self.publish(published);
        }
        Some(())
    }

    /// At a reservation (where allocating is allowed): one more buffer, if the writer had to
    /// wait for readers since the last one and the pool is below [`MAX_POOL`]. Nothing changes
    /// if the allocator refuses.
    pub(crate) fn grow_pool_if_starved(&mut self) {
        if !self.starved || self.pool >= MAX_POOL || self.capacity == 0 {
            return;
        }
        let grown = (|| {
            let buffer = Buffer::try_new(self.capacity)?;
            self.free.try_reserve(1).ok()?;
            self.retired.try_reserve(1).ok()?;
            self.graveyard.try_reserve(self.capacity).ok()?;
            self.free.push(buffer);
            Some(())
        })();
        if grown.is_some() {
            self.pool += 1;
            self.starved = false;
        }
    }

    /// Makes sure the next change can be published without reclaiming in between: a spare
    /// buffer, and graveyard room for the `removed` fences it takes out.
    fn prepare(&mut self, removed: usize) {
        let ready =
            |t: &Self| !t.free.is_empty() && t.graveyard.capacity() - t.graveyard.len() >= removed;
        if !ready(self) {
            self.reclaim_until(ready);
        }
    }

    /// Publishes `live` in a spare buffer ([`prepare`](Self::prepare) made sure of one) and
    /// retires the one it replaces.
    fn publish(&mut self, published: &Published) {
        let next = self.free.pop().expect("a spare buffer, prepared");
        next.fill(&self.live);
        // Release: the words are written before a reader that loads the address reads them.
        published.head.store(next.first(), Ordering::Release);
        self.stats.published += 1;
        if let Some(old) = self.current.replace(next) {
            debug_assert!(self.retired.len() < self.retired.capacity());
            self.retired.push(old);
        }
    }

    /// Reclaims until `done`, waiting for readers between rounds.
    fn reclaim_until(&mut self, done: impl Fn(&Self) -> bool) {
        let mut round = 0u32;
        loop {
            self.reclaim();
            if done(self) {
                return;
            }
            self.stats.waits += 1;
            self.starved = true;
            round = round.saturating_add(1);
            if round < 64 {
                spin_hint();
            } else {
                #[cfg(not(loom))]
                std::thread::yield_now();
                #[cfg(loom)]
                spin_hint();
            }
        }
    }

    /// Looks at the reader slots: retired buffers none names become spares (or are freed,
    /// if of another capacity), and graveyard fences that no retired buffer still named
    /// shows are dropped. (A fence in the graveyard that the published buffer shows is in
    /// `live` as well, which keeps it alive.)
    pub(crate) fn reclaim(&mut self) {
        self.stats.reclaims += 1;
        for b in &mut self.retired {
            b.pinned = false;
        }
        let retired = &mut self.retired;
        hazard::scan(|addr| {
            for b in retired.iter_mut() {
                if b.addr() == addr {
                    b.pinned = true;
                }
            }
        });
        let mut i = 0;
        while i < self.retired.len() {
            if self.retired[i].pinned {
                i += 1;
                continue;
            }
            let b = self.retired.swap_remove(i);
            if b.capacity() == self.capacity && self.free.len() < self.pool {
                self.free.push(b);
            }
        }
        let retired = &self.retired;
        let before = self.graveyard.len();
        if retired.is_empty() {
            self.graveyard.clear();
        } else {
            self.graveyard
                .retain(|f| retired.iter().any(|b| b.shows(f)));
        }
        self.stats.buried += (before - self.graveyard.len()) as u64;
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("retired", &self.retired.len())
            .field("graveyard", &self.graveyard.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::fence::{FenceContext, Signaller};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::time::{Duration, Instant};

    /// What a walk saw: each entry's context index (from the timeline name), seqno and usage.
    fn walk(published: &Published, contexts: &[u64]) -> Vec<(usize, u64, Usage)> {
        published.read(|entries| {
            entries
                .map(|e| {
                    let f = e.fence();
                    let i = contexts.iter().position(|&c| c == f.context());
                    (
                        i.expect("a fence of no known context"),
                        f.seqno(),
                        e.usage(),
                    )
                })
                .collect()
        })
    }

    /// Readers walk while a writer replaces entries round robin (index `j` always holds
    /// context `j`, so step `s` replaces index `s % n`), grows the table, copies it over
    /// itself, and adds buffers when it had to wait for readers. Every walk must be one
    /// published state: entry `j` of context `j` with that context's usage (no torn entry),
    /// and seqnos of the form `[q+1; k] ++ [q; n-k]` (the state after some whole step, never
    /// a mix), never older than the reader's last walk.
    /// A replaced fence's issuer is dropped at once, so only the graveyard keeps it for
    /// readers: freed early, its reads would be garbage.
    #[test]
    fn readers_never_see_a_state_that_was_not_published() {
        const N: usize = 8;
        let published = Arc::new(Published::new());
        let ctxs: Vec<FenceContext> = (0..N)
            .map(|i| FenceContext::new("stress", format!("e{i}")))
            .collect();
        let ids: Arc<Vec<u64>> = Arc::new(ctxs.iter().map(FenceContext::id).collect());
        let usage = |j: usize| Usage::ALL[j % 4];
        let mut table = Table::new();
        let mut issuers: Vec<Signaller> = Vec::new();
        let first: Vec<(Fence, Usage)> = ctxs
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let (s, f) = c.next_fence();
                issuers.push(s);
                (f, usage(j))
            })
            .collect();
        table.try_regrow(&published, N, Some(first)).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let walks = Arc::new(AtomicU64::new(0));
        let entries = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (published, ids, stop, walks, entries) = (
                    published.clone(),
                    ids.clone(),
                    stop.clone(),
                    walks.clone(),
                    entries.clone(),
                );
                std::thread::spawn(move || {
                    let mut last = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let seen = walk(&published, &ids);
                        assert_eq!(seen.len(), N, "{seen:?}");
                        for (j, (i, _, u)) in seen.iter().enumerate() {
                            assert_eq!((*i, *u), (j, Usage::ALL[j % 4]), "torn: {seen:?}");
                        }
                        let q = seen[N - 1].1;
                        let k = seen.iter().take_while(|e| e.1 == q + 1).count();
                        assert!(
                            seen[k..].iter().all(|e| e.1 == q),
                            "a mix of states: {seen:?}"
                        );
                        // Steps done for this state: (q - 1) rounds and k more.
                        let steps = (q - 1) * N as u64 + k as u64;
                        assert!(steps >= last, "went back from {last} to {steps}");
                        last = steps;
                        walks.fetch_add(1, Ordering::Relaxed);
                        entries.fetch_add(N as u64, Ordering::Relaxed);
                    }
                })
            })
            .collect();

        let start = Instant::now();
        let mut steps = 0u64;
        let (mut grows, mut copies) = (0u64, 0u64);
        while start.elapsed() < Duration::from_millis(1500) {
            let j = (steps % N as u64) as usize;
            let (s, f) = ctxs[j].next_fence();
            // What a submission's reservation does first.
            table.grow_pool_if_starved();
            table.replace(&published, j, &f, usage(j));
            drop(std::mem::replace(&mut issuers[j], s));
            steps += 1;
            if steps.is_multiple_of(4096) {
                if table.capacity() < 64 {
                    table
                        .try_regrow(&published, table.capacity() * 2, None)
                        .unwrap();
                    grows += 1;
                } else {
                    let copy = table.entries().to_vec();
                    table.try_regrow(&published, N, Some(copy)).unwrap();
                    copies += 1;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        let stats = table.stats();
        println!(
            "writer steps {steps} (grows {grows}, copies {copies}), reader walks {}, entries \
             checked {}, buffers per capacity {}; {stats:?}",
            walks.load(Ordering::Relaxed),
            entries.load(Ordering::Relaxed),
            table.pool,
        );
        assert!((POOL..=MAX_POOL).contains(&table.pool));
        assert!(walks.load(Ordering::Relaxed) > 0 && steps > 0);
        assert!(stats.published >= steps);
        assert!(
            stats.buried > 0,
            "replaced fences are freed as readers move on"
        );
        // Nothing left behind once the readers are gone: the next look frees it all.
        table.reclaim();
        assert_eq!(table.graveyard.len(), 0);
        assert!(table.retired.is_empty());
    }
}
