//! The validator wired into the fence layer (feature `lockdep`): waits are fence waits,
//! signalling and callbacks are signalling sections, the library's own locks are tracked.
#![cfg(feature = "lockdep")]

use dmabuf::Timeline;
use dmabuf::fence::{FenceContext, FenceOps};
use dmabuf::lockdep::{self, Acquire, Kind, LockClass, Mode, Mutex, capture, prime};
use std::sync::Arc;
use std::time::Duration;

use dmabuf_testkit as support;

#[test]
fn wait_inside_a_callback_is_reported() {
    let ctx = FenceContext::new("test", "wait-in-cb");
    let (s, f) = ctx.next_fence();
    let (other_s, other) = ctx.next_fence();
    other_s.signal();
    f.add_callback(move |_| other.wait_for_signal()).unwrap();
    let ((), reports) = capture(|| {
        s.signal();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::WaitInSignalling);
}

/// An issuer that arms on demand (its `enable_signaling` hook runs).
struct Lazy;
impl FenceOps for Lazy {}

#[test]
fn zero_timeout_poll_inside_a_callback_is_fine() {
    let ctx = FenceContext::new("test", "poll-in-cb");
    let (s, f) = ctx.next_fence();
    let (_o, other) = ctx.next_fence();
    // A poll enables signalling (the issuer's hook runs) but cannot block: not a wait.
    let (_l, lazy) = ctx.next_fence_with_ops(Arc::new(Lazy));
    f.add_callback(move |_| {
        assert!(other.wait_timeout(Duration::ZERO).is_err());
        assert!(lazy.wait_timeout(Duration::ZERO).is_err());
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
        f2.wait_for_signal();
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
            f.wait_for_signal();
            p.wait_for_signal();
        }
    });
    assert!(reports.is_empty(), "{reports:?}");
}

static POLLER: LockClass = LockClass::new("test.validator_fence.poller_lock");

/// A device-like issuer whose completion counter the fences poll.
struct Ring(std::sync::atomic::AtomicU64);

impl dmabuf::fence::FenceOps for Ring {
    fn signaled(&self, fence: &dmabuf::Fence) -> dmabuf::fence::FenceStatus {
        if self.0.load(std::sync::atomic::Ordering::Acquire) >= fence.seqno() {
            dmabuf::fence::FenceStatus::Signaled
        } else {
            dmabuf::fence::FenceStatus::Pending
        }
    }
}

#[test]
fn opportunistic_signalling_under_a_lock_is_fine() {
    // Issue 3's rule "opportunistic signalling outside sections is fine" (kernel: a poll that
    // finds the fence complete signals it on the spot; `dma_fence_begin_signalling()` is a
    // read *trylock*, so locks held around it gain no order before fence waits).
    let ctx = FenceContext::new("test", "opportunistic");
    let ring = std::sync::Arc::new(Ring(std::sync::atomic::AtomicU64::new(0)));
    let poller = std::sync::Arc::new(Mutex::new(&POLLER, 0u32));
    let ((), reports) = capture(|| {
        // Completion callbacks of other fences take the poller's lock (inside sections)...
        let (s, f) = ctx.next_fence();
        let p = poller.clone();
        f.add_callback(move |_| *p.lock() += 1).unwrap();
        s.signal();
        // ...and a consumer polls while holding it; the poll signals the fence.
        let (_issuer, polled) = ctx.next_fence_with_ops(ring.clone());
        ring.0
            .store(polled.seqno(), std::sync::atomic::Ordering::Release);
        let g = poller.lock();
        assert!(polled.is_signaled(), "the poll signalled it");
        drop(g);
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_lock_taken_in_a_section_and_held_around_a_wait_is_reported_with_its_cycle() {
    // Issue 3's first fence rule, through the explicit section API (a driver's completion
    // worker), with the cycle it reports.
    static WORKER: LockClass = LockClass::new("test.validator_fence.worker_lock");
    let worker = Mutex::new(&WORKER, ());
    let ctx = FenceContext::new("test", "section-lock-wait");
    let ((), reports) = capture(|| {
        {
            let _section = lockdep::signalling::begin_signalling();
            drop(worker.lock());
        }
        let (s, f) = ctx.next_fence();
        s.signal();
        let _g = worker.lock();
        f.wait_for_signal();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
    let classes = reports[0].cycle_classes();
    assert!(
        classes.contains(&"test.validator_fence.worker_lock"),
        "{classes:?}"
    );
    assert!(classes.contains(&"dma_fence_map"), "{classes:?}");
}

static REMOVER_LOCK: LockClass = LockClass::new("test.validator_fence.remover_lock");

#[test]
fn removing_a_running_callback_under_a_lock_it_takes_is_reported() {
    use std::sync::mpsc;
    let ctx = FenceContext::new("test", "remove-under-lock");
    let m = Arc::new(Mutex::new(&REMOVER_LOCK, ()));
    // The completion path takes the lock inside a signalling section.
    let (s0, f0) = ctx.next_fence();
    let m0 = m.clone();
    f0.add_callback(move |_| drop(m0.lock())).unwrap();
    let (_, reports) = capture(|| s0.signal());
    assert!(reports.is_empty(), "{reports:?}");

    // Now a callback like it runs on another thread while this one holds the lock and
    // removes it: `remove` waits for a running callback, so this is a fence wait under a lock
    // the signalling path takes. Reported (in panic mode: the remover panics, releasing the
    // lock, so the callback can finish) rather than a silent hang.
    let (s, f) = ctx.next_fence();
    let (started_tx, started) = mpsc::channel();
    let m1 = m.clone();
    let handle = f
        .add_callback(move |_| {
            started_tx.send(()).unwrap();
            drop(m1.lock());
        })
        .unwrap();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let held = m.lock();
        let signaller = std::thread::spawn(move || capture(|| s.signal()).1);
        started.recv().unwrap();
        let removed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = held;
            handle.remove()
        }));
        let signaller_reports = signaller.join().unwrap();
        done_tx.send((removed.err(), signaller_reports)).unwrap();
    });
    let (panic, _signaller_reports) = done
        .recv_timeout(Duration::from_secs(20))
        .expect("remove under the lock hung instead of being reported");
    let panic = panic.expect("remove under the lock was not reported");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("test.validator_fence.remover_lock") && message.contains("dma_fence_map"),
        "{message}"
    );
}

#[test]
fn relocking_the_signallers_lock_in_a_callback_panics_with_its_report_and_does_not_abort() {
    // The callback runs inside `signal`, called with a driver lock held: re-taking it is
    // recursive locking, reported (panic mode) before anything is recorded as held, so the
    // unwinding that follows releases only what was really taken.
    static DRIVER_LOCK: LockClass = LockClass::new("test.validator_fence.relocked_driver_lock");
    if support::is_child() {
        lockdep::set_report_mode(lockdep::ReportMode::Panic);
        let lock = Arc::new(Mutex::new(&DRIVER_LOCK, ()));
        let (s, f) = FenceContext::new("test", "relock").next_fence();
        let inner = lock.clone();
        f.add_callback(move |_| drop(inner.lock())).unwrap();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = lock.lock();
            s.signal()
        }));
        let held = lockdep::held_classes();
        assert!(held.is_empty(), "left on the held stack: {held:?}");
        if let Err(panic) = unwound {
            std::panic::resume_unwind(panic);
        }
        return;
    }
    let (status, stderr) = support::in_child(
        "relocking_the_signallers_lock_in_a_callback_panics_with_its_report_and_does_not_abort",
    );
    assert_eq!(
        status.code(),
        Some(101),
        "the child must fail with an ordinary panic, not {status}:\n{stderr}"
    );
    assert!(
        stderr.contains("possible recursive locking detected")
            && stderr.contains("test.validator_fence.relocked_driver_lock"),
        "{stderr}"
    );
}
