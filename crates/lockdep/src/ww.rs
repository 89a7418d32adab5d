//! Hooks for ww_mutex acquire-context rules (kernel: `ww_acquire_init/done/fini` debug checks,
//! `CONFIG_DEBUG_WW_MUTEX_SLOWPATH`).
//!
//! A ww_mutex implementation calls these at each step; the validator keeps the context's
//! state per thread and reports [`Kind::WwMisuse`] when a rule is broken. The lock-order side
//! (a ww class's locks nest under the context, the context orders against other locks) goes
//! through the ordinary [`acquire`](crate::acquire) with a nest lock.
//!
//! # Rules
//! * One acquire context per thread at a time; one ww class per context.
//! * Nothing is locked after `done`; `done` once; `fini` only with every lock released.
//! * After a Deadlock answer, every held lock of the context is released before the next
//!   acquisition, which must be of the contended lock: `lock_slow` (the usual way), or a plain
//!   lock of it, which the kernel accepts as well; `lock_slow` is only for that.
//!
//! A report is delivered before the context's state changes at `init` and after it at
//! `fini`, so a report that panics leaves the thread with the context it really has. On a
//! thread whose state is gone (a thread-local destructor), the hooks do nothing.

use crate::class::{ClassId, LockClass};
use crate::delivery;
use crate::held;
use crate::report::{Kind, Report, WwRule};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// An acquire context's identity, as the validator knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WwCtxId(u64);

static NEXT: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
struct CtxState {
    id: WwCtxId,
    class: ClassId,
    done: bool,
    /// Lock instances held through this context.
    held: Vec<usize>,
    /// The lock a Deadlock answer was about, until `lock_slow` takes it.
    contended: Option<usize>,
}

std::thread_local! {
    static CTX: RefCell<Option<CtxState>> = const { RefCell::new(None) };
}

fn misuse(rule: WwRule, class: Option<ClassId>) {
    if !held::is_enabled() {
        return;
    }
    delivery::deliver(Report {
        kind: Kind::WwMisuse(rule),
        class,
        cycle: Vec::new(),
        held: held::held_classes(),
    });
}

/// Runs `f` on this thread's context if it is `ctx`; reports a stale context otherwise.
/// `None` without a report once the thread's state is gone.
fn with_ctx<R>(ctx: WwCtxId, f: impl FnOnce(&mut CtxState) -> R) -> Option<R> {
    let r = CTX
        .try_with(|c| match c.borrow_mut().as_mut() {
            Some(s) if s.id == ctx => Some(f(s)),
            _ => None,
        })
        .ok()?;
    if r.is_none() {
        misuse(WwRule::StaleContext, None);
    }
    r
}

/// A new acquire context of `class` on this thread (kernel: `ww_acquire_init()`).
pub fn acquire_init(class: &'static LockClass) -> WwCtxId {
    let id = WwCtxId(NEXT.fetch_add(1, Ordering::Relaxed));
    let state = CtxState {
        id,
        class: class.id(),
        done: false,
        held: Vec::new(),
        contended: None,
    };
    // Reported before the new context replaces the old one: if the report panics, the new
    // context never comes to be, and the old one stays this thread's.
    if CTX.try_with(|c| c.borrow().is_some()).unwrap_or(false) {
        misuse(WwRule::TwoContexts, Some(class.id()));
    }
    let _ = CTX.try_with(|c| c.borrow_mut().replace(state));
    id
}

/// No more acquisitions with `ctx` (kernel: `ww_acquire_done()`).
pub fn acquire_done(ctx: WwCtxId) {
    let twice = with_ctx(ctx, |s| std::mem::replace(&mut s.done, true));
    if twice == Some(true) {
        misuse(WwRule::DoneTwice, None);
    }
}

/// The end of `ctx` (kernel: `ww_acquire_fini()`).
pub fn acquire_fini(ctx: WwCtxId) {
    let held = with_ctx(ctx, |s| !s.held.is_empty());
    if held.is_some() {
        // Gone before the report: the context ends whether or not the report panics.
        let _ = CTX.try_with(|c| c.borrow_mut().take());
    }
    if held == Some(true) {
        misuse(WwRule::FiniWithLocksHeld, None);
    }
}

/// About to lock `instance` of `class` with `ctx`; `slow` for `lock_slow`.
pub fn before_lock(ctx: WwCtxId, class: &'static LockClass, instance: usize, slow: bool) {
    let class_id = class.id();
    let rules = with_ctx(ctx, |s| {
        let mut broken = Vec::new();
        if s.class != class_id {
            broken.push(WwRule::DifferentClass);
        }
        if s.done {
            broken.push(WwRule::LockAfterDone);
        }
        match (s.contended, slow) {
            (Some(c), true) => {
                if c != instance {
                    broken.push(WwRule::SlowOnWrongLock);
                }
                if !s.held.is_empty() {
                    broken.push(WwRule::SlowWithLocksHeld);
                }
            }
            // Kernel (`ww_mutex_lock_acquired`): after -EDEADLK the next acquisition must be
            // the contended lock with nothing held, through either entry point.
            (Some(c), false) => {
                if c != instance || !s.held.is_empty() {
                    broken.push(WwRule::LockAfterDeadlock);
                }
            }
            (None, true) => broken.push(WwRule::UnneededSlow),
            (None, false) => {}
        }
        broken
    });
    for rule in rules.unwrap_or_default() {
        misuse(rule, Some(class_id));
    }
}

/// `ctx` got `instance`.
pub fn locked(ctx: WwCtxId, instance: usize) {
    with_ctx(ctx, |s| {
        s.contended = None;
        s.held.push(instance);
    });
}

/// `ctx` was answered Deadlock on `instance`: it must back off.
pub fn deadlock(ctx: WwCtxId, instance: usize) {
    with_ctx(ctx, |s| s.contended = Some(instance));
}

/// `ctx` released `instance`.
pub fn unlocked(ctx: WwCtxId, instance: usize) {
    with_ctx(ctx, |s| {
        if let Some(p) = s.held.iter().rposition(|&i| i == instance) {
            s.held.remove(p);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, capture};

    static WW_A: LockClass = LockClass::new("ww.test.A");
    static WW_B: LockClass = LockClass::new("ww.test.B");

    fn rules(f: impl FnOnce()) -> Vec<WwRule> {
        let ((), reports) = capture(f);
        reports
            .into_iter()
            .map(|r| match r.kind {
                Kind::WwMisuse(rule) => rule,
                other => panic!("unexpected report {other:?}"),
            })
            .collect()
    }

    #[test]
    fn normal_and_backoff_sequences_are_silent() {
        assert!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                before_lock(ctx, &WW_A, 2, false);
                deadlock(ctx, 2);
                unlocked(ctx, 1);
                before_lock(ctx, &WW_A, 2, true);
                locked(ctx, 2);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                acquire_done(ctx);
                unlocked(ctx, 1);
                unlocked(ctx, 2);
                acquire_fini(ctx);
            })
            .is_empty()
        );
    }

    #[test]
    fn two_contexts() {
        assert_eq!(
            rules(|| {
                let a = acquire_init(&WW_A);
                let _b = acquire_init(&WW_A);
                let _ = a;
                CTX.with(|c| c.borrow_mut().take());
            }),
            [WwRule::TwoContexts]
        );
    }

    #[test]
    fn different_class() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_B, 1, false);
                acquire_fini(ctx);
            }),
            [WwRule::DifferentClass]
        );
    }

    #[test]
    fn lock_after_done_and_done_twice() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                acquire_done(ctx);
                acquire_done(ctx);
                before_lock(ctx, &WW_A, 1, false);
                acquire_fini(ctx);
            }),
            [WwRule::DoneTwice, WwRule::LockAfterDone]
        );
    }

    #[test]
    fn fini_early_then_stale_context() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                acquire_fini(ctx);
                // The context is gone: using it again is stale.
                before_lock(ctx, &WW_A, 2, false);
            }),
            [WwRule::FiniWithLocksHeld, WwRule::StaleContext]
        );
    }

    #[test]
    fn lock_on_after_deadlock_without_backing_off() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                before_lock(ctx, &WW_A, 2, false);
                deadlock(ctx, 2);
                before_lock(ctx, &WW_A, 3, false);
                unlocked(ctx, 1);
                CTX.with(|c| c.borrow_mut().take());
            }),
            [WwRule::LockAfterDeadlock]
        );
    }

    #[test]
    fn plain_lock_of_the_contended_lock_after_backing_off_is_silent() {
        assert!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                before_lock(ctx, &WW_A, 2, false);
                deadlock(ctx, 2);
                unlocked(ctx, 1);
                before_lock(ctx, &WW_A, 2, false);
                locked(ctx, 2);
                unlocked(ctx, 2);
                acquire_fini(ctx);
            })
            .is_empty()
        );
    }

    #[test]
    fn plain_lock_of_another_lock_after_backing_off() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                before_lock(ctx, &WW_A, 2, false);
                deadlock(ctx, 2);
                unlocked(ctx, 1);
                before_lock(ctx, &WW_A, 3, false);
                CTX.with(|c| c.borrow_mut().take());
            }),
            [WwRule::LockAfterDeadlock]
        );
    }

    #[test]
    fn slow_on_wrong_lock_or_with_locks_held() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, false);
                locked(ctx, 1);
                before_lock(ctx, &WW_A, 2, false);
                deadlock(ctx, 2);
                before_lock(ctx, &WW_A, 3, true);
                CTX.with(|c| c.borrow_mut().take());
            }),
            [WwRule::SlowOnWrongLock, WwRule::SlowWithLocksHeld]
        );
    }

    #[test]
    fn unneeded_slow() {
        assert_eq!(
            rules(|| {
                let ctx = acquire_init(&WW_A);
                before_lock(ctx, &WW_A, 1, true);
                acquire_fini(ctx);
            }),
            [WwRule::UnneededSlow]
        );
    }
}
