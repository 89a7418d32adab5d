//! Port of igt-gpu-tools' `tests/syncobj_eventfd.c` (`DRM_IOCTL_SYNCOBJ_EVENTFD`: being told
//! when a point is available or signalled) to the in-process model.
//!
//! Mapping: an eventfd registered with `syncobj_eventfd()` is a [`Syncobj::notify`] callback
//! that counts, checked against a [`Syncobj::notified`] future of the same point and flags
//! (both must agree); flags 0 is [`NotifyWhen::Signaled`] and
//! `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE` [`NotifyWhen::Available`]. Notifications run
//! synchronously, so "not signalled yet" is checked at once rather than by polling the fd
//! for 10 ms. A sw_sync timeline is a [`Timeline`]; `syncobj_attach_sw_sync()` attaches its
//! point 1 at point 0 (imported as a sync file) or at point 1 (through a binary syncobj and a
//! transfer).
//!
//! Not ported: `invalid-bad-flags` (the flags are an enum: no other value exists),
//! `invalid-illegal-handle`, `invalid-illegal-eventfd`, `invalid-bad-pad` (handles, fds and
//! padding belong to the kernel layer).
#[path = "syncobj_support/mod.rs"]
mod support;

use dmabuf::Timeline;
use dmabuf::syncobj::{NotifyFuture, NotifyWhen, Point, Syncobj};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Waker};
use support::attach_sw_sync;

/// An eventfd: a counter a callback bumps, and a future for the same notification.
struct EventFd {
    count: Arc<AtomicU32>,
    future: Pin<Box<NotifyFuture>>,
}

impl EventFd {
    /// `syncobj_eventfd(fd, syncobj, point, flags, ev_fd)`.
    fn register(s: &Syncobj, point: Point, when: NotifyWhen) -> EventFd {
        let count = Arc::new(AtomicU32::new(0));
        let c = count.clone();
        s.notify(point, when, move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let mut future = Box::pin(s.notified(point, when));
        let ready = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        let ev = EventFd { count, future };
        assert_eq!(
            ready.is_ready(),
            ev.signaled(),
            "callback and future disagree"
        );
        ev
    }

    fn signaled(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// `ev_fd_assert_unsignaled()`.
    fn assert_unsignaled(&mut self) {
        assert!(!self.signaled(), "notified too early");
        assert!(
            self.poll_future().is_none(),
            "the future resolved too early"
        );
    }

    /// `ev_fd_assert_signaled()`: notified exactly once.
    fn assert_signaled(&mut self) {
        assert_eq!(self.count.load(Ordering::SeqCst), 1, "notified once");
        assert!(self.poll_future().is_some(), "the future resolved");
    }

    fn poll_future(&mut self) -> Option<dmabuf::Fence> {
        match self
            .future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            std::task::Poll::Ready(f) => Some(f),
            std::task::Poll::Pending => None,
        }
    }
}

/// `test_wait()`: the fence is attached before the registrations.
fn wait(point: Point) {
    let s = Syncobj::new();
    let timeline = attach_sw_sync(&s, point);
    let mut ev_wait = EventFd::register(&s, point, NotifyWhen::Signaled);
    let mut ev_avail = EventFd::register(&s, point, NotifyWhen::Available);
    ev_wait.assert_unsignaled();
    ev_avail.assert_signaled();
    timeline.inc(1);
    ev_wait.assert_signaled();
}

/// `test_wait_before_signal()`: the registrations come before the fence.
fn wait_before_signal(point: Point) {
    let s = Syncobj::new();
    let mut ev_wait = EventFd::register(&s, point, NotifyWhen::Signaled);
    let mut ev_avail = EventFd::register(&s, point, NotifyWhen::Available);
    ev_wait.assert_unsignaled();
    ev_avail.assert_unsignaled();
    let timeline: Timeline = attach_sw_sync(&s, point);
    ev_wait.assert_unsignaled();
    ev_avail.assert_signaled();
    timeline.inc(1);
    ev_wait.assert_signaled();
}

/// `test_wait_signaled()`: the fence has signalled before the registrations.
fn wait_signaled(point: Point) {
    let s = Syncobj::new();
    let timeline = attach_sw_sync(&s, point);
    timeline.inc(1);
    let mut ev_wait = EventFd::register(&s, point, NotifyWhen::Signaled);
    let mut ev_avail = EventFd::register(&s, point, NotifyWhen::Available);
    ev_wait.assert_signaled();
    ev_avail.assert_signaled();
}

// ports igt syncobj_eventfd: binary-wait
#[test]
fn binary_wait() {
    wait(Point::BINARY);
}

// ports igt syncobj_eventfd: binary-wait-before-signal
#[test]
fn binary_wait_before_signal() {
    wait_before_signal(Point::BINARY);
}

// ports igt syncobj_eventfd: binary-wait-signaled
#[test]
fn binary_wait_signaled() {
    wait_signaled(Point::BINARY);
}

// ports igt syncobj_eventfd: timeline-wait
#[test]
fn timeline_wait() {
    wait(Point(1));
}

// ports igt syncobj_eventfd: timeline-wait-before-signal
#[test]
fn timeline_wait_before_signal() {
    wait_before_signal(Point(1));
}

// ports igt syncobj_eventfd: timeline-wait-signaled
#[test]
fn timeline_wait_signaled() {
    wait_signaled(Point(1));
}
