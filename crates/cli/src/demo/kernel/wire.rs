//! The sockets between the stage processes: `SOCK_SEQPACKET` pairs, so every message is one
//! packet with its boundaries kept, each a JSON [`Msg`] with descriptors riding along
//! (`SCM_RIGHTS`, [`dmabuf_linux::send_fds`]). A peer that exits, however it exits, closes
//! its end: the next receive answers [`WireError::HungUp`] and [`Channel::hung_up`] says so
//! at once, which is how a stage notices a dead neighbour.

use dmabuf_linux::{recv_fds, send_fds};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The largest message (a packet); reports travel in a memfd, so messages stay small.
const MAX_MESSAGE: usize = 4096;
/// The most descriptors one message carries.
const MAX_FDS: usize = 64;

/// What the stage processes tell each other and the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Msg {
    /// Parent → stage: the stage's role and options; descriptors: its neighbours' sockets in
    /// the role's order.
    Setup(super::stage::Setup),
    /// Camera → renderer, renderer → readers: the shared objects, sent once. Descriptors:
    /// the `buffers` dma-bufs, then the syncobj files the edge uses (acquire, release).
    Objects {
        /// How many of the descriptors are buffers.
        buffers: usize,
    },
    /// A frame to use: which buffer, and the acquire point that says it is ready (for the
    /// renderer → encoder edge, implicit sync: the point is only a name for the attempt).
    Frame {
        /// The frame number.
        frame: u64,
        /// Which attempt at the frame (0 unless an earlier render was reset).
        attempt: u32,
        /// The buffer's index in [`Msg::Objects`].
        buffer: usize,
        /// The acquire point on the edge's timeline.
        point: u64,
    },
    /// Reader → renderer: what became of the attempt at `point`.
    Answer {
        /// The attempt's point.
        point: u64,
        /// Whether the reader received it intact (false: its wait timed out).
        ok: bool,
    },
    /// Upstream → downstream: no more frames.
    End,
    /// Reader → parent: frame `frame` arrived intact at the reader (progress).
    Delivered {
        /// The frame.
        frame: u64,
    },
    /// Stage → parent: the stage's report, in the memfd sent along.
    Report,
}

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer closed its end: it exited or died.
    #[error("the {peer} hung up")]
    HungUp {
        /// The peer's name.
        peer: &'static str,
    },
    /// Nothing came within the time allowed.
    #[error("nothing from the {peer} in {} ms ({what})", .waited.as_millis())]
    TimedOut {
        /// The peer's name.
        peer: &'static str,
        /// What was awaited.
        what: &'static str,
        /// How long.
        waited: Duration,
    },
    /// The socket call failed.
    #[error("the socket to the {peer}: {source}")]
    Sys {
        /// The peer's name.
        peer: &'static str,
        /// The error.
        source: dmabuf_linux::Error,
    },
    /// The peer sent something that is not a message, or not the one expected.
    #[error("the {peer} sent {what}")]
    Garbled {
        /// The peer's name.
        peer: &'static str,
        /// What came.
        what: String,
    },
}

/// One end of a socket pair, named after the process at the other end.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

/// A connected pair of channels: `a`'s peer is named `b_name` and the other way round.
///
/// # Errors
/// `socketpair` failed.
pub fn pair(a_name: &'static str, b_name: &'static str) -> std::io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((Channel::new(a, b_name), Channel::new(b, a_name)))
}

impl Channel {
    /// The socket `fd`, whose other end is held by `peer`.
    pub fn new(fd: OwnedFd, peer: &'static str) -> Channel {
        Channel { fd, peer }
    }

    /// The peer's name.
    pub fn peer(&self) -> &'static str {
        self.peer
    }

    /// The socket itself (to send it on to a child).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends `msg` with `fds`.
    ///
    /// # Errors
    /// [`WireError::HungUp`] if the peer is gone, else [`WireError::Sys`].
    pub fn send(&self, msg: &Msg, fds: &[BorrowedFd<'_>]) -> Result<(), WireError> {
        let bytes = serde_json::to_vec(msg).expect("messages serialize");
        send_fds(&self.fd, &bytes, fds).map_err(|source| match source.errno() {
            rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET => {
                WireError::HungUp { peer: self.peer }
            }
            _ => WireError::Sys {
                peer: self.peer,
                source,
            },
        })
    }

    /// Receives the next message and its descriptors, waiting at most `timeout` (`None`: no
    /// limit) for it to come.
    ///
    /// # Errors
    /// [`WireError::TimedOut`] naming `what`; [`WireError::HungUp`] once the peer is gone and
    /// every message it sent was read; [`WireError::Garbled`] for a packet that is no
    /// message; [`WireError::Sys`].
    pub fn recv(
        &self,
        timeout: Option<Duration>,
        what: &'static str,
    ) -> Result<(Msg, Vec<OwnedFd>), WireError> {
        if let Some(limit) = timeout
            && !self.readable(limit)?
        {
            return Err(WireError::TimedOut {
                peer: self.peer,
                what,
                waited: limit,
            });
        }
        let mut buf = [0u8; MAX_MESSAGE];
        let got = recv_fds(&self.fd, &mut buf, MAX_FDS).map_err(|source| WireError::Sys {
            peer: self.peer,
            source,
        })?;
        if got.bytes == 0 {
            return Err(WireError::HungUp { peer: self.peer });
        }
        let msg = serde_json::from_slice(&buf[..got.bytes]).map_err(|e| WireError::Garbled {
            peer: self.peer,
            what: format!("{} bytes that are no message ({e})", got.bytes),
        })?;
        Ok((msg, got.fds))
    }

    /// Whether a message (or the hang-up) is there to read within `limit`.
    fn readable(&self, limit: Duration) -> Result<bool, WireError> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let timeout = Timespec::try_from(left).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            });
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(WireError::Sys {
                        peer: self.peer,
                        source: dmabuf_linux::Error::Sys {
                            call: "poll",
                            errno: e,
                        },
                    });
                }
            }
        }
    }

    /// Whether the peer has closed its end (it exited or died), without waiting.
    pub fn hung_up(&self) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::empty())];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
            && fds[0].revents().contains(PollFlags::HUP)
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::{Msg, WireError, pair};
    use std::time::Duration;

    #[test]
    fn messages_and_descriptors_cross_and_a_closed_end_is_a_hang_up() {
        let (a, b) = pair("camera", "renderer").unwrap();
        assert_eq!(a.peer(), "renderer");
        let memfd =
            rustix::fs::memfd_create("wire-test", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
        let frame = Msg::Frame {
            frame: 3,
            attempt: 1,
            buffer: 2,
            point: 4,
        };
        a.send(&frame, &[rustix::fd::AsFd::as_fd(&memfd)]).unwrap();
        a.send(&Msg::End, &[]).unwrap();
        let (got, fds) = b.recv(Some(Duration::from_secs(5)), "a frame").unwrap();
        assert_eq!((got, fds.len()), (frame, 1));
        assert!(!b.hung_up());
        assert!(matches!(
            b.recv(Some(Duration::from_millis(1)), "x"),
            Ok((Msg::End, _))
        ));
        assert!(matches!(
            b.recv(Some(Duration::from_millis(1)), "more"),
            Err(WireError::TimedOut { what: "more", .. })
        ));
        drop(a);
        assert!(b.hung_up());
        let e = b.recv(None, "anything").unwrap_err();
        assert_eq!(e.to_string(), "the camera hung up");
        assert!(matches!(
            b.send(&Msg::End, &[]),
            Err(WireError::HungUp { peer: "camera" })
        ));
    }
}
