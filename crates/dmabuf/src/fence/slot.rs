//! A fence's address as a plain word, for tables that readers walk without the lock (kernel:
//! a `struct dma_fence __rcu *` in `struct dma_resv_list`, with the usage in its low bits).
//!
//! It is the narrow door through which code outside the fence core keeps fences in shared
//! tables (a reservation object's snapshots): a [`RawFence`] is an uncounted address with a
//! small tag, and turns back into a counted [`Fence`] handle or a borrowed view only while
//! somebody else keeps a counted handle to the same fence, which the table's owner
//! guarantees.

use super::Fence;
use super::core::Inner;
use crate::sync::Arc;
use std::mem::ManuallyDrop;

/// The tag bits of a [`RawFence`]: the low bits of a fence's address, always zero.
pub(crate) const TAG_BITS: usize = 2;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
const _: () = assert!(
    std::mem::align_of::<Inner>() > TAG_MASK,
    "no room for the tag"
);

/// A fence's address and a tag of [`TAG_BITS`] bits in one word. It holds no
/// reference: whoever stores one keeps a counted [`Fence`] for as long as anybody may turn it
/// back into one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RawFence(usize);

impl RawFence {
    /// `fence`'s address tagged with `tag` (`tag` < 2^[`TAG_BITS`]), uncounted.
    pub(crate) fn new(fence: &Fence, tag: u8) -> RawFence {
        debug_assert!(usize::from(tag) <= TAG_MASK);
        RawFence(Arc::as_ptr(&fence.0).expose_provenance() | usize::from(tag))
    }

    /// The word.
    pub(crate) fn to_bits(self) -> usize {
        self.0
    }

    /// A word made by [`to_bits`](Self::to_bits).
    pub(crate) fn from_bits(bits: usize) -> RawFence {
        RawFence(bits)
    }

    /// The tag.
    pub(crate) fn tag(self) -> u8 {
        // The mask keeps the value below 4.
        (self.0 & TAG_MASK) as u8
    }

    /// Whether this is `fence`'s address (whatever the tag).
    pub(crate) fn is(self, fence: &Fence) -> bool {
        self.0 & !TAG_MASK == Arc::as_ptr(&fence.0).addr()
    }

    fn ptr(self) -> *const Inner {
        std::ptr::with_exposed_provenance(self.0 & !TAG_MASK)
    }

    /// Calls `look` with a view of the fence, without touching its reference count.
    ///
    /// # Safety
    /// `self` was made by [`new`](Self::new), and a counted handle to its fence is held
    /// elsewhere until this returns.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn peek<R>(self, look: impl FnOnce(&Fence) -> R) -> R {
        // SAFETY: the address came from `Arc::as_ptr` of a live fence (`new`), and by the
        // caller's promise that fence is still alive, so it is a valid `Arc` pointer; the
        // handle is never dropped, so the count is left as it was.
        let view = ManuallyDrop::new(Fence(unsafe { Arc::from_raw(self.ptr()) }));
        look(&view)
    }

    /// A counted handle to the fence.
    ///
    /// # Safety
    /// As [`peek`](Self::peek).
    #[allow(unsafe_code)]
    pub(crate) unsafe fn to_fence(self) -> Fence {
        // SAFETY: as in `peek`, a valid pointer of a live `Arc`; the count goes up by one
        // for the handle returned, which owns that reference.
        unsafe {
            Arc::increment_strong_count(self.ptr());
            Fence(Arc::from_raw(self.ptr()))
        }
    }
}
