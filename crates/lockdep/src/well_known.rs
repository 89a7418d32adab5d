//! The classes the validator itself knows: the reservation lock's class and the two
//! pseudo-locks of the dma-buf rules, fence signalling and memory reclaim.
//!
//! Each is used where it belongs: [`RESERVATION`] by [`prime`](crate::prime), which orders it
//! before the pseudo-locks; [`FENCE_SIGNALLING`] by [`signalling`](crate::signalling);
//! [`RECLAIM`] by [`reclaim`](crate::reclaim); and a report names a cycle by the pseudo-locks
//! it runs through ([`Kind`](crate::Kind)). Those modules re-export them, so users name them
//! there.

use crate::class::LockClass;

/// The reservation lock's class (kernel: `reservation_ww_class`), shared by every buffer's
/// reservation object.
pub static RESERVATION: LockClass = LockClass::new("reservation_ww_class_mutex");

/// The signalling pseudo-lock's class (kernel: `dma_fence_lockdep_map`, "dma_fence_map").
pub static FENCE_SIGNALLING: LockClass = LockClass::new("dma_fence_map");

/// The reclaim pseudo-lock's class (kernel: `__fs_reclaim_map`, "fs_reclaim").
pub static RECLAIM: LockClass = LockClass::new("fs_reclaim");
