//! # dmabuf-ww — wound/wait mutexes
//!
//! A driver that submits a job must lock every buffer the job touches, and another driver may
//! lock an overlapping set in another order at the same moment. The kernel's *ww_mutex* makes
//! that deadlock-free without a global order: each transaction takes an [`AcquireCtx`] with an
//! age stamp, and when two transactions collide the younger one backs off — it drops every
//! lock it holds, sleeps on the contended lock ([`WwMutex::lock_slow`]) and starts again.
//!
//! * [`WwClass`] — a family of mutexes locked together, with its algorithm
//!   ([`Algorithm::WaitDie`] or [`Algorithm::WoundWait`]) and its stamp counter.
//! * [`AcquireCtx`] — one transaction (kernel: `ww_acquire_ctx`); dropping it is `fini`.
//! * [`WwMutex`] and [`WwGuard`] — the lock and the proof it is held.
//! * [`AcquireCtx::lock_all`] — the back-off loop every driver writes by hand, and
//!   [`Guards`], what it returns.
//! * [`CancelToken`] — interrupts a waiting lock from another thread (user space has no signals).
//! * [`WwError`] — what a lock answers instead of locking, each with the kernel's [`Errno`].
//! * [`inject`] — a debug knob answering Deadlock at random to exercise back-off paths.
//!
//! ```
//! use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
//!
//! static BUFFERS: WwClass = WwClass::wait_die("doc.buffers");
//! let a = WwMutex::new(&BUFFERS, 1);
//! let b = WwMutex::new(&BUFFERS, 2);
//!
//! let ctx = AcquireCtx::new(&BUFFERS);
//! let mut guards = ctx.lock_all(&[&b, &a, &b])?; // any order; duplicates are fine
//! ctx.done();
//! for value in guards.iter_mut() {
//!     *value += 10;
//! }
//! assert_eq!((*guards[0], *guards[1]), (12, 11));
//! # Ok::<(), dmabuf_ww::WwError>(())
//! ```
//!
//! # Lock order
//! [`AcquireCtx::lock_all`] takes the objects in the order given while the class runs without
//! collisions. Once a `lock_all` of the class backs off, the next [`ORDERED_SPAN`]
//! transactions of the class (counted by stamp, on every thread) take their sets in address
//! order, the contended mutex first after a back-off. Transactions that all lock in one
//! order form no lock-order cycles, so wound-wait then almost never rolls back and wait-die
//! much less often, while a class without contention never pays for the sort. The guards come
//! back as [`Guards`], in the order they were taken (each knows its position in the caller's
//! list), and dropping them unlocks newest first, like the kernel's `drm_exec`: a transaction
//! waiting for one of them then finds the later ones it needs already free (under heavy
//! contention wait-die gains 10–25 % over handing them back in the caller's order; wound-wait
//! is unchanged, `BENCHMARKS.md`). Hand-written loops over [`WwMutex::lock`] keep
//! whatever order they choose (a mix is still deadlock-free: the algorithms resolve every
//! cycle). Measured in `BENCHMARKS.md`: under heavy contention this doubles throughput.
//!
//! Everything between a transaction's first lock and its last unlock is time other
//! transactions may wait for, so `lock_all` does its preparation before the first lock: it
//! drops repeated entries (in address order) and asks the CPU for every mutex's cache line
//! at once (`PREFETCHW` on x86-64), so the misses overlap instead of coming one per lock.
//! With the validator and the injector off, a lock through a context that already holds one
//! is an inlined compare-and-swap and a few stores.
//!
//! # Differences from the kernel
//! * A context cannot be finished with locks held: guards borrow it, so the borrow checker
//!   rejects `drop(ctx)` before the guards are gone.
//! * A context belongs to the thread that made it (`!Send`), as a kernel context belongs to a
//!   task.
//! * Interruptible locking takes a [`CancelToken`] instead of reacting to signals.
//! * Waiters park in a global table keyed by the mutex (`parking_lot_core`), so a mutex is
//!   a few words; waiters are not kept in stamp order, so wait-die judges a requester against
//!   the owner only (not against older waiters), and every change of owner wakes the waiters
//!   that decide differently against it.
//! * A requester spins briefly before deciding or parking (the kernel spins only while its
//!   context holds nothing): a lock released during the spin costs no back-off.
//! * `lock_all` switches a contended class to address order (see [Lock order](#lock-order));
//!   the kernel's `drm_exec` always keeps the caller's order.
//! * The validator's checks (the kernel's `CONFIG_DEBUG_WW_MUTEX_SLOWPATH` and lockdep) are
//!   the `lockdep` feature.

/// The crate's README, whose examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod cancel;
mod class;
mod ctx;
mod error;
mod guards;
pub mod inject;
mod mutex;
mod park;
mod prefetch;
mod raw;
mod set;
mod validate;

pub use cancel::CancelToken;
pub use class::{Algorithm, ORDERED_SPAN, WwClass};
pub use ctx::AcquireCtx;
pub use error::WwError;
pub use guards::{Guards, InPlace, IterMut};
pub use mutex::{WwGuard, WwMutex};
/// The errno type of [`WwError::errno`] (rustix's; see there why).
pub use rustix::io::Errno;
