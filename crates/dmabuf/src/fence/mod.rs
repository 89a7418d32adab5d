//! Fences: one-shot completion signals with callbacks, waits, errors, timestamps and deadlines
//! (kernel: `struct dma_fence` and its containers).
//!
//! * [`FenceContext`] — an issuer's timeline: context id, names, seqnos.
//! * [`Signaller`] — the issuer half, the only one that can signal (consumed by it).
//! * [`Fence`] — the consumer handle: status, waits, callbacks, ordering, deadlines.
//! * [`FenceOps`] — optional issuer hooks (lazy enable, hardware-like poll, deadlines).
//! * Containers: [`Fence::new_array`] ([`array`](mod@array)), [`Fence::new_chain`] ([`chain`]), and
//!   [`unwrap::merge`] / [`unwrap::leaves`].
//!
//! Kernel: `drivers/dma-buf/dma-fence.c`, `include/linux/dma-fence.h`; suite:
//! `tests/st_dma_fence.rs`.

pub mod array;
mod cb;
pub mod chain;
mod chain_index;
mod context;
mod core;
mod ops;
mod signaller;
#[cfg(any(not(loom), test))]
mod slot;
mod stub;
pub mod unwrap;
mod wait;

pub use cb::CallbackHandle;
#[cfg(not(loom))]
pub(crate) use cb::drop_quietly;
pub use context::{FenceContext, alloc_contexts, seqno_is_later, try_alloc_contexts};
pub use core::Fence;
pub use ops::FenceOps;
pub use signaller::{LeakHook, Signaller, set_leak_hook};
#[cfg(any(not(loom), test))]
pub(crate) use slot::RawFence;
pub use wait::{FenceFuture, wait_any, wait_any_deadline};

use crate::error::Errno;

/// A fence's state (kernel: `dma_fence_get_status()`: 0, 1 or a negative errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FenceStatus {
    /// Not signalled yet (kernel: 0).
    Pending,
    /// Signalled without error (kernel: 1).
    Signaled,
    /// Signalled with an error (kernel: the negative errno).
    Failed(Errno),
}

impl FenceStatus {
    /// The status from the kernel's integer form: 0 pending, positive signalled, negative
    /// failed with that errno (one no errno has reads as `EINVAL`).
    ///
    /// ```
    /// use dmabuf::{Errno, FenceStatus};
    /// assert_eq!(FenceStatus::from_raw(-62), FenceStatus::Failed(Errno::ETIME));
    /// assert_eq!(FenceStatus::from_raw(FenceStatus::Signaled.to_raw()), FenceStatus::Signaled);
    /// ```
    pub fn from_raw(raw: i32) -> FenceStatus {
        match raw {
            0 => FenceStatus::Pending,
            r if r > 0 => FenceStatus::Signaled,
            r => FenceStatus::Failed(Errno::from_raw(r).unwrap_or(Errno::EINVAL)),
        }
    }

    /// The kernel's integer form: 0 pending, 1 signalled, `-errno` failed.
    pub fn to_raw(self) -> i32 {
        match self {
            FenceStatus::Pending => 0,
            FenceStatus::Signaled => 1,
            FenceStatus::Failed(e) => -e.raw(),
        }
    }

    /// Whether the fence has signalled (with or without error).
    pub fn is_signaled(self) -> bool {
        !matches!(self, FenceStatus::Pending)
    }
}
