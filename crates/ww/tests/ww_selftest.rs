//! Port of the ww_mutex part of the kernel's locking self-test (`lib/locking-selftest.c`,
//! `ww_tests()`): SUCCESS cases must leave the validator silent, FAILURE cases must make it
//! report the broken rule.
//!
//! The kernel's `ww_lockdep` class is a wait-die class, so the cases that need a Deadlock
//! answer use one: the kernel forges "an older context owns `o2`" (`o2.ctx = &t2` with
//! `t2.stamp = t.stamp - 1`); here a real older context on a helper thread holds it.
//!
//! Every case uses fresh classes (the validator's dependency graph is global) and runs on a
//! thread of its own (the validator's held-lock stack and acquire context are per thread, and
//! some cases leave them dirty on purpose).
//!
//! Cases the Rust API makes impossible to write are listed where the kernel has them, with the
//! reason, instead of a test:
//! * `context_unlock_twice` (`ww_acquire_fini` twice): finishing is dropping the context, which
//!   consumes it.
//! * `object_unlock_twice` (`ww_mutex_unlock` twice): unlocking is dropping the guard, which
//!   consumes it.
//! * `object_lock_unbalanced` (`t.acquired = 0` before an unlock): the context's count is
//!   private and kept by the guards.
//! * `object_lock_stale_context` as the kernel writes it (`o.ctx = &t2`, a mutex whose recorded
//!   owner is some other context): a mutex's owner is private and set only by locking; the
//!   validator's stale-context rule is exercised by the nearest case that can be written.
//! * `context_fini_early` as the kernel writes it (`ww_acquire_fini` with a lock held) does not
//!   compile — guards borrow the context (see the `compile_fail` example on `AcquireCtx`); it
//!   is ported by leaking a guard with `mem::forget`, which ends the borrow but not the lock.
//! * `ww_test_normal`'s `mutex_lock_nest_lock(&o.base, &t)`: there is no plain lock nested
//!   under a context; locking through the context is the only nested form.
#![cfg(feature = "lockdep")]

use dmabuf_lockdep::{Acquire, Kind, LockClass, Mode, Report, WwRule, capture};
use dmabuf_ww::{AcquireCtx, Algorithm, CancelToken, WwClass, WwError, WwMutex};
use std::sync::mpsc;
use std::thread;

/// A fresh wait-die class (kernel: `DEFINE_WD_CLASS(ww_lockdep)`).
fn fresh(case: &str) -> &'static WwClass {
    WwClass::leak(format!("ww_selftest.{case}"), Algorithm::WaitDie)
}

/// A fresh plain lock class (the kernel's spinlock `A` and friends).
fn fresh_lock(case: &str, name: &str) -> &'static LockClass {
    LockClass::leak(format!("ww_selftest.{case}.{name}"))
}

/// Runs `f` on a thread of its own and returns every report the validator made there.
fn isolated<F: FnOnce() + Send>(f: F) -> Vec<Report> {
    thread::scope(|s| s.spawn(|| capture(f).1).join().expect("test body panicked"))
}

fn kinds(reports: &[Report]) -> Vec<Kind> {
    reports.iter().map(|r| r.kind).collect()
}

/// SUCCESS: the validator stayed silent.
fn assert_success(reports: &[Report]) {
    assert!(
        reports.is_empty(),
        "expected no report, got {:?}:\n{}",
        kinds(reports),
        reports.iter().map(ToString::to_string).collect::<String>()
    );
}

/// FAILURE with acquire-context rules: exactly these, in order.
fn assert_ww(reports: &[Report], rules: &[WwRule]) {
    let expected: Vec<Kind> = rules.iter().map(|&r| Kind::WwMisuse(r)).collect();
    assert_eq!(kinds(reports), expected);
}

/// FAILURE of the lock-order kind: the first report is `kind`; any later ones are only
/// follow-ons of it (listed in `follow_ons`).
fn assert_first(reports: &[Report], kind: Kind, follow_ons: &[Kind]) {
    let k = kinds(reports);
    println!("reports: {k:?}");
    assert_eq!(k.first(), Some(&kind), "reports: {k:?}");
    assert!(
        k[1..].iter().all(|x| follow_ons.contains(x)),
        "unexpected follow-on reports: {k:?}"
    );
}

/// Runs `body` while a context older than any `body` makes holds `locks` on a helper thread
/// (kernel: `o2.ctx = &t2; t2.stamp = t.stamp - 1`). `body` gets a function that makes the
/// helper unlock and finish, and returns once it has. The helper's own validator reports
/// would panic it (the default report mode in tests), so it must stay silent.
fn with_older_holder<R>(
    class: &'static WwClass,
    locks: &[&WwMutex<()>],
    body: impl FnOnce(&dyn Fn()) -> R,
) -> R {
    thread::scope(|s| {
        let (held_tx, held_rx) = mpsc::channel::<u64>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let helper = s.spawn(move || {
            let ctx = AcquireCtx::new(class);
            let guards: Vec<_> = locks
                .iter()
                .map(|m| m.lock(&ctx).expect("idle lock"))
                .collect();
            held_tx.send(ctx.stamp()).expect("test alive");
            let _ = release_rx.recv();
            drop(guards);
        });
        let older = held_rx.recv().expect("helper holds its locks");
        let helper = std::cell::RefCell::new(Some(helper));
        let release = || {
            let _ = release_tx.send(());
            if let Some(h) = helper.borrow_mut().take() {
                h.join().expect("helper");
            }
        };
        let probe = AcquireCtx::new(class);
        assert!(
            probe.stamp() > older,
            "the helper's context is the older one"
        );
        drop(probe);
        let r = body(&release);
        release();
        r
    })
}

// ---------------------------------------------------------------------------------------------
// ww api failures

// ports locking-selftest: ww_test_fail_acquire (SUCCESS)
#[test]
fn fail_acquire() {
    let class = fresh("fail_acquire");
    let (o, p) = (WwMutex::new(class, ()), WwMutex::new(class, ()));
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let g = o.lock(&t).expect("first lock");
        assert!(o.is_locked_by(&t));
        // Pure API: relock with the same context, plain trylock.
        assert_eq!(o.lock(&t).err(), Some(WwError::AlreadyHeld));
        assert!(o.try_lock_plain().is_none());
        // A younger context holding a lock (kernel: `t2 = t; t2.stamp++`) dies against it.
        let stamp = t.stamp();
        let (answer, younger_reports) = thread::scope(|s| {
            s.spawn(|| {
                capture(|| {
                    let t2 = AcquireCtx::new(class);
                    assert!(t2.stamp() > stamp);
                    let _gp = p.lock(&t2).expect("idle lock");
                    o.lock(&t2).err()
                })
            })
            .join()
            .expect("younger context")
        });
        assert_eq!(answer, Some(WwError::Deadlock));
        assert_success(&younger_reports);
        drop(g);
        let g = o.try_lock_plain().expect("unlocked again");
        drop(g);
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_normal (SUCCESS): the plain-mutex paths leave the context
// alone.
#[test]
fn normal() {
    let class = fresh("normal");
    let o = WwMutex::new(class, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let untouched = |o: &WwMutex<()>| {
            assert!(!o.is_locked_by(&t));
            assert_eq!(t.acquired(), 0);
        };
        {
            let _g = o.lock_plain();
            untouched(&o);
        }
        {
            // mutex_lock_interruptible and mutex_lock_killable are the same entry point here.
            let _g = o
                .lock_plain_interruptible(&CancelToken::new())
                .expect("not cancelled");
            untouched(&o);
        }
        {
            let _g = o.try_lock_plain().expect("trylock, succeeding");
            untouched(&o);
        }
        {
            let _g = o.lock_plain();
            assert!(o.try_lock_plain().is_none(), "trylock, failing");
            untouched(&o);
        }
        // mutex_lock_nest_lock(&o.base, &t): unrepresentable (see the file's comment).
        untouched(&o);
        assert!(!o.is_locked());
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_unneeded_slow (FAILURE)
#[test]
fn unneeded_slow() {
    let class = fresh("unneeded_slow");
    let o = WwMutex::new(class, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let _g = o.lock_slow(&t).expect("idle lock");
    });
    assert_ww(&reports, &[WwRule::UnneededSlow]);
}

// ---------------------------------------------------------------------------------------------
// ww contexts mixing

// ports locking-selftest: ww_test_two_contexts (FAILURE)
#[test]
fn two_contexts() {
    let class = fresh("two_contexts");
    let reports = isolated(|| {
        let _t = AcquireCtx::new(class);
        let _t2 = AcquireCtx::new(class);
    });
    // The context rule, and the acquire class taken twice (the kernel's own report for this
    // case is that recursive acquisition of `ww_lockdep_acquire`). The second context replaced
    // the first in the validator, so finishing the first one is a stale use.
    assert_first(
        &reports,
        Kind::WwMisuse(WwRule::TwoContexts),
        &[Kind::RecursiveLocking, Kind::WwMisuse(WwRule::StaleContext)],
    );
    assert!(kinds(&reports).contains(&Kind::RecursiveLocking));
}

// ports locking-selftest: ww_test_diff_class (FAILURE)
#[test]
fn diff_class() {
    let class = fresh("diff_class");
    let other = fresh("diff_class.other");
    let o = WwMutex::new(other, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        assert_eq!(o.lock(&t).err(), Some(WwError::ClassMismatch));
    });
    assert_ww(&reports, &[WwRule::DifferentClass]);
}

// ---------------------------------------------------------------------------------------------
// finishing ww context

// ports locking-selftest: ww_test_context_done_twice (FAILURE)
#[test]
fn context_done_twice() {
    let class = fresh("done_twice");
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        t.done();
        t.done();
    });
    assert_ww(&reports, &[WwRule::DoneTwice]);
}

// ports locking-selftest: ww_test_context_unlock_twice (FAILURE) — unrepresentable:
// `ww_acquire_fini` is dropping the `AcquireCtx`, which moves it; a second drop does not
// compile.

// ports locking-selftest: ww_test_context_fini_early (FAILURE). `drop(t)` with a guard alive
// does not compile (the guard borrows the context); forgetting the guard ends the borrow while
// the lock stays held, which is what the kernel case does.
#[test]
fn context_fini_early() {
    let class = fresh("fini_early");
    let o = WwMutex::new(class, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let g = o.lock(&t).expect("idle lock");
        t.done();
        std::mem::forget(g);
        drop(t);
    });
    assert_ww(&reports, &[WwRule::FiniWithLocksHeld]);
    assert!(o.is_locked(), "the forgotten guard never unlocked");
}

// ports locking-selftest: ww_test_context_lock_after_done (FAILURE)
#[test]
fn context_lock_after_done() {
    let class = fresh("lock_after_done");
    let o = WwMutex::new(class, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        t.done();
        let _g = o.lock(&t).expect("locking after done still locks");
    });
    assert_ww(&reports, &[WwRule::LockAfterDone]);
}

// Not a separate kernel case, but kernel behaviour: `ww_mutex_trylock` with a context goes
// through the same acquisition checks as `ww_mutex_lock` (`ww_mutex_lock_acquired`), so a
// trylock after done is flagged too.
#[test]
fn context_trylock_after_done() {
    let class = fresh("trylock_after_done");
    let o = WwMutex::new(class, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        t.done();
        let _g = o.try_lock(&t).expect("idle lock");
    });
    assert_ww(&reports, &[WwRule::LockAfterDone]);
}

// ---------------------------------------------------------------------------------------------
// locking mismatches

// ports locking-selftest: ww_test_object_unlock_twice (FAILURE) — unrepresentable: unlocking
// is dropping the `WwGuard`, which moves it.

// ports locking-selftest: ww_test_object_lock_unbalanced (FAILURE) — unrepresentable: the
// kernel zeroes `t.acquired` behind the context's back; here the count is private and only
// guards change it.

// ports locking-selftest: ww_test_object_lock_stale_context (FAILURE), as far as it can be
// written. The kernel forges the mutex's owner (`o.ctx = &t2`), which cannot be done here. The
// validator's stale-context rule — a context it no longer tracks is used to lock — is reached
// through the one misuse that makes a context stale while it still exists: a second context
// on the thread, finished, leaves the first one unknown.
#[test]
fn object_lock_stale_context() {
    let class = fresh("stale_context");
    let o = WwMutex::new(class, ());
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let t2 = AcquireCtx::new(class);
        drop(t2);
        let (_, stale) = capture(|| drop(o.lock(&t).expect("idle lock")));
        assert!(
            kinds(&stale).contains(&Kind::WwMisuse(WwRule::StaleContext)),
            "{:?}",
            kinds(&stale)
        );
    });
    assert_first(
        &reports,
        Kind::WwMisuse(WwRule::TwoContexts),
        &[Kind::RecursiveLocking, Kind::WwMisuse(WwRule::StaleContext)],
    );
}

// ---------------------------------------------------------------------------------------------
// EDEADLK handling. `o2` (and `o3` where needed) are held by an older context on a helper
// thread; the case's own context `t` holds `o` and is answered Deadlock on `o2`.

/// The shared start of every EDEADLK case: `t` locks `o`, then gets Deadlock on `o2`.
fn edeadlk_start<'a>(
    t: &'a AcquireCtx,
    o: &'a WwMutex<()>,
    o2: &'a WwMutex<()>,
) -> dmabuf_ww::WwGuard<'a, ()> {
    let g = o.lock(t).expect("idle lock");
    assert_eq!(o2.lock(t).err(), Some(WwError::Deadlock));
    g
}

// ports locking-selftest: ww_test_edeadlk_normal (SUCCESS): unlock everything, then lock the
// contended lock (with plain `lock`, which the kernel accepts as well as `lock_slow`).
#[test]
fn edeadlk_normal() {
    let class = fresh("edeadlk_normal");
    let (o, o2) = (WwMutex::new(class, ()), WwMutex::new(class, ()));
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |release| {
            let t = AcquireCtx::new(class);
            let g = edeadlk_start(&t, &o, &o2);
            release();
            drop(g);
            let _g2 = o2.lock(&t).expect("contended lock, now free");
        });
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_edeadlk_normal_slow (SUCCESS)
#[test]
fn edeadlk_normal_slow() {
    let class = fresh("edeadlk_normal_slow");
    let (o, o2) = (WwMutex::new(class, ()), WwMutex::new(class, ()));
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |release| {
            let t = AcquireCtx::new(class);
            let g = edeadlk_start(&t, &o, &o2);
            release();
            drop(g);
            let _g2 = o2.lock_slow(&t).expect("contended lock");
        });
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_edeadlk_no_unlock (FAILURE)
#[test]
fn edeadlk_no_unlock() {
    let class = fresh("edeadlk_no_unlock");
    let (o, o2) = (WwMutex::new(class, ()), WwMutex::new(class, ()));
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |release| {
            let t = AcquireCtx::new(class);
            let _g = edeadlk_start(&t, &o, &o2);
            release();
            let _g2 = o2.lock(&t).expect("free now");
        });
    });
    assert_ww(&reports, &[WwRule::LockAfterDeadlock]);
}

// ports locking-selftest: ww_test_edeadlk_no_unlock_slow (FAILURE)
#[test]
fn edeadlk_no_unlock_slow() {
    let class = fresh("edeadlk_no_unlock_slow");
    let (o, o2) = (WwMutex::new(class, ()), WwMutex::new(class, ()));
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |release| {
            let t = AcquireCtx::new(class);
            let _g = edeadlk_start(&t, &o, &o2);
            release();
            let _g2 = o2.lock_slow(&t).expect("free now");
        });
    });
    assert_ww(&reports, &[WwRule::SlowWithLocksHeld]);
}

// ports locking-selftest: ww_test_edeadlk_acquire_more (FAILURE)
#[test]
fn edeadlk_acquire_more() {
    let class = fresh("edeadlk_acquire_more");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |_| {
            let t = AcquireCtx::new(class);
            let _g = edeadlk_start(&t, &o, &o2);
            let _g3 = o3.lock(&t).expect("idle lock");
        });
    });
    assert_ww(&reports, &[WwRule::LockAfterDeadlock]);
}

// ports locking-selftest: ww_test_edeadlk_acquire_more_slow (FAILURE)
#[test]
fn edeadlk_acquire_more_slow() {
    let class = fresh("edeadlk_acquire_more_slow");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |_| {
            let t = AcquireCtx::new(class);
            let _g = edeadlk_start(&t, &o, &o2);
            let _g3 = o3.lock_slow(&t).expect("idle lock");
        });
    });
    assert_ww(
        &reports,
        &[WwRule::SlowOnWrongLock, WwRule::SlowWithLocksHeld],
    );
}

// ports locking-selftest: ww_test_edeadlk_acquire_more_edeadlk (FAILURE)
#[test]
fn edeadlk_acquire_more_edeadlk() {
    let class = fresh("edeadlk_acquire_more_edeadlk");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let reports = isolated(|| {
        with_older_holder(class, &[&o2, &o3], |_| {
            let t = AcquireCtx::new(class);
            let _g = edeadlk_start(&t, &o, &o2);
            assert_eq!(o3.lock(&t).err(), Some(WwError::Deadlock));
        });
    });
    assert_ww(&reports, &[WwRule::LockAfterDeadlock]);
}

// ports locking-selftest: ww_test_edeadlk_acquire_more_edeadlk_slow (FAILURE). With locks held
// `lock_slow` answers like `lock`: Deadlock against the older holder of `o3`.
#[test]
fn edeadlk_acquire_more_edeadlk_slow() {
    let class = fresh("edeadlk_acquire_more_edeadlk_slow");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let reports = isolated(|| {
        with_older_holder(class, &[&o2, &o3], |_| {
            let t = AcquireCtx::new(class);
            let _g = edeadlk_start(&t, &o, &o2);
            assert_eq!(o3.lock_slow(&t).err(), Some(WwError::Deadlock));
        });
    });
    assert_ww(
        &reports,
        &[WwRule::SlowOnWrongLock, WwRule::SlowWithLocksHeld],
    );
}

// ports locking-selftest: ww_test_edeadlk_acquire_wrong (FAILURE): everything released, but
// then another lock than the contended one.
#[test]
fn edeadlk_acquire_wrong() {
    let class = fresh("edeadlk_acquire_wrong");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |_| {
            let t = AcquireCtx::new(class);
            let g = edeadlk_start(&t, &o, &o2);
            drop(g);
            let _g3 = o3.lock(&t).expect("idle lock");
        });
    });
    assert_ww(&reports, &[WwRule::LockAfterDeadlock]);
}

// ports locking-selftest: ww_test_edeadlk_acquire_wrong_slow (FAILURE)
#[test]
fn edeadlk_acquire_wrong_slow() {
    let class = fresh("edeadlk_acquire_wrong_slow");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let reports = isolated(|| {
        with_older_holder(class, &[&o2], |_| {
            let t = AcquireCtx::new(class);
            let g = edeadlk_start(&t, &o, &o2);
            drop(g);
            let _g3 = o3.lock_slow(&t).expect("idle lock");
        });
    });
    assert_ww(&reports, &[WwRule::SlowOnWrongLock]);
}

// Not a separate kernel case, but kernel behaviour (as for `context_trylock_after_done`): a
// trylock with the context after a Deadlock answer is an acquisition like any other — fine on
// the contended lock once everything is released, flagged on another lock.
#[test]
fn edeadlk_trylock_contended_and_wrong() {
    let class = fresh("edeadlk_trylock");
    let (o, o2, o3) = (
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
        WwMutex::new(class, ()),
    );
    let contended = isolated(|| {
        with_older_holder(class, &[&o2], |release| {
            let t = AcquireCtx::new(class);
            let g = edeadlk_start(&t, &o, &o2);
            release();
            drop(g);
            let _g2 = o2.try_lock(&t).expect("free now");
        });
    });
    assert_success(&contended);
    let wrong = isolated(|| {
        with_older_holder(class, &[&o2], |_| {
            let t = AcquireCtx::new(class);
            let g = edeadlk_start(&t, &o, &o2);
            drop(g);
            let _g3 = o3.try_lock(&t).expect("idle lock");
        });
    });
    assert_ww(&wrong, &[WwRule::LockAfterDeadlock]);
}

// ---------------------------------------------------------------------------------------------
// spinlock nest

// ports locking-selftest: ww_test_spin_nest_unlocked (FAILURE): a lock nested under a
// ww_mutex's class that is not held. (The validator refuses the acquisition, so the matching
// release is reported as unbalanced too; the kernel turns itself off after its first report.)
#[test]
fn spin_nest_unlocked() {
    let class = fresh("spin_nest_unlocked");
    let a = fresh_lock("spin_nest_unlocked", "A");
    let reports = isolated(|| {
        dmabuf_lockdep::acquire(
            a,
            Mode::Exclusive,
            Acquire {
                nest: Some(class.lockdep_mutex_class()),
                ..Acquire::default()
            },
        );
        dmabuf_lockdep::release(a, 0);
    });
    assert_first(&reports, Kind::NestLockNotHeld, &[Kind::BadUnlock]);
}

// ports locking-selftest: ww_test_spin_nest_lock (SUCCESS): Y1 and Y2 (one class) both nest
// under X1, which serialises them, so taking Y2 while A (taken after Y1) is held is no
// inversion.
#[test]
fn spin_nest_lock() {
    let x = fresh_lock("spin_nest_lock", "X");
    let y = fresh_lock("spin_nest_lock", "Y");
    let a = fresh_lock("spin_nest_lock", "A");
    let nested = Acquire {
        nest: Some(x),
        ..Acquire::default()
    };
    let reports = isolated(|| {
        dmabuf_lockdep::acquire(x, Mode::Exclusive, Acquire::default());
        dmabuf_lockdep::acquire(y, Mode::Exclusive, nested);
        dmabuf_lockdep::acquire(a, Mode::Exclusive, Acquire::default());
        dmabuf_lockdep::acquire(y, Mode::Exclusive, nested);
        dmabuf_lockdep::release(a, 0);
        dmabuf_lockdep::release(y, 0);
        dmabuf_lockdep::release(y, 0);
        dmabuf_lockdep::release(x, 0);
    });
    assert_success(&reports);
}

// ---------------------------------------------------------------------------------------------
// The nesting matrix: the row's lock is held, then the column's is taken (two mutexes `o` and
// `o2` of one ww class). "block" is a plain lock (kernel: `WWL1`, `ww_mutex_lock(o, NULL)`),
// "try" a plain trylock, "context" a lock through an acquire context; "spin" is a tracked
// `dmabuf_lockdep::Mutex` of its own class.

/// Two mutexes of a fresh ww class.
fn pair(case: &str) -> (&'static WwClass, WwMutex<()>, WwMutex<()>) {
    let class = fresh(case);
    (class, WwMutex::new(class, ()), WwMutex::new(class, ()))
}

// ports locking-selftest: ww_test_context_block (FAILURE)
#[test]
fn context_block() {
    let (class, o, o2) = pair("context_block");
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let _g = o.lock(&t).expect("idle lock");
        let _g2 = o2.lock_plain();
    });
    assert_first(&reports, Kind::RecursiveLocking, &[]);
}

// ports locking-selftest: ww_test_context_try (SUCCESS)
#[test]
fn context_try() {
    let (class, o, o2) = pair("context_try");
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let g = o.lock(&t).expect("idle lock");
        let g2 = o2.try_lock_plain().expect("idle lock");
        drop(g2);
        drop(g);
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_context_context (SUCCESS)
#[test]
fn context_context() {
    let (class, o, o2) = pair("context_context");
    let reports = isolated(|| {
        let t = AcquireCtx::new(class);
        let g = o.lock(&t).expect("idle lock");
        let g2 = o2.lock(&t).expect("idle lock");
        drop(g2);
        drop(g);
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_try_block (FAILURE)
#[test]
fn try_block() {
    let (_, o, o2) = pair("try_block");
    let reports = isolated(|| {
        let g = o.try_lock_plain().expect("idle lock");
        let g2 = o2.lock_plain();
        drop(g2);
        drop(g);
    });
    assert_first(&reports, Kind::RecursiveLocking, &[]);
}

// ports locking-selftest: ww_test_try_try (SUCCESS)
#[test]
fn try_try() {
    let (_, o, o2) = pair("try_try");
    let reports = isolated(|| {
        let g = o.try_lock_plain().expect("idle lock");
        let g2 = o2.try_lock_plain().expect("idle lock");
        drop(g2);
        drop(g);
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_try_context (FAILURE)
#[test]
fn try_context() {
    let (class, o, o2) = pair("try_context");
    let reports = isolated(|| {
        let _g = o.try_lock_plain().expect("idle lock");
        let t = AcquireCtx::new(class);
        let _g2 = o2.lock(&t).expect("idle lock");
    });
    assert_first(&reports, Kind::RecursiveLocking, &[]);
}

// ports locking-selftest: ww_test_block_block (FAILURE)
#[test]
fn block_block() {
    let (_, o, o2) = pair("block_block");
    let reports = isolated(|| {
        let _g = o.lock_plain();
        let _g2 = o2.lock_plain();
    });
    assert_first(&reports, Kind::RecursiveLocking, &[]);
}

// ports locking-selftest: ww_test_block_try (SUCCESS)
#[test]
fn block_try() {
    let (_, o, o2) = pair("block_try");
    let reports = isolated(|| {
        let _g = o.lock_plain();
        let _g2 = o2.try_lock_plain().expect("idle lock");
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_block_context (FAILURE)
#[test]
fn block_context() {
    let (class, o, o2) = pair("block_context");
    let reports = isolated(|| {
        let _g = o.lock_plain();
        let t = AcquireCtx::new(class);
        let _g2 = o2.lock(&t).expect("idle lock");
    });
    assert_first(&reports, Kind::RecursiveLocking, &[]);
}

// ports locking-selftest: ww_test_spin_block (FAILURE): o → A, then A → o.
#[test]
fn spin_block() {
    let (_, o, _) = pair("spin_block");
    let a = dmabuf_lockdep::Mutex::new(fresh_lock("spin_block", "A"), ());
    let reports = isolated(|| {
        drop(a.lock());
        {
            let _g = o.lock_plain();
            drop(a.lock());
        }
        let _ga = a.lock();
        let _g = o.lock_plain();
    });
    assert_first(&reports, Kind::CircularDependency, &[]);
}

// ports locking-selftest: ww_test_spin_try (SUCCESS): A → o is only a trylock, which cannot
// deadlock.
#[test]
fn spin_try() {
    let (_, o, _) = pair("spin_try");
    let a = dmabuf_lockdep::Mutex::new(fresh_lock("spin_try", "A"), ());
    let reports = isolated(|| {
        drop(a.lock());
        {
            let _g = o.try_lock_plain().expect("idle lock");
            drop(a.lock());
        }
        let _ga = a.lock();
        let _g = o.try_lock_plain().expect("idle lock");
    });
    assert_success(&reports);
}

// ports locking-selftest: ww_test_spin_context (FAILURE): o (through the context) → A, then
// A → o.
#[test]
fn spin_context() {
    let (class, o, _) = pair("spin_context");
    let a = dmabuf_lockdep::Mutex::new(fresh_lock("spin_context", "A"), ());
    let reports = isolated(|| {
        drop(a.lock());
        let t = AcquireCtx::new(class);
        {
            let _g = o.lock(&t).expect("idle lock");
            drop(a.lock());
        }
        let _ga = a.lock();
        let _g = o.lock(&t).expect("idle lock");
    });
    assert_first(&reports, Kind::CircularDependency, &[]);
}
