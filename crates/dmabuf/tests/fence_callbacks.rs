//! Callbacks run other people's code: a callback that panics, re-enters the library, removes
//! other callbacks or runs while its thread unwinds or its thread-locals are being destroyed
//! must not hang, abort or lose a wake-up.
//!
//! Hangs are caught by a watchdog; aborts by running the scenario in a child process (this
//! test binary again, told which scenario by an environment variable) and checking that it
//! exited normally.

use dmabuf::Timeline;
use dmabuf::fence::{Fence, FenceContext, FenceOps, wait_any};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Wake, Waker};
use std::thread;
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(20);

/// [`support::within_watchdog`] with this file's limit.
fn within_watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    support::within_watchdog(what, WATCHDOG, f)
}

use dmabuf_testkit as support;

/// In the parent: runs test `name` alone in a child process (this test binary again) and
/// asserts it passed there; an abort is a signal, not an exit. In the child: runs `scenario`.
fn in_child_process(name: &str, scenario: impl FnOnce()) {
    if support::is_child() {
        scenario();
        return;
    }
    let (status, stderr) = support::in_child(name);
    assert!(
        status.success(),
        "child running {name} ended with {status}\nstderr:\n{stderr}"
    );
}

fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Arc<AtomicUsize>) {
    let c = Arc::new(AtomicUsize::new(0));
    let c2 = c.clone();
    (c, move || c2.clone())
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// A panicking callback
// ---------------------------------------------------------------------------------------------

#[test]
fn callbacks_after_a_panicking_one_still_run_and_the_first_panic_is_resumed() {
    let ctx = FenceContext::new("test", "panic-order");
    let (issuer, fence) = ctx.next_fence();
    let (ran, share) = counter();
    let r = share();
    fence
        .add_callback(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    fence.add_callback(|_| panic!("first")).unwrap();
    fence.add_callback(|_| panic!("second")).unwrap();
    let r = share();
    fence
        .add_callback(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| issuer.signal()));
    let payload = caught.expect_err("the callback's panic reaches the signaller");
    assert_eq!(panic_message(&*payload), "first");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "both well-behaved callbacks ran"
    );
    assert!(fence.is_signaled());
    // Nothing is left running: a late add is refused, a wait returns.
    assert!(fence.add_callback(|_| {}).is_err());
    fence.wait_for_signal();
}

#[test]
fn array_signals_although_a_callback_on_its_last_member_panics() {
    let ctx = FenceContext::new("test", "panic-array");
    let (a, fa) = ctx.next_fence();
    let (b, fb) = ctx.next_fence();
    // Queued before the array arms its own callback on the member.
    fb.add_callback(|_| panic!("user callback")).unwrap();
    let array = Fence::new_array(
        vec![fa, fb],
        dmabuf::fence::alloc_contexts(1.try_into().unwrap()),
        1,
    )
    .unwrap();
    array.enable_sw_signaling();
    a.signal();
    let t = thread::spawn(move || b.signal());
    assert!(t.join().is_err(), "the panic reached b's signaller");
    assert!(array.is_signaled());
    within_watchdog("array wait", move || array.wait_for_signal());
}

#[test]
fn chain_waiter_wakes_although_a_callback_on_the_contained_fence_panics() {
    let ctx = FenceContext::new("test", "panic-chain");
    let (s, f) = ctx.next_fence();
    f.add_callback(|_| panic!("user callback")).unwrap();
    let node = Fence::new_chain(None, f, 1).unwrap();
    let (parked_tx, parked) = mpsc::channel();
    let waiter = {
        let node = node.clone();
        thread::spawn(move || {
            parked_tx.send(()).unwrap();
            node.wait_for_signal();
        })
    };
    parked.recv().unwrap();
    let t = thread::spawn(move || s.signal());
    assert!(t.join().is_err());
    within_watchdog("chain waiter", move || waiter.join().unwrap());
    assert!(node.is_signaled());
}

#[test]
fn wait_any_wakes_although_a_callback_before_its_own_panics() {
    let ctx = FenceContext::new("test", "panic-any");
    let (s, f) = ctx.next_fence();
    let (_other_s, other) = ctx.next_fence();
    f.add_callback(|_| panic!("user callback")).unwrap();
    let armed = Arc::new(Barrier::new(2));
    // The other fence's hook runs when wait_any arms it, after it armed `f`.
    struct Tell(Arc<Barrier>);
    impl FenceOps for Tell {
        fn enable_signaling(&self, _: &Fence) -> bool {
            self.0.wait();
            true
        }
    }
    let (_l, lazy) = ctx.next_fence_with_ops(Arc::new(Tell(armed.clone())));
    let fences = [other, f.clone(), lazy];
    let waiter = thread::spawn(move || wait_any(&fences, None));
    armed.wait();
    assert!(thread::spawn(move || s.signal()).join().is_err());
    let got = within_watchdog("wait_any", move || waiter.join().unwrap());
    assert_eq!(got.unwrap(), 1);
}

#[test]
fn future_waker_fires_although_a_callback_before_it_panics() {
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let ctx = FenceContext::new("test", "panic-future");
    let (s, f) = ctx.next_fence();
    f.add_callback(|_| panic!("user callback")).unwrap();
    let woken = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = Box::pin(f.wait_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert!(thread::spawn(move || s.signal()).join().is_err());
    assert_eq!(woken.0.load(Ordering::SeqCst), 1, "the waker was woken");
    assert!(fut.as_mut().poll(&mut cx).is_ready());
}

#[test]
fn remove_after_a_panicking_callback_says_its_callback_ran_and_it_did() {
    let ctx = FenceContext::new("test", "panic-remove");
    let (s, f) = ctx.next_fence();
    f.add_callback(|_| panic!("user callback")).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let handle = f
        .add_callback(move |_| r.store(true, Ordering::SeqCst))
        .unwrap();
    assert!(thread::spawn(move || s.signal()).join().is_err());
    assert!(!handle.remove(), "it ran");
    assert!(ran.load(Ordering::SeqCst), "and it really did");
}

#[test]
fn issuer_dropped_while_its_thread_unwinds_runs_panicking_callbacks_without_aborting() {
    in_child_process(
        "issuer_dropped_while_its_thread_unwinds_runs_panicking_callbacks_without_aborting",
        || {
            let ctx = FenceContext::new("test", "unwinding-issuer");
            let (issuer, fence) = ctx.next_fence();
            fence
                .add_callback(|_| panic!("callback during unwinding"))
                .unwrap();
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            fence
                .add_callback(move |_| r.store(true, Ordering::SeqCst))
                .unwrap();
            let t = thread::spawn(move || {
                let _issuer = issuer;
                panic!("the issuer's thread fails");
            });
            let err = t.join().expect_err("the thread panicked");
            assert_eq!(panic_message(&*err), "the issuer's thread fails");
            assert_eq!(fence.error(), Some(dmabuf::Errno::ECANCELED));
            assert!(
                ran.load(Ordering::SeqCst),
                "the callback after the panicking one ran"
            );
        },
    );
}

#[test]
fn issuer_dropped_in_a_thread_local_destructor_signals_without_aborting() {
    in_child_process(
        "issuer_dropped_in_a_thread_local_destructor_signals_without_aborting",
        || {
            struct Holder(Option<dmabuf::fence::Signaller>);
            impl Drop for Holder {
                fn drop(&mut self) {
                    drop(self.0.take());
                }
            }
            thread_local! {
                static HOLDER: std::cell::RefCell<Holder> = const { std::cell::RefCell::new(Holder(None)) };
            }
            let ctx = FenceContext::new("test", "tls-issuer");
            let (issuer, fence) = ctx.next_fence();
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            fence
                .add_callback(move |_| r.store(true, Ordering::SeqCst))
                .unwrap();
            thread::spawn(move || {
                HOLDER.with(|h| h.borrow_mut().0 = Some(issuer));
                // Fences used on this thread after the holder was made, so thread-locals the
                // library makes now are destroyed before the holder (last made, first gone).
                let (s, f) = ctx.next_fence();
                f.add_callback(|_| {}).unwrap();
                s.signal();
            })
            .join()
            .unwrap();
            assert_eq!(fence.error(), Some(dmabuf::Errno::ECANCELED));
            assert!(ran.load(Ordering::SeqCst));
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Removal waits for its own callback only
// ---------------------------------------------------------------------------------------------

/// A callback that tells when it starts and then blocks until released.
fn gate() -> (
    impl FnOnce(&Fence) + Send + 'static,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let cb = move |_: &Fence| {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv();
    };
    (cb, started, release)
}

#[test]
fn remove_of_a_callback_not_reached_yet_does_not_wait_for_the_one_running() {
    let ctx = FenceContext::new("test", "remove-own");
    let (s, f) = ctx.next_fence();
    let (blocker, started, release) = gate();
    f.add_callback(blocker).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let handle = f
        .add_callback(move |_| r.store(true, Ordering::SeqCst))
        .unwrap();
    let signaller = thread::spawn(move || s.signal());
    started.recv().unwrap();
    // The first callback is blocked; the second has not started: removing it must not wait.
    assert!(within_watchdog("remove", move || handle.remove()));
    release.send(()).unwrap();
    signaller.join().unwrap();
    assert!(!ran.load(Ordering::SeqCst), "a removed callback never runs");
}

#[test]
fn remove_of_a_running_callback_waits_until_it_returns() {
    let ctx = FenceContext::new("test", "remove-running");
    let (s, f) = ctx.next_fence();
    let done = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let d = done.clone();
    let handle = f
        .add_callback(move |_| {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
            d.store(true, Ordering::SeqCst);
        })
        .unwrap();
    let signaller = thread::spawn(move || s.signal());
    started.recv().unwrap();
    let (removed_tx, removed) = mpsc::channel();
    let remover = thread::spawn(move || removed_tx.send(handle.remove()).unwrap());
    // Still running: `remove` has not answered.
    assert!(removed.recv_timeout(Duration::from_millis(50)).is_err());
    release.send(()).unwrap();
    assert!(!removed.recv_timeout(WATCHDOG).unwrap(), "it ran");
    assert!(
        done.load(Ordering::SeqCst),
        "and had returned when remove answered"
    );
    remover.join().unwrap();
    signaller.join().unwrap();
}

#[test]
fn callbacks_removing_each_others_later_callbacks_on_two_threads_do_not_deadlock() {
    let ctx = FenceContext::new("test", "remove-abba");
    let (sa, a) = ctx.next_fence();
    let (sb, b) = ctx.next_fence();
    let both_running = Arc::new(Barrier::new(2));
    let a_later: Arc<Mutex<Option<dmabuf::fence::CallbackHandle>>> = Arc::default();
    let b_later: Arc<Mutex<Option<dmabuf::fence::CallbackHandle>>> = Arc::default();
    let (ran, share) = counter();
    // a1 removes b2; b1 removes a2; a1 and b1 run at the same time on two threads, and
    // neither returns before both have removed.
    {
        let (barrier, b_later) = (both_running.clone(), b_later.clone());
        a.add_callback(move |_| {
            barrier.wait();
            let h = b_later.lock().unwrap().take().unwrap();
            let removed = h.remove();
            // Neither returns before both have removed.
            barrier.wait();
            assert!(removed, "b2 had not started: taken out");
        })
        .unwrap();
    }
    let r = share();
    *a_later.lock().unwrap() = Some(
        a.add_callback(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap(),
    );
    {
        let (barrier, a_later) = (both_running.clone(), a_later.clone());
        b.add_callback(move |_| {
            barrier.wait();
            let h = a_later.lock().unwrap().take().unwrap();
            let removed = h.remove();
            // Neither returns before both have removed.
            barrier.wait();
            assert!(removed, "a2 had not started: taken out");
        })
        .unwrap();
    }
    let r = share();
    *b_later.lock().unwrap() = Some(
        b.add_callback(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap(),
    );
    within_watchdog(
        "two signallers removing each other's callbacks",
        move || {
            let ta = thread::spawn(move || sa.signal());
            let tb = thread::spawn(move || sb.signal());
            ta.join().unwrap();
            tb.join().unwrap();
        },
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "both later callbacks were removed"
    );
}

#[test]
fn dropping_a_future_does_not_wait_for_a_callback_blocked_on_the_droppers_lock() {
    let ctx = FenceContext::new("test", "future-drop");
    let (s, f) = ctx.next_fence();
    let m = Arc::new(Mutex::new(()));
    let (started_tx, started) = mpsc::channel();
    {
        let m = m.clone();
        f.add_callback(move |_| {
            started_tx.send(()).unwrap();
            drop(m.lock().unwrap());
        })
        .unwrap();
    }
    let mut fut = Box::pin(f.wait_async());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let held = m.lock().unwrap();
    let signaller = thread::spawn(move || s.signal());
    started.recv().unwrap();
    // The callback before the future's is blocked on `m`, which this thread holds.
    within_watchdog("future drop", move || drop(fut));
    drop(held);
    signaller.join().unwrap();
}

#[test]
fn wait_any_returns_while_another_callback_of_the_fence_is_blocked_on_the_waiters_lock() {
    let ctx = FenceContext::new("test", "any-drop");
    let (s, f) = ctx.next_fence();
    let m = Arc::new(Mutex::new(()));
    {
        let m = m.clone();
        f.add_callback(move |_| drop(m.lock().unwrap())).unwrap();
    }
    // Signalled from the hook of the last fence wait_any arms, so wait_any's callback on `f`
    // is queued behind the blocked one.
    struct SignalOnArm(Mutex<Option<dmabuf::fence::Signaller>>);
    impl FenceOps for SignalOnArm {
        fn enable_signaling(&self, _: &Fence) -> bool {
            let s = self.0.lock().unwrap().take().unwrap();
            thread::spawn(move || s.signal());
            true
        }
    }
    let (_l, lazy) = ctx.next_fence_with_ops(Arc::new(SignalOnArm(Mutex::new(Some(s)))));
    let got = within_watchdog("wait_any", move || {
        let _held = m.lock().unwrap();
        wait_any(&[f, lazy], Some(Duration::from_millis(100)))
    });
    assert_eq!(
        got.unwrap(),
        0,
        "f signalled, though its callbacks had not all run"
    );
}

// ---------------------------------------------------------------------------------------------
// Re-entering a software timeline from a point's callback
// ---------------------------------------------------------------------------------------------

#[test]
fn timeline_inc_from_a_point_callback_signals_the_next_points_after_it() {
    let tl = Timeline::new("reenter-inc");
    let p1 = tl.create_fence(1).unwrap();
    let p2 = tl.create_fence(2).unwrap();
    let p3 = tl.create_fence(3).unwrap();
    let seen_p2 = Arc::new(AtomicBool::new(true));
    {
        let (tl, p2, seen) = (tl.clone(), p2.clone(), seen_p2.clone());
        p1.add_callback(move |_| {
            tl.inc(2);
            // Deferred: this advance happens once the callback returns.
            seen.store(p2.is_signaled_flag(), Ordering::SeqCst);
        })
        .unwrap();
    }
    let t2 = tl.clone();
    within_watchdog("inc from a callback", move || t2.inc(1));
    assert!(!seen_p2.load(Ordering::SeqCst));
    assert!(p2.is_signaled() && p3.is_signaled());
    assert_eq!(tl.value(), 3);
    assert_eq!(tl.pending_points(), 0);
}

#[test]
fn timeline_close_from_a_point_callback_cancels_the_rest() {
    let tl = Timeline::new("reenter-close");
    let p1 = tl.create_fence(1).unwrap();
    let p2 = tl.create_fence(2).unwrap();
    {
        let tl = tl.clone();
        p1.add_callback(move |_| tl.close()).unwrap();
    }
    let t2 = tl.clone();
    within_watchdog("close from a callback", move || t2.inc(1));
    assert_eq!(p1.error(), None);
    assert_eq!(p2.error(), Some(dmabuf::Errno::ENOENT));
    assert!(tl.is_closed());
    assert!(tl.create_fence(5).is_err());
}

#[test]
fn timeline_inc_from_a_callback_of_another_thread_still_blocks_normally() {
    // Re-entry is deferred only on the thread that is advancing: another thread waits its turn.
    let tl = Timeline::new("reenter-other");
    let p1 = tl.create_fence(1).unwrap();
    let (inside_tx, inside) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    p1.add_callback(move |_| {
        inside_tx.send(()).unwrap();
        let _ = go_rx.recv();
    })
    .unwrap();
    let t1 = tl.clone();
    let advancer = thread::spawn(move || t1.inc(1));
    inside.recv().unwrap();
    let t2 = tl.clone();
    let other = thread::spawn(move || t2.inc(1));
    go.send(()).unwrap();
    within_watchdog("two advancers", move || {
        advancer.join().unwrap();
        other.join().unwrap();
    });
    assert_eq!(tl.value(), 2);
}
