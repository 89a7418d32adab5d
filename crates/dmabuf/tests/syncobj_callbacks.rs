//! Syncobj notifications and waiters run other people's code: a notification callback that
//! panics, re-enters the syncobj (adds a point from a notification) or drops the last handle
//! to it must not hang, abort or lose a wake-up of anybody else waiting.
//!
//! Hangs are caught by a watchdog; aborts by running the scenario in a child process (this
//! test binary again) and checking that it exited normally.

use dmabuf::Timeline;
use dmabuf::fence::FenceContext;
use dmabuf::syncobj::{NotifyWhen, Point, Syncobj, Wait, WaitFlags};
use dmabuf_testkit as support;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(20);

fn within_watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    support::within_watchdog(what, WATCHDOG, f)
}

/// A notification callback.
type Callback = Box<dyn FnOnce(&dmabuf::Fence) + Send>;

/// A counter and a maker of callbacks that bump it.
fn counter() -> (Arc<AtomicU32>, impl Fn() -> Callback) {
    let c = Arc::new(AtomicU32::new(0));
    let c2 = c.clone();
    let make = move || -> Callback {
        let c = c2.clone();
        Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        })
    };
    (c, make)
}

/// A thread blocked in a wait for submit of `point`, and a way to know it is registered.
fn blocked_waiter(
    s: &Syncobj,
    point: Point,
) -> thread::JoinHandle<Result<(), dmabuf::SyncobjWaitError>> {
    let s = s.clone();
    let (ready_tx, ready) = mpsc::channel();
    let waiter = thread::spawn(move || {
        ready_tx.send(()).unwrap();
        Wait::new([(&s, point)])
            .flags(WaitFlags::FOR_SUBMIT)
            .all(Some(WATCHDOG))
    });
    ready.recv().unwrap();
    // Registered or not, the wait sees the point: either way it must end.
    thread::sleep(Duration::from_millis(10));
    waiter
}

#[test]
fn a_panicking_available_callback_lets_the_others_run_and_the_waiters_wake() {
    let s = Syncobj::new();
    let (ran, cb) = counter();
    s.notify(Point(1), NotifyWhen::Available, cb());
    s.notify(Point(1), NotifyWhen::Available, |_| panic!("first"));
    s.notify(Point(1), NotifyWhen::Available, |_| panic!("second"));
    s.notify(Point(1), NotifyWhen::Available, cb());
    let waiter = blocked_waiter(&s, Point(1));
    let caught = catch_unwind(AssertUnwindSafe(|| s.timeline_signal(Point(1))));
    let payload = caught.expect_err("the callback's panic reaches the submitter");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"first"));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "both well-behaved callbacks ran"
    );
    assert_eq!(s.last_submitted_point(), Point(1), "the point was added");
    within_watchdog("waiter", move || waiter.join().unwrap()).expect("woken");
}

#[test]
fn a_panicking_signal_callback_lets_the_waiters_wake() {
    let tl = Timeline::new("panic-signal");
    let s = Syncobj::new();
    s.add_point(tl.create_fence(1).unwrap(), Point(1));
    s.notify(Point(1), NotifyWhen::Signaled, |_| {
        panic!("signal callback")
    });
    let (ran, cb) = counter();
    s.notify(Point(1), NotifyWhen::Signaled, cb());
    let waiter = {
        let s = s.clone();
        thread::spawn(move || Wait::new([(&s, Point(1))]).all(Some(WATCHDOG)))
    };
    thread::sleep(Duration::from_millis(10));
    let t = tl.clone();
    assert!(
        thread::spawn(move || t.inc(1)).join().is_err(),
        "the panic reached the signaller"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    within_watchdog("waiter", move || waiter.join().unwrap()).expect("woken");
}

#[test]
fn a_panic_in_a_fence_callback_polled_by_the_lookup_loses_no_waiter() {
    // Point 2's fence completes by being polled when the submitter looks up the waiters'
    // point 1 (the lookup walks past point 2); its callback panics there.
    struct Done;
    impl dmabuf::fence::FenceOps for Done {
        fn signaled(&self, _: &dmabuf::Fence) -> dmabuf::FenceStatus {
            dmabuf::FenceStatus::Signaled
        }
    }
    let ctx = FenceContext::new("test", "polled");
    let (_issuer, polled) = ctx.next_fence_with_ops(Arc::new(Done));
    polled.add_callback(|_| panic!("polled callback")).unwrap();
    let (_pending_issuer, pending) = ctx.next_fence();
    let two = dmabuf::Fence::new_chain(None, polled, 2).unwrap();
    let three = dmabuf::Fence::new_chain(Some(two), pending, 3).unwrap();
    let s = Syncobj::new();
    let waiter = blocked_waiter(&s, Point(1));
    let (ran, cb) = counter();
    s.notify(Point(1), NotifyWhen::Available, cb());
    let caught = catch_unwind(AssertUnwindSafe(|| s.replace(Some(three))));
    let payload = caught.expect_err("the polled callback's panic reaches the submitter");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"polled callback"));
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the notification ran");
    within_watchdog("waiter", move || waiter.join().unwrap()).expect("woken");
}

#[test]
fn an_available_callback_that_adds_a_point_wakes_its_waiter() {
    let s = Syncobj::new();
    {
        let s2 = s.clone();
        s.notify(Point(1), NotifyWhen::Available, move |_| {
            s2.timeline_signal(Point(2))
        });
    }
    let waiter = blocked_waiter(&s, Point(2));
    let s2 = s.clone();
    within_watchdog("re-entrant add", move || s2.timeline_signal(Point(1)));
    assert_eq!(s.last_submitted_point(), Point(2));
    within_watchdog("waiter", move || waiter.join().unwrap()).expect("woken");
}

#[test]
fn a_signal_callback_that_adds_a_point_wakes_its_waiter() {
    let tl = Timeline::new("reenter-signal");
    let s = Syncobj::new();
    s.add_point(tl.create_fence(1).unwrap(), Point(1));
    {
        let s2 = s.clone();
        s.notify(Point(1), NotifyWhen::Signaled, move |_| {
            s2.timeline_signal(Point(2))
        });
    }
    let waiter = blocked_waiter(&s, Point(2));
    let t = tl.clone();
    within_watchdog("signal", move || t.inc(1));
    within_watchdog("waiter", move || waiter.join().unwrap()).expect("woken");
    assert_eq!(s.last_signaled_point(), Point(2));
}

#[test]
fn a_callback_that_notifies_again_and_cancels_its_own_registration_does_not_hang() {
    let s = Syncobj::new();
    let own: Arc<Mutex<Option<dmabuf::syncobj::Notification>>> = Arc::default();
    let (ran, cb) = counter();
    {
        let (s2, own2) = (s.clone(), own.clone());
        let n = s.notify(Point(1), NotifyWhen::Available, move |_| {
            s2.notify(Point(1), NotifyWhen::Available, cb());
            let me = own2.lock().unwrap().take();
            assert!(!me.expect("stored").cancel(), "it is running: too late");
        });
        *own.lock().unwrap() = Some(n);
    }
    let s2 = s.clone();
    within_watchdog("notify from a callback", move || {
        s2.timeline_signal(Point(1))
    });
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the new registration ran at once"
    );
}

#[test]
fn a_signal_callback_that_drops_the_last_handle_does_not_hang() {
    let tl = Timeline::new("last-handle");
    let s = Syncobj::new();
    s.add_point(tl.create_fence(1).unwrap(), Point(1));
    // Another registration still waiting: dropped with the syncobj, unrun.
    s.notify(Point(5), NotifyWhen::Available, |_| {
        unreachable!("point 5 never comes")
    });
    let holder = Arc::new(Mutex::new(Some(s.clone())));
    {
        let holder = holder.clone();
        s.notify(Point(1), NotifyWhen::Signaled, move |_| {
            drop(holder.lock().unwrap().take());
        });
    }
    drop(s);
    let t = tl.clone();
    within_watchdog("drop the last handle from a callback", move || t.inc(1));
    assert!(holder.lock().unwrap().is_none());
}

#[test]
fn an_available_callback_that_drops_its_own_handle_does_not_hang() {
    let s = Syncobj::new();
    let held = Arc::new(Mutex::new(Some(s.clone())));
    {
        let held = held.clone();
        s.notify(Point(1), NotifyWhen::Available, move |_| {
            drop(held.lock().unwrap().take());
        });
    }
    let s2 = s.clone();
    within_watchdog("drop a handle from a callback", move || {
        s2.timeline_signal(Point(1))
    });
    drop(s);
}

#[test]
fn a_cancelled_signal_notification_never_runs() {
    let tl = Timeline::new("cancel");
    let s = Syncobj::new();
    s.add_point(tl.create_fence(1).unwrap(), Point(1));
    let n = s.notify(Point(1), NotifyWhen::Signaled, |_| {
        unreachable!("cancelled")
    });
    assert!(n.cancel());
    tl.inc(1);
    let n = s.notify(Point(1), NotifyWhen::Signaled, |_| {});
    assert!(!n.cancel(), "it ran before notify returned");
}

#[test]
fn a_panicking_available_callback_during_unwinding_does_not_abort() {
    // The child must exit normally: a second unwind out of the destructor would abort it.
    if support::scenario_in_child("a_panicking_available_callback_during_unwinding_does_not_abort")
        .is_some()
    {
        return;
    }
    /// Adds the point from its destructor, which runs while its thread unwinds.
    struct SignalOnDrop(Syncobj);
    impl Drop for SignalOnDrop {
        fn drop(&mut self) {
            self.0.timeline_signal(Point(1));
        }
    }
    let s = Syncobj::new();
    s.notify(Point(1), NotifyWhen::Available, |_| {
        panic!("callback during unwinding")
    });
    let (ran, cb) = counter();
    s.notify(Point(1), NotifyWhen::Available, cb());
    let t = {
        let s = s.clone();
        thread::spawn(move || {
            let _guard = SignalOnDrop(s);
            panic!("the submitter's thread fails");
        })
    };
    assert!(t.join().is_err());
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the callback after the panicking one ran"
    );
    assert_eq!(s.last_submitted_point(), Point(1));
}
