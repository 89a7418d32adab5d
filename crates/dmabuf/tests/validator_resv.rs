//! The validator wired into reservation objects (feature `lockdep`): the reservation lock is
//! a ww class validated as the primed reservation class, publishing a fence starts the
//! adder's signalling obligation, and a wait under the lock records the order.
#![cfg(feature = "lockdep")]

use dmabuf::fence::FenceContext;
use dmabuf::lockdep::{
    Kind, LockClass, Mutex, capture, has_dependency, prime, reclaim, signalling,
};
use dmabuf::resv::{Resv, Usage};

#[test]
fn lock_reserve_add_unlock_is_silent() {
    let objs: Vec<Resv> = (0..3).map(|_| Resv::new()).collect();
    let ctx_f = FenceContext::new("test", "silent-resv");
    let (s, f) = ctx_f.next_fence();
    let ((), reports) = capture(|| {
        let ctx = Resv::acquire_ctx();
        let mut guards = Resv::lock_all(&ctx, &[&objs[0], &objs[1], &objs[2]]).unwrap();
        ctx.done();
        // Collect what to wait for before publishing anything: fine under the locks.
        for mut g in &mut guards {
            g.reserve_fences(1).unwrap();
        }
        for mut g in &mut guards {
            g.add_fence(&f, Usage::Write);
        }
        drop(guards);
        drop(ctx);
        s.signal();
        objs[0].wait_for_signal(Usage::Bookkeep);
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn waiting_while_holding_the_reservation_lock_records_the_order() {
    let resv = Resv::new();
    let (s, f) = FenceContext::new("test", "wait-under-resv").next_fence();
    s.signal();
    let ((), reports) = capture(|| {
        let _g = resv.lock_single();
        f.wait_for_signal();
    });
    assert!(reports.is_empty(), "{reports:?}");
    assert!(has_dependency(
        prime::RESERVATION.id(),
        signalling::FENCE_SIGNALLING.id()
    ));
}

#[test]
fn waiting_after_publishing_a_fence_under_the_lock_is_reported() {
    let resv = Resv::new();
    let ctx = FenceContext::new("test", "wait-after-publish");
    let (_mine, mine) = ctx.next_fence();
    let (other_s, other) = FenceContext::new("test", "other").next_fence();
    other_s.signal();
    let ((), reports) = capture(|| {
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(&mine, Usage::Write);
        // Our fence is visible: waiting now can wait on work that waits for us.
        other.wait_for_signal();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::WaitInSignalling);
}

static DRIVER: LockClass = LockClass::new("test.validator_resv.driver_lock");

#[test]
fn a_lock_held_around_waits_taken_after_publishing_is_reported() {
    // Seed 002: a driver lock taken both around fence waits and in the submit path after
    // the job's fence became visible.
    let resv = Resv::new();
    let driver = Mutex::new(&DRIVER, ());
    let (done, waited) = FenceContext::new("test", "driver-wait").next_fence();
    done.signal();
    let (_mine, mine) = FenceContext::new("test", "driver-publish").next_fence();
    let ((), reports) = capture(|| {
        {
            let _d = driver.lock();
            waited.wait_for_signal();
        }
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(&mine, Usage::Write);
        let _d = driver.lock();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
    assert!(
        reports[0]
            .cycle_classes()
            .contains(&"test.validator_resv.driver_lock")
    );
}

#[test]
fn reclaiming_after_publishing_is_reported() {
    let resv = Resv::new();
    let (_mine, mine) = FenceContext::new("test", "reclaim-after-publish").next_fence();
    let ((), reports) = capture(|| {
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(&mine, Usage::Write);
        reclaim::might_reclaim();
    });
    assert!(
        reports.iter().any(|r| r.kind == Kind::ReclaimInSignalling),
        "{reports:?}"
    );
}

/// Held around a scenario whose lock chain another test may also build: the validator
/// reports a chain once per process, so each scenario's chain starts with its own class.
fn tagged<R>(tag: &'static LockClass, f: impl FnOnce() -> R) -> R {
    let lock = Mutex::new(tag, ());
    let _tag = lock.lock();
    f()
}

#[test]
fn reserving_fence_slots_inside_a_signalling_section_is_reported() {
    // The submission's allocating step after its fence is visible: the kernel's
    // dma_resv_reserve_fences() allocates with GFP_KERNEL, fs_reclaim against dma_fence_map.
    static AFTER_PUBLISH: LockClass = LockClass::new("test.validator_resv.reserve_after_publish");
    static NO_ROOM: LockClass = LockClass::new("test.validator_resv.reserve_no_room");
    static ROOM: LockClass = LockClass::new("test.validator_resv.reserve_room");
    let (a, b) = (Resv::new(), Resv::new());
    let (_mine, mine) = FenceContext::new("test", "reserve-after-publish").next_fence();
    let ((), reports) = capture(|| {
        tagged(&AFTER_PUBLISH, || {
            let ctx = Resv::acquire_ctx();
            let mut guards = Resv::lock_all(&ctx, &[&a, &b]).unwrap();
            for mut g in &mut guards {
                // The second reservation comes after the first guard published `mine`.
                g.reserve_fences(1).unwrap();
                g.add_fence(&mine, Usage::Write);
            }
        });
    });
    let kinds: Vec<Kind> = reports.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Kind::ReclaimInSignalling], "{reports:?}");

    // In an explicit section (a completion handler), whether the table has room or not.
    let c = Resv::new();
    for (tag, room) in [(&NO_ROOM, false), (&ROOM, true)] {
        let ((), reports) = capture(|| {
            tagged(tag, || {
                let mut g = c.lock_single();
                if room {
                    g.reserve_fences(8).unwrap();
                }
                let _section = signalling::begin_signalling();
                g.reserve_fences(1).unwrap();
            });
        });
        let kinds: Vec<Kind> = reports.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::ReclaimInSignalling], "room: {room}");
    }
}

#[test]
fn copying_fences_inside_a_signalling_section_is_reported() {
    static COPY: LockClass = LockClass::new("test.validator_resv.copy_in_section");
    let (src, dst) = (Resv::new(), Resv::new());
    let ((), reports) = capture(|| {
        tagged(&COPY, || {
            let mut g = dst.lock_single();
            let _section = signalling::begin_signalling();
            g.copy_fences(&src);
        });
    });
    let kinds: Vec<Kind> = reports.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Kind::ReclaimInSignalling], "{reports:?}");
}

#[test]
fn reservation_lock_in_a_fence_callback_is_reported() {
    // Seed 000: unmapping (which takes the reservation lock) from a completion callback.
    let resv = std::sync::Arc::new(Resv::new());
    let (s, f) = FenceContext::new("test", "resv-in-callback").next_fence();
    let r = resv.clone();
    f.add_callback(move |_| {
        let _g = r.lock_single();
    })
    .unwrap();
    let ((), reports) = capture(|| {
        s.signal();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::SignallingDeadlock);
}

#[test]
fn two_plain_reservation_locks_at_once_are_recursive_locking() {
    let (a, b) = (Resv::new(), Resv::new());
    let ((), reports) = capture(|| {
        let _ga = a.lock_single();
        let _gb = b.lock_single();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, Kind::RecursiveLocking);
}
