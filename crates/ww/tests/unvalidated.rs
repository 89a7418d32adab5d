//! The lock fast path taken when neither the validator nor the deadlock injector is on.
//!
//! With both off, a lock through a context that already holds something is one inlined
//! compare-and-swap plus bookkeeping (`WwMutex::lock`), and `lock_all` prefetches its set and
//! skips repeated entries before it locks. Every other test binary runs with the validator on
//! (when the `lockdep` feature is), which takes the full path; this binary turns it off for
//! the whole process (its own process: the switch is global) so that the path production
//! builds take is proven too: mutual exclusion, no lost update, exact accounting and the
//! same answers as the full path.

use dmabuf_ww::{AcquireCtx, Algorithm, WwClass, WwError, WwMutex};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Turns the validator off once for this process (a no-op without the `lockdep` feature).
fn validator_off() {
    static OFF: Once = Once::new();
    OFF.call_once(|| dmabuf_lockdep::set_enabled(false));
}

/// One object: `inside` is set while a holder works on it (two at once trips it); `count`
/// is bumped once per transaction that held it.
#[derive(Default)]
struct Obj {
    inside: AtomicBool,
    count: u64,
}

/// xorshift64: the same sets for a given seed.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `threads` threads run random transactions of `n` of `m` objects (repeats allowed) for
/// `run`; `by_hand` uses a hand-written back-off loop over `lock`, otherwise `lock_all`.
/// Returns (transactions, rollbacks) after checking every counter.
fn stress(algorithm: Algorithm, by_hand: bool, threads: u64, n: usize, m: usize) -> (u64, u64) {
    validator_off();
    let class = WwClass::leak(format!("unvalidated.{algorithm:?}.{by_hand}"), algorithm);
    let objs: Vec<WwMutex<Obj>> = (0..m)
        .map(|_| WwMutex::new(class, Obj::default()))
        .collect();
    let per_object: Vec<AtomicU64> = (0..m).map(|_| AtomicU64::new(0)).collect();
    let (total, rollbacks) = (AtomicU64::new(0), AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_millis(700);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (objs, per_object, total, rollbacks) = (&objs, &per_object, &total, &rollbacks);
            s.spawn(move || {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (t + 1);
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let idx: Vec<usize> =
                        (0..n).map(|_| (next(&mut x) % m as u64) as usize).collect();
                    let set: Vec<&WwMutex<Obj>> = idx.iter().map(|&i| &objs[i]).collect();
                    let ctx = AcquireCtx::new(class);
                    let mut guards = if by_hand {
                        lock_by_hand(&ctx, &set).into()
                    } else {
                        ctx.lock_all(&set).expect("one class")
                    };
                    ctx.done();
                    let mut distinct = idx.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    assert_eq!(
                        guards.len(),
                        distinct.len(),
                        "one guard per distinct object"
                    );
                    assert_eq!(
                        ctx.acquired(),
                        distinct.len(),
                        "acquired counts each lock once"
                    );
                    for g in &mut guards {
                        assert!(
                            !g.inside.swap(true, Ordering::SeqCst),
                            "two holders at once"
                        );
                    }
                    for g in &mut guards {
                        g.count += 1;
                        std::hint::spin_loop();
                        g.inside.store(false, Ordering::SeqCst);
                    }
                    for &i in &distinct {
                        per_object[i].fetch_add(1, Ordering::Relaxed);
                    }
                    drop(guards);
                    assert_eq!(ctx.acquired(), 0);
                    rollbacks.fetch_add(ctx.backoffs(), Ordering::Relaxed);
                    done += 1;
                }
                total.fetch_add(done, Ordering::Relaxed);
            });
        }
    });
    for (o, expected) in objs.into_iter().zip(&per_object) {
        assert_eq!(
            o.into_inner().count,
            expected.load(Ordering::Relaxed),
            "lost or extra update"
        );
    }
    (total.into_inner(), rollbacks.into_inner())
}

/// The loop a driver writes by hand: lock in the given order; on Deadlock drop everything,
/// `lock_slow` the contended one and start over (skipping objects already held).
fn lock_by_hand<'a>(
    ctx: &'a AcquireCtx,
    set: &[&'a WwMutex<Obj>],
) -> Vec<dmabuf_ww::WwGuard<'a, Obj>> {
    let mut guards = Vec::with_capacity(set.len());
    'retry: loop {
        for m in set {
            match m.lock(ctx) {
                Ok(g) => guards.push(g),
                Err(WwError::AlreadyHeld) => {}
                Err(WwError::Deadlock) => {
                    guards.clear();
                    guards.push(m.lock_slow(ctx).expect("nothing held"));
                    continue 'retry;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        return guards;
    }
}

#[test]
fn lock_all_contended_wound_wait() {
    let (tx, _) = stress(Algorithm::WoundWait, false, 3, 16, 48);
    assert!(tx > 0);
}

#[test]
fn lock_all_contended_wait_die() {
    let (tx, _) = stress(Algorithm::WaitDie, false, 3, 16, 48);
    assert!(tx > 0);
}

#[test]
fn by_hand_contended_wound_wait() {
    let (tx, _) = stress(Algorithm::WoundWait, true, 3, 8, 24);
    assert!(tx > 0);
}

#[test]
fn by_hand_contended_wait_die() {
    let (tx, _) = stress(Algorithm::WaitDie, true, 3, 8, 24);
    assert!(tx > 0);
}

#[test]
fn fast_path_answers_like_the_full_path() {
    validator_off();
    static A: WwClass = WwClass::wound_wait("unvalidated.answers.a");
    static B: WwClass = WwClass::wound_wait("unvalidated.answers.b");
    let (a1, a2, b) = (
        WwMutex::new(&A, 1),
        WwMutex::new(&A, 2),
        WwMutex::new(&B, 3),
    );
    let ctx = AcquireCtx::new(&A);
    let g1 = a1.lock(&ctx).unwrap();
    // From here on the context holds something: the fast path is tried first.
    assert_eq!(a1.lock(&ctx).unwrap_err(), WwError::AlreadyHeld);
    assert_eq!(b.lock(&ctx).unwrap_err(), WwError::ClassMismatch);
    assert!(!b.is_locked(), "a mismatched lock is released at once");
    let g2 = a2.lock(&ctx).unwrap();
    assert_eq!(ctx.acquired(), 2);
    assert!(a2.is_locked_by(&ctx));
    assert_eq!((*g1, *g2), (1, 2));
    drop((g1, g2));
    assert_eq!(ctx.acquired(), 0);
    assert!(!a1.is_locked() && !a2.is_locked());
}
