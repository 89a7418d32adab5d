//! The library's hooks into the validator (`dmabuf-lockdep`), compiled to nothing without the
//! `lockdep` feature.
//!
//! Every lock the library owns has a class here; fence waits are annotated as waits, and
//! callbacks run inside a fence signalling section. With the feature off each hook is an empty
//! inline function and each guard a zero-sized type.

#[cfg(feature = "lockdep")]
mod imp {
    pub(crate) use dmabuf_lockdep::LockClass;
    use dmabuf_lockdep::{Acquire, Mode};

    /// An annotation of "this lock is held"; released when dropped.
    pub(crate) struct Held {
        class: &'static LockClass,
        instance: usize,
        recorded: bool,
    }

    /// Validates and records an exclusive acquisition of `class` (call before locking).
    #[inline]
    pub(crate) fn acquire(class: &'static LockClass, instance: usize) -> Held {
        let recorded = dmabuf_lockdep::is_enabled();
        dmabuf_lockdep::acquire(
            class,
            Mode::Exclusive,
            Acquire {
                trylock: false,
                instance,
                nest: None,
            },
        );
        Held {
            class,
            instance,
            recorded,
        }
    }

    impl Drop for Held {
        #[inline]
        fn drop(&mut self) {
            if self.recorded {
                dmabuf_lockdep::release(self.class, self.instance);
            }
        }
    }

    /// A fence signalling section (see `dmabuf_lockdep::signalling`).
    pub(crate) type Section = dmabuf_lockdep::signalling::SignallingSection;

    /// Starts a signalling section.
    #[inline]
    pub(crate) fn begin_signalling() -> Section {
        dmabuf_lockdep::signalling::begin_signalling()
    }

    /// Annotates a blocking fence wait.
    #[inline]
    pub(crate) fn might_wait() {
        dmabuf_lockdep::signalling::might_wait();
    }

    /// A mutex the validator tracks.
    pub(crate) type TrackedMutex<T> = dmabuf_lockdep::Mutex<T>;

    /// Annotates an allocation that may evict buffers, and so wait for fences (kernel:
    /// `might_alloc(GFP_KERNEL)`).
    #[inline]
    pub(crate) fn might_reclaim() {
        dmabuf_lockdep::reclaim::might_reclaim();
    }

    /// An eviction path (kernel: a shrinker under `fs_reclaim`).
    pub(crate) type ReclaimScope = dmabuf_lockdep::reclaim::ReclaimScope;

    /// Starts an eviction path.
    #[inline]
    pub(crate) fn reclaim_scope() -> ReclaimScope {
        dmabuf_lockdep::reclaim::reclaim_scope()
    }

    /// Annotates that the caller might take a lock of `class` at `instance` (kernel:
    /// `might_lock()`): holding that lock here is reported as the recursion it would be.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn might_lock(class: &'static dmabuf_lockdep::LockClass, instance: usize) {
        drop(acquire(class, instance));
    }
}

#[cfg(not(feature = "lockdep"))]
mod imp {
    /// A lock class; only a name without the validator.
    pub(crate) struct LockClass;

    impl LockClass {
        pub(crate) const fn new(_name: &'static str) -> Self {
            LockClass
        }
    }

    /// Nothing to release without the validator.
    pub(crate) struct Held;

    #[inline(always)]
    pub(crate) fn acquire(_class: &'static LockClass, _instance: usize) -> Held {
        Held
    }

    /// No section without the validator.
    pub(crate) struct Section;

    #[inline(always)]
    pub(crate) fn begin_signalling() -> Section {
        Section
    }

    #[inline(always)]
    pub(crate) fn might_wait() {}

    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) fn might_lock(_class: &'static dmabuf_lockdep::LockClass, _instance: usize) {}

    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) fn might_reclaim() {}

    /// No reclaim scope without the validator.
    #[cfg(not(loom))]
    pub(crate) struct ReclaimScope;

    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) fn reclaim_scope() -> ReclaimScope {
        ReclaimScope
    }

    /// A plain `parking_lot` mutex that accepts (and ignores) a class.
    #[derive(Debug)]
    pub(crate) struct TrackedMutex<T>(parking_lot::Mutex<T>);

    impl<T> TrackedMutex<T> {
        pub(crate) const fn new(_class: &'static LockClass, value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

pub(crate) use imp::*;

/// The class of every fence's internal lock (kernel: the inline `dma_fence` lock).
pub(crate) static FENCE_LOCK: LockClass = LockClass::new("dma_fence.lock");
/// The class of software timelines' state locks (kernel: `sync_timeline.lock`).
pub(crate) static TIMELINE_LOCK: LockClass = LockClass::new("sw_sync.timeline.lock");
/// The class of sync objects' locks (kernel: `drm_syncobj.lock`).
#[cfg(not(loom))]
pub(crate) static SYNCOBJ_LOCK: LockClass = LockClass::new("drm_syncobj.lock");
/// The class of software timelines' signalling-order locks.
pub(crate) static TIMELINE_SIGNAL_LOCK: LockClass = LockClass::new("sw_sync.timeline.signal_lock");

/// `dmabuf::lockdep` without the `lockdep` feature: the validator's most used names, doing
/// nothing, so code that sets up or runs a scenario under the validator builds and runs
/// either way, without `cfg` at each use.
///
/// With the feature, `dmabuf::lockdep` is the `dmabuf-lockdep` crate and the library's locks,
/// fence waits and callbacks are checked. Without it nothing is: this module has
/// * [`capture`], which runs the closure and answers no reports, and [`take_reports`], which
///   answers none ([`Report`] has no values);
/// * [`is_enabled`], always `false`, and [`set_enabled`], which changes nothing;
/// * [`set_report_mode`] and [`ReportMode`], [`LockClass`] (the validator's own, a name);
/// * [`Mutex`], a plain mutex that takes a class and ignores it;
/// * [`signalling`] and [`reclaim`], whose sections, scopes and annotations are empty.
///
/// A test that expects a report still needs the feature; one that expects silence, or only
/// runs its scenario under [`capture`], does not.
///
/// ```
/// use dmabuf::lockdep::{LockClass, Mutex, capture, signalling};
/// static DRIVER: LockClass = LockClass::new("doc.facade.driver_lock");
/// let driver = Mutex::new(&DRIVER, 0);
/// let (value, reports) = capture(|| {
///     let _section = signalling::begin_signalling();
///     *driver.lock() + 1
/// });
/// assert_eq!(value, 1);
/// assert!(reports.is_empty());
/// ```
#[cfg(not(feature = "lockdep"))]
pub mod facade {
    pub use dmabuf_lockdep::{LockClass, ReportMode};
    use std::fmt;

    /// A problem the validator found; without the validator there is none, so no value of
    /// this type exists.
    #[derive(Debug, Clone)]
    pub enum Report {}

    impl fmt::Display for Report {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            match *self {}
        }
    }

    /// Runs `f` and answers its result with the reports made meanwhile: none.
    pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Report>) {
        (f(), Vec::new())
    }

    /// The reports collected so far: none.
    pub fn take_reports() -> Vec<Report> {
        Vec::new()
    }

    /// Whether the library's locks and waits are checked: never without the feature.
    pub fn is_enabled() -> bool {
        false
    }

    /// Turns checking on or off: there is nothing to turn without the feature.
    pub fn set_enabled(_on: bool) {}

    /// Sets what happens to a report nobody captures, and returns the previous setting (the
    /// validator's own setting, which only code using `dmabuf-lockdep` directly reports to).
    pub fn set_report_mode(mode: ReportMode) -> ReportMode {
        dmabuf_lockdep::set_report_mode(mode)
    }

    /// A mutex that takes a class, as the validator's does, and ignores it.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    /// The guard of [`Mutex`].
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex of `class` (unused).
        pub const fn new(_class: &'static LockClass, value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        /// Locks, blocking until the lock is free.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// Fence signalling sections and fence waits: empty without the validator.
    pub mod signalling {
        /// A fence signalling section; nothing is checked inside it.
        #[derive(Debug)]
        #[must_use = "the section ends when this is dropped"]
        pub struct SignallingSection(());

        /// Starts a section that checks nothing.
        pub fn begin_signalling() -> SignallingSection {
            SignallingSection(())
        }

        /// Annotates a fence wait: nothing to check.
        pub fn might_wait() {}
    }

    /// Allocations that may reclaim, and eviction paths: empty without the validator.
    pub mod reclaim {
        /// An eviction path; nothing is checked inside it.
        #[derive(Debug)]
        #[must_use = "the scope ends when this is dropped"]
        pub struct ReclaimScope(());

        /// Starts an eviction path that checks nothing.
        pub fn reclaim_scope() -> ReclaimScope {
            ReclaimScope(())
        }

        /// Annotates an allocation that may reclaim: nothing to check.
        pub fn might_reclaim() {}
    }
}
