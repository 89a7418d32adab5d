//! Cost of the validator on an acquisition it has already seen (target: under 50 ns added).
//!
//! Each group measures the same lock/unlock with validation on, with validation switched off
//! at run time, and on a plain `parking_lot::Mutex` (the baseline).

use criterion::{Criterion, criterion_group, criterion_main};
use dmabuf_lockdep::{LockClass, Mutex, set_enabled, signalling};
use std::hint::black_box;
use std::time::Duration;

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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = single, nested, section
}
criterion_main!(benches);
