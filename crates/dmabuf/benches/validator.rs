//! A fence-heavy workload with the validator on vs off at run time (target: at most 1.15x).
//!
//! The workload is a driver's hot path in miniature: create a fence, queue a callback, signal
//! it (callbacks run in a signalling section), wait on it, merge it with another pending fence,
//! and advance a software timeline (its locks are tracked). Built with `--features lockdep`;
//! "off" switches the validator off at run time, which is what a build without the feature
//! costs plus one relaxed load per hook.
//!
//! After the criterion group, an **interleaved comparison** (the number the target is judged
//! on) runs off and on back to back for `ROUNDS` short rounds and prints the median of each
//! and the median over rounds of each round's own ratio (on / off), with its interquartile
//! range: a round that another process interrupted is an outlier the median ignores. Run it
//! alone with the filter `interleaved`.

use criterion::{Criterion, criterion_group};
use dmabuf::Timeline;
use dmabuf::fence::{FenceContext, unwrap::merge};
use dmabuf::lockdep::set_enabled;
use dmabuf_testkit::rounds::median;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn workload(ctx: &FenceContext, other: &FenceContext, tl: &Timeline, n: &mut u32) {
    let (s, f) = ctx.next_fence();
    let (_o, pending) = other.next_fence();
    f.add_callback(|f| {
        black_box(f.seqno());
    })
    .ok();
    let m = merge(&[f.clone(), pending]);
    s.signal();
    f.wait_for_signal();
    black_box(m);
    *n += 1;
    let p = tl.create_fence(*n).ok();
    tl.inc(1);
    black_box(p);
}

fn fence_heavy(c: &mut Criterion) {
    let mut g = c.benchmark_group("fence_heavy_workload");
    let ctx = FenceContext::new("bench", "a");
    let other = FenceContext::new("bench", "b");
    let tl = Timeline::new("bench");
    let mut n = 0;
    set_enabled(false);
    g.bench_function("validator_off", |b| {
        b.iter(|| workload(&ctx, &other, &tl, &mut n))
    });
    set_enabled(true);
    g.bench_function("validator_on", |b| {
        b.iter(|| workload(&ctx, &other, &tl, &mut n))
    });
    g.finish();
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 101;

/// Workloads per side and round: about a millisecond each, shorter than a scheduler's time
/// slice.
const OPS: u32 = 2_000;

/// The interleaved comparison: off and on in turn (who goes first alternates), each on its
/// own contexts and timeline.
fn interleaved() {
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let sides = [0, 1].map(|_| {
        (
            FenceContext::new("bench", "a"),
            FenceContext::new("bench", "b"),
            Timeline::new("bench"),
            std::cell::Cell::new(0),
        )
    });
    let run = |enabled: bool| {
        let (ctx, other, tl, count) = &sides[usize::from(enabled)];
        let mut n = count.get();
        set_enabled(enabled);
        let t = Instant::now();
        for _ in 0..OPS {
            workload(ctx, other, tl, &mut n);
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(OPS);
        count.set(n);
        set_enabled(true);
        ns
    };
    // Every chain is seen once before the clock starts.
    run(true);
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            off.push(run(false));
            on.push(run(true));
        } else {
            on.push(run(true));
            off.push(run(false));
        }
    }
    let mut ratios: Vec<f64> = on.iter().zip(&off).map(|(on, off)| on / off).collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    println!(
        "\ninterleaved: median of {ROUNDS} rounds of {OPS} workloads, ns per workload; \
         on/off in the same round (p25 to p75 of the rounds)"
    );
    println!("{:<22} {:>8} {:>8} {:>22}", "case", "off", "on", "on/off");
    println!(
        "{:<22} {:>8.0} {:>8.0} {:>22}",
        "fence-heavy workload",
        median(&off),
        median(&on),
        format!("{:.2}x ({:.2} to {:.2})", at(2), at(1), at(3)),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fence_heavy
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench ... -- <filter>` runs the interleaved comparison only if the filter names
    // it (or there is none).
    if dmabuf_testkit::own_pass_wanted("interleaved") {
        interleaved();
    }
}
