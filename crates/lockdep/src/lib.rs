//! # dmabuf-lockdep — a lockdep-style validator for user space
//!
//! The Linux kernel finds deadlocks before they happen with *lockdep*: every lock belongs to a
//! class, every acquisition records "this class was taken while that one was held", and a
//! cycle in those records is a possible deadlock, reported the first time the second half of
//! it runs — not when two threads finally collide. The dma-buf subsystem adds pseudo-locks for
//! its cross-driver rules: fence signalling sections, fence waits and memory reclaim. This crate
//! rebuilds that for Rust programs, usable by any code; the `dmabuf` crate wires it into its
//! fences when its `lockdep` feature is on.
//!
//! * [`LockClass`], [`Mode`] — classes and acquisition modes (exclusive, shared,
//!   recursive-shared).
//! * [`acquire`] / [`release`] — the core hooks; [`Mutex`] and [`RwLock`] call them for you.
//! * [`signalling`] — fence signalling sections and fence waits.
//! * [`reclaim`] — allocations that may reclaim, and eviction paths.
//! * [`prime`] — the canonical order recorded up front (reservation lock → reclaim → fence
//!   wait) and user declarations.
//! * [`ww`] — ww_mutex acquire-context rules.
//! * [`Report`], [`ReportMode`], [`capture`], [`capture_all`] — what is found and where it goes:
//!   to the thread's own [`capture`], else to a running [`capture_all`] (which collects from
//!   every thread), else as the global [`ReportMode`] says.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Mutex, Kind, capture, signalling};
//!
//! static DRIVER: LockClass = LockClass::new("doc.lib.driver_lock");
//! let driver = Mutex::new(&DRIVER, ());
//!
//! let ((), reports) = capture(|| {
//!     // A completion handler: signalling section, takes the driver lock.
//!     {
//!         let _section = signalling::begin_signalling();
//!         let _g = driver.lock();
//!     }
//!     // A submit path: holds the driver lock while waiting on a fence.
//!     {
//!         let _g = driver.lock();
//!         signalling::might_wait();
//!     }
//! });
//! assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
//! ```
//!
//! # What it does not do
//! * It does not detect deadlocks that happened (use a debugger); it finds orders that can.
//! * Interrupt contexts do not exist in user space, so lockdep's irq-safety rules are absent.
//! * Classes and recorded dependencies are never forgotten during the process' life.
//! * A thread is not checked from thread-local destructors that run after the validator's own
//!   thread-locals are gone (its locks are neither recorded nor checked there).
//!
//! See the `docs` module for every rule with a minimal violation.

/// The crate's README, whose examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod chains;
pub mod class;
mod delivery;
pub mod docs;
mod graph;
mod held;
pub mod prime;
pub mod reclaim;
mod report;
pub mod signalling;
mod tracked;
mod well_known;
pub mod ww;

pub use class::{ClassId, LockClass, Mode};
pub use delivery::{ReportMode, capture, capture_all, set_report_mode, take_reports};
pub use graph::{Hop, Origin, has_dependency};
pub use held::{Acquire, acquire, held_classes, is_enabled, is_held, release, set_enabled};
pub use report::{Kind, Report, WwRule};
pub use tracked::{
    Mutex, MutexGuard, RawRwLock, RecursiveRwLock, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
