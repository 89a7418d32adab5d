//! Sync object hot paths, each beside a baseline measured in the same run (results in
//! `BENCHMARKS.md`).
//!
//! * `syncobj_ping_pong/*` — two threads hand control back and forth through two timeline
//!   syncobjs: one CPU-signals point N of its syncobj (`timeline_signal`), the other waits
//!   for that point with WAIT_FOR_SUBMIT before it was submitted, and answers on the other
//!   syncobj; against the fence ping-pong of `benches/fence.rs` (one pre-created fence pair
//!   per round). `running`: the peer answers at once; `parked`: it busy-works 50 µs first, so
//!   every waiter sleeps.
//! * `syncobj_find_fence/N` — looking up a point on a timeline of N pending points (the
//!   newest and the oldest), against the obvious timeline, a `BTreeMap<u64, Fence>` asked for
//!   the first point at or after the one looked up.
//!
//! Memory per pending point is a test: `tests/memory.rs`.
//!
//! Run: `cargo bench -p dmabuf --bench syncobj`.

#[macro_use]
mod common;

use common::{against_peer, ping_pong_fence, work};
use criterion::{BenchmarkId, Criterion, criterion_group};
use dmabuf::fence::{Fence, FenceContext};
use dmabuf::syncobj::{IfUnsubmitted, Point, Syncobj, Wait, WaitFlags};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

/// Waits for `point` of `s`, submitted or not.
fn wait_for_submit(s: &Syncobj, point: Point) {
    Wait::new([(s, point)])
        .flags(WaitFlags::FOR_SUBMIT)
        .all(None)
        .expect("no time limit");
}

/// `iters` round trips through two timeline syncobjs: a CPU signal of point N wakes the
/// peer's wait for submit of N.
fn ping_pong_syncobj(iters: u64, delay: Duration) -> Duration {
    let (ping, pong) = (Syncobj::new(), Syncobj::new());
    let (peer_ping, peer_pong) = (ping.clone(), pong.clone());
    against_peer(
        move || {
            for n in 1..=iters {
                wait_for_submit(&peer_ping, Point(n));
                work(delay);
                peer_pong.timeline_signal(Point(n));
            }
        },
        || {
            for n in 1..=iters {
                ping.timeline_signal(Point(n));
                wait_for_submit(&pong, Point(n));
            }
        },
    )
}

fn ping_pong(c: &mut Criterion) {
    for (name, delay) in [
        ("running", Duration::ZERO),
        ("parked", Duration::from_micros(50)),
    ] {
        let mut g = c.benchmark_group(format!("syncobj_ping_pong/{name}"));
        g.sample_size(20);
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("syncobj", |b| {
            b.iter_custom(|iters| ping_pong_syncobj(iters, delay))
        });
        g.bench_function("fence", |b| {
            b.iter_custom(|iters| ping_pong_fence(iters, delay))
        });
        g.finish();
    }
}

fn find_fence(c: &mut Criterion) {
    let ctx = FenceContext::new("bench", "points");
    let mut keep = Vec::new();
    let mut g = c.benchmark_group("syncobj_find_fence");
    for pending in [1u64, 100, 10_000] {
        let timeline = Syncobj::new();
        let mut map: BTreeMap<u64, Fence> = BTreeMap::new();
        for n in 1..=pending {
            let (issuer, fence) = ctx.next_fence();
            keep.push(issuer);
            timeline.add_point(fence.clone(), Point(n));
            map.insert(n, fence);
        }
        for (which, point) in [("newest", pending), ("oldest", 1)] {
            g.bench_with_input(
                BenchmarkId::new(format!("syncobj_{which}"), pending),
                &point,
                |b, &p| {
                    b.iter(|| {
                        black_box(timeline.find_fence(black_box(Point(p)), IfUnsubmitted::Fail))
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new(format!("btreemap_{which}"), pending),
                &point,
                |b, &p| {
                    b.iter(|| black_box(map.range(black_box(p)..).next().map(|(_, f)| f.clone())))
                },
            );
        }
    }
    g.finish();
    drop(keep);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = ping_pong, find_fence
}
main_validator_off!(benches);
