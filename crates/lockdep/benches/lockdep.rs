//! Cost of the validator on an acquisition it has already seen (target: at most 10 ns added).
//!
//! Each criterion group measures the same lock/unlock with validation on, with validation
//! switched off at run time, and on a plain `parking_lot::Mutex` (the baseline).
//!
//! After the criterion groups, an **interleaved comparison** (the number the target is
//! judged on) runs the three sides back to back for `ROUNDS` short rounds and prints, per
//! case, the median of each side and the median over rounds of each round's own difference
//! (on − off) and ratio (on / off), with their interquartile range: on a shared machine a
//! noisy stretch of seconds lands on one criterion benchmark only, but inside one round
//! every side sees the same machine, and a round that another process interrupted is an
//! outlier the median ignores. Then a **sweep** over the size of the graph: 10 to 10,000 classes, each taken
//! under one outer lock (and each class also ordered before the next), so the graph has as
//! many classes and about twice as many dependencies; the chains measured were all seen
//! before. "One chain" takes the outer lock and the first class over and over; "every chain"
//! takes the outer lock and the classes in turn, so the thread meets as many chains as there
//! are classes. The sweep's medians are also written to `target/curves/validator_classes.json`
//! for `curves/plot.py --json`. Run them alone with the filter `interleaved`.
//!
//! Run: `cargo bench -p dmabuf-lockdep --bench lockdep [filter]`.

use criterion::{Criterion, criterion_group};
use dmabuf_lockdep::{LockClass, Mutex, set_enabled, signalling};
use dmabuf_testkit::rounds::{median, quantile};
use std::hint::black_box;
use std::time::{Duration, Instant};

static OUTER: LockClass = LockClass::new("bench.outer");
static INNER: LockClass = LockClass::new("bench.inner");

fn single(c: &mut Criterion) {
    let mut g = c.benchmark_group("seen_acquisition");
    let tracked = Mutex::new(&INNER, 0u64);
    let plain = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot_baseline", |b| {
        b.iter(|| *black_box(&plain).lock() += 1)
    });
    set_enabled(false);
    g.bench_function("tracked_validator_off", |b| {
        b.iter(|| *black_box(&tracked).lock() += 1)
    });
    set_enabled(true);
    g.bench_function("tracked_validator_on", |b| {
        b.iter(|| *black_box(&tracked).lock() += 1)
    });
    g.finish();
}

fn nested(c: &mut Criterion) {
    let mut g = c.benchmark_group("seen_nested_acquisition");
    let outer = Mutex::new(&OUTER, 0u64);
    let inner = Mutex::new(&INNER, 0u64);
    let po = parking_lot::Mutex::new(0u64);
    let pi = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot_baseline", |b| {
        b.iter(|| {
            let _o = po.lock();
            *pi.lock() += 1;
        })
    });
    set_enabled(false);
    g.bench_function("tracked_validator_off", |b| {
        b.iter(|| {
            let _o = outer.lock();
            *inner.lock() += 1;
        })
    });
    set_enabled(true);
    g.bench_function("tracked_validator_on", |b| {
        b.iter(|| {
            let _o = outer.lock();
            *inner.lock() += 1;
        })
    });
    g.finish();
}

fn section(c: &mut Criterion) {
    let mut g = c.benchmark_group("signalling_section");
    set_enabled(true);
    g.bench_function("begin_end_validator_on", |b| {
        b.iter(|| drop(black_box(signalling::begin_signalling())))
    });
    g.bench_function("might_wait_validator_on", |b| {
        b.iter(signalling::might_wait)
    });
    g.finish();
}

/// Rounds of the interleaved comparison and the sweep.
const ROUNDS: usize = 101;

/// Operations per side and round: about a millisecond each, shorter than a scheduler's time
/// slice.
const OPS: u64 = 50_000;

/// Runs `op` `n` times; the time per call in ns.
fn per_op(n: u64, mut op: impl FnMut(u64)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        op(i);
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// `median (p25 to p75)` of `v`, with `digits` decimals and `unit` after the median.
fn spread(v: &[f64], digits: usize, unit: &str) -> String {
    format!(
        "{:.digits$}{unit} ({:.digits$} to {:.digits$})",
        median(v),
        quantile(v, 0.25),
        quantile(v, 0.75)
    )
}

/// One interleaved measurement: ns per operation of each side in each round, the sides run
/// in turn (who goes first rotates), validation switched on only for the `on` side.
struct Sides {
    base: Vec<f64>,
    off: Vec<f64>,
    on: Vec<f64>,
}

impl Sides {
    /// Measures `op` with validation off and on (and `base`, if any) for `ROUNDS` rounds.
    fn measure(base: Option<&dyn Fn(u64)>, op: &dyn Fn(u64)) -> Sides {
        let mut s = Sides {
            base: Vec::new(),
            off: Vec::new(),
            on: Vec::new(),
        };
        // Every chain is seen once before the clock starts.
        set_enabled(true);
        per_op(OPS / 10, op);
        for round in 0..ROUNDS {
            let mut order = [0, 1, 2];
            order.rotate_left(round % 3);
            for side in order {
                match side {
                    0 => {
                        if let Some(base) = base {
                            s.base.push(per_op(OPS, base));
                        }
                    }
                    1 => {
                        set_enabled(false);
                        s.off.push(per_op(OPS, op));
                    }
                    _ => {
                        set_enabled(true);
                        s.on.push(per_op(OPS, op));
                    }
                }
            }
        }
        set_enabled(true);
        s
    }

    /// Each round's on − off.
    fn added(&self) -> Vec<f64> {
        self.on
            .iter()
            .zip(&self.off)
            .map(|(on, off)| on - off)
            .collect()
    }

    /// Each round's on / off.
    fn ratio(&self) -> Vec<f64> {
        self.on
            .iter()
            .zip(&self.off)
            .map(|(on, off)| on / off)
            .collect()
    }
}

/// The interleaved comparison: a seen acquisition, one and two deep.
fn interleaved() {
    println!(
        "\ninterleaved: median of {ROUNDS} rounds of {OPS} lock+unlock, ns per lock+unlock; \
         added = on - off and on/off in the same round (p25 to p75 of the rounds)"
    );
    println!(
        "{:<28} {:>11} {:>8} {:>8} {:>22} {:>24}",
        "case", "parking_lot", "off", "on", "added ns", "on/off"
    );
    let tracked = Mutex::new(&INNER, 0u64);
    let plain = parking_lot::Mutex::new(0u64);
    let single = Sides::measure(Some(&|_| *black_box(&plain).lock() += 1), &|_| {
        *black_box(&tracked).lock() += 1;
    });
    let outer = Mutex::new(&OUTER, 0u64);
    let po = parking_lot::Mutex::new(0u64);
    let nested = Sides::measure(
        Some(&|_| {
            let _o = black_box(&po).lock();
            *black_box(&plain).lock() += 1;
        }),
        &|_| {
            let _o = black_box(&outer).lock();
            *black_box(&tracked).lock() += 1;
        },
    );
    for (name, s) in [
        ("seen acquisition", &single),
        ("seen nested (2 acquisitions)", &nested),
    ] {
        println!(
            "{:<28} {:>11.1} {:>8.1} {:>8.1} {:>22} {:>24}",
            name,
            median(&s.base),
            median(&s.off),
            median(&s.on),
            spread(&s.added(), 1, ""),
            spread(&s.ratio(), 2, "x"),
        );
    }
}

/// The sweep over the graph's size, printed and written as a curve file.
fn sweep() {
    println!(
        "\nsweep: graph of N classes (outer -> each, each -> the next), chains seen before; \
         median of {ROUNDS} interleaved rounds, ns per outer+inner lock+unlock; added = on - off \
         (p25 to p75 of the rounds)"
    );
    println!(
        "{:>7} {:>8} {:>8} {:>22} {:>8} {:>8} {:>22}",
        "classes", "one: off", "on", "added ns", "all: off", "on", "added ns"
    );
    static SWEEP_OUTER: LockClass = LockClass::new("bench.sweep.outer");
    let outer = Mutex::new(&SWEEP_OUTER, ());
    let mut curve: [(&str, Vec<(f64, f64)>); 4] = [
        ("one chain: on - off", Vec::new()),
        ("every chain: on - off", Vec::new()),
        ("one chain: off", Vec::new()),
        ("every chain: off", Vec::new()),
    ];
    for n in [10usize, 100, 1_000, 10_000] {
        let inner: Vec<Mutex<u64>> = (0..n)
            .map(|i| Mutex::new(LockClass::leak(format!("bench.sweep.{n}.{i}")), 0))
            .collect();
        set_enabled(true);
        for pair in inner.windows(2) {
            let _a = pair[0].lock();
            let _b = pair[1].lock();
        }
        let one = Sides::measure(None, &|_| {
            let _o = black_box(&outer).lock();
            *black_box(&inner[0]).lock() += 1;
        });
        let all = Sides::measure(None, &|i| {
            let _o = black_box(&outer).lock();
            *black_box(&inner[i as usize % n]).lock() += 1;
        });
        println!(
            "{:>7} {:>8.1} {:>8.1} {:>22} {:>8.1} {:>8.1} {:>22}",
            n,
            median(&one.off),
            median(&one.on),
            spread(&one.added(), 1, ""),
            median(&all.off),
            median(&all.on),
            spread(&all.added(), 1, ""),
        );
        let x = n as f64;
        curve[0].1.push((x, median(&one.added())));
        curve[1].1.push((x, median(&all.added())));
        curve[2].1.push((x, median(&one.off)));
        curve[3].1.push((x, median(&all.off)));
    }
    dmabuf_testkit::write_curve(
        "validator_classes",
        "validator cost vs lock classes (chains seen before)",
        "lock classes in the graph",
        "ns per outer + inner lock+unlock",
        &curve,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = single, nested, section
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench ... -- <filter>` runs the interleaved comparison and the sweep only if the
    // filter names them (or there is none).
    if dmabuf_testkit::own_pass_wanted("interleaved") {
        interleaved();
        sweep();
    }
}
