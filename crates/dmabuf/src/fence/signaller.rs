//! The issuer half of a fence: the only handle that can set an error and signal.
//!
//! # Rules
//! * [`Signaller::signal`] consumes the issuer, so a second signal cannot be written (the kernel
//!   returned `-EINVAL`, now ignores it; st-dma-fence `test_signaling` is this type guarantee).
//! * The error can only be set before signalling: [`Signaller::set_error`] takes `&mut self` on
//!   a live issuer, and an [`Errno`] is always in the valid range.
//! * An issuer dropped unsignalled signals its fence with [`Errno::ECANCELED`], logs a
//!   `tracing` warning and calls the leak hook ([`set_leak_hook`]) so tests can observe it —
//!   the "every fence signals eventually" rule of the kernel's Rust `DriverFence`.

use super::Fence;
use super::core::{self, SetError};
use crate::error::Errno;
use crate::time::MonotonicTime;
use std::sync::RwLock;

/// The issuer of one fence (kernel Rust: `DriverFence`).
///
/// `Send` so it can move to the thread or "interrupt handler" that completes the work; not
/// `Clone`: one issuer, one signal.
///
/// ```compile_fail
/// let ctx = dmabuf::fence::FenceContext::new("doc", "once");
/// let (issuer, _fence) = ctx.next_fence();
/// issuer.signal();
/// issuer.signal(); // error: use of moved value
/// ```
#[derive(Debug)]
#[must_use = "dropping an issuer unsignalled cancels its fence (ECANCELED)"]
pub struct Signaller {
    fence: Fence,
}

/// A function told about every issuer dropped unsignalled (see [`set_leak_hook`]).
///
/// Shared so a running hook may itself drop issuers or replace the hook without deadlocking.
pub type LeakHook = std::sync::Arc<dyn Fn(&Fence) + Send + Sync>;
static LEAK_HOOK: RwLock<Option<LeakHook>> = RwLock::new(None);

/// Installs a function called with the fence whenever an issuer is dropped unsignalled, and
/// returns the previous one. `None` removes it.
///
/// The hook runs after the fence was signalled with `ECANCELED`, in the dropping thread.
/// Tests filter by the fence's context, since hooks are process-wide.
pub fn set_leak_hook(hook: Option<LeakHook>) -> Option<LeakHook> {
    let mut slot = LEAK_HOOK.write().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut *slot, hook)
}

impl Signaller {
    pub(crate) fn new(fence: Fence) -> Self {
        Self { fence }
    }

    /// A consumer handle to the fence this issuer signals.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Records an error to signal with (kernel: `dma_fence_set_error()`); the last one set wins.
    ///
    /// Ignored, with a warning, if the fence was already signalled through its ops' poll.
    #[doc(alias = "dma_fence_set_error")]
    pub fn set_error(&mut self, error: Errno) {
        let inner = &*self.fence.0;
        let _st = inner.lock();
        if self.fence.is_signaled_flag() {
            tracing::warn!(target: "dmabuf::fence", fence = %self.fence, %error, "set_error on a signalled fence ignored");
            return;
        }
        inner
            .error
            .store(error.raw(), crate::sync::Ordering::Relaxed);
    }

    /// Signals the fence (kernel: `dma_fence_signal()`): waiters wake, callbacks run in this
    /// thread before it returns. Returns `false` if the fence had already signalled through its
    /// ops' poll (kernel: `dma_fence_check_and_signal()`'s "was already signalled").
    #[doc(alias = "dma_fence_signal")]
    pub fn signal(self) -> bool {
        self.emit(SetError::Keep, None)
    }

    fn emit(&self, error: SetError, timestamp: Option<MonotonicTime>) -> bool {
        tracing::trace!(target: "dmabuf::fence", context = self.fence.context(), seqno = self.fence.seqno(), "emit");
        core::signal(&self.fence, error, timestamp)
    }

    /// Signals with an error (kernel: `dma_fence_set_error()` + `dma_fence_signal()`).
    pub fn signal_with_error(self, error: Errno) -> bool {
        self.emit(SetError::Set(error), None)
    }

    /// Signals with a given timestamp (kernel: `dma_fence_signal_timestamp()`).
    #[doc(alias = "dma_fence_signal_timestamp")]
    pub fn signal_timestamp(self, timestamp: MonotonicTime) -> bool {
        self.emit(SetError::Keep, Some(timestamp))
    }
}

impl Drop for Signaller {
    fn drop(&mut self) {
        // `is_signaled` polls the ops: work the hardware already finished is not cancelled
        // just because nobody asked before the issuer went away.
        if self.fence.is_signaled() {
            return;
        }
        if core::signal(&self.fence, SetError::Set(Errno::ECANCELED), None) {
            tracing::warn!(target: "dmabuf::fence", fence = %self.fence, "fence issuer dropped without signalling; signalled with ECANCELED");
            let hook = LEAK_HOOK.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(hook) = hook {
                hook(&self.fence);
            }
        }
    }
}
