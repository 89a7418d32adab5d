//! Port of the kernel's ww_mutex functional and stress tests (`kernel/locking/test-ww_mutex.c`).
//!
//! Every case runs for a Wound-Wait class and then for a Wait-Die class, as the kernel module
//! does. Every lock protects a counter, and every holder marks the lock "inside" for the whole
//! time it holds it, so the tests prove mutual exclusion (two holders at once trip the flag) and
//! that no update is lost (each counter ends equal to the number of critical sections that
//! included its lock, tallied separately by the workers). The stress tests print acquisitions
//! per second and the Deadlock (kernel: `-EDEADLK`) rate; run with `--nocapture` to see them.

use dmabuf_ww::{AcquireCtx, Algorithm, WwClass, WwError, WwGuard, WwMutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The kernel runs every case for its wound-wait class first, then for its wait-die class.
const ALGORITHMS: [Algorithm; 2] = [Algorithm::WoundWait, Algorithm::WaitDie];

/// How long a blocked worker must stay blocked (kernel: `HZ / 16`, 62.5 ms at HZ=1000).
const TIMEOUT: Duration = Duration::from_millis(60);

/// How long each stress run lasts (kernel: `2 * HZ`).
const STRESS_DURATION: Duration = Duration::from_secs(2);

/// How long a stress worker holds its whole set, in microseconds: a random value in this range.
/// The kernel sleeps 1–2 ms (`usleep_range(1000, 2000)`); we hold ten times shorter. The sleep's
/// job is to make the holder go off the CPU with its locks held, so that the others queue up and
/// their stamps collide; 100–200 µs still does that (a user-space sleep always switches), but
/// gives about ten times more transactions — and so more collisions and back-offs — in the 2 s
/// the kernel allots each run, which keeps the whole file well under 20 s.
const HOLD_US: (u64, u64) = (100, 200);

/// Rounds of each ring size in `test_cycle` (the kernel runs one; more rounds meet more
/// interleavings for little time).
const CYCLE_ROUNDS: usize = 10;

/// Stress runs are serialised so that their throughput figures do not disturb each other.
static STRESS_SERIAL: Mutex<()> = Mutex::new(());

fn ncpus() -> usize {
    thread::available_parallelism().map_or(2, usize::from)
}

/// A fresh class per case and algorithm.
fn class(case: &str, algorithm: Algorithm) -> &'static WwClass {
    WwClass::leak(format!("test-ww_mutex.{case}.{algorithm:?}"), algorithm)
}

/// A kernel `struct completion`: a one-shot flag threads can wait for.
#[derive(Default)]
struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Completion {
    fn complete(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits at most `timeout`; whether it was completed.
    fn wait_timeout(&self, timeout: Duration) -> bool {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let (done, _) = self
            .cv
            .wait_timeout_while(done, timeout, |d| !*d)
            .unwrap_or_else(PoisonError::into_inner);
        *done
    }

    fn is_done(&self) -> bool {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A lock with its counter and an "inside" flag set for as long as somebody holds it.
struct Slot {
    mutex: WwMutex<u64>,
    inside: AtomicBool,
}

impl Slot {
    fn new(class: &'static WwClass) -> Self {
        Slot {
            mutex: WwMutex::new(class, 0),
            inside: AtomicBool::new(false),
        }
    }

    /// Marks the lock held; fails if somebody else is marked as holding it.
    fn enter(&self, idx: usize) {
        assert!(
            !self.inside.swap(true, Ordering::SeqCst),
            "mutual exclusion failure: two holders of lock {idx}"
        );
    }

    fn leave(&self, idx: usize) {
        assert!(
            self.inside.swap(false, Ordering::SeqCst),
            "mutual exclusion failure: lock {idx} left by a second holder"
        );
    }
}

/// A held lock: its index among the test's slots and its guard.
type Held<'a> = (usize, WwGuard<'a, u64>);

/// The critical section: mark every lock held, read every counter, hold for `hold`, write
/// every counter + 1 and count it in `tally`, unmark. A second holder in between would trip
/// the flag, and its update would be lost (both would write the same value + 1).
fn critical_section(slots: &[Slot], held: &mut [Held<'_>], tally: &mut [u64], hold: Duration) {
    for (i, _) in held.iter() {
        slots[*i].enter(*i);
    }
    let before: Vec<u64> = held.iter().map(|(_, g)| **g).collect();
    if !hold.is_zero() {
        thread::sleep(hold);
    }
    for ((i, g), b) in held.iter_mut().zip(before) {
        **g = b + 1;
        tally[*i] += 1;
    }
    for (i, _) in held.iter() {
        slots[*i].leave(*i);
    }
}

/// Checks every counter against the sum of the workers' tallies; returns the total.
fn check_counts(slots: Vec<Slot>, tallies: &[Vec<u64>]) -> u64 {
    let mut total = 0;
    for (i, slot) in slots.into_iter().enumerate() {
        assert!(
            !slot.inside.load(Ordering::SeqCst),
            "lock {i} still marked held"
        );
        let expected: u64 = tallies.iter().map(|t| t[i]).sum();
        assert_eq!(
            slot.mutex.into_inner(),
            expected,
            "lock {i}: lost update (counter vs. critical sections counted by the workers)"
        );
        total += expected;
    }
    total
}

/// A small xorshift generator (orders, hold times, lock picks).
struct Rng(u64);

impl Rng {
    fn seeded(stream: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((t ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A random permutation of `0..n` (kernel: `get_random_order`).
    fn order(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
        v
    }

    fn hold(&mut self) -> Duration {
        let (lo, hi) = HOLD_US;
        Duration::from_micros(lo + self.next() % (hi - lo + 1))
    }
}

// ---------------------------------------------------------------------------------------------
// test_mutex

/// The main thread busy-polls for the worker's completion instead of sleeping on it.
const MTX_SPIN: u32 = 1 << 0;
/// The worker polls with trylock instead of blocking.
const MTX_TRY: u32 = 1 << 1;
/// The main thread locks through an acquire context.
const MTX_CTX: u32 = 1 << 2;

/// One flag combination: the main thread holds the lock (through a context with `MTX_CTX`) and
/// releases its worker, which then blocks on the lock (busy-polls `try_lock_plain` with
/// `MTX_TRY`); during `TIMEOUT` the worker must not get it. The main thread watches by
/// busy-polling the worker's completion (`MTX_SPIN`, kernel: a `cond_resched` loop) or by
/// sleeping on it with a timeout (kernel: `wait_for_completion_timeout`).
fn test_mutex_flags(algorithm: Algorithm, flags: u32) {
    let class = class("mutex", algorithm);
    let slot = Slot::new(class);
    let (ready, go, done) = (
        Completion::default(),
        Completion::default(),
        Completion::default(),
    );
    thread::scope(|s| {
        let worker = s.spawn(|| {
            ready.complete();
            go.wait();
            let mut g = if flags & MTX_TRY != 0 {
                loop {
                    if let Some(g) = slot.mutex.try_lock_plain() {
                        break g;
                    }
                    thread::yield_now();
                }
            } else {
                slot.mutex.lock_plain()
            };
            slot.enter(0);
            *g += 1;
            done.complete();
            slot.leave(0);
        });

        ready.wait();
        let ctx = (flags & MTX_CTX != 0).then(|| AcquireCtx::new(class));
        let mut g = match &ctx {
            Some(ctx) => slot.mutex.lock(ctx).expect("an idle lock"),
            None => slot.mutex.lock_plain(),
        };
        slot.enter(0);
        *g += 1;
        go.complete();
        let worker_got_it = if flags & MTX_SPIN != 0 {
            let deadline = Instant::now() + TIMEOUT;
            loop {
                if done.is_done() {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                thread::yield_now();
            }
        } else {
            done.wait_timeout(TIMEOUT)
        };
        slot.leave(0);
        drop(g);
        drop(ctx);
        assert!(
            !worker_got_it,
            "test_mutex({algorithm:?}, flags={flags:#x}): mutual exclusion failure"
        );
        worker.join().expect("worker");
    });
    assert!(done.is_done(), "the worker got the lock once released");
    assert_eq!(slot.mutex.into_inner(), 2);
}

// ports test-ww_mutex: test_mutex (all 8 combinations of SPIN, TRY and CTX)
#[test]
fn test_mutex() {
    for algorithm in ALGORITHMS {
        for flags in 0..8 {
            test_mutex_flags(algorithm, flags);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// test_aa

fn test_aa(algorithm: Algorithm, trylock: bool) {
    let class = class("aa", algorithm);
    let mutex = WwMutex::new(class, 0u64);
    let ctx = AcquireCtx::new(class);
    let from = if trylock { "trylock" } else { "lock" };
    let g = if trylock {
        mutex.try_lock(&ctx).expect("initial trylock")
    } else {
        mutex.lock(&ctx).expect("initial lock")
    };
    assert!(
        mutex.try_lock_plain().is_none(),
        "trylocked itself without context from {from}"
    );
    assert!(
        mutex.try_lock(&ctx).is_none(),
        "trylocked itself with context from {from}"
    );
    assert_eq!(
        mutex.lock(&ctx).err(),
        Some(WwError::AlreadyHeld),
        "missed deadlock for recursing from {from}"
    );
    // The failed attempts left the context's accounting alone.
    assert!(mutex.is_locked_by(&ctx));
    assert_eq!(ctx.acquired(), 1);
    drop(g);
    assert_eq!(ctx.acquired(), 0);
    assert!(!mutex.is_locked());
}

// ports test-ww_mutex: test_aa (lock first, then trylock first)
#[test]
fn test_aa_lock_and_trylock() {
    for algorithm in ALGORITHMS {
        test_aa(algorithm, false);
        test_aa(algorithm, true);
    }
}

// ---------------------------------------------------------------------------------------------
// test_abba

/// One side of ABBA: take `first` (with `trylock`, by trylock), tell the other side, wait for
/// it to hold its own first lock, then take `second`. With `resolve`, a Deadlock answer is
/// resolved the kernel way: unlock `first`, `lock_slow(second)`, lock `first` again.
fn abba_side(
    class: &'static WwClass,
    slots: &[Slot],
    (first, second): (usize, usize),
    (mine, theirs): (&Completion, &Completion),
    trylock: bool,
    resolve: bool,
    tally: &mut [u64],
) -> Result<(), WwError> {
    let ctx = AcquireCtx::new(class);
    let g1 = if trylock {
        slots[first]
            .mutex
            .try_lock(&ctx)
            .expect("trylock of an idle lock")
    } else {
        slots[first].mutex.lock(&ctx).expect("lock of an idle lock")
    };
    assert!(slots[first].mutex.is_locked_by(&ctx));
    mine.complete();
    theirs.wait();

    let mut held = match slots[second].mutex.lock(&ctx) {
        Ok(g2) => vec![(second, g2), (first, g1)],
        Err(WwError::Deadlock) if resolve => {
            drop(g1);
            let g2 = slots[second].mutex.lock_slow(&ctx).expect("lock_slow");
            let g1 = slots[first].mutex.lock(&ctx)?;
            vec![(second, g2), (first, g1)]
        }
        Err(e) => return Err(e),
    };
    critical_section(slots, &mut held, tally, Duration::ZERO);
    // Unlock `second` before `first`, as the kernel does: the other side, if it backed off,
    // waits in lock_slow for our `first` and then relocks its own `first` (our `second`),
    // which is then already free.
    drop(held);
    Ok(())
}

fn test_abba(algorithm: Algorithm, trylock: bool, resolve: bool) {
    let class = class("abba", algorithm);
    let slots = [Slot::new(class), Slot::new(class)];
    let (a_ready, b_ready) = (Completion::default(), Completion::default());
    let mut tallies = vec![vec![0; 2], vec![0; 2]];
    let (t_main, t_worker) = tallies.split_at_mut(1);
    let (main_err, worker_err) = thread::scope(|s| {
        let (slots, a_ready, b_ready) = (&slots, &a_ready, &b_ready);
        let worker = s.spawn(move || {
            abba_side(
                class,
                slots,
                (1, 0),
                (b_ready, a_ready),
                trylock,
                resolve,
                &mut t_worker[0],
            )
        });
        let main = abba_side(
            class,
            slots,
            (0, 1),
            (a_ready, b_ready),
            trylock,
            resolve,
            &mut t_main[0],
        );
        (main, worker.join().expect("worker"))
    });
    if resolve {
        assert!(
            main_err.is_ok() && worker_err.is_ok(),
            "failed to resolve ABBA deadlock ({algorithm:?}, trylock={trylock}): A {main_err:?}, B {worker_err:?}"
        );
    } else {
        assert!(
            main_err == Err(WwError::Deadlock) || worker_err == Err(WwError::Deadlock),
            "missed ABBA deadlock ({algorithm:?}, trylock={trylock}): A {main_err:?}, B {worker_err:?}"
        );
    }
    let total = check_counts(slots.into_iter().collect(), &tallies);
    let successes = u64::from(main_err.is_ok()) + u64::from(worker_err.is_ok());
    assert_eq!(total, 2 * successes, "each success updated both counters");
}

// ports test-ww_mutex: test_abba (trylock first? × resolve?)
#[test]
fn test_abba_all_four() {
    for algorithm in ALGORITHMS {
        for i in 0..4 {
            test_abba(algorithm, i & 1 != 0, i & 2 != 0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// test_cycle

/// Holds `gx` (of `x`) and locks `y` too, backing off as often as told: on Deadlock drop what
/// is held, `lock_slow` the contended lock and try the other one again.
fn lock_both<'a>(
    ctx: &'a AcquireCtx,
    (x, gx): (usize, WwGuard<'a, u64>),
    y: usize,
    slots: &'a [Slot],
    deadlocks: &mut u64,
) -> Vec<Held<'a>> {
    let (mut held, mut want) = ((x, gx), y);
    loop {
        match slots[want].mutex.lock(ctx) {
            Ok(g) => return vec![held, (want, g)],
            Err(WwError::Deadlock) => {
                *deadlocks += 1;
                let had = held.0;
                drop(held);
                held = (want, slots[want].mutex.lock_slow(ctx).expect("lock_slow"));
                want = had;
            }
            Err(e) => panic!("cycle: unexpected {e:?}"),
        }
    }
}

/// One ring of `n` threads: thread `i` locks its own lock `i`, tells thread `i - 1` (which
/// wants it), waits for thread `i + 1` to hold its own, then locks lock `i + 1`. Every thread
/// waits for the next: only back-off resolves it. Returns (Deadlock answers, threads that
/// needed more than one back-off).
fn cycle_once(algorithm: Algorithm, n: usize) -> (u64, usize) {
    let class = class("cycle", algorithm);
    let slots: Vec<Slot> = (0..n).map(|_| Slot::new(class)).collect();
    let b_signal: Vec<Completion> = (0..n).map(|_| Completion::default()).collect();
    let results: Vec<(u64, Vec<u64>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (slots, b_signal) = (&slots, &b_signal);
                s.spawn(move || {
                    let mut tally = vec![0; n];
                    let mut deadlocks = 0;
                    let ctx = AcquireCtx::new(class);
                    let ga = slots[i].mutex.lock(&ctx).expect("own lock is idle");
                    b_signal[(i + n - 1) % n].complete();
                    b_signal[i].wait();
                    // The kernel backs off once and expects the relock of its own lock to
                    // succeed. Here a second Deadlock is a legitimate answer too (a neighbour
                    // that backed off may hold our lock for an instant, and with wait-die a
                    // younger context holding a lock dies against it), so keep backing off.
                    let mut held = lock_both(&ctx, (i, ga), (i + 1) % n, slots, &mut deadlocks);
                    critical_section(slots, &mut held, &mut tally, Duration::ZERO);
                    drop(held);
                    (deadlocks, tally)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("cyclic deadlock not resolved"))
            .collect()
    });
    let tallies: Vec<Vec<u64>> = results.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(check_counts(slots, &tallies), 2 * n as u64);
    let deadlocks = results.iter().map(|(d, _)| d).sum();
    let repeated = results.iter().filter(|(d, _)| *d > 1).count();
    (deadlocks, repeated)
}

// ports test-ww_mutex: test_cycle (rings of 2..=ncpus+1 threads)
#[test]
fn test_cycle() {
    for algorithm in ALGORITHMS {
        for n in 2..=ncpus() + 1 {
            let (mut deadlocks, mut repeated) = (0, 0);
            for _ in 0..CYCLE_ROUNDS {
                let (d, r) = cycle_once(algorithm, n);
                deadlocks += d;
                repeated += r;
            }
            // Every ring must have backed off at least once per round to make progress.
            assert!(
                deadlocks >= CYCLE_ROUNDS as u64,
                "{algorithm:?} ring of {n}"
            );
            println!(
                "test_cycle {algorithm:?} n={n}: {CYCLE_ROUNDS} rounds, {deadlocks} Deadlock \
                 answers, {repeated} threads backed off more than once"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// stress

/// A stress worker's kind (kernel: `STRESS_INORDER`, `STRESS_REORDER`, `STRESS_ONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    InOrder,
    Reorder,
    One,
}

/// What one stress worker did.
#[derive(Debug)]
struct Stats {
    work: Work,
    /// Critical sections completed (whole sets held).
    transactions: u64,
    /// Locks acquired, including those given up on back-off.
    acquisitions: u64,
    deadlocks: u64,
    /// Transactions given up after a Deadlock past the deadline (kernel: inorder only).
    abandoned: u64,
    tally: Vec<u64>,
}

impl Stats {
    fn new(work: Work, nlocks: usize) -> Self {
        Stats {
            work,
            transactions: 0,
            acquisitions: 0,
            deadlocks: 0,
            abandoned: 0,
            tally: vec![0; nlocks],
        }
    }
}

/// Locks the whole set in a fixed random order; on Deadlock drops everything, `lock_slow`s the
/// contended lock and takes the others again around it (kernel: `stress_inorder_work`).
fn stress_inorder(
    class: &'static WwClass,
    slots: &[Slot],
    deadline: Instant,
    mut rng: Rng,
) -> Stats {
    let mut st = Stats::new(Work::InOrder, slots.len());
    let order = rng.order(slots.len());
    loop {
        // `contended` borrows `ctx`, so it is declared after it and dropped before it.
        let ctx = AcquireCtx::new(class);
        let mut contended: Option<(usize, WwGuard<'_, u64>)> = None;
        'retry: loop {
            let mut held: Vec<Held<'_>> = Vec::with_capacity(slots.len());
            let skip = contended.as_ref().map(|(n, _)| *n);
            if let Some((n, g)) = contended.take() {
                held.push((order[n], g));
            }
            for (n, &idx) in order.iter().enumerate() {
                if Some(n) == skip {
                    continue;
                }
                match slots[idx].mutex.lock(&ctx) {
                    Ok(g) => {
                        st.acquisitions += 1;
                        held.push((idx, g));
                    }
                    Err(WwError::Deadlock) => {
                        st.deadlocks += 1;
                        drop(held);
                        if Instant::now() > deadline {
                            st.abandoned += 1;
                            break 'retry;
                        }
                        let g = slots[idx].mutex.lock_slow(&ctx).expect("lock_slow");
                        st.acquisitions += 1;
                        contended = Some((n, g));
                        continue 'retry;
                    }
                    Err(e) => panic!("stress (inorder) failed with {e:?}"),
                }
            }
            critical_section(slots, &mut held, &mut st.tally, rng.hold());
            st.transactions += 1;
            break;
        }
        drop(contended);
        drop(ctx);
        if Instant::now() > deadline {
            return st;
        }
    }
}

/// Locks the set in a per-worker list order; the lock a Deadlock was about is `lock_slow`ed and
/// moved to the front of the list, and the walk restarts after it (kernel:
/// `stress_reorder_work`).
fn stress_reorder(
    class: &'static WwClass,
    slots: &[Slot],
    deadline: Instant,
    mut rng: Rng,
) -> Stats {
    let mut st = Stats::new(Work::Reorder, slots.len());
    let mut list = rng.order(slots.len());
    loop {
        let ctx = AcquireCtx::new(class);
        let mut held: Vec<Held<'_>> = Vec::with_capacity(slots.len());
        let mut n = 0;
        while n < list.len() {
            let idx = list[n];
            match slots[idx].mutex.lock(&ctx) {
                Ok(g) => {
                    st.acquisitions += 1;
                    held.push((idx, g));
                    n += 1;
                }
                Err(WwError::Deadlock) => {
                    st.deadlocks += 1;
                    held.clear();
                    let g = slots[idx].mutex.lock_slow(&ctx).expect("lock_slow");
                    st.acquisitions += 1;
                    held.push((idx, g));
                    list.remove(n);
                    list.insert(0, idx);
                    n = 1;
                }
                Err(e) => panic!("stress (reorder) failed with {e:?}"),
            }
        }
        critical_section(slots, &mut held, &mut st.tally, rng.hold());
        st.transactions += 1;
        drop(held);
        drop(ctx);
        if Instant::now() > deadline {
            return st;
        }
    }
}

/// Locks one random lock over and over without a context (kernel: `stress_one_work`).
fn stress_one(slots: &[Slot], deadline: Instant, mut rng: Rng) -> Stats {
    let mut st = Stats::new(Work::One, slots.len());
    let idx = rng.below(slots.len());
    loop {
        let g = slots[idx].mutex.lock_plain();
        st.acquisitions += 1;
        critical_section(slots, &mut [(idx, g)], &mut st.tally, rng.hold());
        st.transactions += 1;
        if Instant::now() > deadline {
            return st;
        }
    }
}

/// Runs `nthreads` workers on `nlocks` locks for `STRESS_DURATION`, picking kinds from `works`
/// in the kernel's rotation (thread `n` gets kind `n & 3` if enabled: inorder, reorder, one,
/// none).
fn stress(case: &str, algorithm: Algorithm, nlocks: usize, nthreads: usize, works: &[Work]) {
    let _serial = STRESS_SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let class = class(case, algorithm);
    let slots: Vec<Slot> = (0..nlocks).map(|_| Slot::new(class)).collect();
    let kinds: Vec<Work> = [
        Some(Work::InOrder),
        Some(Work::Reorder),
        Some(Work::One),
        None,
    ]
    .into_iter()
    .cycle()
    .flatten()
    .filter(|w| works.contains(w))
    .take(nthreads)
    .collect();
    let start = Instant::now();
    let deadline = start + STRESS_DURATION;
    let stats: Vec<Stats> = thread::scope(|s| {
        let slots = &slots;
        let handles: Vec<_> = kinds
            .iter()
            .enumerate()
            .map(|(i, &work)| {
                let rng = Rng::seeded(i as u64 + 1);
                s.spawn(move || match work {
                    Work::InOrder => stress_inorder(class, slots, deadline, rng),
                    Work::Reorder => stress_reorder(class, slots, deadline, rng),
                    Work::One => stress_one(slots, deadline, rng),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("stress worker"))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();

    let tallies: Vec<Vec<u64>> = stats.iter().map(|s| s.tally.clone()).collect();
    let updates = check_counts(slots, &tallies);
    for s in &stats {
        assert!(
            s.transactions > 0,
            "a {:?} worker never got its set",
            s.work
        );
    }
    let sum = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
    let (tx, acq, dl, ab) = (
        sum(|s| s.transactions),
        sum(|s| s.acquisitions),
        sum(|s| s.deadlocks),
        sum(|s| s.abandoned),
    );
    println!(
        "stress {case} {algorithm:?}: {nthreads} workers {kinds:?} on {nlocks} locks for \
         {secs:.2} s: {tx} transactions ({:.0}/s), {acq} lock acquisitions ({:.0}/s), \
         {updates} counter updates; {dl} Deadlock answers ({:.0}/s, {:.3} per transaction), \
         {ab} transactions abandoned at the deadline",
        tx as f64 / secs,
        acq as f64 / secs,
        dl as f64 / secs,
        dl as f64 / tx.max(1) as f64,
    );
}

// ports test-ww_mutex: stress(16 locks, 2·ncpus threads, STRESS_INORDER)
#[test]
fn stress_inorder_16_locks() {
    for algorithm in ALGORITHMS {
        stress("inorder", algorithm, 16, 2 * ncpus(), &[Work::InOrder]);
    }
}

// ports test-ww_mutex: stress(16 locks, 2·ncpus threads, STRESS_REORDER)
#[test]
fn stress_reorder_16_locks() {
    for algorithm in ALGORITHMS {
        stress("reorder", algorithm, 16, 2 * ncpus(), &[Work::Reorder]);
    }
}

// ports test-ww_mutex: stress(2046 locks, 3·ncpus threads, STRESS_ALL)
#[test]
fn stress_all_2046_locks() {
    for algorithm in ALGORITHMS {
        stress(
            "all",
            algorithm,
            2046,
            3 * ncpus(),
            &[Work::InOrder, Work::Reorder, Work::One],
        );
    }
}
