//! The validator wired into the syncobj model (feature `lockdep`): every syncobj wait that can
//! block is a fence wait, and so is a wait for submit, even one that finds its point at once;
//! a zero-timeout poll is not; notifications run where the validator expects them.
#![cfg(feature = "lockdep")]

use dmabuf::Timeline;
use dmabuf::fence::FenceContext;
use dmabuf::lockdep::{Kind, LockClass, Mutex, capture};
use dmabuf::syncobj::{IfUnsubmitted, NotifyWhen, Point, Syncobj, Wait, WaitFlags};
use std::sync::Arc;
use std::time::Duration;

/// Runs `wait` inside a fence callback (a signalling section) and answers the reports.
fn in_a_callback(wait: impl FnOnce() + Send + 'static) -> Vec<dmabuf::lockdep::Report> {
    let (s, f) = FenceContext::new("test", "syncobj-in-cb").next_fence();
    f.add_callback(move |_| wait()).unwrap();
    capture(|| {
        s.signal();
    })
    .1
}

#[test]
fn a_timed_syncobj_wait_inside_a_callback_is_reported() {
    let s = Syncobj::new_signaled();
    let reports = in_a_callback(move || {
        Wait::new([(&s, Point::BINARY)])
            .all(Some(Duration::from_millis(1)))
            .unwrap();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::WaitInSignalling);
}

#[test]
fn a_wait_for_any_without_a_limit_inside_a_callback_is_reported() {
    let s = Syncobj::new_signaled();
    let reports = in_a_callback(move || {
        Wait::new([(&s, Point::BINARY)]).any(None).unwrap();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::WaitInSignalling);
}

#[test]
fn a_wait_for_submit_inside_a_callback_is_reported_although_the_point_is_there() {
    let s = Syncobj::new();
    s.timeline_signal(Point(1));
    let reports = in_a_callback(move || {
        s.find_fence(Point(1), IfUnsubmitted::WaitForSubmit)
            .unwrap();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::WaitInSignalling);
}

#[test]
fn a_zero_timeout_syncobj_poll_inside_a_callback_is_fine() {
    let s = Syncobj::new();
    let t = s.clone();
    let reports = in_a_callback(move || {
        let wait = Wait::new([(&t, Point(1))]).flags(WaitFlags::FOR_SUBMIT);
        assert!(wait.all(Some(Duration::ZERO)).is_err());
        assert!(t.find_fence(Point(1), IfUnsubmitted::Fail).is_err());
    });
    assert!(reports.is_empty(), "{reports:?}");
    drop(s);
}

static DRIVER: LockClass = LockClass::new("test.validator_syncobj.driver_lock");

#[test]
fn a_driver_lock_in_a_signal_notification_and_around_a_syncobj_wait_is_reported() {
    let tl = Timeline::new("syncobj-driver-lock");
    let driver = Arc::new(Mutex::new(&DRIVER, 0u32));
    let s = Syncobj::new();
    let ((), reports) = capture(|| {
        // Completion path: a signal notification takes the driver lock.
        s.add_point(tl.create_fence(1).unwrap(), Point(1));
        let d = driver.clone();
        s.notify(Point(1), NotifyWhen::Signaled, move |_| *d.lock() += 1);
        tl.inc(1);
        // Submit path: holds the driver lock while waiting on the syncobj.
        let _g = driver.lock();
        Wait::new([(&s, Point(1))]).all(None).unwrap();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
    assert!(
        reports[0]
            .cycle_classes()
            .contains(&"test.validator_syncobj.driver_lock")
    );
}

#[test]
fn submit_wait_signal_and_notify_from_callbacks_are_silent() {
    let tl = Timeline::new("syncobj-silent");
    let s = Syncobj::new();
    let ((), reports) = capture(|| {
        for i in 1..=10u32 {
            let point = Point(u64::from(i));
            // Notifications that use the syncobj from the signalling path: a lookup and a
            // zero-timeout poll, both allowed there.
            let t = s.clone();
            s.notify(point, NotifyWhen::Signaled, move |_| {
                t.find_fence(point, IfUnsubmitted::Fail).unwrap();
                Wait::new([(&t, point)]).all(Some(Duration::ZERO)).unwrap();
            });
            s.add_point(tl.create_fence(i).unwrap(), point);
            tl.inc(1);
            Wait::new([(&s, point)])
                .flags(WaitFlags::FOR_SUBMIT)
                .all(None)
                .unwrap();
            s.find_fence(point, IfUnsubmitted::WaitForSubmit).unwrap();
        }
    });
    assert!(reports.is_empty(), "{reports:?}");
}
