//! Fence arrays: one fence standing for several (kernel: `dma_fence_array`).
//!
//! An array signals once every member has; it carries the first member error it saw. Members
//! are armed lazily — only when somebody waits on, adds a callback to, or enables the array —
//! with one callback each, every callback holding a reference to the array until it runs.
//!
//! # Rules
//! * Members must be leaves: a container member is rejected ([`Error::ContainerMember`]);
//!   flatten with [`unwrap::leaves`](super::unwrap::leaves) or
//!   [`merge`](super::unwrap::merge) first. This bounds nesting and so drop depth.
//! * The array gets its own context and seqno from the caller.
//!
//! # Differences from the kernel
//! * No `signal_on_any` (removed from mainline in 2026); use [`wait_any`](super::wait_any).
//! * The last member's callback signals the array directly: callbacks run outside fence locks
//!   here, so the kernel's irq_work hop against lock inversion is not needed.
//!
//! Kernel: `drivers/dma-buf/dma-fence-array.c`.

use super::Fence;
use super::core::{self, Container, Names, SetError};
use crate::error::{Errno, Error, Result};
use crate::sync::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc as StdArc;
use std::sync::OnceLock;

static ARRAY_NAMES: OnceLock<StdArc<Names>> = OnceLock::new();

/// An array's own state.
pub(crate) struct ArrayState {
    /// The members, in the order given.
    pub(crate) members: Box<[Fence]>,
    /// Members not yet signalled, counted once signalling is enabled.
    pending: AtomicUsize,
    /// First member error seen (positive errno), 0 if none.
    error: AtomicI32,
}

impl ArrayState {
    /// Polls an array nobody enabled: complete iff every member has signalled.
    pub(crate) fn poll(&self, array: &Fence) -> Option<SetError> {
        if array.flags() & core::bits::ENABLE_SIGNAL != 0 {
            return (self.pending.load(Ordering::Acquire) == 0).then(|| self.set_error());
        }
        if !self.members.iter().all(Fence::is_signaled) {
            return None;
        }
        Some(
            self.members
                .iter()
                .find_map(Fence::error)
                .map_or(SetError::Keep, SetError::Set),
        )
    }

    fn set_error(&self) -> SetError {
        Errno::from_raw(self.error.load(Ordering::Acquire)).map_or(SetError::Keep, SetError::Set)
    }

    /// One member completed: record its error, and signal the array if it was the last.
    fn member_done(&self, array: &Fence, member: &Fence) {
        if let Some(e) = member.error() {
            let _ = self
                .error
                .compare_exchange(0, e.raw(), Ordering::AcqRel, Ordering::Relaxed);
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            core::signal(array, self.set_error(), None);
        }
    }
}

fn state(array: &Fence) -> &ArrayState {
    match array.0.container.as_deref() {
        Some(Container::Array(a)) => a,
        _ => unreachable!("array hook on a non-array fence"),
    }
}

/// Arms one callback per member; returns `false` if there is nothing to wait for.
pub(crate) fn enable(array: &Fence) -> bool {
    let a = state(array);
    if a.members.is_empty() {
        return false;
    }
    for m in a.members.iter() {
        let arr = array.clone();
        if let Err(already) = m.add_callback(move |member| state(&arr).member_done(&arr, member)) {
            drop(already);
            a.member_done(array, m);
        }
    }
    true
}

impl Fence {
    /// A fence that signals when every one of `members` has (kernel:
    /// `dma_fence_array_create()`), on `context` at `seqno`.
    ///
    /// # Errors
    /// [`Error::ContainerMember`] (`EINVAL`) if a member is itself an array or chain.
    ///
    /// ```
    /// use dmabuf::fence::{Fence, FenceContext, alloc_contexts};
    /// use std::num::NonZeroU64;
    /// let ctx = FenceContext::new("doc", "array");
    /// let (a, fa) = ctx.next_fence();
    /// let (b, fb) = ctx.next_fence();
    /// let array = Fence::new_array(vec![fa, fb], alloc_contexts(NonZeroU64::MIN), 1).unwrap();
    /// a.signal();
    /// assert!(!array.is_signaled());
    /// b.signal();
    /// assert!(array.is_signaled());
    /// ```
    #[doc(alias = "dma_fence_array_create")]
    pub fn new_array(members: Vec<Fence>, context: u64, seqno: u64) -> Result<Fence> {
        if members.iter().any(Fence::is_container) {
            return Err(Error::ContainerMember);
        }
        Ok(Fence::array_of_leaves(members, context, seqno))
    }

    /// [`new_array`](Self::new_array) for callers that built `members` from leaves only, so
    /// there is no error to hide.
    pub(crate) fn array_of_leaves(members: Vec<Fence>, context: u64, seqno: u64) -> Fence {
        debug_assert!(
            !members.iter().any(Fence::is_container),
            "array_of_leaves given a container"
        );
        let n = members.len();
        let state = ArrayState {
            members: members.into_boxed_slice(),
            pending: AtomicUsize::new(n),
            error: AtomicI32::new(0),
        };
        let names = core::static_names(&ARRAY_NAMES, "dma_fence_array", "unbound");
        core::new_inner(
            context,
            names,
            seqno,
            true,
            None,
            Some(Box::new(Container::Array(state))),
        )
    }

    /// The members if this is an array (kernel: `to_dma_fence_array()`), else `None`.
    pub fn array_members(&self) -> Option<&[Fence]> {
        match self.0.container.as_deref() {
            Some(Container::Array(a)) => Some(&a.members),
            _ => None,
        }
    }
}
