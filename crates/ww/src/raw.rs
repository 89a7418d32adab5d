//! The lock word of a ww_mutex and its waiting algorithm (kernel: `__ww_mutex_lock()`,
//! `__ww_mutex_check_kill()`, `__ww_mutex_wound()`, `__ww_mutex_check_waiters()`,
//! `__mutex_unlock_slowpath()` with `MUTEX_FLAG_HANDOFF`).
//!
//! One word per mutex: the owner's context address, or 0 for a lock taken without a context,
//! plus three flags, `LOCKED`, `PARKED` (someone may be parked on this mutex) and `DECIDING`
//! (a requester is reading the owner's context). An uncontended lock and unlock are one
//! compare-and-swap each. Waiters park in `parking_lot_core`'s global table, keyed by the
//! mutex address, so an idle mutex carries no wait queue (`park`).
//!
//! # The owner's context
//! Deciding whether to wait, die or wound needs the owner's age and wound flag, read through
//! the address in the lock word. That address is only followed while the owner cannot finish
//! unlocking, so its context is alive (a context cannot be dropped while a guard borrows it,
//! and one whose guard was leaked is leaked with it). Two ways make sure of that:
//! * Inside `park`'s `validate` step, under the wait queue's lock, after checking that the
//!   word still names the owner with `PARKED` set: an owner whose word has `PARKED` cannot
//!   unlock without taking that same queue lock. This is the kernel's argument ("it cannot go
//!   away because we'll have FLAG_WAITERS set and hold wait_lock").
//! * Without the queue, by setting `DECIDING` on a held word without `PARKED` for the few
//!   instructions of the decision: the owner's unlock waits while it is set. Only one
//!   requester decides at a time, and none sets it once `PARKED` is set, so an owner that
//!   sees `PARKED` and no `DECIDING` can hand the word to the queue. A requester that has
//!   to wound or die then costs the owner no trip through the wait queue, and other
//!   requesters keep spinning instead of parking behind a `PARKED` flag nobody needed.
//!
//! # Rules
//! * Wait-die: a requester that holds locks dies when the owner is older.
//! * Wound-wait: a requester that holds locks wounds a younger owner (and wakes it if it is
//!   parked elsewhere), then waits, spinning first; a wounded context that holds locks dies
//!   when it would wait.
//! * An unlock wakes the first waiter (FIFO). A context that takes the mutex while others are
//!   parked wakes those that decide differently against it: younger ones on wait-die, older
//!   ones on wound-wait.
//! * A waiter woken once asks for a hand-off when it parks again; an unlock that wakes such a
//!   waiter gives it the lock directly, so a thread relocking in a loop cannot starve it.
//!
//! # Differences from the kernel
//! * Waiters are not kept in stamp order, so a wait-die requester does not die merely for
//!   queueing behind an older *waiter* (only the owner counts); re-deciding on every change
//!   of owner keeps the waits-for relation acyclic all the same.
//! * A requester spins briefly before parking. When a hint (the stamp of the owner's
//!   context, read without a lock) says waiting needs a wound, a wound-wait requester
//!   decides after a few spins, exactly, with `DECIDING`; when it says waiting would end in
//!   a back-off, a wait-die requester decides so only once its whole spin is spent, because
//!   an owner that finishes meanwhile spares it the back-off (under heavy contention this
//!   takes wait-die from tens or hundreds of rollbacks per 1000 transactions to a few,
//!   `BENCHMARKS.md`). The kernel spins on a ww_mutex with a context only while it holds
//!   nothing, and decides under the mutex's own wait lock.

use crate::cancel::CancelToken;
use crate::class::Algorithm;
use crate::ctx::CtxShared;
use crate::error::WwError;
use crate::park::{self, HANDOFF, Parked};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The mutex is held.
const LOCKED: usize = 1;
/// Threads may be parked on the mutex: unlocking must go through the wait queue.
const PARKED: usize = 2;
/// A requester is reading the owner's context to decide whether to wait, die or wound: the
/// owner's unlock waits until it is clear. Set only on a held word without `PARKED`.
const DECIDING: usize = 4;
/// The owner's context address (`CtxShared` is 8-aligned).
const OWNER: usize = !7;

/// Rounds of pure spinning (1, 2, 4, .. hints) before a wound-wait requester that the hint
/// says may have to wound decides (a wait-die requester that may have to die spins
/// [`SPIN_LIMIT`] times first).
const QUICK_SPINS: u32 = 4;

/// Looks at a held lock word before parking.
const SPIN_LIMIT: u32 = 100;

/// Park-token bit: the waiter has no context; its identity is a stack address (beside
/// [`HANDOFF`]).
const NOCTX: usize = 2;

/// The requester: its context and how many locks it holds, or nothing for a plain lock.
#[derive(Clone, Copy)]
pub(crate) struct Requester<'c> {
    pub(crate) ctx: Option<(&'c CtxShared, usize)>,
    pub(crate) algorithm: Algorithm,
    pub(crate) cancel: Option<&'c CancelToken>,
}

/// What `validate` decided instead of parking.
#[derive(Clone, Copy)]
enum Verdict {
    /// The word changed: look again.
    Retry,
    /// This requester just wounded the owner (whose context is at `victim`, parked on the
    /// mutex at `at` if not 0): wake it there, then spin for a while before parking.
    Wounded { at: usize, victim: usize },
    /// Answer this error.
    Fail(WwError),
}

/// The lock word.
pub(crate) struct RawWw {
    state: AtomicUsize,
    /// The stamp of the context that last took the mutex: a hint, read without any lock, for
    /// whether waiting could end in a back-off or a wound (then the requester decides at once
    /// instead of spinning).
    owner_stamp: AtomicU64,
}

impl RawWw {
    pub(crate) const fn new() -> Self {
        RawWw {
            state: AtomicUsize::new(0),
            owner_stamp: AtomicU64::new(0),
        }
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether the mutex is held.
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Whether the mutex is held by the context at `id`.
    pub(crate) fn is_owned_by(&self, id: usize) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        s & LOCKED != 0 && s & OWNER == id
    }

    /// Takes the mutex if it is free, for `id` (a context address, or 0) of `who`.
    pub(crate) fn try_lock(&self, id: usize, who: Requester<'_>) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | id | LOCKED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.note_owner(who.ctx.map(|(c, _)| c));
                    if s & PARKED != 0 {
                        self.check_waiters(who);
                    }
                    return true;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Takes the mutex for `id`, waiting as the algorithm allows.
    ///
    /// # Errors
    /// [`WwError::AlreadyHeld`] if `id`'s context owns it, [`WwError::Deadlock`] when the
    /// requester must back off, [`WwError::Interrupted`] when `cancel` fires.
    #[inline]
    pub(crate) fn lock(&self, id: usize, who: Requester<'_>) -> Result<(), WwError> {
        if self.try_lock_fast(id) {
            self.note_owner(who.ctx.map(|(c, _)| c));
            return Ok(());
        }
        self.lock_slow(id, who)
    }

    /// Takes the mutex for `id` if it is free and nobody is parked: one compare-and-swap,
    /// the only access to the mutex, so its cache line arrives once, for writing. The caller
    /// then records the owner with [`note_owner`](Self::note_owner).
    #[inline]
    pub(crate) fn try_lock_fast(&self, id: usize) -> bool {
        self.state
            .compare_exchange(0, id | LOCKED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Records the new owner's stamp hint.
    #[inline]
    pub(crate) fn note_owner(&self, ctx: Option<&CtxShared>) {
        if let Some(c) = ctx {
            self.owner_stamp.store(c.stamp, Ordering::Relaxed);
        }
    }

    /// Whether waiting for the current owner may end in a back-off or needs a wound, by the
    /// hint: then decide now rather than spin.
    fn should_decide(&self, who: Requester<'_>) -> bool {
        match who.ctx {
            Some((me, held)) if held > 0 => {
                let owner = self.owner_stamp.load(Ordering::Relaxed);
                match who.algorithm {
                    Algorithm::WaitDie => owner < me.stamp,
                    Algorithm::WoundWait => owner > me.stamp,
                }
            }
            _ => false,
        }
    }

    #[cold]
    pub(crate) fn lock_slow(&self, id: usize, who: Requester<'_>) -> Result<(), WwError> {
        // A waiter without a context is known by an address on its stack, unique while it
        // waits.
        let anchor = 0u64;
        let me = match who.ctx {
            Some(_) => id,
            None => std::ptr::from_ref(&anchor) as usize | NOCTX,
        };
        let wounded = || who.ctx.is_some_and(|(c, held)| held > 0 && c.is_wounded());
        let _registration = who.cancel.map(|c| c.register(self.key(), me));
        let mut spin = Spin::new();
        let mut req = 0;
        // The owner this requester wounded last: it is about to finish or back off, so
        // waiting for it starts with a spin.
        let mut victim = 0;
        // The owner this requester decided to wait for: no need to decide again.
        let mut waits_for = 0;
        let mut quick = 0;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(s, s | id | LOCKED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    self.note_owner(who.ctx.map(|(c, _)| c));
                    if s & PARKED != 0 {
                        self.check_waiters(who);
                    }
                    return Ok(());
                }
                continue;
            }
            if id != 0 && s & OWNER == id {
                return Err(WwError::AlreadyHeld);
            }
            if wounded() {
                // Wounded by an older context while holding locks, and about to wait: back
                // off (kernel: `__ww_mutex_check_kill`; a free lock is still taken above).
                return Err(WwError::Deadlock);
            }
            if who.cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(WwError::Interrupted);
            }
            let owner = s & OWNER;
            // Spin while nobody is parked, or while the owner is one this requester just
            // wounded (it is about to finish or back off) — unless the hint says waiting may
            // end in a back-off or needs a wound: then `park` decides at once, exactly.
            let spin_now = if owner != 0 && owner == victim {
                true
            } else if s & PARKED != 0 {
                false
            } else if owner != 0 && owner != waits_for && self.should_decide(who) {
                // Spin first: the owner may be done before a decision pays off. Wait-die
                // spins its whole budget, since dying throws the transaction's work away;
                // wound-wait only a few rounds, as its wound costs the owner nothing
                // unless the owner comes to wait.
                match who.algorithm {
                    Algorithm::WaitDie if spin.spin() => continue,
                    Algorithm::WoundWait if quick < QUICK_SPINS => {
                        for _ in 0..1u32 << quick {
                            std::hint::spin_loop();
                        }
                        quick += 1;
                        continue;
                    }
                    _ => {}
                }
                match self.decide_now(s, who) {
                    None => {
                        waits_for = owner;
                        true
                    }
                    Some(v) => {
                        follow(v, &mut victim, &mut spin)?;
                        continue;
                    }
                }
            } else {
                true
            };
            if spin_now && spin.spin() {
                continue;
            }
            if s & PARKED == 0
                && self
                    .state
                    .compare_exchange_weak(s, s | PARKED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            match self.park(me | req, who) {
                Ok(true) => {
                    self.note_owner(who.ctx.map(|(c, _)| c));
                    // Handed over: the waiters still parked decide again against us.
                    if self.state.load(Ordering::Relaxed) & PARKED != 0 {
                        self.check_waiters(who);
                    }
                    return Ok(());
                }
                Ok(false) => {
                    // Woken without the lock: next time, ask for it to be handed over.
                    req = HANDOFF;
                    spin.reset();
                }
                Err(v) => follow(v, &mut victim, &mut spin)?,
            }
        }
    }

    /// Decides, exactly, what the requester does about the owner of the held word `s`
    /// without the wait queue: `None` to wait, else the verdict ([`Verdict::Retry`] if the
    /// word changed or another requester is deciding). The owner cannot unlock while our
    /// `DECIDING` bit is set, so its context can be read.
    fn decide_now(&self, s: usize, who: Requester<'_>) -> Option<Verdict> {
        let owner = s & OWNER;
        let Some((me, _)) = who
            .ctx
            .filter(|_| owner != 0 && s & (DECIDING | PARKED) == 0)
        else {
            std::hint::spin_loop();
            return Some(Verdict::Retry);
        };
        if self
            .state
            .compare_exchange(s, s | DECIDING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Some(Verdict::Retry);
        }
        // SAFETY: the word names `owner` as holder and carries our DECIDING bit; the owner's
        // unlock waits for the bit to clear, and its context outlives its hold on the mutex
        // (module documentation), so the context is alive until the `fetch_and` below. Its
        // fields were written before the owner's Release exchange that installed it, which
        // our Acquire exchange reads (through any flag updates in between).
        #[allow(unsafe_code)]
        let holder = unsafe { &*(owner as *const CtxShared) };
        let verdict = decide(me, holder, owner, who.algorithm);
        self.state.fetch_and(!DECIDING, Ordering::Release);
        verdict
    }

    /// Parks until woken; `Ok(true)` if the lock was handed over.
    fn park(&self, token: usize, who: Requester<'_>) -> Result<bool, Verdict> {
        let key = self.key();
        let verdict = Cell::new(Verdict::Retry);
        if let Some((c, _)) = who.ctx {
            // Published before `validate` reads our wound flag; a wounder writes the flag
            // before reading this (both SeqCst), so one of the two sees the other.
            c.parked_on.store(key, Ordering::SeqCst);
        }
        let validate = || {
            let s = self.state.load(Ordering::Acquire);
            if s & (LOCKED | PARKED) != LOCKED | PARKED {
                return false;
            }
            if who.cancel.is_some_and(CancelToken::is_cancelled) {
                verdict.set(Verdict::Fail(WwError::Interrupted));
                return false;
            }
            let Some((me, held)) = who.ctx else {
                return true;
            };
            if held > 0 && me.is_wounded() {
                verdict.set(Verdict::Fail(WwError::Deadlock));
                return false;
            }
            let owner = s & OWNER;
            if owner == 0 || held == 0 {
                // A plain owner has no age; a requester holding nothing is in no cycle.
                return true;
            }
            // SAFETY: the word names `owner` with LOCKED and PARKED set and we hold the wait
            // queue's lock, so the owner cannot unlock before we are done here and its
            // context outlives its hold on the mutex (see the module documentation).
            #[allow(unsafe_code)]
            let holder = unsafe { &*(owner as *const CtxShared) };
            match decide(me, holder, owner, who.algorithm) {
                Some(v) => {
                    verdict.set(v);
                    false
                }
                None => true,
            }
        };
        let result = park::park(key, token, validate);
        if let Some((c, _)) = who.ctx {
            c.parked_on.store(0, Ordering::SeqCst);
        }
        match result {
            Parked::HandedOver => Ok(true),
            Parked::Woken => Ok(false),
            Parked::Refused => Err(verdict.get()),
        }
    }

    /// Releases the mutex held for `id`.
    #[inline]
    pub(crate) fn unlock(&self, id: usize) {
        if self
            .state
            .compare_exchange(id | LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_contended(id);
        }
    }

    /// Unlocks a word with flags: waits while a requester reads our context (`DECIDING`),
    /// then wakes a waiter if one may be parked.
    #[cold]
    fn unlock_contended(&self, id: usize) {
        let mut spins = 0u32;
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & DECIDING != 0 {
                // A requester is between two instructions of a short decision; if it was
                // preempted there, let it run.
                spins += 1;
                if spins < SPIN_LIMIT {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            if s & PARKED != 0 {
                // No requester sets DECIDING on a word with PARKED, and only this owner
                // clears PARKED: the queue decides from here.
                self.unlock_slow();
                return;
            }
            if self
                .state
                .compare_exchange_weak(id | LOCKED, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Unlocks with waiters parked: wakes the first (FIFO), handing it the lock if it asked.
    #[cold]
    fn unlock_slow(&self) {
        park::wake_first(self.key(), |t, more| {
            let more = if more { PARKED } else { 0 };
            let (next, handoff) = if t & HANDOFF == 0 {
                (more, false)
            } else if t & NOCTX != 0 {
                (LOCKED | more, true)
            } else {
                ((t & OWNER) | LOCKED | more, true)
            };
            // Nobody else changes a locked word with PARKED set: it is ours to rewrite.
            self.state.store(next, Ordering::Release);
            handoff
        });
    }

    /// A context just took the mutex while threads are parked on it: wakes the waiters that
    /// must decide again against the new owner — on wait-die the younger ones (they may have
    /// to die), on wound-wait the older ones (they wound it) (kernel:
    /// `__ww_mutex_check_waiters`).
    #[cold]
    fn check_waiters(&self, who: Requester<'_>) {
        let Some((owner, _)) = who.ctx else {
            // A plain owner has no age: nobody decides differently.
            return;
        };
        let pick = |t: usize| {
            if t & NOCTX != 0 {
                return false;
            }
            // SAFETY: a waiter parked as a context is inside a lock call that borrows that
            // context, and it stays parked while we hold the queue lock.
            #[allow(unsafe_code)]
            let waiter = unsafe { &*((t & OWNER) as *const CtxShared) };
            match who.algorithm {
                Algorithm::WaitDie => waiter.stamp > owner.stamp,
                Algorithm::WoundWait => waiter.stamp < owner.stamp,
            }
        };
        park::wake_matching(self.key(), pick, |more| {
            if !more {
                self.state.fetch_and(!PARKED, Ordering::Relaxed);
            }
        });
    }
}

/// Acts on a verdict that is not "wait": wakes a wounded victim where it is parked and
/// spins on it next, or answers the error.
fn follow(v: Verdict, victim: &mut usize, spin: &mut Spin) -> Result<(), WwError> {
    match v {
        Verdict::Retry => {}
        Verdict::Wounded { at, victim: v } => {
            if at != 0 {
                park::wake_one(at, v);
            }
            *victim = v;
            spin.reset();
        }
        Verdict::Fail(e) => return Err(e),
    }
    Ok(())
}

/// What a requester `me` that holds locks does about the `holder` (at address `owner`) of
/// the mutex it wants: `None` to wait, or the verdict (wounding the holder on the way).
fn decide(
    me: &CtxShared,
    holder: &CtxShared,
    owner: usize,
    algorithm: Algorithm,
) -> Option<Verdict> {
    match algorithm {
        Algorithm::WaitDie if holder.stamp < me.stamp => Some(Verdict::Fail(WwError::Deadlock)),
        Algorithm::WoundWait if holder.stamp > me.stamp && !holder.wound() => {
            Some(Verdict::Wounded {
                at: holder.parked_on.load(Ordering::SeqCst),
                victim: owner,
            })
        }
        _ => None,
    }
}

/// Bounded busy-waiting before parking: up to [`SPIN_LIMIT`] looks at the lock word, one
/// spin-loop hint apart, like `std`'s futex mutex. No `sched_yield`: with as many threads as
/// CPUs a yield is a system call that returns at once, and with more a parked waiter is
/// woken by the unlock anyway.
struct Spin(u32);

impl Spin {
    fn new() -> Self {
        Spin(0)
    }

    fn reset(&mut self) {
        self.0 = 0;
    }

    /// Spins once and says so, or says the budget is spent.
    fn spin(&mut self) -> bool {
        if self.0 >= SPIN_LIMIT {
            return false;
        }
        self.0 += 1;
        std::hint::spin_loop();
        true
    }
}

#[cfg(test)]
mod tests {
    //! The waiting paths the lock word adds: wounds reaching a parked victim, cancellation of
    //! a parked waiter, hand-off, leaked guards, and the size of an idle mutex.
    use crate::{AcquireCtx, CancelToken, WwClass, WwError, WwMutex};
    use std::sync::Barrier;
    use std::time::Duration;

    static WOUND: WwClass = WwClass::wound_wait("raw.tests.wound_wait");
    static DIE: WwClass = WwClass::wait_die("raw.tests.wait_die");

    /// Waits until `m` has a thread parked on it (or a little while).
    fn settle() {
        std::thread::sleep(Duration::from_millis(50));
    }

    #[test]
    fn an_idle_mutex_is_three_words() {
        assert_eq!(std::mem::size_of::<WwMutex<u64>>(), 4 * 8); // class, word, hint, data
        assert_eq!(std::mem::size_of::<super::RawWw>(), 2 * 8);
    }

    #[test]
    fn an_unlock_waits_for_a_requester_deciding_against_its_owner() {
        // A requester reading the owner's context holds DECIDING; the owner's unlock must not
        // finish (and free the context) before the bit is clear, and a waiter that set PARKED
        // meanwhile sends the unlock through the queue afterwards.
        use super::{DECIDING, LOCKED, PARKED, RawWw};
        use std::sync::atomic::Ordering;
        const ID: usize = 8;
        for parked in [false, true] {
            let raw = RawWw::new();
            assert!(raw.try_lock_fast(ID));
            raw.state.fetch_or(DECIDING, Ordering::Acquire);
            if parked {
                raw.state.fetch_or(PARKED, Ordering::Relaxed);
            }
            std::thread::scope(|s| {
                let owner = s.spawn(|| raw.unlock(ID));
                settle();
                assert!(!owner.is_finished(), "unlocked under a decision");
                assert_eq!(
                    raw.state.load(Ordering::Relaxed) & (ID | LOCKED),
                    ID | LOCKED
                );
                raw.state.fetch_and(!DECIDING, Ordering::Release);
                owner.join().expect("owner");
            });
            assert_eq!(raw.state.load(Ordering::Relaxed), 0, "parked: {parked}");
        }
    }

    #[test]
    fn a_younger_running_owner_is_wounded_and_an_older_running_owner_kills() {
        // Both decisions taken against an owner that is running, not parked (the DECIDING
        // path): wound-wait wounds the younger owner and waits for it; wait-die answers
        // Deadlock to the younger requester at once.
        let m = WwMutex::new(&WOUND, 0);
        let older = AcquireCtx::new(&WOUND);
        let locked = Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let younger = AcquireCtx::new(&WOUND);
                let g = m.lock(&younger).expect("free");
                locked.wait();
                // Released only once wounded: the older requester must have decided.
                while !younger.is_wounded() {
                    std::hint::spin_loop();
                }
                drop(g);
            });
            locked.wait();
            let extra = WwMutex::new(&WOUND, 0);
            let own = extra.lock(&older).expect("free");
            let g = m.lock(&older).expect("the younger owner lets go");
            drop((g, own));
        });
        drop(older); // one context per thread at a time

        let m = WwMutex::new(&DIE, 0);
        let older = AcquireCtx::new(&DIE);
        let g = m.lock(&older).expect("free");
        std::thread::scope(|s| {
            s.spawn(|| {
                let younger = AcquireCtx::new(&DIE);
                let other = WwMutex::new(&DIE, 0);
                let _own = other.lock(&younger).expect("free");
                assert_eq!(m.lock(&younger).map(drop), Err(WwError::Deadlock));
            })
            .join()
            .expect("younger");
        });
        drop(g);
    }

    #[test]
    fn a_wound_wakes_a_victim_parked_on_another_mutex() {
        // B (younger) holds `held` and parks on `blocker`, which a third thread holds
        // plainly; A (older) then wants `held`: it wounds B, which must wake on `blocker`,
        // back off and release `held`.
        let (held, blocker) = (WwMutex::new(&WOUND, 0), WwMutex::new(&WOUND, 0));
        let older = AcquireCtx::new(&WOUND);
        let (blocked, parked, done) = (Barrier::new(2), Barrier::new(2), Barrier::new(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                let plain = blocker.lock_plain();
                blocked.wait();
                done.wait();
                drop(plain);
            });
            let b = s.spawn(|| {
                let younger = AcquireCtx::new(&WOUND);
                let g = held.lock(&younger).expect("free");
                blocked.wait();
                parked.wait();
                let r = blocker.lock(&younger).map(drop);
                drop(g);
                r
            });
            let extra = WwMutex::new(&WOUND, 0);
            let own = extra.lock(&older).expect("free"); // holding something, older wounds
            parked.wait();
            settle();
            let g = held
                .lock(&older)
                .expect("the victim backs off and releases");
            drop((g, own));
            assert_eq!(b.join().expect("victim"), Err(WwError::Deadlock));
            done.wait();
        });
    }

    #[test]
    fn cancel_wakes_a_parked_context_waiter() {
        let m = WwMutex::new(&DIE, 0);
        let plain = m.lock_plain();
        let token = CancelToken::new();
        std::thread::scope(|s| {
            let w = s.spawn(|| {
                let ctx = AcquireCtx::new(&DIE);
                m.lock_interruptible(&ctx, &token).map(drop)
            });
            settle();
            token.cancel();
            assert_eq!(w.join().expect("waiter"), Err(WwError::Interrupted));
        });
        drop(plain);
        let ctx = AcquireCtx::new(&DIE);
        assert!(
            m.try_lock(&ctx).is_some(),
            "the cancelled waiter left nothing behind"
        );
    }

    #[test]
    fn a_younger_context_dies_on_a_lock_an_older_waiter_was_woken_for() {
        // Wait-die: an older waiter parks behind a plain owner and is woken (FIFO) when it
        // unlocks; a younger context holding locks then dies on the mutex instead of waiting.
        let m = WwMutex::new(&DIE, 0);
        let (created, locked, got, release) = (
            Barrier::new(2),
            Barrier::new(2),
            Barrier::new(2),
            Barrier::new(2),
        );
        std::thread::scope(|s| {
            let w = s.spawn(|| {
                let older = AcquireCtx::new(&DIE);
                created.wait();
                locked.wait();
                let g = m.lock(&older).expect("waits, then gets it");
                got.wait();
                release.wait();
                drop(g);
            });
            created.wait();
            let younger = AcquireCtx::new(&DIE);
            let plain = m.lock_plain();
            locked.wait();
            settle();
            drop(plain);
            got.wait();
            let other = WwMutex::new(&DIE, 0);
            let g = other.lock(&younger).expect("free");
            assert_eq!(m.lock(&younger).map(drop), Err(WwError::Deadlock));
            drop(g);
            release.wait();
            w.join().expect("older");
        });
    }

    #[test]
    fn a_leaked_guard_keeps_its_context_readable() {
        // The lock word of a leaked guard names a context that has been dropped; waiters
        // still read its stamp (wait-die: the younger dies against it) without harm.
        static LEAK: WwClass = WwClass::wait_die("raw.tests.leak");
        let m = WwMutex::new(&LEAK, 0);
        // Finishing a context with a lock held is misuse the validator reports (when on), and
        // the leaked lock stays on this thread's held stack: collect what it says.
        let ((), reports) = dmabuf_lockdep::capture(|| {
            {
                let older = AcquireCtx::new(&LEAK);
                std::mem::forget(m.lock(&older).expect("free"));
            }
            assert!(m.is_locked());
            let younger = AcquireCtx::new(&LEAK);
            let other = WwMutex::new(&LEAK, 0);
            let _g = other.lock(&younger).expect("free");
            assert_eq!(m.lock(&younger).map(drop), Err(WwError::Deadlock));
            assert!(m.try_lock(&younger).is_none());
        });
        if cfg!(feature = "lockdep") {
            assert!(
                reports.iter().any(|r| r.kind
                    == dmabuf_lockdep::Kind::WwMisuse(dmabuf_lockdep::WwRule::FiniWithLocksHeld)),
                "{reports:?}"
            );
        }
    }

    #[test]
    fn a_relocking_thread_cannot_starve_a_waiter() {
        // One thread unlocks and relocks in a tight loop; a waiter asks for a hand-off once it
        // has been woken and must get the lock.
        let m = WwMutex::new(&DIE, 0u64);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut g = m.lock_plain();
                    *g += 1;
                }
            });
            for _ in 0..100 {
                let ctx = AcquireCtx::new(&DIE);
                let mut g = m.lock(&ctx).expect("holds nothing: never dies");
                *g += 1;
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
