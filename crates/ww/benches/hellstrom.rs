//! Hellström's wound-wait vs wait-die comparison, scaled to a small machine.
//!
//! The original ("locking: Implement an algorithm choice for Wound-Wait mutexes", 2018): on a
//! 4-core x86, each thread runs 100 000 batches, each locking 800 random mutexes out of
//! 100 000; Wound-Wait 4 threads ≈100 rollbacks ≈17 s, Wait-Die 4 threads ≈150 000 rollbacks
//! ≈19 s; 16 threads: Wound-Wait ≈360 000 ≈109 s, Wait-Die ≈450 000 ≈82 s.
//!
//! # Scaling
//! * **Batch shape kept**: K = 800 distinct random mutexes out of P = 100 000, so two
//!   concurrent batches collide exactly as often as in the original (≈6.4 shared mutexes per
//!   pair of batches), and the rollback *rate* (rollbacks per batch) is comparable.
//! * **Batches cut**: B = 20 000 batches per thread instead of 100 000 (`--batches N` to
//!   change it), so that one configuration takes a few seconds and the whole table well under
//!   a minute. Rollback totals therefore scale by B / 100 000; the table prints rollbacks per
//!   1000 batches next to the original's figure, read as a total over `threads × 100 000`
//!   batches.
//! * **Threads vs CPUs**: the original ran 4 and 16 threads on 4 cores (1× and 4×
//!   oversubscribed); here 2 and 4 threads, sized for 2 CPUs (1× and 2×). The 2-thread rows
//!   are the analogue of the original's 4-thread rows, the 4-thread rows of its 16-thread rows.
//!
//! A batch is: `AcquireCtx::new`, pick K distinct random indices (xorshift), lock them in that
//! order (backing off, `lock_slow`ing the contended mutex and retrying in the same order, as
//! the original's test module does — not `lock_all`, which switches a contended class to
//! address order), `done`, increment every guarded
//! counter, unlock all. Rollbacks are the sum of `ctx.backoffs()`; seconds are wall time from
//! a barrier releasing all threads until the last one finishes. The run checks that no
//! increment was lost.
//!
//! `--lock-all` locks through `AcquireCtx::lock_all` instead, which switches the class to
//! address order after a back-off.
//!
//! `--sorted` locks each batch in index (address) order instead of random order: no lock-order
//! cycles are then possible, so every rollback is one the algorithm causes without need.
//!
//! This is not a criterion benchmark: `cargo bench -p dmabuf-ww --bench hellstrom` prints a
//! table. Without `--bench` on the command line (e.g. `cargo test --benches`) it runs a
//! 20-batch smoke test instead. Unknown arguments are ignored.

mod common;

use common::XorShift;
use dmabuf_ww::{AcquireCtx, Algorithm, WwClass, WwError, WwGuard, WwMutex};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Mutexes locked per batch (original: 800).
const K: usize = 800;
/// Mutexes in all (original: 100 000).
const P: usize = 100_000;
/// Batches per thread in a full run (original: 100 000).
const BATCHES: u64 = 20_000;
/// Batches per thread in a smoke run (no `--bench`).
const SMOKE_BATCHES: u64 = 20;
/// The original's batches per thread.
const ORIGINAL_BATCHES: u64 = 100_000;

static WOUND_WAIT: WwClass = WwClass::wound_wait("bench.hellstrom.wound_wait");
static WAIT_DIE: WwClass = WwClass::wait_die("bench.hellstrom.wait_die");

/// The result of one configuration.
struct Run {
    rollbacks: u64,
    elapsed: Duration,
}

/// One thread's batches; returns its rollbacks.
fn worker(
    class: &'static WwClass,
    mutexes: &[WwMutex<u64>],
    t: usize,
    batches: u64,
    sorted: bool,
    lock_all: bool,
) -> u64 {
    let mut rng = XorShift::new(0x4E11_0000 + t as u64);
    // `picked[i] == batch + 1` marks index `i` as already in this batch.
    let mut picked = vec![0u64; mutexes.len()];
    let mut set: Vec<&WwMutex<u64>> = Vec::with_capacity(K);
    let mut rollbacks = 0;
    for batch in 1..=batches {
        let ctx = AcquireCtx::new(class);
        set.clear();
        while set.len() < K {
            let i = rng.below(mutexes.len());
            if picked[i] != batch {
                picked[i] = batch;
                set.push(&mutexes[i]);
            }
        }
        if sorted {
            set.sort_unstable_by_key(|m| std::ptr::from_ref::<WwMutex<u64>>(m) as usize);
        }
        let mut guards = if lock_all {
            ctx.lock_all(&set).expect("one class")
        } else {
            lock_in_order(&ctx, &set).into()
        };
        ctx.done();
        for g in &mut guards {
            *g += 1;
        }
        drop(guards);
        rollbacks += ctx.backoffs();
    }
    rollbacks
}

/// Locks `set` in the order given, the way the original's test module does (kernel
/// `test-ww_mutex` `stress_reorder_work`): on Deadlock drop everything, `lock_slow` the
/// contended mutex, then take the rest again in the same order. Not [`AcquireCtx::lock_all`],
/// which switches a contended class to address order and would hide the algorithms'
/// difference.
fn lock_in_order<'a>(ctx: &'a AcquireCtx, set: &[&'a WwMutex<u64>]) -> Vec<WwGuard<'a, u64>> {
    let mut guards = Vec::with_capacity(set.len());
    let mut contended: Option<usize> = None;
    'retry: loop {
        if let Some(c) = contended {
            guards.push(set[c].lock_slow(ctx).expect("one class"));
        }
        for (i, m) in set.iter().enumerate() {
            if contended == Some(i) {
                continue;
            }
            match m.lock(ctx) {
                Ok(g) => guards.push(g),
                Err(WwError::Deadlock) => {
                    guards.clear();
                    contended = Some(i);
                    continue 'retry;
                }
                Err(e) => panic!("one class, distinct mutexes: {e}"),
            }
        }
        return guards;
    }
}

fn run(class: &'static WwClass, threads: usize, batches: u64, sorted: bool, lock_all: bool) -> Run {
    let mutexes: Vec<WwMutex<u64>> = (0..P).map(|_| WwMutex::new(class, 0)).collect();
    let start = Barrier::new(threads + 1);
    let (rollbacks, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, mutexes) = (&start, &mutexes);
                s.spawn(move || {
                    start.wait();
                    worker(class, mutexes, t, batches, sorted, lock_all)
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let rollbacks: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .sum();
        (rollbacks, t0.elapsed())
    });
    let sum: u64 = mutexes.into_iter().map(WwMutex::into_inner).sum();
    assert_eq!(
        sum,
        threads as u64 * batches * K as u64,
        "lost or extra increments"
    );
    Run { rollbacks, elapsed }
}

/// The original's (threads, rollbacks, seconds) for this algorithm.
fn original(algorithm: Algorithm) -> [(u64, u64, f64); 2] {
    match algorithm {
        Algorithm::WoundWait => [(4, 100, 17.0), (16, 360_000, 109.0)],
        Algorithm::WaitDie => [(4, 150_000, 19.0), (16, 450_000, 82.0)],
    }
}

fn main() {
    // Built with the `lockdep` feature (as `cargo bench --workspace` builds it), the validator
    // would check every lock: this compares the algorithms, so it is switched off.
    dmabuf_lockdep::set_enabled(false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let sorted = args.iter().any(|a| a == "--sorted");
    let lock_all = args.iter().any(|a| a == "--lock-all");
    let mut batches = if full { BATCHES } else { SMOKE_BATCHES };
    if let Some(p) = args.iter().position(|a| a == "--batches") {
        match args
            .get(p + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&b| b > 0)
        {
            Some(b) => batches = b,
            None => {
                eprintln!("hellstrom: --batches takes a positive number");
                std::process::exit(2);
            }
        }
    }

    println!(
        "Hellström ww_mutex comparison: {K} random mutexes of {P} per batch, {batches} batches \
         per thread, {} order ({} CPUs)",
        match (sorted, lock_all) {
            (true, _) => "index",
            (false, false) => "random",
            (false, true) => "random (through lock_all)",
        },
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    println!(
        "{:<11} {:>7} {:>8} {:>10} {:>10} {:>8} {:>9} | {:>8} {:>10} {:>13} {:>7} {:>9}",
        "algorithm",
        "threads",
        "batches",
        "rollbacks",
        "rb/1000b",
        "seconds",
        "µs/batch",
        "orig thr",
        "orig rb",
        "orig rb/1000b",
        "orig s",
        "µs/batch"
    );
    for (class, label) in [(&WOUND_WAIT, "wound-wait"), (&WAIT_DIE, "wait-die")] {
        for (row, threads) in [2usize, 4].into_iter().enumerate() {
            let r = run(class, threads, batches, sorted, lock_all);
            let total = threads as u64 * batches;
            let secs = r.elapsed.as_secs_f64();
            let (othr, orb, osecs) = original(class.algorithm())[row];
            println!(
                "{label:<11} {threads:>7} {batches:>8} {:>10} {:>10.2} {:>8.2} {:>9.1} | {othr:>8} {orb:>10} {:>13.2} {osecs:>7.0} {:>9.1}",
                r.rollbacks,
                r.rollbacks as f64 * 1000.0 / total as f64,
                secs,
                // Wall time per batch of one thread (the threads run concurrently).
                secs * 1e6 * threads as f64 / total as f64,
                orb as f64 * 1000.0 / (othr * ORIGINAL_BATCHES) as f64,
                osecs * 1e6 / ORIGINAL_BATCHES as f64,
            );
        }
    }
    println!(
        "rb/1000b: rollbacks per 1000 batches over all threads; µs/batch: wall time per batch of \
         one thread; orig: Hellström's figures (4-core x86, {ORIGINAL_BATCHES} batches per \
         thread), rollbacks read as totals over all threads."
    );
}
