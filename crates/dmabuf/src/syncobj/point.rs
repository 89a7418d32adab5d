//! Timeline point numbers (kernel: the `u64` points of `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`,
//! `TIMELINE_SIGNAL`, `QUERY`, `TRANSFER` and `EVENTFD`).
//!
//! # Rules
//! * Every `u64` is a point. Point 0 is the syncobj's fence itself: what the binary calls
//!   see, and what a lookup, wait or transfer of point 0 uses (kernel: a point of 0 in the
//!   timeline ioctls "reproduces the behaviour of the binary set").
//!
//! # Differences from the kernel
//! * A type of its own, so a point cannot be passed where a count, a seqno or a timeout is
//!   meant.

use std::fmt;

/// A point on a sync object's timeline; [`Point::BINARY`] (0) is the syncobj's fence itself.
///
/// ```
/// use dmabuf::syncobj::Point;
/// assert_eq!(Point::from(7), Point(7));
/// assert!(Point::BINARY.is_binary());
/// assert_eq!(Point(3).to_string(), "3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Point(pub u64);

impl Point {
    /// Point 0: the syncobj's fence itself, as the binary calls use it.
    pub const BINARY: Point = Point(0);

    /// The point's number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether this is point 0, the syncobj's fence itself.
    pub const fn is_binary(self) -> bool {
        self.0 == 0
    }
}

impl From<u64> for Point {
    fn from(n: u64) -> Point {
        Point(n)
    }
}

impl From<Point> for u64 {
    fn from(p: Point) -> u64 {
        p.0
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
