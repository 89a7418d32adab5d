//! Fence contexts: the timelines fences are ordered on (kernel: `dma_fence_context_alloc()`).
//!
//! A context is a 64-bit id; fences on one context are totally ordered by their seqno, fences on
//! different contexts are not ordered at all. [`FenceContext`] bundles an id with the names every
//! fence on it reports, a seqno counter and the seqno comparison mode.
//!
//! # Rules
//! * Context ids are unique for the life of the process; 0 belongs to the stub fence.
//! * The id counter never wraps: once the ids are used up, [`try_alloc_contexts`] answers
//!   [`Error::ContextsExhausted`](crate::Error) and [`alloc_contexts`] (so
//!   [`FenceContext::new`]) panics, rather than hand out an id that is already in use. Only a
//!   reservation of about 2^64 ids gets there.
//! * Comparisons across contexts are errors ([`Error::ContextMismatch`](crate::Error)), not a
//!   silent `false` as in the kernel.

use super::core::{self, Names};
use super::{Fence, FenceOps, Signaller};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::num::NonZeroU64;
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

/// The next free context id; every id below it was handed out. It never wraps, so the last
/// id (`u64::MAX`) is never handed out. Plain std atomic: a global counter, not part of any
/// loom model.
static NEXT_CONTEXT: StdAtomicU64 = StdAtomicU64::new(1);

/// Allocates `n` consecutive fresh context ids and returns the first (kernel:
/// `dma_fence_context_alloc()`).
///
/// ```
/// use std::num::NonZeroU64;
/// let first = dmabuf::fence::alloc_contexts(NonZeroU64::new(3).unwrap());
/// let next = dmabuf::fence::alloc_contexts(NonZeroU64::MIN);
/// assert!(next >= first + 3);
/// ```
///
/// # Panics
/// If fewer than `n` ids are left ([`Error::ContextsExhausted`] from
/// [`try_alloc_contexts`]): the ids are 64-bit and never reused, so this happens only after
/// reservations of about 2^64 ids in all. Handing out an id twice instead would make two live
/// timelines one, whose fences then compare (and merge) as if ordered.
#[doc(alias = "dma_fence_context_alloc")]
pub fn alloc_contexts(n: NonZeroU64) -> u64 {
    match try_alloc_contexts(n.get()) {
        Ok(first) => first,
        Err(e) => panic!("cannot allocate {n} fence contexts: {e}"),
    }
}

/// Like [`alloc_contexts`], but a count of zero or more ids than are left is an error.
///
/// # Errors
/// * [`Error::ZeroContexts`] (`EINVAL`; the kernel WARNs) for `n == 0`.
/// * [`Error::ContextsExhausted`] (`ENOSPC`) if fewer than `n` ids are left: the counter
///   never wraps, so no id is handed out twice. On error nothing is allocated.
///
/// ```
/// use dmabuf::{Error, fence::try_alloc_contexts};
/// assert_eq!(try_alloc_contexts(0), Err(Error::ZeroContexts));
/// assert_eq!(try_alloc_contexts(u64::MAX), Err(Error::ContextsExhausted));
/// assert!(try_alloc_contexts(2).is_ok());
/// ```
pub fn try_alloc_contexts(n: u64) -> Result<u64> {
    if n == 0 {
        return Err(Error::ZeroContexts);
    }
    NEXT_CONTEXT
        .fetch_update(StdOrdering::Relaxed, StdOrdering::Relaxed, |next| {
            next.checked_add(n)
        })
        .map_err(|_| Error::ContextsExhausted)
}

/// Whether seqno `a` is later than `b` (kernel: `__dma_fence_is_later()`).
///
/// With `seqno64` a plain comparison; otherwise the lower 32 bits are compared with wrap-around,
/// as the kernel does for fences made by `dma_fence_init()` (and sw_sync).
///
/// ```
/// use dmabuf::fence::seqno_is_later;
/// assert!(seqno_is_later(true, 2, 1));
/// assert!(seqno_is_later(false, 1, u32::MAX as u64)); // wrapped
/// assert!(!seqno_is_later(true, 1, u32::MAX as u64));
/// ```
pub fn seqno_is_later(seqno64: bool, a: u64, b: u64) -> bool {
    if seqno64 {
        a > b
    } else {
        (a as u32).wrapping_sub(b as u32) as i32 > 0
    }
}

/// An issuer's timeline: a context id, names and a seqno counter.
///
/// ```
/// use dmabuf::fence::FenceContext;
/// let ctx = FenceContext::new("mydriver", "queue0");
/// let (issuer, fence) = ctx.next_fence();
/// assert_eq!(fence.seqno(), 1);
/// assert_eq!(fence.context(), ctx.id());
/// assert_eq!(fence.driver_name(), "mydriver");
/// issuer.signal();
/// assert!(fence.is_signaled());
/// ```
#[derive(Debug)]
pub struct FenceContext {
    id: u64,
    names: StdArc<Names>,
    next_seqno: StdAtomicU64,
    seqno64: bool,
}

impl FenceContext {
    /// A fresh context with 64-bit seqno ordering.
    ///
    /// # Panics
    /// If the context ids are used up, as [`alloc_contexts`] (only after reservations of
    /// about 2^64 ids); [`try_alloc_contexts`] with [`with_id`](Self::with_id) answers an
    /// error instead.
    pub fn new(
        driver: impl Into<Cow<'static, str>>,
        timeline: impl Into<Cow<'static, str>>,
    ) -> Self {
        let id = alloc_contexts(NonZeroU64::MIN);
        Self::with_id(id, driver, timeline)
    }

    /// A context over an id from [`alloc_contexts`] (for issuers that allocate many at once).
    pub fn with_id(
        id: u64,
        driver: impl Into<Cow<'static, str>>,
        timeline: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            id,
            names: StdArc::new(Names {
                driver: driver.into(),
                timeline: timeline.into(),
            }),
            next_seqno: StdAtomicU64::new(1),
            seqno64: true,
        }
    }

    /// Switches fences made from now on to the 32-bit wrapping comparison (kernel:
    /// `dma_fence_init()` rather than `dma_fence_init64()`).
    pub fn with_wrapping_seqno(mut self) -> Self {
        self.seqno64 = false;
        self
    }

    /// The context id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The driver name its fences report.
    pub fn driver_name(&self) -> &str {
        &self.names.driver
    }

    /// The timeline name its fences report.
    pub fn timeline_name(&self) -> &str {
        &self.names.timeline
    }

    /// Whether fences of this context compare seqnos as 64-bit numbers.
    pub fn is_seqno64(&self) -> bool {
        self.seqno64
    }

    /// Takes the next seqno (1, 2, 3, …) of this context.
    pub fn next_seqno(&self) -> u64 {
        self.next_seqno.fetch_add(1, StdOrdering::Relaxed)
    }

    /// A pending fence at the next seqno: the issuer half and a consumer handle.
    pub fn next_fence(&self) -> (Signaller, Fence) {
        self.fence(self.next_seqno())
    }

    /// A pending fence at the next seqno with issuer hooks.
    pub fn next_fence_with_ops(&self, ops: std::sync::Arc<dyn FenceOps>) -> (Signaller, Fence) {
        self.fence_with_ops(self.next_seqno(), Some(ops))
    }

    /// A pending fence at `seqno` (kernel: `dma_fence_init()`).
    #[doc(alias = "dma_fence_init")]
    pub fn fence(&self, seqno: u64) -> (Signaller, Fence) {
        self.fence_with_ops(seqno, None)
    }

    /// A pending fence at `seqno`, optionally with issuer hooks.
    pub fn fence_with_ops(
        &self,
        seqno: u64,
        ops: Option<std::sync::Arc<dyn FenceOps>>,
    ) -> (Signaller, Fence) {
        let fence = core::new_plain(self.id, self.names.clone(), seqno, self.seqno64, ops);
        (Signaller::new(fence.clone()), fence)
    }
}
