//! Port of the kernel's unwrap/merge selftests (`drivers/dma-buf/st-dma-fence-unwrap.c`), one
//! `#[test]` per upstream case, followed by tests
//! for the merge rules the upstream suite does not cover (signalled leaves, the single-fence
//! and empty fast paths, output order).
//!
//! As upstream, each mock fence is on its own fresh context at seqno 1 unless a test says
//! otherwise; arrays get a fresh context at seqno 1 and chain nodes seqno 1.

use dmabuf::fence::unwrap::{leaves, merge};
use dmabuf::fence::{Fence, FenceContext, FenceOps, Signaller, alloc_contexts};
use dmabuf::{Errno, FenceStatus, MonotonicTime};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::Duration;

/// The issuers of a test's mock fences; whatever is still pending is signalled when the test
/// ends (upstream just drops them; here an unsignalled issuer would cancel its fence).
#[derive(Default)]
struct Mocks(Vec<Signaller>);

impl Mocks {
    /// Upstream `__mock_fence(context, seqno)`.
    fn fence_on(&mut self, ctx: &FenceContext, seqno: u64) -> Fence {
        let (issuer, fence) = ctx.fence(seqno);
        fence.enable_sw_signaling();
        self.0.push(issuer);
        fence
    }

    /// Upstream `mock_fence()`: a fresh context, seqno 1.
    fn fence(&mut self) -> Fence {
        self.fence_on(&FenceContext::new("mock", "mock"), 1)
    }

    /// Signals the mock fence `fence` now, optionally at a given timestamp / with an error.
    fn signal(&mut self, fence: &Fence, timestamp: Option<MonotonicTime>, error: Option<Errno>) {
        let pos = self
            .0
            .iter()
            .position(|s| s.fence().ptr_eq(fence))
            .expect("not a pending mock fence");
        let mut issuer = self.0.swap_remove(pos);
        if let Some(e) = error {
            issuer.set_error(e);
        }
        match timestamp {
            Some(ts) => issuer.signal_timestamp(ts),
            None => issuer.signal(),
        };
    }
}

impl Drop for Mocks {
    fn drop(&mut self) {
        for issuer in self.0.drain(..) {
            issuer.signal();
        }
    }
}

/// Upstream `mock_array()`: a signal-all array on a fresh context at seqno 1.
fn mock_array(members: &[&Fence]) -> Fence {
    let members = members.iter().map(|&f| f.clone()).collect();
    Fence::new_array(members, alloc_contexts(NonZeroU64::MIN), 1).expect("leaf members")
}

/// Upstream `mock_chain()`: a chain node at seqno 1.
fn mock_chain(prev: Option<&Fence>, fence: &Fence) -> Fence {
    Fence::new_chain(prev.cloned(), fence.clone(), 1).expect("leaf contained fence")
}

/// The leaves `dma_fence_unwrap_for_each` visits, in order.
fn unwrapped(fence: &Fence) -> Vec<Fence> {
    leaves(fence).collect()
}

/// Asserts `fence` unwraps to exactly `expected`, each once, in any order.
fn assert_leaves_unordered(fence: &Fence, expected: &[&Fence]) {
    let got = unwrapped(fence);
    assert_eq!(
        got.len(),
        expected.len(),
        "unwrapped {got:?}, expected {expected:?}"
    );
    for e in expected {
        let n = got.iter().filter(|g| g.ptr_eq(e)).count();
        assert_eq!(n, 1, "{e:?} seen {n} times in {got:?}");
    }
}

/// Asserts `fence` unwraps to exactly `expected`, in this order.
fn assert_leaves_ordered(fence: &Fence, expected: &[&Fence]) {
    let got = unwrapped(fence);
    assert_eq!(
        got.len(),
        expected.len(),
        "unwrapped {got:?}, expected {expected:?}"
    );
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(g.ptr_eq(e), "leaf {i}: got {g:?}, expected {e:?}");
    }
}

// ports st-dma-fence-unwrap: sanitycheck
#[test]
fn sanitycheck() {
    let mut mocks = Mocks::default();
    let f = mocks.fence();
    let array = mock_array(&[&f]);
    let chain = mock_chain(None, &array);
    assert!(chain.contained().ptr_eq(&array));
    assert!(!chain.is_signaled());
    drop(array);
    drop(chain);
}

// ports st-dma-fence-unwrap: unwrap_array
#[test]
fn unwrap_array() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let array = mock_array(&[&f1, &f2]);
    assert_leaves_unordered(&array, &[&f1, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_chain
#[test]
fn unwrap_chain() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    // The predecessor is a plain fence, not a chain node.
    let chain = mock_chain(Some(&f1), &f2);
    assert_leaves_unordered(&chain, &[&f1, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_chain_array
#[test]
fn unwrap_chain_array() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let array = mock_array(&[&f1, &f2]);
    let chain = mock_chain(None, &array);
    assert_leaves_unordered(&chain, &[&f1, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_merge
#[test]
fn unwrap_merge() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let f3 = merge(&[f1.clone(), f2.clone()]);
    assert_leaves_unordered(&f3, &[&f1, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_merge_duplicate
#[test]
fn unwrap_merge_duplicate() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = merge(&[f1.clone(), f1.clone()]);
    assert_leaves_unordered(&f2, &[&f1]);
    // One fence left after deduplication: the merge is that fence, not an array of one.
    assert!(f2.ptr_eq(&f1));
}

// ports st-dma-fence-unwrap: unwrap_merge_seqno
#[test]
fn unwrap_merge_seqno() {
    let mut mocks = Mocks::default();
    let ctx0 = FenceContext::new("mock", "mock");
    let ctx1 = FenceContext::new("mock", "mock");
    assert!(ctx0.id() < ctx1.id());
    let f1 = mocks.fence_on(&ctx1, 1);
    let f2 = mocks.fence_on(&ctx1, 2);
    let f3 = mocks.fence_on(&ctx0, 1);
    let f4 = merge(&[f1.clone(), f2.clone(), f3.clone()]);
    // f1 is superseded by f2 on the same context; output is ordered by context.
    assert_leaves_ordered(&f4, &[&f3, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_merge_order
#[test]
fn unwrap_merge_order() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let a1 = mock_array(&[&f1, &f2]);
    let c1 = mock_chain(None, &f1);
    let c2 = mock_chain(Some(&c1), &f2);
    drop(c1);
    // The chain holds the same fences as a1 in the opposite order; the merge must cope.
    let a2 = merge(&[a1, c2]);
    assert_leaves_ordered(&a2, &[&f1, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_merge_complex
#[test]
fn unwrap_merge_complex() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let f3 = merge(&[f1.clone(), f2.clone()]);
    // This array holds the fences in reverse.
    let f4 = mock_array(&[&f2, &f1]);
    // The signalled stub is filtered out and the two arrays merged.
    let f5 = merge(&[f3, f4, Fence::stub()]);
    assert_leaves_unordered(&f5, &[&f1, &f2]);
}

// ports st-dma-fence-unwrap: unwrap_merge_complex_seqno
#[test]
fn unwrap_merge_complex_seqno() {
    let mut mocks = Mocks::default();
    let ctx0 = FenceContext::new("mock", "mock");
    let ctx1 = FenceContext::new("mock", "mock");
    let f1 = mocks.fence_on(&ctx0, 2);
    let f2 = mocks.fence_on(&ctx1, 1);
    let f3 = mocks.fence_on(&ctx0, 1);
    let f4 = mocks.fence_on(&ctx1, 2);
    let f5 = mock_array(&[&f1, &f2]);
    let f6 = mock_array(&[&f3, &f4]);
    let f7 = merge(&[f5, f6]);
    // The later fence of each context, in context order.
    assert_leaves_ordered(&f7, &[&f1, &f4]);
}

#[test]
fn merge_drops_signaled_leaves() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let f3 = mocks.fence();
    mocks.signal(&f2, None, None);

    let m = merge(&[f1.clone(), f2.clone(), f3.clone()]);
    assert_leaves_ordered(&m, &[&f1, &f3]);
    // Also when the signalled fence is inside containers.
    let m = merge(&[mock_array(&[&f1, &f2]), mock_chain(None, &f3)]);
    assert_leaves_ordered(&m, &[&f1, &f3]);
    // And a pending leaf next to signalled ones is returned as is.
    let m = merge(&[mock_array(&[&f2, &f1]), Fence::stub()]);
    assert!(m.ptr_eq(&f1));
}

#[test]
fn merge_all_signaled_returns_latest_timestamp() {
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let f3 = mocks.fence();
    // The stub is one of the inputs below and counts too: stamp the mocks after it.
    let stub = Fence::stub();
    let base = stub.timestamp().expect("the stub is signalled");
    let at = |ms| base + Duration::from_millis(ms);
    mocks.signal(&f1, Some(at(2)), None);
    mocks.signal(&f2, Some(at(3)), None);
    mocks.signal(&f3, Some(at(1)), None);

    for m in [
        merge(&[f1.clone(), f2.clone(), f3.clone()]),
        merge(&[mock_array(&[&f3, &f2]), f1.clone(), stub.clone()]),
        merge(&[mock_chain(Some(&f3), &f2), f1.clone()]),
    ] {
        assert!(m.is_signaled());
        assert_eq!(m.status(), FenceStatus::Signaled);
        assert_eq!(m.timestamp(), Some(at(3)));
        assert!(!m.is_container(), "nothing pending: no array");
    }
    // As in the kernel, unwrapping a chain skips (and unlinks) signalled predecessors, so
    // their timestamps are not seen: only the contained f3 counts here, not f2 before it.
    let m = merge(&[mock_chain(Some(&f2), &f3)]);
    assert_eq!(m.timestamp(), Some(at(1)));
}

#[test]
fn merge_all_signaled_does_not_take_a_leaf_error() {
    // Like the kernel's private stub, the merge of settled fences reports plain success even
    // when the latest leaf failed (dropped leaves never contribute their errors).
    let mut mocks = Mocks::default();
    let f1 = mocks.fence();
    let f2 = mocks.fence();
    let base = Fence::stub().timestamp().expect("the stub is signalled");
    mocks.signal(&f1, Some(base + Duration::from_millis(1)), None);
    mocks.signal(
        &f2,
        Some(base + Duration::from_millis(5)),
        Some(Errno::EINVAL),
    );
    assert_eq!(f2.status(), FenceStatus::Failed(Errno::EINVAL));

    let m = merge(&[f1, f2]);
    assert_eq!(m.status(), FenceStatus::Signaled);
    assert_eq!(m.timestamp(), Some(base + Duration::from_millis(5)));
}

#[test]
fn merge_of_one_pending_fence_is_that_fence() {
    let mut mocks = Mocks::default();
    let f = mocks.fence();
    let done = mocks.fence();
    mocks.signal(&done, None, None);

    assert!(merge(std::slice::from_ref(&f)).ptr_eq(&f));
    assert!(merge(&[f.clone(), Fence::stub()]).ptr_eq(&f));
    assert!(merge(&[done.clone(), f.clone()]).ptr_eq(&f));
    assert!(merge(&[mock_array(&[&done, &f])]).ptr_eq(&f));
    assert!(merge(&[mock_chain(None, &f)]).ptr_eq(&f));
}

#[test]
fn merge_of_nothing_is_the_stub() {
    let m = merge(&[]);
    assert!(m.ptr_eq(&Fence::stub()));
    assert!(m.is_signaled());
    assert_eq!(m.context(), 0);
}

#[test]
fn merge_output_ordered_by_context() {
    let mut mocks = Mocks::default();
    let ctxs: Vec<FenceContext> = (0..5).map(|_| FenceContext::new("mock", "mock")).collect();
    assert!(ctxs.windows(2).all(|w| w[0].id() < w[1].id()));
    // Two points on each context, handed over in a scrambled order and partly inside
    // containers.
    let early: Vec<Fence> = ctxs.iter().map(|c| mocks.fence_on(c, 1)).collect();
    let late: Vec<Fence> = ctxs.iter().map(|c| mocks.fence_on(c, 2)).collect();
    let m = merge(&[
        late[3].clone(),
        mock_array(&[&early[4], &early[0], &late[1]]),
        early[3].clone(),
        mock_chain(Some(&late[0]), &early[2]),
        late[4].clone(),
        mock_array(&[&late[2], &early[1]]),
    ]);

    let expected: Vec<&Fence> = late.iter().collect();
    assert_leaves_ordered(&m, &expected);
    // The result is one flat array.
    let members = m
        .array_members()
        .expect("several pending contexts: an array");
    assert!(members.iter().all(|f| !f.is_container()));
    assert!(m.context() > ctxs[4].id(), "the array has a fresh context");
    assert_eq!(m.seqno(), 1);
}

/// Issuer hooks whose completion state reads "pending" at the first poll and "complete"
/// from the second on: hardware that finishes while a merge is looking at it.
struct CompletesAfterFirstPoll(AtomicU32);

impl FenceOps for CompletesAfterFirstPoll {
    fn signaled(&self, _fence: &Fence) -> FenceStatus {
        if self.0.fetch_add(1, AtomicOrdering::SeqCst) == 0 {
            FenceStatus::Pending
        } else {
            FenceStatus::Signaled
        }
    }
}

#[test]

fn merge_keeps_latest_timestamp_of_leaves_signalled_during_merge() {
    // Both leaves are pending when the merge first counts them and have signalled when it
    // collects them. The kernel keeps the latest timestamp of both passes, so the result
    // (a private stub) never predates its inputs' completion.
    // Make sure the shared stub exists (signalled) before the leaves complete.
    let _stub = Fence::stub();
    let ctx_a = FenceContext::new("mock", "a");
    let ctx_b = FenceContext::new("mock", "b");
    let ops = || Some(Arc::new(CompletesAfterFirstPoll(AtomicU32::new(0))) as Arc<dyn FenceOps>);
    let (_ia, a) = ctx_a.fence_with_ops(1, ops());
    let (_ib, b) = ctx_b.fence_with_ops(1, ops());

    let m = merge(&[a.clone(), b.clone()]);
    assert!(a.is_signaled_flag() && b.is_signaled_flag());
    assert!(m.is_signaled());
    let latest = a.timestamp().max(b.timestamp());
    // What happens instead: nothing is pending in the second pass and no signalled leaf was
    // seen in the first, so the merge returns the shared stub with its older timestamp.
    assert_eq!(m.timestamp(), latest, "merge result predates its inputs");
}
