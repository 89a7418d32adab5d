//! `poll(2)` on one descriptor with a timeout, restarted on `EINTR` with the time left.

use crate::error::{Error, Result};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use std::time::{Duration, Instant};

/// Polls `fd` for `events`; `None` waits forever, `Some(Duration::ZERO)` only asks.
///
/// Returns the events that are ready, empty when the time ran out.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Option<Duration>,
) -> Result<PollFlags> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let left = match (timeout, deadline) {
            (None, _) => None,
            (Some(_), Some(d)) => Some(d.saturating_duration_since(Instant::now())),
            // A timeout too large for an Instant: as good as forever.
            (Some(_), None) => None,
        };
        let ts = left.map(to_timespec);
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) => return Ok(PollFlags::empty()),
            Ok(_) => return Ok(fds[0].revents()),
            Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
            Err(e) => return Err(Error::sys("poll")(e)),
        }
    }
}

/// Waits until `fd` reports one of `events`, or the timeout passes ([`Error::TimedOut`]).
pub(crate) fn wait_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Option<Duration>,
) -> Result<()> {
    let got = poll_one(fd, events, timeout)?;
    if got.is_empty() {
        Err(Error::TimedOut)
    } else if got.contains(PollFlags::NVAL) {
        Err(Error::sys("poll")(Errno::BADF))
    } else {
        Ok(())
    }
}

fn to_timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    }
}
