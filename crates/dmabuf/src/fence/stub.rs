//! Already-signalled fences (kernel: `dma_fence_get_stub()`,
//! `dma_fence_allocate_private_stub()`).
//!
//! The stub is one process-wide signalled fence on context 0 (no context allocation ever returns
//! 0); getting it is a reference-count increment, no allocation. A private stub is a fresh
//! signalled fence carrying a chosen timestamp, for merges whose inputs had all signalled.

use super::Fence;
use super::core::{self, Names, SetError};
use crate::time::MonotonicTime;
use std::sync::Arc as StdArc;
use std::sync::OnceLock;

static STUB_NAMES: OnceLock<StdArc<Names>> = OnceLock::new();

fn new_stub(timestamp: Option<MonotonicTime>) -> Fence {
    let names = core::static_names(&STUB_NAMES, "stub", "stub");
    let fence = core::new_inner(0, names, 0, true, None, None);
    core::signal(&fence, SetError::Keep, timestamp);
    fence
}

impl Fence {
    /// The process-wide signalled stub fence (kernel: `dma_fence_get_stub()`): context 0,
    /// seqno 0, names "stub". Returns a new handle to one shared fence; allocates nothing
    /// after the first call.
    ///
    /// ```
    /// let stub = dmabuf::fence::Fence::stub();
    /// assert!(stub.is_signaled());
    /// assert!(stub.ptr_eq(&dmabuf::fence::Fence::stub()));
    /// ```
    #[doc(alias = "dma_fence_get_stub")]
    pub fn stub() -> Fence {
        #[cfg(not(loom))]
        {
            static STUB: OnceLock<Fence> = OnceLock::new();
            STUB.get_or_init(|| new_stub(None)).clone()
        }
        // Loom objects cannot outlive one model run, so each call makes its own.
        #[cfg(loom)]
        new_stub(None)
    }

    /// A new signalled fence with the given timestamp (kernel:
    /// `dma_fence_allocate_private_stub()`).
    #[doc(alias = "dma_fence_allocate_private_stub")]
    pub fn signaled_stub(timestamp: MonotonicTime) -> Fence {
        new_stub(Some(timestamp))
    }
}
