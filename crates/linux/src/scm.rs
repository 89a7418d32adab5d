//! Passing descriptors to another process over a Unix socket (`SCM_RIGHTS`).
//!
//! A syncobj file, a dma-buf or a sync_file reaches another process as an open descriptor
//! inside a message: [`send_fds`] sends a payload with a set of descriptors (the kernel gives
//! the receiver its own references; the sender's stay open), [`recv_fds`] receives one
//! message as owned descriptors, close-on-exec (`MSG_CMSG_CLOEXEC`), so none leaks into a
//! program the receiver runs.
//!
//! A message is taken whole or not at all: if its payload did not fit the buffer, or it
//! carried more descriptors than the receiver asked for, every descriptor that arrived is
//! closed and the call answers [`Error::MessageTruncated`]; the kernel itself drops the
//! descriptors that did not fit the control buffer.
//!
//! Kernel: `net/unix/af_unix.c`, `net/core/scm.c`; [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).

use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;

/// The most descriptors one message carries (`SCM_MAX_FD`); the kernel refuses more with
/// `EINVAL`.
pub const MAX_FDS: usize = 253;

/// One message received by [`recv_fds`].
#[derive(Debug)]
pub struct ReceivedFds {
    /// Payload bytes received into the buffer; 0 with no descriptors when the peer has
    /// closed a stream socket.
    pub bytes: usize,
    /// The descriptors, in the order they were sent, each close-on-exec.
    pub fds: Vec<OwnedFd>,
}

/// `sendmsg(socket, payload, SCM_RIGHTS: fds, MSG_NOSIGNAL)`—Sends `payload` with the
/// descriptors `fds` attached to its first byte; on a stream socket the rest of a payload
/// the kernel took only in part follows in further sends. A peer that has gone answers
/// `EPIPE` (no `SIGPIPE`).
///
/// # Errors
/// Before the call: [`Error::ZeroLength`] (`EINVAL`) for descriptors with an empty payload (a
/// stream socket would send nothing, and them with it); then [`Error::Sys`] with the kernel's errno (`EINVAL` for more than [`MAX_FDS`],
/// `ENOTSOCK` for a descriptor that is not a socket, `EPIPE`, `ETOOMANYREFS`).
pub fn send_fds(socket: impl AsFd, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
    if payload.is_empty() && !fds.is_empty() {
        return Err(Error::ZeroLength);
    }
    let call = "sendmsg(SCM_RIGHTS)";
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        // The buffer was sized for exactly this message.
        return Err(Error::sys(call)(Errno::NOBUFS));
    }
    let sent = loop {
        match rustix::net::sendmsg(
            &socket,
            &[IoSlice::new(payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys(call)(e)),
        }
    };
    let mut rest = &payload[sent.min(payload.len())..];
    while !rest.is_empty() {
        match rustix::net::send(&socket, rest, SendFlags::NOSIGNAL) {
            Ok(n) => rest = &rest[n.min(rest.len())..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("send")(e)),
        }
    }
    Ok(())
}

/// `recvmsg(socket, buf, MSG_CMSG_CLOEXEC)`—Receives one message: its payload into `buf` and
/// at most `max_fds` descriptors, owned and close-on-exec. Blocks as the socket does.
///
/// # Errors
/// [`Error::MessageTruncated`] (`EMSGSIZE`) when the payload did not fit `buf` (datagram and
/// sequenced-packet sockets) or the message carried more than `max_fds` descriptors: every
/// descriptor that arrived is closed. [`Error::Sys`] with the kernel's errno (`ENOTSOCK`,
/// `EAGAIN` on a non-blocking socket with nothing to read).
pub fn recv_fds(socket: impl AsFd, buf: &mut [u8], max_fds: usize) -> Result<ReceivedFds> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(max_fds))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            &socket,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(msg) => break msg,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("recvmsg")(e)),
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    let cut = msg
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC);
    if cut || fds.len() > max_fds {
        return Err(Error::MessageTruncated {
            bytes: msg.bytes.min(buf.len()),
            fds: fds.len(),
        });
    }
    Ok(ReceivedFds {
        bytes: msg.bytes,
        fds,
    })
}
