//! What a ww_mutex lock can answer besides "locked", with the kernel's errno for each.

/// Why a lock attempt did not lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WwError {
    /// An older transaction needs a lock this one holds or waits for: release every lock of
    /// the context, then [`lock_slow`](crate::WwMutex::lock_slow) the contended one and
    /// retry (kernel: `-EDEADLK`).
    #[error("deadlock avoided: back off and retry with lock_slow (EDEADLK)")]
    Deadlock,
    /// The context already holds this mutex (kernel: `-EALREADY`).
    #[error("already held by this acquire context (EALREADY)")]
    AlreadyHeld,
    /// The wait was cancelled through a [`CancelToken`](crate::CancelToken) (kernel:
    /// `-EINTR`).
    #[error("interrupted (EINTR)")]
    Interrupted,
    /// The mutex belongs to another class than the context (kernel: a debug warning; here
    /// refused, since stamps of different classes do not order).
    #[error("mutex and acquire context belong to different ww classes (EINVAL)")]
    ClassMismatch,
}

impl WwError {
    /// The kernel's errno for this answer (positive).
    ///
    /// ```
    /// assert_eq!(dmabuf_ww::WwError::Deadlock.errno(), 35);
    /// ```
    pub fn errno(self) -> i32 {
        match self {
            WwError::Deadlock => 35,      // EDEADLK
            WwError::AlreadyHeld => 114,  // EALREADY
            WwError::Interrupted => 4,    // EINTR
            WwError::ClassMismatch => 22, // EINVAL
        }
    }
}
