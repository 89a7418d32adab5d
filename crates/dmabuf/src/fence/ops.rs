//! The issuer's hooks into its fences (kernel: `struct dma_fence_ops`).
//!
//! A plain software fence needs no hooks: its issuer signals it through its
//! [`Signaller`](super::Signaller). A device-like issuer implements [`FenceOps`] to be told when
//! somebody starts waiting (`enable_signaling`, to arm an interrupt), to answer polls from a
//! hardware-like completion counter (`signaled`) and to hear about deadlines.
//!
//! # Rules
//! * `enable_signaling` runs at most once per fence, when the first waiter or callback appears.
//! * Once the fence signals it drops its ops object, so a long-lived consumer never keeps a
//!   dropped device alive (as mainline since the 2026 "detach fence ops on signal" series;
//!   Linux 6.12 keeps the ops until the fence is freed). The signal detaches
//!   them at once (no hook runs for a signalled fence) and drops its reference after the
//!   fence's callbacks have run, so an ops `Drop` may use the fence, e.g.
//!   [`CallbackHandle::remove`](super::CallbackHandle::remove) (it gets `false`: the callback
//!   has run).
//!
//! # Differences from the kernel
//! * Hooks run **without** the fence's lock held (the kernel holds it, with interrupts off, for
//!   `enable_signaling`; moving it out was proposed on dri-devel). A hook may therefore call any
//!   method of the fence, and may race with the fence signalling.
//! * Names are not hooks: they belong to the fence's context ([`FenceContext`](super::FenceContext))
//!   and survive signalling, as they do in Linux 6.12, where the name hooks stay callable.
//!   Mainline since the 2026 series answers "detached-driver" and "signaled-timeline" for a
//!   signalled fence whose ops were detached.

use super::{Fence, FenceStatus};
use crate::time::MonotonicTime;

/// Hooks an issuer can attach to its fences (kernel: `struct dma_fence_ops`).
///
/// Every method has a default, so an implementation overrides only what it needs.
///
/// ```
/// use dmabuf::fence::{FenceContext, FenceOps, FenceStatus, Fence};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// A device whose completion counter the fences poll.
/// struct Ring { completed: AtomicU64 }
/// impl FenceOps for Ring {
///     fn signaled(&self, fence: &Fence) -> FenceStatus {
///         if self.completed.load(Ordering::Acquire) >= fence.seqno() {
///             FenceStatus::Signaled
///         } else {
///             FenceStatus::Pending
///         }
///     }
/// }
///
/// let ring = Arc::new(Ring { completed: AtomicU64::new(0) });
/// let ctx = FenceContext::new("gpu", "ring0");
/// let (_issuer, fence) = ctx.next_fence_with_ops(ring.clone());
/// assert!(!fence.is_signaled());
/// ring.completed.store(1, Ordering::Release);
/// assert!(fence.is_signaled()); // the poll signalled it
/// ```
pub trait FenceOps: Send + Sync + 'static {
    /// Somebody started waiting on `fence`: arrange for it to be signalled (kernel:
    /// `enable_signaling`). Called at most once per fence, lazily.
    ///
    /// Return `false` if the fence is already complete; the fence then signals at once.
    fn enable_signaling(&self, fence: &Fence) -> bool {
        let _ = fence;
        true
    }

    /// Polls a hardware-like completion state (kernel: `signaled`).
    ///
    /// Returning [`FenceStatus::Signaled`] or [`FenceStatus::Failed`] signals the fence as a side
    /// effect. Once complete, it must stay complete.
    fn signaled(&self, fence: &Fence) -> FenceStatus {
        let _ = fence;
        FenceStatus::Pending
    }

    /// A waiter would like `fence` to be signalled by `deadline` (kernel: `set_deadline`).
    ///
    /// A hint, possibly repeated; keep the earliest. Called without any fence lock held.
    fn set_deadline(&self, fence: &Fence, deadline: MonotonicTime) {
        let _ = (fence, deadline);
    }
}
