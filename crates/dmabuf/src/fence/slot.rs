//! A place that holds one fence or none, read without a lock while one writer replaces it
//! (kernel: a `struct dma_fence __rcu *` read with `dma_fence_get_rcu()`).
//!
//! It is the narrow door through which code outside the fence core stores fences in shared
//! tables (a reservation object's entries): it hands out counted [`Fence`] handles and
//! borrowed views, never the shared block behind them.

use super::Fence;
use super::core::Inner;
use crate::sync::AtomicOptionArc;

/// One fence or none, loaded and replaced atomically.
pub(crate) struct FenceSlot(AtomicOptionArc<Inner>);

impl FenceSlot {
    /// An empty slot.
    pub(crate) fn empty() -> Self {
        FenceSlot(AtomicOptionArc::empty())
    }

    /// A counted handle to the fence held now, if any.
    pub(crate) fn load(&self) -> Option<Fence> {
        self.0.load_full().map(Fence)
    }

    /// Holds `fence` (a new reference to it) from now on, or nothing; the reference held
    /// before is dropped, after the slot has changed.
    pub(crate) fn store(&self, fence: Option<&Fence>) {
        self.0.store(fence.map(|f| f.0.clone()));
    }

    /// Calls `look` with the fence held now, without touching its reference count (for scans
    /// that look at many entries and keep few).
    #[cfg(not(loom))]
    pub(crate) fn peek<R>(&self, look: impl FnOnce(Option<&Fence>) -> R) -> R {
        let guard = self.0.load();
        look(guard.as_ref().map(from_inner_ref))
    }

    /// Calls `look` with the fence held now (a counted handle under loom, which has no
    /// borrowed loads).
    #[cfg(loom)]
    pub(crate) fn peek<R>(&self, look: impl FnOnce(Option<&Fence>) -> R) -> R {
        look(self.load().as_ref())
    }
}

/// Views a shared fence as a handle without touching its reference count.
#[cfg(not(loom))]
fn from_inner_ref(inner: &std::sync::Arc<Inner>) -> &Fence {
    // SAFETY: `Fence` is `repr(transparent)` over `Arc<Inner>`: both have one layout, so a
    // reference to one is a valid reference to the other for the same lifetime.
    #[allow(unsafe_code)]
    unsafe {
        &*std::ptr::from_ref(inner).cast::<Fence>()
    }
}
