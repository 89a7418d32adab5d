//! Descriptors passed over Unix sockets (`SCM_RIGHTS`), natively, with memfds standing in for
//! dma-bufs and syncobj files: they arrive owned and close-on-exec with their payload, in this
//! process and in another; a message that does not fit (too many descriptors, a payload cut
//! short) is refused with every descriptor that arrived closed; bad sockets and peers get the
//! kernel's errno. No test leaks a descriptor.

mod common;
use common::{child_socket, no_leak, spawn_child};
use dmabuf_linux::{Error, MAX_FDS, recv_fds, send_fds};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::MemfdFlags;
use rustix::io::{Errno, FdFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::os::unix::net::UnixStream;

/// A memfd holding `text`.
fn memfd(text: &str) -> OwnedFd {
    let fd = rustix::fs::memfd_create("fd_passing", MemfdFlags::CLOEXEC).expect("memfd");
    rustix::io::write(&fd, text.as_bytes()).expect("write");
    fd
}

/// What a memfd holds (read from its start, whatever its offset).
fn contents(fd: &OwnedFd) -> String {
    let mut buf = [0u8; 64];
    let n = rustix::io::pread(fd, &mut buf, 0).expect("pread");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socketpair")
}

#[test]
fn descriptors_arrive_owned_close_on_exec_and_in_order_with_their_payload() {
    no_leak(|| {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let files = [memfd("first"), memfd("second"), memfd("third")];
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
        send_fds(&a, b"three files", &borrowed).expect("send");
        let mut buf = [0u8; 64];
        let got = recv_fds(&b, &mut buf, 3).expect("receive");
        assert_eq!(&buf[..got.bytes], b"three files");
        let texts: Vec<String> = got.fds.iter().map(contents).collect();
        assert_eq!(texts, ["first", "second", "third"]);
        for fd in &got.fds {
            let flags = rustix::io::fcntl_getfd(fd).expect("F_GETFD");
            assert!(flags.contains(FdFlags::CLOEXEC), "MSG_CMSG_CLOEXEC");
        }
        // The sender's descriptors stay open and are the same files.
        rustix::io::write(&files[0], b"+").expect("write");
        assert_eq!(contents(&got.fds[0]), "first+");

        // A message without descriptors, and the end of the stream.
        send_fds(&a, b"plain", &[]).expect("send");
        let got = recv_fds(&b, &mut buf, 3).expect("receive");
        assert_eq!((got.bytes, got.fds.len()), (5, 0));
        drop(a);
        let got = recv_fds(&b, &mut buf, 3).expect("receive");
        assert_eq!((got.bytes, got.fds.len()), (0, 0));
    });
}

#[test]
fn more_descriptors_than_asked_for_are_refused_and_closed() {
    no_leak(|| {
        let (a, b) = seqpacket_pair();
        let files = [memfd("0"), memfd("1"), memfd("2"), memfd("3")];
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
        let mut buf = [0u8; 16];
        // The control buffer holds the descriptors asked for and, rounded up to its
        // alignment, maybe a few more: the kernel installs what fits and drops the rest
        // (MSG_CTRUNC); the receiver closes whatever arrived.
        let mut dropped_by_the_kernel = false;
        for (sent, asked) in [(4, 2), (1, 0), (2, 1), (4, 0)] {
            send_fds(&a, b"x", &borrowed[..sent]).expect("send");
            let err = recv_fds(&b, &mut buf, asked).expect_err("too many");
            let Error::MessageTruncated { bytes: 1, fds } = err else {
                panic!("{sent} for {asked}: {err:?}");
            };
            assert!(fds <= sent, "{sent} for {asked}: {fds}");
            dropped_by_the_kernel |= fds < sent;
            assert_eq!(err.errno(), Errno::MSGSIZE);
        }
        assert!(
            dropped_by_the_kernel,
            "no case overflowed the control buffer"
        );
    });
}

#[test]
fn a_payload_cut_short_is_refused_with_its_descriptors_closed() {
    no_leak(|| {
        let (a, b) = seqpacket_pair();
        let file = memfd("payload");
        send_fds(&a, &[7u8; 100], &[file.as_fd()]).expect("send");
        let mut small = [0u8; 10];
        let err = recv_fds(&b, &mut small, 4).expect_err("cut");
        assert!(
            matches!(err, Error::MessageTruncated { bytes: 10, fds: 1 }),
            "{err:?}"
        );
        // The socket goes on: the next message arrives whole.
        send_fds(&a, b"next", &[file.as_fd()]).expect("send");
        let mut buf = [0u8; 10];
        let got = recv_fds(&b, &mut buf, 4).expect("receive");
        assert_eq!((&buf[..got.bytes], got.fds.len()), (&b"next"[..], 1));
    });
}

#[test]
fn bad_input_gets_a_typed_error_or_the_kernels_errno() {
    no_leak(|| {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let file = memfd("f");
        // Descriptors ride on payload bytes: an empty payload cannot carry them.
        let err = send_fds(&a, b"", &[file.as_fd()]).expect_err("empty");
        assert!(matches!(err, Error::ZeroLength), "{err:?}");
        assert_eq!(err.errno(), Errno::INVAL);
        // More than SCM_MAX_FD.
        let many = vec![file.as_fd(); MAX_FDS + 1];
        assert_eq!(send_fds(&a, b"x", &many).unwrap_err().errno(), Errno::INVAL);
        let most = vec![file.as_fd(); MAX_FDS];
        send_fds(&a, b"x", &most).expect("SCM_MAX_FD descriptors");
        let got = recv_fds(&b, &mut [0u8; 1], MAX_FDS).expect("receive");
        assert_eq!(got.fds.len(), MAX_FDS);
        drop(got);
        // Not a socket.
        for err in [
            send_fds(&file, b"x", &[]).unwrap_err(),
            recv_fds(&file, &mut [0u8; 1], 1).unwrap_err(),
        ] {
            assert!(matches!(err, Error::Sys { .. }), "{err:?}");
            assert_eq!(err.errno(), Errno::NOTSOCK);
        }
        // A peer that has gone: EPIPE, not a SIGPIPE that would kill the test.
        drop(b);
        assert_eq!(
            send_fds(&a, b"x", &[file.as_fd()]).unwrap_err().errno(),
            Errno::PIPE
        );
        // Nothing to read on a non-blocking socket.
        let (c, _d) = UnixStream::pair().expect("socketpair");
        c.set_nonblocking(true).expect("non-blocking");
        assert_eq!(
            recv_fds(&c, &mut [0u8; 1], 1).unwrap_err().errno(),
            Errno::AGAIN
        );
    });
}

/// The child's side of [`descriptors_reach_another_process`]: receives two memfds, appends to
/// each and sends them back.
fn child(socket: UnixStream) {
    let mut buf = [0u8; 16];
    let got = recv_fds(&socket, &mut buf, 2).expect("receive");
    assert_eq!(&buf[..got.bytes], b"two");
    for fd in &got.fds {
        let text = contents(fd);
        rustix::io::pwrite(fd, b" seen", text.len() as u64).expect("write");
    }
    let borrowed: Vec<BorrowedFd<'_>> = got.fds.iter().map(AsFd::as_fd).collect();
    send_fds(&socket, b"back", &borrowed).expect("send back");
}

#[test]
fn descriptors_reach_another_process() {
    if let Some(socket) = child_socket() {
        return child(socket);
    }
    no_leak(|| {
        let (parent, child) = UnixStream::pair().expect("socketpair");
        let run = spawn_child("descriptors_reach_another_process", child);
        let files = [memfd("one"), memfd("two")];
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
        send_fds(&parent, b"two", &borrowed).expect("send");
        let mut buf = [0u8; 16];
        let got = recv_fds(&parent, &mut buf, 2).expect("receive");
        assert_eq!(&buf[..got.bytes], b"back");
        // The same files came back, written by the other process.
        assert_eq!(contents(&files[0]), "one seen");
        assert_eq!(contents(&got.fds[1]), "two seen");
        run.join().expect("the child passed");
    });
}
