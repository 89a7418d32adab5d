//! Fence hot paths, each beside a baseline measured in the same run (results in
//! `BENCHMARKS.md`).
//!
//! * `create_signal` — a fence created, signalled and dropped vs an `Arc<AtomicBool>` created,
//!   stored and dropped (target: within 2x), and vs the same flag plus the clock read every
//!   fence signal must make for its timestamp.
//! * `add_callback_signal` — a callback queued and run by the signal vs a closure pushed into
//!   and taken out of an `Arc<Mutex<Vec<Box<dyn FnOnce>>>>`.
//! * `ping_pong/*` — two threads hand control back and forth: fences (one pair per round)
//!   vs a raw futex word vs `std::sync::{Mutex, Condvar}`. `running`: the peer answers at
//!   once, both threads on a CPU (target: fences ≥10x faster than Mutex+Condvar). `parked`:
//!   the peer first busy-works 50 µs, longer than any spin, so every waiter sleeps in the
//!   kernel (target: fences ≤1.2x the raw futex).
//! * `merge/N` — merge of N pending fences (1 to 1,024) from distinct contexts vs the obvious
//!   implementation (collect, sort by context, dedup, allocate a shared slice).
//! * `chain_find_seqno` — find_seqno in a 4096-node chain of pending points vs a linear scan of
//!   a `Vec<(u64, Fence)>` for the same point.
//!
//! Run: `cargo bench -p dmabuf --bench fence`.

#[macro_use]
mod common;

use common::{ping_pong_fence, work};
use criterion::{BenchmarkId, Criterion, criterion_group};
use dmabuf::MonotonicTime;
use dmabuf::fence::{Fence, FenceContext, unwrap::merge};
use rustix::thread::futex;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

fn create_signal(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_signal");
    let ctx = FenceContext::new("bench", "create");
    g.bench_function("fence", |b| {
        b.iter(|| {
            let (issuer, fence) = ctx.next_fence();
            issuer.signal();
            black_box(fence.is_signaled())
        })
    });
    g.bench_function("arc_atomic_bool", |b| {
        b.iter(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let consumer = black_box(flag.clone());
            flag.store(true, Ordering::Release);
            black_box(consumer.load(Ordering::Acquire))
        })
    });
    // The same flag plus the monotonic timestamp every fence signal must record.
    g.bench_function("arc_atomic_bool_with_timestamp", |b| {
        b.iter(|| {
            let flag = Arc::new((AtomicBool::new(false), AtomicU64::new(0)));
            let consumer = black_box(flag.clone());
            flag.1
                .store(MonotonicTime::now().as_nanos(), Ordering::Relaxed);
            flag.0.store(true, Ordering::Release);
            black_box(consumer.0.load(Ordering::Acquire))
        })
    });
    g.finish();
}

type Queue = Arc<Mutex<Vec<Box<dyn FnOnce(u64) + Send>>>>;

fn add_callback_signal(c: &mut Criterion) {
    let mut g = c.benchmark_group("add_callback_signal");
    let ctx = FenceContext::new("bench", "callback");
    let hits = Arc::new(AtomicU32::new(0));
    g.bench_function("fence", |b| {
        b.iter(|| {
            let (issuer, fence) = ctx.next_fence();
            let h = hits.clone();
            let handle = fence
                .add_callback(move |_| {
                    h.fetch_add(1, Ordering::Relaxed);
                })
                .ok();
            issuer.signal();
            black_box(handle)
        })
    });
    g.bench_function("mutex_vec_boxed_closures", |b| {
        b.iter(|| {
            let queue: Queue = Arc::new(Mutex::new(Vec::new()));
            let h = hits.clone();
            queue.lock().unwrap().push(Box::new(move |_| {
                h.fetch_add(1, Ordering::Relaxed);
            }));
            let taken = std::mem::take(&mut *queue.lock().unwrap());
            for cb in taken {
                cb(1);
            }
            black_box(queue)
        })
    });
    g.finish();
}

fn futex_wait_for(word: &AtomicU32, want: u32) {
    loop {
        let v = word.load(Ordering::Acquire);
        if v == want {
            return;
        }
        let _ = futex::wait(word, futex::Flags::PRIVATE, v, None);
    }
}

fn futex_set(word: &AtomicU32, v: u32) {
    word.store(v, Ordering::Release);
    let _ = futex::wake(word, futex::Flags::PRIVATE, 1);
}

/// `iters` round trips through one futex word: odd values are pings, even values pongs.
fn ping_pong_futex(iters: u64, delay: Duration) -> Duration {
    let word = Arc::new(AtomicU32::new(0));
    let start = Arc::new(Barrier::new(2));
    let (w, s) = (word.clone(), start.clone());
    let peer = std::thread::spawn(move || {
        s.wait();
        for i in 0..iters as u32 {
            futex_wait_for(&w, 2 * i + 1);
            work(delay);
            futex_set(&w, 2 * i + 2);
        }
    });
    start.wait();
    let t = Instant::now();
    for i in 0..iters as u32 {
        futex_set(&word, 2 * i + 1);
        futex_wait_for(&word, 2 * i + 2);
    }
    let elapsed = t.elapsed();
    peer.join().unwrap();
    elapsed
}

/// `iters` round trips through a `Mutex<u32>` and a `Condvar`.
fn ping_pong_condvar(iters: u64, delay: Duration) -> Duration {
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let start = Arc::new(Barrier::new(2));
    let (st, s) = (state.clone(), start.clone());
    let set = |st: &(Mutex<u32>, Condvar), v: u32| {
        *st.0.lock().unwrap() = v;
        st.1.notify_all();
    };
    let wait_for = |st: &(Mutex<u32>, Condvar), v: u32| {
        let mut g = st.0.lock().unwrap();
        while *g != v {
            g = st.1.wait(g).unwrap();
        }
    };
    let peer = std::thread::spawn(move || {
        s.wait();
        for i in 0..iters as u32 {
            wait_for(&st, 2 * i + 1);
            work(delay);
            set(&st, 2 * i + 2);
        }
    });
    start.wait();
    let t = Instant::now();
    for i in 0..iters as u32 {
        set(&state, 2 * i + 1);
        wait_for(&state, 2 * i + 2);
    }
    let elapsed = t.elapsed();
    peer.join().unwrap();
    elapsed
}

fn ping_pong(c: &mut Criterion) {
    for (name, delay) in [
        ("running", Duration::ZERO),
        ("parked", Duration::from_micros(50)),
    ] {
        let mut g = c.benchmark_group(format!("ping_pong/{name}"));
        g.sample_size(20);
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("fence", |b| {
            b.iter_custom(|iters| ping_pong_fence(iters, delay))
        });
        g.bench_function("raw_futex", |b| {
            b.iter_custom(|iters| ping_pong_futex(iters, delay))
        });
        g.bench_function("mutex_condvar", |b| {
            b.iter_custom(|iters| ping_pong_condvar(iters, delay))
        });
        g.finish();
    }
}

/// The obvious merge: gather, sort by context, keep the latest seqno per context, share.
fn naive_merge(fences: &[Fence]) -> Arc<[Fence]> {
    let mut v: Vec<Fence> = fences
        .iter()
        .filter(|f| !f.is_signaled())
        .cloned()
        .collect();
    v.sort_by_key(|f| (f.context(), std::cmp::Reverse(f.seqno())));
    v.dedup_by_key(|f| f.context());
    v.into()
}

fn merge_n(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge");
    let mut keep = Vec::new();
    for n in [1usize, 4, 16, 64, 256, 1024] {
        let fences: Vec<Fence> = (0..n)
            .map(|i| {
                let (issuer, f) = FenceContext::new("bench", format!("merge{i}")).next_fence();
                keep.push(issuer);
                f
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("fence", n), &fences, |b, f| {
            b.iter(|| black_box(merge(black_box(f))))
        });
        g.bench_with_input(BenchmarkId::new("naive_sort_dedup", n), &fences, |b, f| {
            b.iter(|| black_box(naive_merge(black_box(f))))
        });
    }
    g.finish();
    drop(keep);
}

fn chain_find_seqno(c: &mut Criterion) {
    const NODES: u64 = 4096;
    let ctx = FenceContext::new("bench", "chain");
    let mut issuers = Vec::new();
    let mut flat = Vec::new();
    let mut head: Option<Fence> = None;
    for seqno in 1..=NODES {
        let (issuer, f) = ctx.next_fence();
        issuers.push(issuer);
        flat.push((seqno, f.clone()));
        head = Some(Fence::new_chain(head, f, seqno).unwrap());
    }
    let head = head.unwrap();
    let mut g = c.benchmark_group("chain_find_seqno_4096");
    for target in [NODES - 1, NODES / 2, 1] {
        g.bench_with_input(BenchmarkId::new("chain", target), &target, |b, &t| {
            b.iter(|| black_box(head.find_seqno(black_box(t)).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("vec_scan", target), &target, |b, &t| {
            b.iter(|| {
                black_box(
                    flat.iter()
                        .rev()
                        .take_while(|(s, _)| *s >= black_box(t))
                        .last()
                        .map(|(_, f)| f.clone()),
                )
            })
        });
    }
    g.finish();
    drop(issuers);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = create_signal, add_callback_signal, ping_pong, merge_n, chain_find_seqno
}
main_validator_off!(benches);
