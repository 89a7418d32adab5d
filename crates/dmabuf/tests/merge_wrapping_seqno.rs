//! `unwrap::merge` on 32-bit wrapping timelines with random seqnos (kernel:
//! `dma_fence_unwrap_merge()`, `dma_fence_dedup_array()`): it never panics, and the result
//! waits for the latest point of every context among its inputs.
//!
//! Two fences 2^31 or more apart on a wrapping timeline are not ordered (neither is later),
//! and "later" is not transitive across the whole circle, so no comparison of seqnos alone
//! is a total order. Inputs that fit in half the circle (every real timeline) have one latest
//! point per context, and the merge keeps exactly that one; wider inputs keep the few points
//! that between them cover every input.

use dmabuf::fence::unwrap::{leaves, merge};
use dmabuf::fence::{Fence, FenceContext, Signaller, seqno_is_later};
use proptest::prelude::*;

/// Whether `kept` stands for `input`: the same context, and the same point or a later one.
fn covers(kept: &Fence, input: &Fence) -> bool {
    if kept.context() != input.context() {
        return false;
    }
    let same_point = if input.is_seqno64() {
        kept.seqno() == input.seqno()
    } else {
        kept.seqno() as u32 == input.seqno() as u32
    };
    same_point || seqno_is_later(input.is_seqno64(), kept.seqno(), input.seqno())
}

/// A fence per `(context index, seqno, signalled)`, on `contexts`; the issuers of the pending
/// ones are returned so they stay pending.
fn build(contexts: &[FenceContext], spec: &[(usize, u64, bool)]) -> (Vec<Fence>, Vec<Signaller>) {
    let mut fences = Vec::new();
    let mut issuers = Vec::new();
    for &(c, seqno, signalled) in spec {
        let (issuer, fence) = contexts[c % contexts.len()].fence(seqno);
        if signalled {
            issuer.signal();
        } else {
            issuers.push(issuer);
        }
        fences.push(fence);
    }
    (fences, issuers)
}

fn contexts() -> Vec<FenceContext> {
    vec![
        FenceContext::new("prop", "wrap-a").with_wrapping_seqno(),
        FenceContext::new("prop", "wrap-b").with_wrapping_seqno(),
        FenceContext::new("prop", "wide"),
    ]
}

/// The properties every merge has, whatever the seqnos: flat, only pending inputs, every
/// pending input covered by a kept leaf.
fn check_merge(inputs: &[Fence]) -> Result<Vec<Fence>, TestCaseError> {
    let merged = merge(inputs);
    let kept: Vec<Fence> = leaves(&merged).collect();
    let pending: Vec<&Fence> = inputs.iter().filter(|f| !f.is_signaled()).collect();
    prop_assert_eq!(merged.is_signaled(), pending.is_empty());
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    for k in &kept {
        prop_assert!(!k.is_container(), "merge output is not flat");
        prop_assert!(
            pending.iter().any(|p| p.ptr_eq(k)),
            "kept a fence that was no pending input: {}",
            k
        );
    }
    for p in &pending {
        prop_assert!(
            kept.iter().any(|k| covers(k, p)),
            "nothing in the merge waits for {}",
            p
        );
    }
    Ok(kept)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Seqnos anywhere on the circle (high bits too: only the low 32 count).
    #[test]
    fn merge_of_any_seqnos_waits_for_every_input(
        spec in prop::collection::vec((0..3usize, any::<u64>(), prop::bool::weighted(0.1)), 0..48),
    ) {
        let ctxs = contexts();
        let (inputs, _issuers) = build(&ctxs, &spec);
        check_merge(&inputs)?;
    }

    /// Seqnos within half the circle from a random base (wrapping past 2^32 included): one
    /// kept leaf per context, its latest point.
    #[test]
    fn merge_within_half_the_circle_keeps_the_latest_point_per_context(
        base in any::<u32>(),
        spec in prop::collection::vec((0..3usize, 0..(1u64 << 31), prop::bool::weighted(0.1)), 1..48),
    ) {
        let ctxs = contexts();
        let spec: Vec<_> = spec
            .into_iter()
            .map(|(c, off, s)| (c, u64::from(base.wrapping_add(off as u32)), s))
            .collect();
        let (inputs, _issuers) = build(&ctxs, &spec);
        let kept = check_merge(&inputs)?;
        for ctx in &ctxs {
            let here = kept.iter().filter(|k| k.context() == ctx.id()).count();
            let pending = inputs
                .iter()
                .any(|f| f.context() == ctx.id() && !f.is_signaled());
            prop_assert_eq!(here, usize::from(pending), "context {}", ctx.id());
        }
    }
}

/// The reviewer's reproduction: 21 random wrapping seqnos and one other context, 280 times.
/// The sort comparator used to say "greater" both ways for unordered pairs, and the sort
/// panicked ("does not correctly implement a total order") in about one trial in ten.
#[test]
fn merge_of_unordered_wrapping_seqnos_does_not_panic() {
    let ctx = FenceContext::new("repro", "wrap").with_wrapping_seqno();
    let (_other_issuer, other) = FenceContext::new("repro", "other").next_fence();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..280 {
        let mut issuers = Vec::new();
        let mut inputs = vec![other.clone()];
        for _ in 0..21 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (issuer, fence) = ctx.fence(x & 0xffff_ffff);
            issuers.push(issuer);
            inputs.push(fence);
        }
        check_merge(&inputs).unwrap();
    }
}

/// Two points exactly half the circle apart: neither is later, so neither may stand for the
/// other (the kernel's dedup keeps whichever sorts first).
#[test]
fn points_half_the_circle_apart_are_both_kept() {
    let ctx = FenceContext::new("half", "wrap").with_wrapping_seqno();
    let (_a, a) = ctx.fence(7);
    let (_b, b) = ctx.fence(7 + (1 << 31));
    assert!(!a.is_later(&b).unwrap() && !b.is_later(&a).unwrap());
    let kept: Vec<Fence> = leaves(&merge(&[a.clone(), b.clone()])).collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().any(|k| k.ptr_eq(&a)) && kept.iter().any(|k| k.ptr_eq(&b)));
    // One step less than half the circle apart: ordered, the later one alone is kept.
    let (_c, c) = ctx.fence(6 + (1 << 31));
    assert!(c.is_later(&a).unwrap());
    assert!(merge(&[a.clone(), c.clone()]).ptr_eq(&c));
}
