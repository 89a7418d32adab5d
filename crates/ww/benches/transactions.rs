//! Multi-object transactions: lock N of M random objects, bump each, unlock — through
//! [`AcquireCtx::lock_all`] (wound-wait and wait-die), beside the ideal when a global lock
//! order exists: the same sets sorted by address and deduplicated inside each transaction,
//! then locked as plain `std::sync::Mutex<u64>` in that order (`std_sorted`, the
//! baseline), and the same with the sets sorted before the clock starts (`std_presorted`,
//! for reference: it does strictly less work than any transaction given its objects in
//! arbitrary order), in the same bench group.
//!
//! * Groups `transactions/n{N}_of_m{M}` — `n8_of_m1024` (light contention) and `n32_of_m256`
//!   (contended: two concurrent transactions share objects most of the time).
//! * Ids `{wound_wait,wait_die,std_sorted,std_presorted}/{2,4}thr` — 2 and 4 threads (on a
//!   machine with fewer than 4 CPUs, 4 threads also measure behaviour when lock holders are
//!   preempted).
//!
//! One iteration is one transaction; the reported throughput is transactions per second over
//! all threads (wall clock). Each thread runs `iters / threads` transactions from its own pool
//! of pre-generated random sets (xorshift, fixed seeds, so both algorithms and the baseline see
//! the same sets); threads are spawned and meet at a barrier before the clock starts. A WW
//! transaction is: `AcquireCtx::new`, `lock_all` on the raw set (random order, duplicates
//! allowed — `lock_all` locks each mutex once), `done`, increment each guard, drop the guards
//! and the context. Rollbacks (sum of `ctx.backoffs()`) per 1000 transactions are printed to
//! stderr after each benchmark, and every benchmark checks that no increment was lost.
//!
//! After the criterion groups, an **interleaved comparison** (the number the goal is judged
//! on) runs `std_sorted`, wound-wait and wait-die back to back on the same sets for nine
//! rounds per shape and thread count, and prints each ratio as the median of the rounds' own
//! ratios, with their range. On a shared or busy machine a noisy stretch of seconds lands on
//! one criterion benchmark only and can move a ratio of medians by ±30 %; inside one round
//! all three contenders see the same machine. Run it alone with the filter `interleaved`.
//!
//! The goal: WW throughput at least 0.7× the `std_sorted` baseline.
//!
//! Built with the `lockdep` feature (as `cargo bench --workspace` builds it: the `dmabuf`
//! command asks for it), the bench switches the validator off first, so it measures the locks
//! with the validator compiled in and off; without the feature, with the validator compiled
//! out. Running it both ways compares the two.
//!
//! Run: `cargo bench -p dmabuf-ww --bench transactions [--features lockdep] [-- filter]`.

mod common;

use common::XorShift;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use dmabuf_testkit::rounds::median;
use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

static WOUND_WAIT: WwClass = WwClass::wound_wait("bench.transactions.wound_wait");
static WAIT_DIE: WwClass = WwClass::wait_die("bench.transactions.wait_die");

/// Random sets pre-generated per thread, cycled through.
const POOL: usize = 1024;

/// Thread counts measured.
const THREADS: [usize; 2] = [2, 4];

/// A transaction shape: `n` random objects (with repetition) out of `m`.
#[derive(Clone, Copy)]
struct Shape {
    n: usize,
    m: usize,
}

/// One thread's sets: raw (random order, duplicates possible) and sorted + deduplicated.
struct Sets {
    raw: Vec<Vec<usize>>,
    sorted: Vec<Vec<usize>>,
}

/// The sets of thread `t`; the same for every algorithm and the baseline.
fn sets(shape: Shape, t: usize) -> Sets {
    let mut rng = XorShift::new(0x5EED_0000 + (shape.n * 1_000_003 + shape.m * 7 + t) as u64);
    let raw: Vec<Vec<usize>> = (0..POOL)
        .map(|_| (0..shape.n).map(|_| rng.below(shape.m)).collect())
        .collect();
    let sorted = raw
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect();
    Sets { raw, sorted }
}

/// What the threads of one benchmark did, over all its samples.
#[derive(Default)]
struct Tally {
    transactions: AtomicU64,
    increments: AtomicU64,
    backoffs: AtomicU64,
}

impl Tally {
    fn add(&self, transactions: u64, increments: u64, backoffs: u64) {
        self.transactions.fetch_add(transactions, Ordering::Relaxed);
        self.increments.fetch_add(increments, Ordering::Relaxed);
        self.backoffs.fetch_add(backoffs, Ordering::Relaxed);
    }

    fn report(&self, what: &str, sum_of_objects: u64) {
        self.check(what, sum_of_objects);
        if self.transactions.load(Ordering::Relaxed) == 0 {
            return; // filtered out
        }
        eprintln!(
            "{what}: {} transactions, {} rollbacks ({:.2} per 1000 transactions)",
            self.transactions.load(Ordering::Relaxed),
            self.backoffs.load(Ordering::Relaxed),
            self.rollbacks_per_1000()
        );
    }

    /// Panics if the objects' counters do not add up to the increments made.
    fn check(&self, what: &str, sum_of_objects: u64) {
        let inc = self.increments.load(Ordering::Relaxed);
        assert_eq!(sum_of_objects, inc, "{what}: lost or extra increments");
    }

    fn rollbacks_per_1000(&self) -> f64 {
        let tx = self.transactions.load(Ordering::Relaxed);
        self.backoffs.load(Ordering::Relaxed) as f64 * 1000.0 / tx.max(1) as f64
    }
}

/// Runs `work(thread, transactions)` on `threads` threads, `iters` transactions in all, and
/// times from the moment all are ready until all are done.
fn run_threads<F>(threads: usize, iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let count = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
            let (start, end, work) = (&start, &end, &work);
            s.spawn(move || {
                start.wait();
                work(t, count);
                end.wait();
            });
        }
        start.wait();
        let t0 = Instant::now();
        end.wait();
        t0.elapsed()
    })
}

/// One thread's WW transactions over its ref sets.
fn ww_thread(class: &'static WwClass, sets: &[Vec<&WwMutex<u64>>], count: u64, tally: &Tally) {
    let (mut increments, mut backoffs) = (0u64, 0u64);
    for k in 0..count as usize {
        let ctx = AcquireCtx::new(class);
        let mut guards = ctx.lock_all(&sets[k % sets.len()]).expect("one class");
        ctx.done();
        for g in &mut guards {
            *g += 1;
        }
        increments += guards.len() as u64;
        drop(guards);
        backoffs += ctx.backoffs();
    }
    tally.add(count, increments, backoffs);
}

/// One thread's baseline transactions on plain mutexes: each set sorted by address and
/// deduplicated inside the transaction (`sort`, into a reused buffer: what a driver with a
/// global lock order does), or given already sorted and deduplicated.
fn std_thread(sets: &[Vec<&Mutex<u64>>], sort: bool, count: u64, tally: &Tally) {
    let mut increments = 0u64;
    let longest = sets.iter().map(Vec::len).max().unwrap_or(0);
    let mut guards = Vec::with_capacity(longest);
    let mut order: Vec<&Mutex<u64>> = Vec::with_capacity(longest);
    for k in 0..count as usize {
        let set = &sets[k % sets.len()];
        let set = if sort {
            order.clear();
            order.extend_from_slice(set);
            order.sort_unstable_by_key(|m| std::ptr::from_ref::<Mutex<u64>>(m) as usize);
            order.dedup_by_key(|m| std::ptr::from_ref::<Mutex<u64>>(m) as usize);
            &order[..]
        } else {
            &set[..]
        };
        for m in set {
            guards.push(m.lock().expect("not poisoned"));
        }
        for g in &mut guards {
            **g += 1;
        }
        increments += guards.len() as u64;
        guards.clear();
    }
    tally.add(count, increments, 0);
}

fn bench_ww(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    class: &'static WwClass,
    shape: Shape,
    threads: usize,
    thread_sets: &[Sets],
) {
    let objects: Vec<WwMutex<u64>> = (0..shape.m).map(|_| WwMutex::new(class, 0)).collect();
    let refs = ww_refs(thread_sets, &objects);
    let tally = Tally::default();
    c.bench_function(BenchmarkId::new(name, format!("{threads}thr")), |b| {
        b.iter_custom(|iters| {
            run_threads(threads, iters, |t, count| {
                ww_thread(class, &refs[t], count, &tally);
            })
        });
    });
    drop(refs);
    let sum = objects.into_iter().map(WwMutex::into_inner).sum();
    tally.report(
        &format!("n{}_of_m{} {name}/{threads}thr", shape.n, shape.m),
        sum,
    );
}

fn bench_std(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    shape: Shape,
    threads: usize,
    thread_sets: &[Sets],
) {
    let presorted = name == "std_presorted";
    let objects: Vec<Mutex<u64>> = (0..shape.m).map(|_| Mutex::new(0)).collect();
    let refs: Vec<Vec<Vec<&Mutex<u64>>>> = thread_sets
        .iter()
        .map(|s| {
            if presorted { &s.sorted } else { &s.raw }
                .iter()
                .map(|set| set.iter().map(|&i| &objects[i]).collect())
                .collect()
        })
        .collect();
    let tally = Tally::default();
    c.bench_function(BenchmarkId::new(name, format!("{threads}thr")), |b| {
        b.iter_custom(|iters| {
            run_threads(threads, iters, |t, count| {
                std_thread(&refs[t], !presorted, count, &tally)
            })
        });
    });
    drop(refs);
    let sum = objects
        .into_iter()
        .map(|m| m.into_inner().expect("not poisoned"))
        .sum();
    tally.report(
        &format!("n{}_of_m{} {name}/{threads}thr", shape.n, shape.m),
        sum,
    );
}

fn transactions(c: &mut Criterion) {
    for shape in [Shape { n: 8, m: 1024 }, Shape { n: 32, m: 256 }] {
        let thread_sets: Vec<Sets> = (0..*THREADS.iter().max().unwrap_or(&1))
            .map(|t| sets(shape, t))
            .collect();
        let mut g = c.benchmark_group(format!("transactions/n{}_of_m{}", shape.n, shape.m));
        g.throughput(Throughput::Elements(1));
        for threads in THREADS {
            let ts = &thread_sets[..threads];
            bench_ww(&mut g, "wound_wait", &WOUND_WAIT, shape, threads, ts);
            bench_ww(&mut g, "wait_die", &WAIT_DIE, shape, threads, ts);
            bench_std(&mut g, "std_sorted", shape, threads, ts);
            bench_std(&mut g, "std_presorted", shape, threads, ts);
        }
        g.finish();
    }
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 9;

/// Transactions per thread in one round of the interleaved comparison, by shape: about a
/// tenth of a second each.
fn round_transactions(shape: Shape) -> u64 {
    (4_000_000 / shape.n) as u64
}

/// One contender of the interleaved comparison.
#[derive(Clone, Copy, PartialEq)]
enum Contender {
    StdSorted,
    WoundWait,
    WaitDie,
}

/// The goal's measurement. The criterion groups above run each contender for seconds in
/// turn, so a noisy stretch of a shared machine lands on one of them only; here every round
/// runs `std_sorted`, wound-wait and wait-die back to back on the same sets, `ROUNDS` times,
/// and the ratio is the median over rounds of each round's own ratio. Prints a table.
fn interleaved() {
    println!(
        "\ninterleaved: median of {ROUNDS} rounds, ns per transaction over all threads; \
         ratio = throughput / std_sorted's in the same round (min-max of the rounds)"
    );
    println!(
        "{:<12} {:>7} {:>10} {:>10} {:>18} {:>10} {:>18} {:>14}",
        "shape",
        "threads",
        "std_sorted",
        "wound_wait",
        "ratio",
        "wait_die",
        "ratio",
        "rollbacks/1k"
    );
    for shape in [Shape { n: 8, m: 1024 }, Shape { n: 32, m: 256 }] {
        for threads in THREADS {
            let thread_sets: Vec<Sets> = (0..threads).map(|t| sets(shape, t)).collect();
            let std_objects: Vec<Mutex<u64>> = (0..shape.m).map(|_| Mutex::new(0)).collect();
            let ww_objects: Vec<WwMutex<u64>> =
                (0..shape.m).map(|_| WwMutex::new(&WOUND_WAIT, 0)).collect();
            let wd_objects: Vec<WwMutex<u64>> =
                (0..shape.m).map(|_| WwMutex::new(&WAIT_DIE, 0)).collect();
            let std_refs: Vec<Vec<Vec<&Mutex<u64>>>> = thread_sets
                .iter()
                .map(|s| {
                    s.raw
                        .iter()
                        .map(|set| set.iter().map(|&i| &std_objects[i]).collect())
                        .collect()
                })
                .collect();
            let ww_sets = ww_refs(&thread_sets, &ww_objects);
            let wd_sets = ww_refs(&thread_sets, &wd_objects);
            let per_round = round_transactions(shape) * threads as u64;
            let tallies = [Tally::default(), Tally::default(), Tally::default()];
            let mut ns: [Vec<f64>; 3] = Default::default();
            for round in 0..ROUNDS {
                // Rotate who goes first, so no contender always follows the same one.
                let mut order = [
                    Contender::StdSorted,
                    Contender::WoundWait,
                    Contender::WaitDie,
                ];
                order.rotate_left(round % 3);
                for who in order {
                    let (i, took) = match who {
                        Contender::StdSorted => (
                            0,
                            run_threads(threads, per_round, |t, count| {
                                std_thread(&std_refs[t], true, count, &tallies[0]);
                            }),
                        ),
                        Contender::WoundWait => (
                            1,
                            run_threads(threads, per_round, |t, count| {
                                ww_thread(&WOUND_WAIT, &ww_sets[t], count, &tallies[1]);
                            }),
                        ),
                        Contender::WaitDie => (
                            2,
                            run_threads(threads, per_round, |t, count| {
                                ww_thread(&WAIT_DIE, &wd_sets[t], count, &tallies[2]);
                            }),
                        ),
                    };
                    ns[i].push(took.as_nanos() as f64 / per_round as f64);
                }
            }
            let sums = [
                std_objects
                    .iter()
                    .map(|m| *m.lock().expect("not poisoned"))
                    .sum::<u64>(),
                ww_objects.iter().map(|m| *m.lock_plain()).sum(),
                wd_objects.iter().map(|m| *m.lock_plain()).sum(),
            ];
            for (i, name) in ["std_sorted", "wound_wait", "wait_die"].iter().enumerate() {
                tallies[i].check(name, sums[i]);
            }
            let ratios =
                |i: usize| -> Vec<f64> { (0..ROUNDS).map(|r| ns[0][r] / ns[i][r]).collect() };
            let cell = |i: usize| {
                let r = ratios(i);
                let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.iter().copied().fold(0.0, f64::max);
                format!("{:.2}x ({lo:.2}-{hi:.2})", median(&r))
            };
            println!(
                "{:<12} {:>7} {:>10.0} {:>10.0} {:>18} {:>10.0} {:>18} {:>14}",
                format!("{} of {}", shape.n, shape.m),
                threads,
                median(&ns[0]),
                median(&ns[1]),
                cell(1),
                median(&ns[2]),
                cell(2),
                format!(
                    "{:.1}, {:.1}",
                    tallies[1].rollbacks_per_1000(),
                    tallies[2].rollbacks_per_1000()
                ),
            );
        }
    }
}

/// Each thread's sets as references to `objects`.
fn ww_refs<'a>(
    thread_sets: &[Sets],
    objects: &'a [WwMutex<u64>],
) -> Vec<Vec<Vec<&'a WwMutex<u64>>>> {
    thread_sets
        .iter()
        .map(|s| {
            s.raw
                .iter()
                .map(|set| set.iter().map(|&i| &objects[i]).collect())
                .collect()
        })
        .collect()
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = transactions
}

fn main() {
    dmabuf_lockdep::set_enabled(false);
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench ... -- <filter>` runs the interleaved comparison only if the filter names
    // it (or there is none).
    if dmabuf_testkit::own_pass_wanted("interleaved") {
        interleaved();
    }
}
