//! # dmabuf — the Linux DMA-BUF object model in user space
//!
//! The kernel's dma-buf subsystem lets independent drivers share buffers and order their work
//! with fences. This crate rebuilds that model for user-space drivers and runtimes, to the
//! kernel's semantics:
//!
//! * [`fence`] — `dma_fence`: one-shot completion signals with callbacks, waits (blocking,
//!   timed, any-of, async), errors, timestamps and deadlines; arrays, chains (timeline points),
//!   unwrap and merge.
//! * [`timeline`] — a software timeline, what `sw_sync` is to the kernel: fences at points on a
//!   counter that only moves forward.
//!
//! * [`resv`] — `dma_resv`: a buffer's implicit-sync state, a wait-die ww_mutex
//!   ([`dmabuf_ww`]) and fences classified by usage; readiness for a read or write access
//!   (the dma-buf fd's `poll()`: [`Resv::is_ready`](resv::Resv::is_ready), blocking and
//!   async).
//! * [`sync_file`] — `sync_file`: one fence passed around for explicit sync; merge, info,
//!   deadlines, waits, and export from / import into a buffer's [`resv`].
//! * [`syncobj`] — `drm_syncobj`: a replaceable fence slot, binary or a timeline of points;
//!   waits over many points (for submit, for availability, with a deadline) and
//!   notifications, what Vulkan semaphores and Wayland's explicit sync are built on.
//! * [`buf`] — `dma_buf`: exporters, static and dynamic importers, attachments and their
//!   mappings, pinning, `move_notify`, CPU access; the system heap, memfd-backed buffers and a
//!   device-memory pool that evicts.
//!
//! ```
//! use dmabuf::fence::FenceContext;
//! use std::thread;
//!
//! let gpu = FenceContext::new("gpu", "ring0");
//! let (job_done, fence) = gpu.next_fence();
//!
//! // A consumer waits; the issuer signals from another thread.
//! let waiter = { let f = fence.clone(); thread::spawn(move || f.wait()) };
//! thread::spawn(move || job_done.signal()).join().unwrap();
//! assert_eq!(waiter.join().unwrap(), Ok(())); // signalled, without an error
//! assert!(fence.is_signaled());
//! ```
//!
//! # What this crate does not do
//! * It does not talk to the kernel: its buffers, fences and sync files live in the process.
//!   Real dma-buf and sync_file fds, and the bridges between them and this crate's types, are
//!   the `dmabuf-linux` crate's.
//! * It has no interruptible fence waits: user space has no signals. Taking a reservation
//!   lock can be cancelled ([`Resv::lock_interruptible`](resv::Resv::lock_interruptible) with
//!   a [`CancelToken`](dmabuf_ww::CancelToken)).
//! * It checks its locks, fence waits and callbacks with the validator only with the
//!   `lockdep` feature; without it [`lockdep`] is a facade that checks nothing.
//!
//! See [`docs`] for the rules and how this crate differs from the kernel.

/// The crate's README, whose examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(not(loom))]
pub mod buf;
pub mod docs;
pub mod error;
pub mod fence;
#[cfg(not(loom))]
pub mod resv;
/// Under loom, only the reservation object's lock-free fence table and its reader slots,
/// for their models in `tests`: the rest needs the ww_mutex, which loom does not model.
#[cfg(all(loom, test))]
#[allow(dead_code)] // the writer's scans and the object's queries have no model
mod resv {
    mod hazard;
    pub(crate) mod table;
    mod usage;
    pub(crate) use usage::Usage;
}
mod sync;
#[cfg(not(loom))]
pub mod sync_file;
#[cfg(not(loom))]
pub mod syncobj;
pub mod time;
pub mod timeline;
mod validate;

#[cfg(all(test, loom))]
mod tests;

/// The validator (`dmabuf-lockdep`), which checks the library's locks, fence waits and
/// callbacks with the `lockdep` feature.
#[cfg(feature = "lockdep")]
pub use dmabuf_lockdep as lockdep;
pub use error::{
    AlreadySignaled, Errno, Error, FenceFailed, Rejected, Result, SyncobjError, SyncobjWaitError,
    TimedOut, WaitError,
};
pub use fence::{Fence, FenceContext, FenceStatus, Signaller};
#[cfg(not(loom))]
pub use sync_file::SyncFile;
#[cfg(not(loom))]
pub use syncobj::Syncobj;
pub use time::MonotonicTime;
pub use timeline::Timeline;
/// Without the `lockdep` feature, a facade of the validator's most used names that checks
/// nothing (see the module).
#[cfg(not(feature = "lockdep"))]
pub use validate::facade as lockdep;
