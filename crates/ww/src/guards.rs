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

use std::fmt;
use std::ops::{Deref, Index, IndexMut};
use std::slice::SliceIndex;

/// Guards in lock order that unlock newest first when the set is dropped.
///
/// Returned by [`AcquireCtx::lock_all`](crate::AcquireCtx::lock_all) (with
/// [`WwGuard`](crate::WwGuard)s) and by libraries wrapping it (the reservation object's
/// guards in `dmabuf`). It dereferences to a read-only slice in lock order, indexes and
/// iterates mutably; [`source`](Self::source)
/// and [`iter_sources`](Self::iter_sources) map each guard back to the caller's list.
///
/// ```
/// use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
/// static C: WwClass = WwClass::wound_wait("doc.guards");
/// let (a, b) = (WwMutex::new(&C, 1), WwMutex::new(&C, 2));
/// let ctx = AcquireCtx::new(&C);
/// let mut guards = ctx.lock_all(&[&b, &a, &b])?;
/// assert_eq!(guards.len(), 2); // b is listed twice, locked once
/// for (i, g) in guards.iter_sources_mut() {
///     **g += 10 * i as i32; // `i`: where the object first appears in the list
/// }
/// drop(guards); // unlocks a and b, newest first
/// drop(ctx);
/// assert_eq!(*a.lock_plain(), 11);
/// assert_eq!(*b.lock_plain(), 2);
/// # Ok::<(), dmabuf_ww::WwError>(())
/// ```
///
/// The guards cannot be reordered, so each one's source stays true:
///
/// ```compile_fail
/// use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
/// static C: WwClass = WwClass::wound_wait("doc.guards.swap");
/// let (a, b) = (WwMutex::new(&C, 1), WwMutex::new(&C, 2));
/// let ctx = AcquireCtx::new(&C);
/// let mut guards = ctx.lock_all(&[&a, &b]).unwrap();
/// guards.swap(0, 1); // error: the set is a read-only slice
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

    /// The guards in lock order, mutably (the set itself can only be read as a slice, so
    /// that nothing reorders the guards behind their sources' back).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, G> {
        self.locked.iter_mut()
    }

    /// The guards in lock order, each with [`source`](Self::source).
    pub fn iter_sources(&self) -> impl ExactSizeIterator<Item = (usize, &G)> {
        self.locked
            .iter()
            .enumerate()
            .map(|(j, g)| (self.sources.get(j).expect("a source per guard"), g))
    }

    /// The guards in lock order, mutably, each with [`source`](Self::source).
    pub fn iter_sources_mut(&mut self) -> impl ExactSizeIterator<Item = (usize, &mut G)> {
        let sources = &self.sources;
        self.locked
            .iter_mut()
            .enumerate()
            .map(move |(j, g)| (sources.get(j).expect("a source per guard"), g))
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

// `IndexMut` for one guard at a time only: a mutable range could reorder them.
impl<G> IndexMut<usize> for Guards<G> {
    fn index_mut(&mut self, j: usize) -> &mut G {
        &mut self.locked[j]
    }
}

impl<'s, G> IntoIterator for &'s Guards<G> {
    type Item = &'s G;
    type IntoIter = std::slice::Iter<'s, G>;

    fn into_iter(self) -> Self::IntoIter {
        self.locked.iter()
    }
}

impl<'s, G> IntoIterator for &'s mut Guards<G> {
    type Item = &'s mut G;
    type IntoIter = std::slice::IterMut<'s, G>;

    fn into_iter(self) -> Self::IntoIter {
        self.locked.iter_mut()
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
        for l in &mut g {
            l.0 += 1;
        }
        for (i, l) in g.iter_sources_mut() {
            l.0 += i as u32;
        }
        assert_eq!((&g).into_iter().map(|l| l.0).collect::<Vec<_>>(), [5, 10]);
        assert_eq!(
            format!("{:?}", g.iter().map(|l| l.0).collect::<Vec<_>>()),
            "[5, 10]"
        );
        drop(g);
        assert_eq!(*log.borrow(), [10, 5]);
    }
}
