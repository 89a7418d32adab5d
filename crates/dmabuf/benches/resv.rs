//! Reservation objects: lock-free readers with and without a concurrent writer, beside a
//! `parking_lot::RwLock<Vec<_>>` baseline in the same run; and one writer step.
//!
//! * `readers/*` — one `get_fences(Read)` over a reservation object holding 4 pending fences
//!   (one per usage), while a second thread idles (`quiet`), or runs a writer step — lock,
//!   reserve, add a fence of one of 4 contexts (replacing in place), unlock — sleeping 50 µs
//!   between steps (`writer_every_50us`, ~15 000 submissions/s, more than a busy GPU
//!   driver makes) or back to back on the other CPU (`writer_flat_out`). The baseline keeps the same entries in a
//!   `RwLock<Vec<(Fence, Usage)>>` whose writer takes the write lock for the same update.
//!   Target: readers keep their throughput while a writer adds fences.
//! * `writer/lock_reserve_add_unlock` — one writer step alone.
//!
//! Run: `cargo bench -p dmabuf --bench resv`.

use criterion::{Criterion, criterion_group, criterion_main};
use dmabuf::Signaller;
use dmabuf::fence::{Fence, FenceContext};
use dmabuf::resv::{Resv, Usage};
use parking_lot::RwLock;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Four pending fences, one per usage, each on its own context.
fn seed() -> (Vec<FenceContext>, Vec<(Signaller, Fence)>) {
    let ctxs: Vec<_> = (0..4)
        .map(|i| FenceContext::new("bench", format!("resv{i}")))
        .collect();
    let fences = ctxs.iter().map(FenceContext::next_fence).collect();
    (ctxs, fences)
}

/// A thread that keeps replacing entries until `stop`; keeps every issuer alive so the
/// fences stay pending.
fn resv_writer(
    resv: Arc<Resv>,
    ctxs: Vec<FenceContext>,
    stop: Arc<AtomicBool>,
    pace: Duration,
) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        let mut keep = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            pause(pace);
            let i = (n % 4) as usize;
            let (s, f) = ctxs[i].next_fence();
            let mut g = resv.lock_single();
            g.reserve_fences(1).unwrap();
            g.add_fence(&f, Usage::ALL[i]);
            drop(g);
            keep.push(s);
            if keep.len() > 64 {
                keep.drain(..32);
            }
            n += 1;
        }
        n
    })
}

/// Sleeps `pace` between writer steps (zero: none), as a real submitter would.
fn pause(pace: Duration) {
    if !pace.is_zero() {
        std::thread::sleep(pace);
    }
}

type Baseline = RwLock<Vec<(Fence, Usage)>>;

fn rwlock_writer(
    list: Arc<Baseline>,
    ctxs: Vec<FenceContext>,
    stop: Arc<AtomicBool>,
    pace: Duration,
) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        let mut keep = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            pause(pace);
            let i = (n % 4) as usize;
            let (s, f) = ctxs[i].next_fence();
            let mut w = list.write();
            if let Some(e) = w.iter_mut().find(|(old, _)| old.context() == f.context()) {
                *e = (f, Usage::ALL[i]);
            } else {
                w.push((f, Usage::ALL[i]));
            }
            drop(w);
            keep.push(s);
            if keep.len() > 64 {
                keep.drain(..32);
            }
            n += 1;
        }
        n
    })
}

fn baseline_get(list: &Baseline, usage: Usage) -> Vec<Fence> {
    list.read()
        .iter()
        .filter(|(f, u)| *u <= usage && !f.is_signaled())
        .map(|(f, _)| f.clone())
        .collect()
}

fn readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("readers");
    for (label, writer_pace) in [
        ("quiet", None),
        ("writer_every_50us", Some(Duration::from_micros(50))),
        ("writer_flat_out", Some(Duration::ZERO)),
    ] {
        let (ctxs, fences) = seed();
        let resv = Arc::new(Resv::new());
        {
            let mut guard = resv.lock_single();
            guard.reserve_fences(4).unwrap();
            for (i, (_, f)) in fences.iter().enumerate() {
                guard.add_fence(f, Usage::ALL[i]);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writer = writer_pace.map(|p| resv_writer(resv.clone(), ctxs, stop.clone(), p));
        g.bench_function(format!("resv_get_fences/{label}"), |b| {
            b.iter(|| black_box(resv.get_fences(Usage::Read)))
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(w) = writer {
            println!("resv writer steps: {}", w.join().unwrap());
        }

        let (ctxs, fences) = seed();
        let list: Arc<Baseline> = Arc::new(RwLock::new(
            fences
                .iter()
                .enumerate()
                .map(|(i, (_, f))| (f.clone(), Usage::ALL[i]))
                .collect(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = writer_pace.map(|p| rwlock_writer(list.clone(), ctxs, stop.clone(), p));
        g.bench_function(format!("rwlock_vec/{label}"), |b| {
            b.iter(|| black_box(baseline_get(&list, Usage::Read)))
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(w) = writer {
            println!("rwlock writer steps: {}", w.join().unwrap());
        }
        drop(fences);
    }
    g.finish();
}

fn writer_step(c: &mut Criterion) {
    let (ctxs, _fences) = seed();
    let resv = Resv::new();
    let mut keep = Vec::new();
    let mut n = 0usize;
    c.bench_function("writer/lock_reserve_add_unlock", |b| {
        b.iter(|| {
            let (s, f) = ctxs[n % 4].next_fence();
            let mut g = resv.lock_single();
            g.reserve_fences(1).unwrap();
            g.add_fence(&f, Usage::ALL[n % 4]);
            drop(g);
            keep.push(s);
            if keep.len() > 64 {
                keep.drain(..32);
            }
            n += 1;
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = readers, writer_step
}
criterion_main!(benches);
