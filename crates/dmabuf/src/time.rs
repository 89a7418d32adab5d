//! Monotonic timestamps in nanoseconds (kernel: `ktime_t` on `CLOCK_MONOTONIC`).
//!
//! Fence timestamps and deadlines are absolute `CLOCK_MONOTONIC` times, as in the kernel, so they
//! can be compared with the values real sync_file fds report. [`std::time::Instant`] has no way
//! to get at its nanoseconds, hence this small type.

use std::fmt;
use std::time::Duration;

/// An absolute `CLOCK_MONOTONIC` time in nanoseconds.
///
/// ```
/// use dmabuf::MonotonicTime;
/// use std::time::Duration;
/// let now = MonotonicTime::now();
/// let later = now + Duration::from_millis(5);
/// assert!(later > now);
/// assert_eq!(later.checked_duration_since(now), Some(Duration::from_millis(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonotonicTime(u64);

impl MonotonicTime {
    /// The current `CLOCK_MONOTONIC` time.
    pub fn now() -> Self {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        // CLOCK_MONOTONIC is never negative.
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
        Self(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// A time from raw nanoseconds since the clock's epoch (boot).
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the clock's epoch (boot).
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this time is, or `None` if it is not after it.
    pub fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(d))
    }
}

impl std::ops::Add<Duration> for MonotonicTime {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        self.saturating_add(d)
    }
}

impl fmt::Display for MonotonicTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}
