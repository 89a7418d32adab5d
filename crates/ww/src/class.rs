//! ww classes (kernel: `DEFINE_WW_CLASS` / `DEFINE_WD_CLASS`): the algorithm, the age stamps
//! and the validator's classes for one family of mutexes locked together.

use crossbeam_utils::CachePadded;
use dmabuf_lockdep::LockClass;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// After a `lock_all` of a class backs off, how many transactions of that class (counted in
/// stamps) lock their sets in address order (see [Lock order](crate#lock-order)).
pub const ORDERED_SPAN: u64 = 1024;

/// How a collision between two transactions is resolved; both are deadlock-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// The younger requester "dies" (gets [`Deadlock`](crate::WwError::Deadlock)) when the
    /// lock is held by an older transaction; an older requester waits.
    /// Many cheap rollbacks (kernel: `DEFINE_WD_CLASS`; the reservation lock's class).
    WaitDie,
    /// An older requester "wounds" a younger holder, which backs off at its next lock
    /// attempt or while it waits; a younger requester waits. Few rollbacks, but a wounded
    /// transaction may have done work in vain (kernel: `DEFINE_WW_CLASS`).
    WoundWait,
}

/// The lock class a class's mutexes are validated as.
enum MutexClass {
    Own(LockClass),
    Shared(&'static LockClass),
}

/// A family of mutexes that are locked together through acquire contexts.
///
/// Make one per kind of object, in a `static`:
/// ```
/// use dmabuf_ww::{Algorithm, WwClass};
/// static BOS: WwClass = WwClass::wound_wait("mydrv.bo");
/// assert_eq!(BOS.algorithm(), Algorithm::WoundWait);
/// assert_eq!(BOS.name(), "mydrv.bo");
/// ```
pub struct WwClass {
    name: &'static str,
    algorithm: Algorithm,
    /// On a cache line of its own: every new context bumps it, and the fields beside it are
    /// read on every lock.
    stamp: CachePadded<AtomicU64>,
    /// Transactions with a stamp below this take `lock_all` sets in address order (written
    /// only when a transaction backs off; away from the busy stamp counter's cache line).
    ordered_until: AtomicU64,
    mutex_class: MutexClass,
    acquire_class: OnceLock<&'static LockClass>,
}

impl WwClass {
    /// A wait-die class (kernel: `DEFINE_WD_CLASS`).
    pub const fn wait_die(name: &'static str) -> Self {
        Self::new(name, Algorithm::WaitDie)
    }

    /// A wound-wait class (kernel: `DEFINE_WW_CLASS`).
    pub const fn wound_wait(name: &'static str) -> Self {
        Self::new(name, Algorithm::WoundWait)
    }

    /// A class with the given algorithm.
    pub const fn new(name: &'static str, algorithm: Algorithm) -> Self {
        Self {
            name,
            algorithm,
            stamp: CachePadded::new(AtomicU64::new(1)),
            ordered_until: AtomicU64::new(0),
            mutex_class: MutexClass::Own(LockClass::new(name)),
            acquire_class: OnceLock::new(),
        }
    }

    /// A class whose mutexes are validated as `lockdep_class` rather than a class of their
    /// own, so orders recorded for that class elsewhere (e.g. the validator's primed
    /// reservation class) apply to them.
    ///
    /// ```
    /// use dmabuf_ww::{Algorithm, WwClass};
    /// static RESV: WwClass = WwClass::with_lockdep_class(
    ///     "reservation_ww_class",
    ///     Algorithm::WaitDie,
    ///     &dmabuf_lockdep::prime::RESERVATION,
    /// );
    /// assert!(std::ptr::eq(RESV.lockdep_mutex_class(), &dmabuf_lockdep::prime::RESERVATION));
    /// ```
    pub const fn with_lockdep_class(
        name: &'static str,
        algorithm: Algorithm,
        lockdep_class: &'static LockClass,
    ) -> Self {
        Self {
            name,
            algorithm,
            stamp: CachePadded::new(AtomicU64::new(1)),
            ordered_until: AtomicU64::new(0),
            mutex_class: MutexClass::Shared(lockdep_class),
            acquire_class: OnceLock::new(),
        }
    }

    /// A class made at run time and leaked (tests that need fresh classes).
    pub fn leak(name: impl Into<String>, algorithm: Algorithm) -> &'static WwClass {
        let name: &'static str = Box::leak(name.into().into_boxed_str());
        Box::leak(Box::new(WwClass::new(name, algorithm)))
    }

    /// The class name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The collision algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The next age stamp: lower is older.
    pub(crate) fn next_stamp(&self) -> u64 {
        self.stamp.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the transaction with `stamp` should lock its sets in address order: a
    /// transaction of this class backed off less than [`ORDERED_SPAN`] transactions before it.
    pub(crate) fn ordered(&self, stamp: u64) -> bool {
        stamp < self.ordered_until.load(Ordering::Relaxed)
    }

    /// The transaction with `stamp` backed off: the next [`ORDERED_SPAN`] transactions take
    /// address order. Written at most once per half span, so a storm of back-offs does not
    /// bounce the cache line.
    pub(crate) fn note_backoff(&self, stamp: u64) {
        let until = self.next_stamp_hint().max(stamp) + ORDERED_SPAN;
        if self.ordered_until.load(Ordering::Relaxed) < until - ORDERED_SPAN / 2 {
            self.ordered_until.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// The stamp the next transaction will get (a snapshot).
    fn next_stamp_hint(&self) -> u64 {
        self.stamp.load(Ordering::Relaxed)
    }

    /// The validator's class for this class's mutexes.
    pub fn lockdep_mutex_class(&'static self) -> &'static LockClass {
        match &self.mutex_class {
            MutexClass::Own(c) => c,
            MutexClass::Shared(c) => c,
        }
    }

    /// The validator's class for this class's acquire contexts (`<name>_acquire`).
    pub fn lockdep_acquire_class(&'static self) -> &'static LockClass {
        self.acquire_class
            .get_or_init(|| LockClass::leak(format!("{}_acquire", self.name)))
    }
}

impl std::fmt::Debug for WwClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WwClass")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
