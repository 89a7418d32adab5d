//! A fence-heavy workload with the validator on vs off at run time (target: under 2x).
//!
//! The workload is a driver's hot path in miniature: create a fence, queue a callback, signal
//! it (callbacks run in a signalling section), wait on it, merge it with another pending fence,
//! and advance a software timeline (its locks are tracked). Built with `--features lockdep`;
//! "off" switches the validator off at run time, which is what a build without the feature
//! costs plus one relaxed load per hook.

use criterion::{Criterion, criterion_group, criterion_main};
use dmabuf::Timeline;
use dmabuf::fence::{FenceContext, unwrap::merge};
use dmabuf::lockdep::set_enabled;
use std::hint::black_box;
use std::time::Duration;

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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fence_heavy
}
criterion_main!(benches);
