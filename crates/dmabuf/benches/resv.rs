//! Reservation objects against a `parking_lot::RwLock<Vec<(Fence, Usage)>>` baseline (read
//! lock and clone of the fences; the writer takes the write lock for the same update).
//!
//! Criterion measures each side on its own (`readers/*`, `add_fence/*`, `writer/*`); then an
//! interleaved pass runs both sides in alternating batches in the same process, so that the
//! noise of a shared machine falls on both alike, and prints the ratios (resv / baseline):
//!
//! * `reader quiet`: one `get_fences(Read)` over 4 pending fences, one per usage (3 returned).
//! * `reader, writer flat out`: the same while another thread replaces fences back to back:
//!   a new fence of one of the 4 contexts, lock, `reserve_fences(1)`, `add_fence`, unlock
//!   (the baseline: write lock, replace the entry of that context).
//! * `add_fence n`: one replacement (lock, reserve, add, unlock) in an object holding `n`
//!   pending fences of `n` contexts, round robin, for n = 1 … 1,024.
//! * `readers xN`: reads per second of N reader threads looping on `get_fences(Read)` while a
//!   writer replaces flat out (ratio: baseline reads / resv reads, so lower is better here
//!   too). The medians per thread count, and the writer's steps per second beside them, are
//!   also written to `target/curves/resv_readers.json` for `curves/plot.py --json`.
//!
//! Readers run on CPU 0 and the writer on CPU 1, so that "flat out" means side by side rather
//! than taking turns on one CPU (two or four readers take turns on CPU 0, and may be
//! preempted inside a read). The lines under the writer cases give the writer's progress on
//! each side.
//!
//! Run: `cargo bench -p dmabuf --bench resv -- --warm-up-time 1 --measurement-time 3`.

use criterion::Criterion;
use dmabuf::Signaller;
use dmabuf::fence::{Fence, FenceContext};
use dmabuf::resv::{Resv, Usage};
use dmabuf_testkit::rounds::{interleave, median, per_call};
use parking_lot::RwLock;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Baseline = RwLock<Vec<(Fence, Usage)>>;

/// One side of a comparison: a reservation object or the baseline, holding pending fences of
/// its own contexts.
trait Side: Send + Sync + 'static {
    /// Readers' call.
    fn get(&self) -> Vec<Fence>;
    /// Writer's call: `fence` replaces the entry of its context.
    fn add(&self, fence: &Fence, usage: Usage);
}

impl Side for Resv {
    fn get(&self) -> Vec<Fence> {
        self.get_fences(Usage::Read)
    }

    fn add(&self, fence: &Fence, usage: Usage) {
        let mut g = self.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(fence, usage);
    }
}

impl Side for Baseline {
    fn get(&self) -> Vec<Fence> {
        self.read()
            .iter()
            .filter(|(f, u)| *u <= Usage::Read && !f.is_signaled())
            .map(|(f, _)| f.clone())
            .collect()
    }

    fn add(&self, fence: &Fence, usage: Usage) {
        let mut w = self.write();
        if let Some(e) = w.iter_mut().find(|(f, _)| f.context() == fence.context()) {
            *e = (fence.clone(), usage);
        } else {
            w.push((fence.clone(), usage));
        }
    }
}

/// `n` contexts, a pending fence of each added to `side` (usages round robin), and their
/// issuers.
fn seeded<S: Side>(side: &S, n: usize) -> (Vec<FenceContext>, Vec<Signaller>) {
    let ctxs: Vec<_> = (0..n)
        .map(|i| FenceContext::new("bench", format!("resv{i}")))
        .collect();
    let issuers = ctxs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (s, f) = c.next_fence();
            side.add(&f, Usage::ALL[i % 4]);
            s
        })
        .collect();
    (ctxs, issuers)
}

fn new_resv(n: usize) -> (Arc<Resv>, Vec<FenceContext>, Vec<Signaller>) {
    let resv = Arc::new(Resv::new());
    resv.lock_single().reserve_fences(n).unwrap();
    let (c, s) = seeded(&*resv, n);
    (resv, c, s)
}

fn new_baseline(n: usize) -> (Arc<Baseline>, Vec<FenceContext>, Vec<Signaller>) {
    let list = Arc::new(RwLock::new(Vec::new()));
    let (c, s) = seeded(&*list, n);
    (list, c, s)
}

/// One writer step on `side`: a new fence of context `n % 4` replaces the old one; keeps
/// issuers alive (the fences stay pending) and drops the oldest now and then.
fn writer_step<S: Side>(side: &S, ctxs: &[FenceContext], n: u64, keep: &mut Vec<Signaller>) {
    let i = (n % ctxs.len() as u64) as usize;
    let (s, f) = ctxs[i].next_fence();
    side.add(&f, Usage::ALL[i % 4]);
    keep.push(s);
    if keep.len() > 64 {
        for s in keep.drain(..32) {
            s.signal();
        }
    }
}

/// Pins the calling thread to `cpu` (if there is one), so that a reader and the writer run on
/// two CPUs side by side rather than taking turns on one.
fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Which side the shared writer thread works on.
const IDLE: u8 = 0;
const RESV: u8 = 1;
const BASE: u8 = 2;
const STOP: u8 = 3;

/// A writer thread that replaces fences flat out on the side `target` names (spinning while
/// it names none), counting its steps per side.
struct Writer {
    target: Arc<AtomicU8>,
    steps: Arc<[AtomicU64; 3]>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(
        resv: (Arc<Resv>, Vec<FenceContext>),
        base: (Arc<Baseline>, Vec<FenceContext>),
    ) -> Writer {
        let target = Arc::new(AtomicU8::new(IDLE));
        let steps: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let (t, st) = (target.clone(), steps.clone());
        let thread = std::thread::spawn(move || {
            pin(1);
            let (mut keep_r, mut keep_b) = (Vec::new(), Vec::new());
            let mut n = 0u64;
            loop {
                match t.load(Ordering::Relaxed) {
                    RESV => writer_step(&*resv.0, &resv.1, n, &mut keep_r),
                    BASE => writer_step(&*base.0, &base.1, n, &mut keep_b),
                    STOP => break,
                    _ => {
                        std::hint::spin_loop();
                        continue;
                    }
                }
                st[t.load(Ordering::Relaxed).min(2) as usize].fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        });
        Writer {
            target,
            steps,
            thread: Some(thread),
        }
    }

    /// Points the writer at `side` and waits until it made a step there.
    fn work_on(&self, side: u8) {
        self.target.store(side, Ordering::Relaxed);
        if side == RESV || side == BASE {
            let i = side as usize;
            let before = self.steps[i].load(Ordering::Relaxed);
            while self.steps[i].load(Ordering::Relaxed) == before {
                std::thread::yield_now();
            }
        }
    }

    fn steps(&self, side: u8) -> u64 {
        self.steps[side as usize].load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.target.store(STOP, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("readers");
    let (resv, rc, _ri) = new_resv(4);
    let (base, bc, _bi) = new_baseline(4);
    g.bench_function("resv_get_fences/quiet", |b| {
        b.iter(|| black_box(resv.get()))
    });
    g.bench_function("rwlock_vec/quiet", |b| b.iter(|| black_box(base.get())));
    let writer = Writer::start((resv.clone(), rc), (base.clone(), bc));
    writer.work_on(RESV);
    g.bench_function("resv_get_fences/writer_flat_out", |b| {
        b.iter(|| black_box(resv.get()))
    });
    writer.work_on(BASE);
    g.bench_function("rwlock_vec/writer_flat_out", |b| {
        b.iter(|| black_box(base.get()))
    });
    drop(writer);
    g.finish();
}

/// Fences already held by the object in the add_fence sweep.
const HELD: [usize; 6] = [1, 4, 16, 64, 256, 1024];

/// `iters` replacements on `side`, timed: fences are made beforehand, in batches.
fn time_adds<S: Side>(side: &S, ctxs: &[FenceContext], iters: u64, next: &mut u64) -> Duration {
    const BATCH: u64 = 1024;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(BATCH);
        let batch: Vec<_> = (0..k)
            .map(|j| {
                let i = ((*next + j) % ctxs.len() as u64) as usize;
                (i, ctxs[i].next_fence())
            })
            .collect();
        let t = Instant::now();
        for (i, (_, f)) in &batch {
            side.add(f, Usage::ALL[i % 4]);
        }
        total += t.elapsed();
        *next += k;
        left -= k;
        // The replaced fences' issuers signal outside the timing.
        for (_, (s, _)) in batch {
            s.signal();
        }
    }
    total
}

fn add_fence(c: &mut Criterion) {
    let mut g = c.benchmark_group("add_fence");
    for n in HELD {
        let (resv, rc, _ri) = new_resv(n);
        let mut next = 0;
        g.bench_function(format!("resv/{n}"), |b| {
            b.iter_custom(|iters| time_adds(&*resv, &rc, iters, &mut next))
        });
        let (base, bc, _bi) = new_baseline(n);
        let mut next = 0;
        g.bench_function(format!("rwlock_vec/{n}"), |b| {
            b.iter_custom(|iters| time_adds(&*base, &bc, iters, &mut next))
        });
    }
    g.finish();
}

fn writer(c: &mut Criterion) {
    let (resv, ctxs, _issuers) = new_resv(4);
    let mut keep = Vec::new();
    let mut n = 0u64;
    c.bench_function("writer/lock_reserve_add_unlock", |b| {
        b.iter(|| {
            writer_step(&*resv, &ctxs, n, &mut keep);
            n += 1;
        })
    });
}

fn row(name: &str, (a, b, ratio): (f64, f64, f64), unit: &str) {
    println!("| {name:<28} | {a:>10.1} {unit} | {b:>10.1} {unit} | {ratio:>5.2}x |");
}

/// Reads per second of `readers` threads on `side` for `time`, its writer running.
fn throughput<S: Side>(side: &Arc<S>, readers: usize, time: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let (side, stop) = (side.clone(), stop.clone());
            std::thread::spawn(move || {
                pin(0);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        black_box(side.get());
                    }
                    n += 64;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    reads as f64 / time.as_secs_f64()
}

/// The interleaved pass: prints its table and writes the readers' curve file.
fn interleaved() {
    println!("\ninterleaved: resv / RwLock<Vec> baseline, medians of alternating batches");
    println!("| case | resv | baseline | ratio |");
    println!("|---|---|---|---|");
    let (resv, rc, _ri) = new_resv(4);
    let (base, bc, _bi) = new_baseline(4);
    let quiet = interleave(
        41,
        20_000,
        |i| per_call(i, || drop(black_box(resv.get()))),
        |i| per_call(i, || drop(black_box(base.get()))),
    )
    .medians();
    row("reader quiet", quiet, "ns");

    let writer = Writer::start((resv.clone(), rc), (base.clone(), bc));
    let (rs0, bs0) = (writer.steps(RESV), writer.steps(BASE));
    let busy_time = [std::cell::Cell::new(0.0f64), std::cell::Cell::new(0.0f64)];
    let busy = interleave(
        41,
        20_000,
        |i| {
            writer.work_on(RESV);
            let ns = per_call(i, || drop(black_box(resv.get())));
            busy_time[0].set(busy_time[0].get() + ns * i as f64);
            ns
        },
        |i| {
            writer.work_on(BASE);
            let ns = per_call(i, || drop(black_box(base.get())));
            busy_time[1].set(busy_time[1].get() + ns * i as f64);
            ns
        },
    )
    .medians();
    row("reader, writer flat out", busy, "ns");
    writer.work_on(IDLE);
    let (rs, bs) = (writer.steps(RESV), writer.steps(BASE));
    println!(
        "| (writer steps per µs read)   | {:>13.2} | {:>13.2} |       |",
        (rs - rs0) as f64 / busy_time[0].get() * 1e3,
        (bs - bs0) as f64 / busy_time[1].get() * 1e3,
    );

    for n in HELD {
        let (r, rc, _ri) = new_resv(n);
        let (b, bc, _bi) = new_baseline(n);
        let (mut nr, mut nb) = (0, 0);
        let iters = (200_000 / n as u64).clamp(200, 20_000);
        let add = interleave(
            21,
            iters,
            |i| time_adds(&*r, &rc, i, &mut nr).as_nanos() as f64 / i as f64,
            |i| time_adds(&*b, &bc, i, &mut nb).as_nanos() as f64 / i as f64,
        )
        .medians();
        row(&format!("add_fence, {n} held"), add, "ns");
    }

    let mut curve: [(&str, Vec<(f64, f64)>); 4] = [
        ("resv: reads", Vec::new()),
        ("RwLock<Vec>: reads", Vec::new()),
        ("resv: writer", Vec::new()),
        ("RwLock<Vec>: writer", Vec::new()),
    ];
    for readers in [1, 2, 4] {
        // Reads per second, and the writer's steps per second beside them.
        let slice = Duration::from_millis(150);
        let mut ratios = Vec::new();
        let (mut tr, mut tb, mut wr, mut wb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..16 {
            let one = |side: u8| {
                writer.work_on(side);
                let steps = writer.steps(side);
                let reads = if side == RESV {
                    throughput(&resv, readers, slice)
                } else {
                    throughput(&base, readers, slice)
                };
                let steps = (writer.steps(side) - steps) as f64 / slice.as_secs_f64();
                (reads, steps)
            };
            let (x, y) = if round % 2 == 0 {
                let x = one(RESV);
                (x, one(BASE))
            } else {
                let y = one(BASE);
                (one(RESV), y)
            };
            tr.push(x.0 / 1e6);
            tb.push(y.0 / 1e6);
            wr.push(x.1 / 1e6);
            wb.push(y.1 / 1e6);
            ratios.push(y.0 / x.0);
        }
        writer.work_on(IDLE);
        let medians = [&tr, &tb, &wr, &wb].map(|v| median(v));
        row(
            &format!("readers x{readers} (Mreads/s)"),
            (medians[0], medians[1], median(&ratios)),
            "  ",
        );
        println!(
            "| (writer Msteps/s beside)     | {:>13.2} | {:>13.2} |       |",
            medians[2], medians[3]
        );
        for (line, m) in curve.iter_mut().zip(medians) {
            line.1.push((readers as f64, m));
        }
    }
    dmabuf_testkit::write_curve(
        "resv_readers",
        "readers on CPU 0 beside a writer flat out on CPU 1: resv vs RwLock<Vec>",
        "reader threads",
        "millions per second (reads; writer steps)",
        &curve,
    );
    println!(
        "writer steps while measured: resv {rs}, baseline {bs} (plus the throughput rounds: \
         resv {}, baseline {})",
        writer.steps(RESV) - rs,
        writer.steps(BASE) - bs
    );
}

fn main() {
    // A bench of the library, not of the validator, which starts on when `cargo bench
    // --workspace` builds the library with the `lockdep` feature.
    dmabuf::lockdep::set_enabled(false);
    // The reader here, the writer on the other CPU (see `Writer::start`).
    pin(0);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    readers(&mut c);
    add_fence(&mut c);
    writer(&mut c);
    c.final_summary();
    if dmabuf_testkit::own_pass_wanted("interleaved") {
        interleaved();
    }
}
