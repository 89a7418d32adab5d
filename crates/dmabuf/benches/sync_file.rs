//! Sync files against a buffer's implicit-sync state, each beside a naive reference in the
//! same group: a `parking_lot::Mutex<Vec<(Fence, Usage)>>` doing the same snapshot, merge,
//! add and scan by hand (results in `BENCHMARKS.md`).
//!
//! * `export/N` — [`SyncFile::export`] for a write access from a reservation object holding N
//!   pending fences (N contexts, usages cycling KERNEL, WRITE, READ): a snapshot of the
//!   fences and, for N > 1, a new array. Baseline: lock, clone the unsignalled entries with
//!   usage ≤ READ, unlock, build the same array (or take the one fence).
//! * `import/N` — [`SyncFile::import_into`] of a merged sync file of N pending leaves into an
//!   empty reservation object (made outside the timing). Baseline: unwrap the same leaves,
//!   lock, reserve N, replace-or-append each by the kernel's rule, unlock.
//! * `is_ready/N` — [`Resv::is_ready`] for a read access on an object holding N pending
//!   readers: the whole set is scanned for a writer, none is found. Baseline: lock and scan.
//!
//! Run: `cargo bench -p dmabuf --bench sync_file`.

#[macro_use]
mod common;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group};
use dmabuf::fence::unwrap::leaves;
use dmabuf::fence::{Fence, FenceContext, alloc_contexts};
use dmabuf::resv::{Access, Resv, Usage};
use dmabuf::{Signaller, SyncFile};
use parking_lot::Mutex;
use std::hint::black_box;
use std::num::NonZeroU64;
use std::time::Duration;

/// The sizes measured: one fence, a few, many.
const SIZES: [usize; 3] = [1, 4, 16];

/// The naive reference: every entry under one mutex.
type Naive = Mutex<Vec<(Fence, Usage)>>;

/// `n` pending fences on `n` contexts; the issuers keep them pending.
fn pending(n: usize) -> (Vec<Signaller>, Vec<Fence>) {
    (0..n)
        .map(|i| FenceContext::new("bench", format!("sync_file{i}")).next_fence())
        .unzip()
}

/// Both objects holding `fences`, each with `usage(i)`.
fn filled(fences: &[Fence], usage: impl Fn(usize) -> Usage) -> (Resv, Naive) {
    let resv = Resv::new();
    let mut g = resv.lock_single();
    g.reserve_fences(fences.len()).unwrap();
    for (i, f) in fences.iter().enumerate() {
        g.add_fence(f, usage(i));
    }
    drop(g);
    let naive = Mutex::new(
        fences
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), usage(i)))
            .collect(),
    );
    (resv, naive)
}

/// Export by hand: snapshot under the lock, then one fence standing for all.
fn naive_export(list: &Naive, access: Access) -> Fence {
    let usage = access.wait_usage();
    let mut fences: Vec<Fence> = list
        .lock()
        .iter()
        .filter(|(f, u)| *u <= usage && !f.is_signaled())
        .map(|(f, _)| f.clone())
        .collect();
    match fences.len() {
        0 => Fence::stub(),
        1 => fences.pop().unwrap_or_else(Fence::stub),
        _ => Fence::new_array(fences, alloc_contexts(NonZeroU64::MIN), 1)
            .unwrap_or_else(|_| Fence::stub()),
    }
}

/// Import by hand: the leaves, then under the lock the kernel's replace-or-append per leaf.
fn naive_import(list: &Naive, file: &Fence, access: Access) {
    let all: Vec<Fence> = leaves(file).collect();
    let usage = access.add_usage();
    let mut entries = list.lock();
    entries.reserve(all.len());
    for leaf in all {
        let slot = entries.iter().position(|(old, old_usage)| {
            old.is_signaled()
                || (old.context() == leaf.context()
                    && *old_usage >= usage
                    && leaf.is_later_or_same(old).unwrap_or(false))
        });
        match slot {
            Some(i) => entries[i] = (leaf, usage),
            None => entries.push((leaf, usage)),
        }
    }
}

/// Readiness by hand: no unsignalled entry the access waits for.
fn naive_is_ready(list: &Naive, access: Access) -> bool {
    let usage = access.wait_usage();
    !list
        .lock()
        .iter()
        .any(|(f, u)| *u <= usage && !f.is_signaled())
}

fn export(c: &mut Criterion) {
    let mut g = c.benchmark_group("export");
    let implicit = [Usage::Kernel, Usage::Write, Usage::Read];
    for n in SIZES {
        let (_issuers, fences) = pending(n);
        let (resv, naive) = filled(&fences, |i| implicit[i % 3]);
        assert_eq!(SyncFile::export(&resv, Access::Write).num_fences(), n);
        assert_eq!(leaves(&naive_export(&naive, Access::Write)).count(), n);
        g.bench_with_input(BenchmarkId::new("sync_file", n), &n, |b, _| {
            b.iter(|| black_box(SyncFile::export(&resv, Access::Write)))
        });
        g.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
            b.iter(|| black_box(naive_export(&naive, Access::Write)))
        });
    }
    g.finish();
}

fn import(c: &mut Criterion) {
    let mut g = c.benchmark_group("import");
    for n in SIZES {
        let (_issuers, fences) = pending(n);
        let file = fences[1..]
            .iter()
            .fold(SyncFile::new(fences[0].clone()), |acc, f| {
                SyncFile::merge("bench", &acc, &SyncFile::new(f.clone()))
            });
        assert_eq!(file.num_fences(), n);
        g.bench_with_input(BenchmarkId::new("sync_file", n), &n, |b, _| {
            b.iter_batched(
                Resv::new,
                |resv| {
                    file.import_into(&resv, Access::Write).unwrap();
                    resv
                },
                BatchSize::SmallInput,
            )
        });
        let fence = file.fence();
        g.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
            b.iter_batched(
                || Naive::new(Vec::new()),
                |list| {
                    naive_import(&list, &fence, Access::Write);
                    list
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn is_ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("is_ready");
    for n in SIZES {
        let (_issuers, fences) = pending(n);
        let (resv, naive) = filled(&fences, |_| Usage::Read);
        assert!(resv.is_ready(Access::Read) && naive_is_ready(&naive, Access::Read));
        g.bench_with_input(BenchmarkId::new("resv", n), &n, |b, _| {
            b.iter(|| black_box(resv.is_ready(Access::Read)))
        });
        g.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
            b.iter(|| black_box(naive_is_ready(&naive, Access::Read)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = export, import, is_ready
}
main_validator_off!(benches);
