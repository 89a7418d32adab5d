//! Where waiters sleep: `parking_lot_core`'s global table of wait queues, keyed by a mutex's
//! address, so an idle mutex carries no queue (kernel: a mutex's `wait_list`, and the wake-ups
//! of `__mutex_unlock_slowpath()`, `__ww_mutex_wound()` and `__ww_mutex_check_waiters()`).
//!
//! A waiter parks with a token: its identity (an address, nonzero, with bit 0 clear), plus
//! [`HANDOFF`] once it asks for the lock to be handed to it. A waker that hands the lock over
//! answers the waiter with the waiter's own token; any other wake-up means "look again".
//!
//! # Rules
//! * Every key is the address of a ww_mutex's lock word, and only this module parks and
//!   wakes on such keys.
//! * The closures passed here run under the wait queue's lock: they must not panic, and must
//!   not park or wake (`parking_lot_core`'s terms for its callbacks). They read and write
//!   atomics, nothing more.

use parking_lot_core::{FilterOp, ParkResult, ParkToken, UnparkResult, UnparkToken};
use std::cell::Cell;

/// Token bit: the waiter asks for the lock to be handed to it when it is woken.
pub(crate) const HANDOFF: usize = 1;

/// How a [`park`] ended.
pub(crate) enum Parked {
    /// Woken with the lock handed over.
    HandedOver,
    /// Woken without the lock: look again.
    Woken,
    /// Not parked: `validate` answered `false`.
    Refused,
}

/// Parks the calling thread on `key` with `token` until it is woken, unless `validate`, called
/// under the queue's lock, answers `false`.
pub(crate) fn park(key: usize, token: usize, validate: impl FnOnce() -> bool) -> Parked {
    // SAFETY: `key` is a ww_mutex address, which only this module parks on, and whose waiters
    // take any wake-up without a hand-off as "look again" (module rules); `validate` neither
    // panics nor parks or wakes, and the other callbacks do nothing.
    #[allow(unsafe_code)]
    let result =
        unsafe { parking_lot_core::park(key, validate, || {}, |_, _| {}, ParkToken(token), None) };
    match result {
        ParkResult::Unparked(UnparkToken(t)) if t == token => Parked::HandedOver,
        ParkResult::Unparked(_) => Parked::Woken,
        // Without a timeout a park is never timed out; both leave the caller to look again.
        ParkResult::Invalid | ParkResult::TimedOut => Parked::Refused,
    }
}

/// Wakes the first waiter parked on `key` (FIFO). `handoff` runs under the queue's lock with
/// the woken waiter's token (0 when nobody was parked) and whether others stay parked, and
/// answers whether the lock is handed to that waiter.
pub(crate) fn wake_first(key: usize, handoff: impl FnOnce(usize, bool) -> bool) {
    let first = Cell::new(0usize);
    let filter = |ParkToken(t)| {
        if first.get() == 0 {
            first.set(t);
            FilterOp::Unpark
        } else {
            FilterOp::Stop
        }
    };
    let callback = |r: UnparkResult| {
        let t = first.get();
        UnparkToken(if handoff(t, r.have_more_threads) {
            t
        } else {
            0
        })
    };
    // SAFETY: as in `park`; `handoff` neither panics nor parks or wakes.
    #[allow(unsafe_code)]
    unsafe {
        parking_lot_core::unpark_filter(key, filter, callback);
    }
}

/// Wakes every waiter parked on `key` whose token `pick` chooses, without a hand-off; `after`
/// runs under the queue's lock with whether any waiter stays parked.
pub(crate) fn wake_matching(
    key: usize,
    mut pick: impl FnMut(usize) -> bool,
    after: impl FnOnce(bool),
) {
    let filter = |ParkToken(t)| {
        if pick(t) {
            FilterOp::Unpark
        } else {
            FilterOp::Skip
        }
    };
    let callback = |r: UnparkResult| {
        after(r.have_more_threads);
        UnparkToken(0)
    };
    // SAFETY: as in `park`; `pick` and `after` neither panic nor park or wake.
    #[allow(unsafe_code)]
    unsafe {
        parking_lot_core::unpark_filter(key, filter, callback);
    }
}

/// Wakes the waiter known as `who` if it is parked on `key` (a wounded owner, or a cancelled
/// waiter). A stale pair wakes nobody, or someone who just looks again.
pub(crate) fn wake_one(key: usize, who: usize) {
    wake_matching(key, |t| t & !HANDOFF == who, |_| {});
}
