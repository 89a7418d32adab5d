//! The guards of one [`lock_all`](crate::AcquireCtx::lock_all), in the order they were
//! locked, released newest first (kernel: `drm_exec`'s object array,
//! `drm_exec_for_each_locked_object` and the reverse walk of `drm_exec_unlock_all`).
//!
//! A contended `lock_all` takes its set in address order, the contended mutex first after a
//! back-off. Keeping the guards in that order costs nothing while the locks are held (each
//! guard is pushed as it is taken), and dropping the set unlocks in reverse of it: a
//! transaction waiting for one of these mutexes then finds the later ones it needs already
//! free when it gets that one. Measured in `BENCHMARKS.md`: under heavy contention wait-die
//! gains 10–25 % over handing the guards back in the caller's order (and unlocking in it),
//! wound-wait is unchanged; keeping the caller's order but unlocking newest first was worse
//! than either. [`Guards::source`] says which of the caller's objects a guard belongs to.
//!
//! # Rules
//! * A set never hands out `&mut` to one of its guards: two of them could be swapped (or one
//!   replaced by a guard from elsewhere) behind the sources' back. Mutable access goes
//!   through [`InPlace`], which lends what a guard protects but not the guard value.

use crate::mutex::WwGuard;
use std::fmt;
use std::iter::FusedIterator;
use std::ops::{Deref, Index};
use std::slice::SliceIndex;

/// A guard that a [`Guards`] set lends out mutably: through a view that reaches what the
/// guard protects but not the guard value itself, so nothing can swap, replace or take a
/// guard out of the set, and each [`source`](Guards::source) stays true.
///
/// A [`WwGuard`] lends `&mut` to its data. A library that wraps guards (as `dmabuf`'s
/// reservation guards) lends a view type of its own. An implementation whose view handed
/// out `&mut Self` would give up the set's promise for its guards.
pub trait InPlace {
    /// The mutable view of one guard in a set.
    type Mut<'s>
    where
        Self: 's;

    /// This guard's view.
    fn in_place(&mut self) -> Self::Mut<'_>;
}

impl<T: ?Sized> InPlace for WwGuard<'_, T> {
    type Mut<'s>
        = &'s mut T
    where
        Self: 's;

    fn in_place(&mut self) -> &mut T {
        self
    }
}

/// Guards in lock order that unlock newest first when the set is dropped.
///
/// Returned by [`AcquireCtx::lock_all`](crate::AcquireCtx::lock_all) (with
/// [`WwGuard`]s) and by libraries wrapping it (the reservation object's guards in
/// `dmabuf`). It dereferences to a read-only slice in lock order and indexes read-only;
/// [`iter_mut`](Self::iter_mut), [`iter_sources_mut`](Self::iter_sources_mut) and
/// [`get_mut`](Self::get_mut) lend each guard's [`InPlace`] view (for a [`WwGuard`], `&mut`
/// to its data); [`source`](Self::source) and [`iter_sources`](Self::iter_sources) map each
/// guard back to the caller's list.
///
/// ```
/// use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
/// static C: WwClass = WwClass::wound_wait("doc.guards");
/// let (a, b) = (WwMutex::new(&C, 1), WwMutex::new(&C, 2));
/// let ctx = AcquireCtx::new(&C);
/// let mut guards = ctx.lock_all(&[&b, &a, &b])?;
/// assert_eq!(guards.len(), 2); // b is listed twice, locked once
/// for (i, value) in guards.iter_sources_mut() {
///     *value += 10 * i as i32; // `i`: where the object first appears in the list
/// }
/// drop(guards); // unlocks a and b, newest first
/// drop(ctx);
/// assert_eq!(*a.lock_plain(), 11);
/// assert_eq!(*b.lock_plain(), 2);
/// # Ok::<(), dmabuf_ww::WwError>(())
/// ```
///
/// The guards cannot be reordered, so each one's source stays true: the set is a read-only
/// slice, and mutable access reaches the data, never a guard to swap:
///
/// ```compile_fail,E0308
/// use dmabuf_ww::{AcquireCtx, WwClass, WwGuard, WwMutex};
/// static C: WwClass = WwClass::wound_wait("doc.guards.swap");
/// let (a, b) = (WwMutex::new(&C, 1), WwMutex::new(&C, 2));
/// let ctx = AcquireCtx::new(&C);
/// let mut guards = ctx.lock_all(&[&a, &b]).unwrap();
/// let mut it = guards.iter_mut();
/// let first: &mut WwGuard<'_, i32> = it.next().unwrap(); // error: the item is `&mut i32`
/// let second: &mut WwGuard<'_, i32> = it.next().unwrap();
/// std::mem::swap(first, second);
/// ```
///
/// nor one guard for another set's:
///
/// ```compile_fail,E0596
/// use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
/// static C: WwClass = WwClass::wound_wait("doc.guards.swap_sets");
/// let (a, b) = (WwMutex::new(&C, 1), WwMutex::new(&C, 2));
/// let (ctx, other) = (AcquireCtx::new(&C), AcquireCtx::new(&C));
/// let mut guards = ctx.lock_all(&[&a]).unwrap();
/// let mut others = other.lock_all(&[&b]).unwrap();
/// std::mem::swap(&mut guards[0], &mut others[0]); // error: the set indexes read-only
/// ```
pub struct Guards<G> {
    /// In lock order.
    locked: Vec<G>,
    /// For each guard, the position in the caller's list of the object it belongs to.
    sources: Sources,
}

/// Where each guard of a set came from: positions in the caller's list, in lock order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sources {
    /// Guard `j` is of the caller's object `j` (a set taken in the caller's order, with no
    /// repeats).
    Identity,
    /// Up to [`INLINE`] positions below 256, without an allocation.
    Inline { len: u8, at: [u8; INLINE] },
    /// Any positions.
    Listed(Vec<u32>),
}

/// Positions [`Sources`] holds inline.
pub(crate) const INLINE: usize = 32;

impl Sources {
    /// No positions yet, room for `n` below `below` (inline when they fit).
    pub(crate) fn with_capacity(n: usize, below: usize) -> Self {
        if n <= INLINE && below <= 256 {
            Sources::Inline {
                len: 0,
                at: [0; INLINE],
            }
        } else {
            Sources::Listed(Vec::with_capacity(n))
        }
    }

    /// `first` (if any), then `rest` without `first`: the sources of a set taken in that
    /// order, `n` in all at most, each below `below`. One tight loop when they fit inline
    /// (`lock_all` writes them before every attempt; the time adds to each transaction).
    pub(crate) fn in_order(
        first: Option<usize>,
        rest: impl Iterator<Item = usize>,
        n: usize,
        below: usize,
    ) -> Self {
        if n <= INLINE && below <= 256 {
            let (mut at, mut k) = ([0u8; INLINE], 0);
            if let Some(f) = first {
                at[0] = f as u8; // below 256
                k = 1;
            }
            // More than `n` (a `first` that `rest` does not repeat) spill into a list.
            let mut spill: Vec<u32> = Vec::new();
            for i in rest.filter(|&i| Some(i) != first) {
                if k < INLINE {
                    at[k] = i as u8;
                    k += 1;
                } else {
                    spill.push(i as u32);
                }
            }
            if spill.is_empty() {
                return Sources::Inline { len: k as u8, at }; // at most INLINE
            }
            let mut v: Vec<u32> = at.iter().map(|&p| u32::from(p)).collect();
            v.extend(spill);
            return Sources::Listed(v);
        }
        let mut v: Vec<u32> = Vec::with_capacity(n);
        v.extend(first.map(|f| f as u32));
        v.extend(rest.filter(|&i| Some(i) != first).map(|i| i as u32));
        Sources::Listed(v)
    }

    /// Appends position `i`.
    #[inline]
    pub(crate) fn push(&mut self, i: usize) {
        match self {
            Sources::Identity => {
                // Only `with_capacity` and `in_order` make sources that grow.
                *self = Sources::Listed(vec![i as u32]);
            }
            Sources::Inline { len, at } if usize::from(*len) < INLINE && i < 256 => {
                at[usize::from(*len)] = i as u8; // checked above: below 256
                *len += 1;
            }
            Sources::Inline { len, at } => {
                let mut v: Vec<u32> = at[..usize::from(*len)].iter().map(|&p| p.into()).collect();
                v.push(i as u32);
                *self = Sources::Listed(v);
            }
            Sources::Listed(v) => v.push(i as u32),
        }
    }

    /// The `j`-th position.
    fn get(&self, j: usize) -> Option<usize> {
        match self {
            Sources::Identity => Some(j),
            Sources::Inline { len, at } => at[..usize::from(*len)].get(j).map(|&p| p.into()),
            Sources::Listed(v) => v.get(j).map(|&p| p as usize),
        }
    }

    /// The first `len` positions without those in `gone`.
    pub(crate) fn without(&self, gone: &[usize], len: usize) -> Self {
        let rest = (0..len)
            .filter_map(|j| self.get(j))
            .filter(|p| !gone.contains(p))
            .map(|p| p as u32)
            .collect();
        Sources::Listed(rest)
    }
}

impl<G> Guards<G> {
    /// A set from guards in lock order and the caller's positions of their objects.
    pub(crate) fn new(locked: Vec<G>, sources: Sources) -> Self {
        Guards { locked, sources }
    }

    /// The position in the caller's list (first appearance) of the object whose guard is
    /// `self[j]`.
    ///
    /// # Panics
    /// If `j` is out of bounds.
    pub fn source(&self, j: usize) -> usize {
        assert!(j < self.locked.len(), "guard {j} of {}", self.locked.len());
        self.sources.get(j).expect("a source per guard")
    }

    /// Each guard's [`InPlace`] view, in lock order (for a [`WwGuard`], `&mut` to its data):
    /// the set itself is only read as a slice, and no guard is lent as `&mut`, so nothing
    /// reorders the guards behind their sources' back.
    pub fn iter_mut(&mut self) -> IterMut<'_, G>
    where
        G: InPlace,
    {
        IterMut {
            inner: self.locked.iter_mut(),
        }
    }

    /// Guard `j`'s [`InPlace`] view, or `None` if `j` is out of bounds (what `IndexMut`
    /// would be, were it allowed to lend a view).
    pub fn get_mut(&mut self, j: usize) -> Option<G::Mut<'_>>
    where
        G: InPlace,
    {
        self.locked.get_mut(j).map(G::in_place)
    }

    /// The guards in lock order, each with [`source`](Self::source).
    pub fn iter_sources(&self) -> impl ExactSizeIterator<Item = (usize, &G)> {
        self.locked
            .iter()
            .enumerate()
            .map(|(j, g)| (self.sources.get(j).expect("a source per guard"), g))
    }

    /// Each guard's [`InPlace`] view in lock order, with its [`source`](Self::source).
    pub fn iter_sources_mut(&mut self) -> impl ExactSizeIterator<Item = (usize, G::Mut<'_>)>
    where
        G: InPlace,
    {
        let sources = &self.sources;
        self.locked
            .iter_mut()
            .enumerate()
            .map(move |(j, g)| (sources.get(j).expect("a source per guard"), g.in_place()))
    }

    /// Each guard turned into another, with its [`source`](Self::source); the order is
    /// kept (how a library wraps the guards of its objects).
    pub fn map<H>(mut self, mut f: impl FnMut(usize, G) -> H) -> Guards<H> {
        let sources = std::mem::replace(&mut self.sources, Sources::Listed(Vec::new()));
        let locked = std::mem::take(&mut self.locked)
            .into_iter()
            .enumerate()
            .map(|(j, g)| f(sources.get(j).expect("a source per guard"), g))
            .collect();
        Guards { locked, sources }
    }

    /// The guards as a vector in lock order; dropping it unlocks front to back.
    pub fn into_vec(mut self) -> Vec<G> {
        std::mem::take(&mut self.locked)
    }
}

impl<G> Drop for Guards<G> {
    fn drop(&mut self) {
        // Newest first.
        while self.locked.pop().is_some() {}
    }
}

impl<G> Deref for Guards<G> {
    type Target = [G];

    fn deref(&self) -> &[G] {
        &self.locked
    }
}

// No `DerefMut`: a mutable slice could reorder the guards behind their sources' back.

impl<G, I: SliceIndex<[G]>> Index<I> for Guards<G> {
    type Output = I::Output;

    fn index(&self, j: I) -> &I::Output {
        &self.locked[j]
    }
}

// No `IndexMut`: `&mut` to one guard is enough to swap it with another set's, or replace
// it; [`Guards::get_mut`] lends its view instead.

impl<'s, G> IntoIterator for &'s Guards<G> {
    type Item = &'s G;
    type IntoIter = std::slice::Iter<'s, G>;

    fn into_iter(self) -> Self::IntoIter {
        self.locked.iter()
    }
}

impl<'s, G: InPlace> IntoIterator for &'s mut Guards<G> {
    type Item = G::Mut<'s>;
    type IntoIter = IterMut<'s, G>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// The [`InPlace`] views of a set's guards, in lock order ([`Guards::iter_mut`]).
pub struct IterMut<'s, G> {
    inner: std::slice::IterMut<'s, G>,
}

impl<'s, G: InPlace> Iterator for IterMut<'s, G> {
    type Item = G::Mut<'s>;

    fn next(&mut self) -> Option<G::Mut<'s>> {
        self.inner.next().map(G::in_place)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<G: InPlace> DoubleEndedIterator for IterMut<'_, G> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(G::in_place)
    }
}

impl<G: InPlace> ExactSizeIterator for IterMut<'_, G> {}

impl<G: InPlace> FusedIterator for IterMut<'_, G> {}

impl<G: fmt::Debug> fmt::Debug for IterMut<'_, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.inner.as_slice()).finish()
    }
}

/// A set of guards taken in the vector's order, each from the list position of its index
/// (a hand-written locking loop's); released last first.
impl<G> From<Vec<G>> for Guards<G> {
    fn from(locked: Vec<G>) -> Self {
        let mut sources = Sources::with_capacity(locked.len(), locked.len());
        (0..locked.len()).for_each(|i| sources.push(i));
        Guards { locked, sources }
    }
}

impl<G: fmt::Debug> fmt::Debug for Guards<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records its id in a shared log when dropped.
    #[derive(Debug)]
    struct Logged(u32, Rc<RefCell<Vec<u32>>>);

    impl Drop for Logged {
        fn drop(&mut self) {
            self.1.borrow_mut().push(self.0);
        }
    }

    /// A set lends the id only.
    impl InPlace for Logged {
        type Mut<'s> = &'s mut u32;

        fn in_place(&mut self) -> &mut u32 {
            &mut self.0
        }
    }

    fn set(ids: &[u32], from: &[usize]) -> (Guards<Logged>, Rc<RefCell<Vec<u32>>>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let locked = ids.iter().map(|&i| Logged(i, log.clone())).collect();
        let mut sources = Sources::with_capacity(from.len(), 300);
        from.iter().for_each(|&i| sources.push(i));
        (Guards::new(locked, sources), log)
    }

    #[test]
    fn dropped_whole_it_releases_newest_first() {
        let (g, log) = set(&[10, 11, 12], &[2, 0, 1]);
        assert_eq!(g.iter().map(|l| l.0).collect::<Vec<_>>(), [10, 11, 12]);
        assert_eq!((g[0].0, g.source(0), g.source(2), g.len()), (10, 2, 1, 3));
        drop(g);
        assert_eq!(*log.borrow(), [12, 11, 10]);
    }

    #[test]
    fn map_keeps_the_order_and_passes_sources() {
        let (g, log) = set(&[5, 6, 7], &[4, 0, 9]);
        let wrapped = g.map(|i, l| (i, l));
        assert_eq!(
            wrapped.iter().map(|(i, l)| (*i, l.0)).collect::<Vec<_>>(),
            [(4, 5), (0, 6), (9, 7)]
        );
        assert!(log.borrow().is_empty(), "map drops nothing");
        drop(wrapped);
        assert_eq!(*log.borrow(), [7, 6, 5]);

        let (g, log) = set(&[1, 2, 3], &[0, 1, 2]);
        let v = g.into_vec();
        assert!(log.borrow().is_empty());
        drop(v);
        assert_eq!(*log.borrow(), [1, 2, 3], "a vector drops front to back");
    }

    #[test]
    fn sources_spill_from_inline_to_a_list() {
        let mut s = Sources::with_capacity(2, 10);
        assert!(matches!(s, Sources::Inline { .. }));
        for i in [3, 300, 7] {
            s.push(i);
        }
        assert!(matches!(s, Sources::Listed(_)));
        assert_eq!(
            (s.get(0), s.get(1), s.get(2), s.get(3)),
            (Some(3), Some(300), Some(7), None)
        );
        let ordered = Sources::in_order(Some(7), [1, 7, 2].into_iter(), 3, 10);
        assert_eq!(
            (ordered.get(0), ordered.get(1), ordered.get(2)),
            (Some(7), Some(1), Some(2))
        );
        // 32 positions and a `first` outside them: 33 in all.
        let full = Sources::in_order(Some(40), 0..32, 32, 64);
        assert_eq!(
            (full.get(0), full.get(32), full.get(33)),
            (Some(40), Some(31), None)
        );
        let listed = Sources::in_order(Some(700), [1, 700].into_iter(), 2, 1000);
        assert_eq!(
            (listed.get(0), listed.get(1), listed.get(2)),
            (Some(700), Some(1), None)
        );
    }

    #[test]
    fn without_drops_the_given_positions() {
        let mut s = Sources::with_capacity(4, 10);
        [5, 6, 7, 8].iter().for_each(|&i| s.push(i));
        let rest = s.without(&[6, 8], 4);
        assert_eq!(
            (rest.get(0), rest.get(1), rest.get(2)),
            (Some(5), Some(7), None)
        );
        let rest = Sources::Identity.without(&[1], 3);
        assert_eq!(
            (rest.get(0), rest.get(1), rest.get(2)),
            (Some(0), Some(2), None)
        );
        s.push(9); // a grown set keeps its positions
        assert_eq!(s.get(4), Some(9));
    }

    #[test]
    fn iteration_by_reference_and_from_a_vector() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut g: Guards<Logged> = vec![Logged(4, log.clone()), Logged(8, log.clone())].into();
        for id in &mut g {
            *id += 1;
        }
        for (i, id) in g.iter_sources_mut() {
            *id += i as u32;
        }
        assert_eq!(
            g.iter_mut().rev().map(|id| *id).collect::<Vec<_>>(),
            [10, 5]
        );
        *g.get_mut(0).unwrap() -= 1;
        assert!(g.get_mut(2).is_none());
        *g.get_mut(0).unwrap() += 1;
        assert_eq!((&g).into_iter().map(|l| l.0).collect::<Vec<_>>(), [5, 10]);
        assert_eq!(
            format!("{:?}", g.iter().map(|l| l.0).collect::<Vec<_>>()),
            "[5, 10]"
        );
        drop(g);
        assert_eq!(*log.borrow(), [10, 5]);
    }
}
