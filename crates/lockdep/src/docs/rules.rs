//! # The rules, one by one
//!
//! Each rule below says what the validator checks, why breaking it can hang a system, and shows
//! the smallest program that breaks it. Every example runs as a test: it wraps the bad program
//! in [`capture`](crate::capture) and checks the report's [`Kind`](crate::Kind).
//!
//! ## 1. Lock order: no cycles between lock classes
//!
//! If one path takes `A` then `B` and another takes `B` then `A`, two threads running them at
//! once can each hold one lock and wait forever for the other. The validator records "B was
//! taken while A was held" for every acquisition, by *class*, and reports the first acquisition
//! that closes a cycle — even if the two paths never actually ran at the same time.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Mutex, Kind, capture};
//! static A: LockClass = LockClass::new("rules.order.A");
//! static B: LockClass = LockClass::new("rules.order.B");
//! let (a, b) = (Mutex::new(&A, ()), Mutex::new(&B, ()));
//! let (_, r) = capture(|| {
//!     { let _a = a.lock(); let _b = b.lock(); }
//!     { let _b = b.lock(); let _a = a.lock(); }
//! });
//! assert_eq!(r[0].kind, Kind::CircularDependency);
//! // The cycle starts with the dependency that closed it: B held while taking A.
//! assert_eq!(r[0].cycle_classes(), ["rules.order.B", "rules.order.A"]);
//! ```
//!
//! ## 2. Readers: only *recursive* reads may close a cycle safely
//!
//! A plain reader (one that can queue behind a waiting writer, like `std`'s `RwLock::read`) is
//! as dangerous as a writer in a cycle. A recursive reader (never queues behind a writer while
//! readers hold the lock) breaks a cycle when it is followed by a reader on the other side. The
//! validator follows the kernel's design: a cycle is reported only if no recursive-read
//! dependency is followed by a dependency whose holder is a reader.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, RecursiveRwLock, RwLock, Mutex, Kind, capture};
//! static X: LockClass = LockClass::new("rules.read.X");
//! static Y: LockClass = LockClass::new("rules.read.Y");
//! let x = RecursiveRwLock::new_recursive(&X, ());
//! let y = Mutex::new(&Y, ());
//! let (_, r) = capture(|| {
//!     { let _x = x.read(); let _y = y.lock(); } // X(read) -> Y
//!     { let _y = y.lock(); let _x = x.read(); } // Y -> X(recursive read)
//! });
//! assert!(r.is_empty()); // two recursive readers of X can both proceed
//!
//! static P: LockClass = LockClass::new("rules.read.P");
//! static Q: LockClass = LockClass::new("rules.read.Q");
//! let p = RwLock::new(&P, ());
//! let q = Mutex::new(&Q, ());
//! let (_, r) = capture(|| {
//!     { let _p = p.read(); let _q = q.lock(); }
//!     { let _q = q.lock(); let _p = p.read(); } // a plain read can queue behind a writer
//! });
//! assert_eq!(r[0].kind, Kind::CircularDependency);
//! ```
//!
//! ## 3. No recursive locking
//!
//! Taking a lock class this thread already holds deadlocks on a mutex, and on a reader-writer
//! lock unless both are recursive reads. (Different objects of one class count: to hold two,
//! nest them under a nest lock, as ww_mutexes do with their acquire context.)
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Mutex, Kind, capture};
//! static M: LockClass = LockClass::new("rules.aa.M");
//! let (m1, m2) = (Mutex::new(&M, ()), Mutex::new(&M, ()));
//! let (_, r) = capture(|| {
//!     let _a = m1.lock();
//!     let _b = m2.lock();
//! });
//! assert_eq!(r[0].kind, Kind::RecursiveLocking);
//! ```
//!
//! ## 4. Trylocks cannot deadlock
//!
//! A trylock never waits, so it adds no dependency towards itself. Locks taken while it is held
//! still depend on it.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Mutex, capture};
//! static A: LockClass = LockClass::new("rules.try.A");
//! static B: LockClass = LockClass::new("rules.try.B");
//! let (a, b) = (Mutex::new(&A, ()), Mutex::new(&B, ()));
//! let (_, r) = capture(|| {
//!     { let _a = a.lock(); let _b = b.lock(); }
//!     { let _b = b.lock(); let _a = a.try_lock(); }
//! });
//! assert!(r.is_empty());
//! ```
//!
//! ## 5. Fence signalling: no lock in a signalling section that is held around a fence wait
//!
//! A *signalling section* is the code between "my fence is visible to others" and "my fence is
//! signalled" — a job's completion handler, a fence callback. If it takes a lock `L`, and some
//! other thread holds `L` while it waits for a fence, the waiter may wait for the very fence
//! whose signalling is stuck behind `L`. Sections are a shared acquisition of one pseudo-lock;
//! every fence wait is an exclusive acquire-and-release of it.
//!
//! Starting a section never blocks, so it counts as a read *trylock* (as in mainline): the
//! locks a thread already holds when it signals gain no order before fence waits. That is why
//! *opportunistic* signalling is fine — a waiter that polls a fence, finds it complete and
//! signals it on the spot while holding its own locks breaks no rule; only what runs *inside*
//! the section (callbacks, the signaller's own locking) is constrained.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Mutex, Kind, capture, signalling};
//! static L: LockClass = LockClass::new("rules.fence.L");
//! let l = Mutex::new(&L, ());
//! let (_, r) = capture(|| {
//!     { let _s = signalling::begin_signalling(); let _l = l.lock(); } // completion path
//!     { let _l = l.lock(); signalling::might_wait(); }               // submit path
//! });
//! assert_eq!(r[0].kind, Kind::SignallingDeadlock);
//! ```
//!
//! ## 6. No reservation lock in a signalling section
//!
//! Waiting for fences while holding a buffer's reservation lock is allowed (drivers do it all
//! the time), so the reservation lock must never be taken on a signalling path, e.g. by
//! unmapping an attachment (which takes it) from a completion callback. The validator records
//! the reservation-lock-then-wait order up front ("priming"), so one driver doing it wrong is
//! enough to see the report.
//!
//! ```
//! use dmabuf_lockdep::{Kind, capture, prime, signalling, acquire, release, Acquire, Mode};
//! let (_, r) = capture(|| {
//!     let _s = signalling::begin_signalling();
//!     acquire(&prime::RESERVATION, Mode::Exclusive, Acquire::default());
//!     release(&prime::RESERVATION, 0);
//! });
//! assert_eq!(r[0].kind, Kind::SignallingDeadlock);
//! ```
//!
//! ## 7. No fence wait in a signalling section
//!
//! A signalling section must finish in bounded time; a wait inside it may wait for itself.
//!
//! ```
//! use dmabuf_lockdep::{Kind, capture, signalling};
//! let (_, r) = capture(|| {
//!     let _s = signalling::begin_signalling();
//!     signalling::might_wait();
//! });
//! assert_eq!(r[0].kind, Kind::WaitInSignalling);
//! ```
//!
//! ## 8. No reclaiming allocation in a signalling section
//!
//! An allocation may reclaim memory; reclaim evicts buffers and so waits for their fences. An
//! allocator that may evict calls [`might_reclaim`](crate::reclaim::might_reclaim).
//! Pre-allocate outside the section instead.
//!
//! ```
//! use dmabuf_lockdep::{Kind, capture, reclaim, signalling};
//! let (_, r) = capture(|| {
//!     let _s = signalling::begin_signalling();
//!     reclaim::might_reclaim();
//! });
//! assert_eq!(r[0].kind, Kind::ReclaimInSignalling);
//! ```
//!
//! ## 9. No reclaiming allocation while reclaiming
//!
//! An eviction path that allocates with reclaim may recurse into itself. Use a no-reclaim
//! scope (kernel: `memalloc_nofs_save`) there.
//!
//! ```
//! use dmabuf_lockdep::{Kind, capture, reclaim};
//! let (_, r) = capture(|| {
//!     let _evicting = reclaim::reclaim_scope();
//!     reclaim::might_reclaim();
//! });
//! assert_eq!(r[0].kind, Kind::RecursiveLocking);
//! let (_, r) = capture(|| {
//!     let _evicting = reclaim::reclaim_scope();
//!     let _nofs = reclaim::no_reclaim_scope();
//!     reclaim::might_reclaim();
//! });
//! assert!(r.is_empty());
//! ```
//!
//! ## 10. Releases match acquisitions
//!
//! Releasing a lock this thread does not hold means the bookkeeping (or the program) is wrong.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Kind, capture, release};
//! static U: LockClass = LockClass::new("rules.unlock.U");
//! let (_, r) = capture(|| release(&U, 0));
//! assert_eq!(r[0].kind, Kind::BadUnlock);
//! ```
//!
//! ## 11. ww_mutex acquire contexts
//!
//! One context per thread at a time, one ww class per context, nothing locked after `done`,
//! `fini` only with everything released, and after a Deadlock answer: release everything, then
//! lock the contended lock first — with `lock_slow` (a plain `lock` of it is accepted too, as
//! by the kernel) — and `lock_slow` only then.
//!
//! ```
//! use dmabuf_lockdep::{LockClass, Kind, WwRule, capture, ww};
//! static WW: LockClass = LockClass::new("rules.ww.class");
//! let (_, r) = capture(|| {
//!     let ctx = ww::acquire_init(&WW);
//!     ww::before_lock(ctx, &WW, 1, false);
//!     ww::locked(ctx, 1);
//!     ww::acquire_fini(ctx); // lock 1 still held
//! });
//! assert_eq!(r[0].kind, Kind::WwMisuse(WwRule::FiniWithLocksHeld));
//! ```
