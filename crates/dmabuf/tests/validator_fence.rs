//! The validator wired into the fence layer (feature `lockdep`): waits are fence waits,
//! signalling and callbacks are signalling sections, the library's own locks are tracked.
#![cfg(feature = "lockdep")]

use dmabuf::Timeline;
use dmabuf::fence::FenceContext;
use dmabuf::lockdep::{self, Acquire, Kind, LockClass, Mode, Mutex, capture, prime};
use std::time::Duration;

#[test]
fn wait_inside_a_callback_is_reported() {
    let ctx = FenceContext::new("test", "wait-in-cb");
    let (s, f) = ctx.next_fence();
    let (other_s, other) = ctx.next_fence();
    other_s.signal();
    f.add_callback(move |_| other.wait()).unwrap();
    let ((), reports) = capture(|| {
        s.signal();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::WaitInSignalling);
}

#[test]
fn zero_timeout_poll_inside_a_callback_is_fine() {
    let ctx = FenceContext::new("test", "poll-in-cb");
    let (s, f) = ctx.next_fence();
    let (_o, other) = ctx.next_fence();
    f.add_callback(move |_| {
        assert!(other.wait_timeout(Duration::ZERO).is_err());
    })
    .unwrap();
    let ((), reports) = capture(|| {
        s.signal();
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn reservation_lock_inside_a_callback_is_reported() {
    // Seed 000: unmapping (which takes the reservation lock) from a completion callback.
    let ctx = FenceContext::new("test", "resv-in-cb");
    let (s, f) = ctx.next_fence();
    f.add_callback(|_| {
        lockdep::acquire(&prime::RESERVATION, Mode::Exclusive, Acquire::default());
        lockdep::release(&prime::RESERVATION, 0);
    })
    .unwrap();
    let ((), reports) = capture(|| {
        s.signal();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
    assert!(
        reports[0]
            .cycle_classes()
            .contains(&"reservation_ww_class_mutex")
    );
}

static DRIVER: LockClass = LockClass::new("test.validator_fence.driver_lock");

#[test]
fn driver_lock_in_callback_and_around_wait_is_reported() {
    let ctx = FenceContext::new("test", "driver-lock");
    let driver = std::sync::Arc::new(Mutex::new(&DRIVER, 0u32));
    let ((), reports) = capture(|| {
        // Completion path: the callback takes the driver lock.
        let (s, f) = ctx.next_fence();
        let d = driver.clone();
        f.add_callback(move |_| *d.lock() += 1).unwrap();
        s.signal();
        // Submit path: holds the driver lock while waiting for a fence.
        let (s2, f2) = ctx.next_fence();
        s2.signal();
        let _g = driver.lock();
        f2.wait();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
    assert!(
        reports[0]
            .cycle_classes()
            .contains(&"test.validator_fence.driver_lock")
    );
}

#[test]
fn plain_producer_consumer_use_is_silent() {
    let ctx = FenceContext::new("test", "silent");
    let tl = Timeline::new("silent");
    let ((), reports) = capture(|| {
        for i in 1..=10 {
            let (s, f) = ctx.next_fence();
            f.add_callback(|f| assert!(f.is_signaled())).unwrap();
            let p = tl.create_fence(i).unwrap();
            p.add_callback(|_| {}).unwrap();
            tl.inc(1);
            s.signal();
            f.wait();
            p.wait();
        }
    });
    assert!(reports.is_empty(), "{reports:?}");
}
