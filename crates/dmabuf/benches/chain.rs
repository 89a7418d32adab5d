//! Chain point lookup, each size's three lookups beside each other in one run (results in
//! `BENCHMARKS.md`).
//!
//! `chain_lookup/*/N` — the middle point of a chain of N pending points (seqnos `1..=N`,
//! point `(N + 1) / 2`):
//!
//! * `find_seqno`: [`Fence::find_seqno`] on the newest node, which keeps an index of its
//!   predecessors once a lookup has walked a few links (built during warm-up);
//! * `walk`: the same lookup as the kernel makes it, a loop over `chain::walk` from the
//!   newest node, one link at a time;
//! * `vec_u64`: a binary search of a sorted `Vec<u64>` of the same seqnos;
//! * `vec_fence`: a binary search of a sorted `Vec<(u64, Fence)>` for the first point at or
//!   after the one looked up, answering a clone of its fence, as `find_seqno` answers one.
//!
//! Run: `cargo bench -p dmabuf --bench chain`.

#[macro_use]
mod common;
#[path = "../tests/kernel_walk/mod.rs"]
mod kernel_walk;

use criterion::{BenchmarkId, Criterion, criterion_group};
use dmabuf::fence::{Fence, FenceContext};
use kernel_walk::kernel_find_seqno;
use std::hint::black_box;
use std::time::Duration;

fn lookup(c: &mut Criterion) {
    let ctx = FenceContext::new("bench", "chain_lookup");
    let mut issuers = Vec::new();
    let mut g = c.benchmark_group("chain_lookup");
    for pending in [1u64, 16, 256, 4096, 65_536] {
        let mut head: Option<Fence> = None;
        let mut seqnos = Vec::new();
        let mut fences = Vec::new();
        for seqno in 1..=pending {
            let (issuer, fence) = ctx.next_fence();
            issuers.push(issuer);
            let node = Fence::new_chain(head.take(), fence, seqno).unwrap();
            seqnos.push(seqno);
            fences.push((seqno, node.clone()));
            head = Some(node);
        }
        let head = head.unwrap();
        let middle = pending.div_ceil(2);
        let expected = fences[(middle - 1) as usize].1.clone();
        assert!(head.find_seqno(middle).unwrap().unwrap().ptr_eq(&expected));
        assert!(kernel_find_seqno(&head, middle).unwrap().ptr_eq(&expected));

        g.bench_with_input(BenchmarkId::new("find_seqno", pending), &middle, |b, &p| {
            b.iter(|| black_box(head.find_seqno(black_box(p))))
        });
        g.bench_with_input(BenchmarkId::new("walk", pending), &middle, |b, &p| {
            b.iter(|| black_box(kernel_find_seqno(&head, black_box(p))))
        });
        g.bench_with_input(BenchmarkId::new("vec_u64", pending), &middle, |b, &p| {
            b.iter(|| black_box(seqnos.binary_search(black_box(&p))))
        });
        g.bench_with_input(BenchmarkId::new("vec_fence", pending), &middle, |b, &p| {
            b.iter(|| {
                let p = black_box(p);
                let at = fences.partition_point(|(s, _)| *s < p);
                black_box(fences.get(at).map(|(_, f)| f.clone()))
            })
        });
    }
    g.finish();
    drop(issuers);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = lookup
}
main_validator_off!(benches);
