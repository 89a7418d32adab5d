//! The syncobj model's contract beyond the igt suites: deadlines, async waits, errors and
//! their errno, lookups that wait for submit, out-of-order points, transfers and the answers
//! a wait gives for points that failed.

use dmabuf::fence::FenceContext;
use dmabuf::syncobj::{IfUnsubmitted, NotifyWhen, Point, Syncobj, Wait, WaitFlags};
use dmabuf::{Errno, Error, MonotonicTime, SyncobjError, SyncobjWaitError, Timeline};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

/// A waker that counts its wake-ups.
struct Count(AtomicUsize);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn errors_carry_the_kernels_errno_and_become_crate_errors() {
    let s = Syncobj::new();
    let e = s.find_fence(Point(3), IfUnsubmitted::Fail).unwrap_err();
    assert_eq!(e, SyncobjError::Unsubmitted { point: 3 });
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(Error::from(e), Error::Unsubmitted { point: 3 });
    assert_eq!(Error::from(e).errno(), Errno::EINVAL);
    let w = Wait::new([]).all(None).unwrap_err();
    assert_eq!(
        (w, w.errno(), Error::from(w)),
        (SyncobjWaitError::NoPoints, Errno::EINVAL, Error::NoPoints)
    );
    let t = Wait::new([(&s, Point(1))])
        .flags(WaitFlags::FOR_SUBMIT)
        .any(Some(Duration::from_millis(1)))
        .unwrap_err();
    assert_eq!((t.errno(), Error::from(t)), (Errno::ETIME, Error::TimedOut));
}

#[test]
fn the_deadline_reaches_the_fences_the_wait_has_and_only_those() {
    let gpu = Timeline::new("deadline");
    let (a, b) = (Syncobj::new(), Syncobj::new());
    let fa = gpu.create_fence(1).unwrap();
    a.add_point(fa.clone(), Point(1));
    let soon = MonotonicTime::now() + Duration::from_millis(3);
    let wait = Wait::new([(&a, Point(1)), (&b, Point(1))])
        .flags(WaitFlags::FOR_SUBMIT)
        .fence_deadline(soon);
    assert!(wait.all(Some(Duration::from_millis(1))).is_err());
    assert_eq!(gpu.deadline(&fa), Some(soon));
    // Satisfied at once: no deadline is set.
    let fb = gpu.create_fence(2).unwrap();
    b.add_point(fb.clone(), Point(1));
    let done = Syncobj::new_signaled();
    let wait = Wait::new([(&done, Point::BINARY), (&b, Point(1))]).fence_deadline(soon);
    assert_eq!(wait.any(None), Ok(0));
    assert_eq!(gpu.deadline(&fb), None);
}

#[test]
fn a_point_that_failed_is_done_for_a_wait_and_its_error_is_on_its_leaf() {
    let ctx = FenceContext::new("test", "failed");
    let (issuer, fence) = ctx.next_fence();
    let s = Syncobj::new();
    s.add_point(fence, Point(1));
    issuer.signal_with_error(Errno::EIO);
    assert_eq!(Wait::new([(&s, Point(1))]).all(None), Ok(()));
    // A chain node does not carry its fence's error (nor does the kernel's): the leaf does.
    let found = s.find_fence(Point(1), IfUnsubmitted::Fail).unwrap();
    assert_eq!(found.contained().error(), Some(Errno::EIO));
}

#[test]
fn any_answers_the_first_done_point_in_order() {
    let gpu = Timeline::new("any");
    let s: Vec<Syncobj> = (0..4).map(|_| Syncobj::new()).collect();
    for (i, s) in s.iter().enumerate() {
        s.add_point(gpu.create_fence(4 - i as u32).unwrap(), Point(1));
    }
    let wait = Wait::new(s.iter().map(|s| (s, Point(1))));
    gpu.inc(2); // points of syncobjs 2 and 3 signal
    assert_eq!(wait.any(Some(Duration::ZERO)), Ok(2));
    let waiter = {
        let wait = Wait::new([(&s[0], Point(1)), (&s[1], Point(1))]);
        thread::spawn(move || wait.any(None))
    };
    thread::sleep(Duration::from_millis(5));
    gpu.inc(1);
    assert_eq!(waiter.join().unwrap(), Ok(1));
}

#[test]
fn async_waits_resolve_when_their_points_are_submitted_and_signalled() {
    let gpu = Timeline::new("async");
    let (a, b) = (Syncobj::new(), Syncobj::new());
    let wait = Wait::new([(&a, Point(2)), (&b, Point(0))]).flags(WaitFlags::FOR_SUBMIT);
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut all = Box::pin(wait.all_async());
    let mut any = Box::pin(wait.any_async());
    assert!(all.as_mut().poll(&mut cx).is_pending());
    assert!(any.as_mut().poll(&mut cx).is_pending());
    b.add_point(gpu.create_fence(1).unwrap(), Point(5)); // b's point 0 is its fence: pending
    assert!(any.as_mut().poll(&mut cx).is_pending());
    a.timeline_signal(Point(2));
    assert!(count.0.load(Ordering::SeqCst) >= 2, "both woken");
    assert_eq!(any.as_mut().poll(&mut cx), Poll::Ready(Ok(0)));
    assert!(all.as_mut().poll(&mut cx).is_pending());
    gpu.inc(1);
    assert_eq!(all.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    // Unsubmitted without a flag: the first poll answers EINVAL.
    let mut bad = Box::pin(Wait::new([(&Syncobj::new(), Point(1))]).all_async());
    assert_eq!(
        bad.as_mut().poll(&mut cx),
        Poll::Ready(Err(SyncobjWaitError::Unsubmitted { index: 0, point: 1 }))
    );
}

#[test]
fn a_dropped_async_wait_leaves_nothing_registered() {
    let s = Syncobj::new();
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100 {
        let mut f = Box::pin(
            Wait::new([(&s, Point(1))])
                .flags(WaitFlags::FOR_SUBMIT)
                .all_async(),
        );
        assert!(f.as_mut().poll(&mut cx).is_pending());
        let mut n = Box::pin(s.notified(Point(1), NotifyWhen::Available));
        assert!(n.as_mut().poll(&mut cx).is_pending());
    }
    // Nothing left to tell: a point added now runs no stale waiter (and drops none late).
    s.timeline_signal(Point(1));
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    s.notify(Point(1), NotifyWhen::Available, move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn a_lookup_that_waits_for_submit_gets_the_fence_submitted_meanwhile() {
    let s = Syncobj::new();
    let submitter = {
        let s = s.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            s.timeline_signal(Point(4));
        })
    };
    let found = s
        .find_fence(Point(3), IfUnsubmitted::WaitForSubmit)
        .unwrap();
    assert_eq!(found.seqno(), 4);
    submitter.join().unwrap();
    let other = Syncobj::new();
    let t = Syncobj::transfer(&s, Point(4), &other, Point(9), IfUnsubmitted::WaitForSubmit);
    assert_eq!(t, Ok(()));
    assert_eq!(other.last_signaled_point(), Point(9));
}

#[test]
fn an_out_of_order_point_is_added_and_reads_as_unsignalled_until_it_signals() {
    let gpu = Timeline::new("unordered");
    let s = Syncobj::new();
    s.timeline_signal(Point(10));
    let late = gpu.create_fence(1).unwrap();
    s.add_point(late, Point(5));
    assert_eq!(
        s.last_submitted_point(),
        Point(10),
        "on a fresh context at the last number"
    );
    assert_eq!(s.last_signaled_point(), Point(0));
    assert!(
        !s.find_fence(Point(10), IfUnsubmitted::Fail)
            .unwrap()
            .is_signaled()
    );
    gpu.inc(1);
    assert_eq!(s.last_signaled_point(), Point(10));
}

#[test]
fn a_transfer_to_point_0_replaces_and_a_chain_given_as_a_point_is_flattened() {
    let gpu = Timeline::new("transfer");
    let timeline = Syncobj::new();
    timeline.add_point(gpu.create_fence(1).unwrap(), Point(1));
    timeline.add_point(gpu.create_fence(2).unwrap(), Point(2));
    let binary = Syncobj::new();
    Syncobj::transfer(
        &timeline,
        Point(2),
        &binary,
        Point::BINARY,
        IfUnsubmitted::Fail,
    )
    .unwrap();
    let taken = binary.fence().unwrap();
    assert!(taken.is_chain(), "point 0 takes the point's fence as found");
    let other = Syncobj::new();
    other.add_point(taken, Point(7));
    let node = other.fence().unwrap();
    assert!(!node.contained().is_chain(), "flattened");
    assert_eq!(
        Syncobj::transfer(
            &Syncobj::new(),
            Point::BINARY,
            &other,
            Point(8),
            IfUnsubmitted::Fail
        ),
        Err(SyncobjError::Unsubmitted { point: 0 }),
    );
    assert_eq!(other.last_submitted_point(), Point(7), "left as it was");
    gpu.inc(2);
    assert_eq!(other.last_signaled_point(), Point(7));
}

#[test]
fn an_exported_sync_file_is_a_snapshot_and_an_import_replaces() {
    let gpu = Timeline::new("export");
    let s = Syncobj::with_fence(gpu.create_fence(1).unwrap());
    let file = s.export_sync_file().unwrap();
    s.signal();
    assert!(
        !file.is_signaled(),
        "the reset and signal after export do not change it"
    );
    s.import_sync_file(&file);
    assert!(s.fence().unwrap().ptr_eq(&file.fence()));
    let info = s.export_sync_file().unwrap().info();
    assert_eq!(info.fences[0].driver, "sw_sync");
}

#[test]
fn a_notification_of_a_collected_point_gets_the_stub() {
    let s = Syncobj::new();
    s.timeline_signal(Point(1));
    s.timeline_signal(Point(2));
    s.timeline_signal(Point(3)); // its walk collects points 1 and 2
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = Box::pin(s.notified(Point(1), NotifyWhen::Signaled));
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(fence) => assert!(fence.ptr_eq(&dmabuf::Fence::stub())),
        Poll::Pending => panic!("point 1 has signalled"),
    }
}
