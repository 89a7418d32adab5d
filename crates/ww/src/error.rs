//! What a ww_mutex lock can answer besides "locked", with the kernel's errno for each (see
//! [`WwError::errno`] for the errno type).

use rustix::io::Errno;

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
    /// The kernel's errno for this answer.
    ///
    /// # The errno type
    /// An errno is a [`rustix::io::Errno`], re-exported as [`Errno`](crate::Errno): the type
    /// rustix's system calls fail with, with a named constant for every errno
    /// (`Errno::DEADLK`), numbered on Linux as the kernel numbers it. Code that also makes
    /// system calls compares a ww answer's errno with theirs directly, no errno is a bare
    /// number, and the `dmabuf` crate's own `Errno` converts from it with `From`.
    ///
    /// ```
    /// use dmabuf_ww::{Errno, WwError};
    /// assert_eq!(WwError::Deadlock.errno(), Errno::DEADLK);
    /// assert_eq!(WwError::Deadlock.errno().raw_os_error(), 35);
    /// ```
    pub fn errno(self) -> Errno {
        match self {
            WwError::Deadlock => Errno::DEADLK,
            WwError::AlreadyHeld => Errno::ALREADY,
            WwError::Interrupted => Errno::INTR,
            WwError::ClassMismatch => Errno::INVAL,
        }
    }
}
