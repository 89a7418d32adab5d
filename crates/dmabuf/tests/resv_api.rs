//! The reservation object beyond st-dma-resv: usage queries, the kernel's replace rules,
//! reservations, containers, singleton/copy/wait/deadline/describe, and lock-free readers
//! running beside a writer.

use dmabuf::fence::{Fence, FenceContext, FenceOps, FenceStatus, alloc_contexts};
use dmabuf::resv::{Access, Resv, Usage};
use dmabuf::{Errno, Error, MonotonicTime, Signaller, SyncFile, WaitError};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest a test waits for something that should happen at once.
const WATCHDOG: Duration = Duration::from_secs(10);

fn add(resv: &Resv, fence: &Fence, usage: Usage) {
    let mut g = resv.lock_single();
    g.reserve_fences(1).unwrap();
    g.add_fence(fence, usage);
}

#[test]
fn a_query_sees_every_usage_up_to_the_one_asked() {
    let resv = Resv::new();
    let mut issuers = Vec::new();
    for usage in Usage::ALL {
        let (s, f) = FenceContext::new("t", usage.name()).next_fence();
        add(&resv, &f, usage);
        issuers.push(s);
    }
    for (i, usage) in Usage::ALL.into_iter().enumerate() {
        assert_eq!(resv.get_fences(usage).len(), i + 1, "query {usage}");
    }
    assert_eq!(Usage::rw(true), Usage::Read);
    assert_eq!(Usage::rw(false), Usage::Write);
}

#[test]
fn a_later_fence_of_the_same_context_replaces_in_place() {
    let resv = Resv::new();
    let ctx = FenceContext::new("t", "replace");
    let (_s1, f1) = ctx.next_fence();
    let (_s2, f2) = ctx.next_fence();
    add(&resv, &f1, Usage::Write);
    add(&resv, &f2, Usage::Write);
    let g = resv.lock_single();
    assert_eq!(g.num_fences(), 1);
    let all: Vec<_> = g.iter(Usage::Bookkeep).collect();
    assert!(all[0].0.ptr_eq(&f2));
}

#[test]
fn a_distinct_fence_at_the_same_seqno_does_not_replace() {
    // Kernel: dma_resv_add_fence() replaces only when dma_fence_is_later_or_same(), which is
    // the same fence or a later one; two fences at seqno 7 are both kept.
    let resv = Resv::new();
    let ctx = FenceContext::new("t", "same-seqno");
    let (s1, f1) = ctx.fence(7);
    let (s2, f2) = ctx.fence(7);
    add(&resv, &f1, Usage::Write);
    add(&resv, &f2, Usage::Write);
    assert_eq!(resv.lock_single().num_fences(), 2);
    s2.signal();
    assert!(
        !resv.test_signaled(Usage::Write),
        "idle while the first fence at seqno 7 is pending"
    );
    s1.signal();
    assert!(resv.test_signaled(Usage::Write));
    // Re-adding the same fence still replaces its entry.
    let (_s3, f3) = ctx.fence(8);
    add(&resv, &f3, Usage::Read);
    add(&resv, &f3, Usage::Write);
    let g = resv.lock_single();
    let pending: Vec<_> = g
        .iter(Usage::Bookkeep)
        .filter(|(f, _)| !f.is_signaled())
        .collect();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].0.ptr_eq(&f3) && pending[0].1 == Usage::Write);
}

#[test]
fn promotion_replaces_but_a_fence_is_never_degraded() {
    let resv = Resv::new();
    let ctx = FenceContext::new("t", "promote");
    let (_s1, f1) = ctx.next_fence();
    let (_s2, f2) = ctx.next_fence();
    let (_s3, f3) = ctx.next_fence();
    // BOOKKEEP -> READ: promoted in place.
    add(&resv, &f1, Usage::Bookkeep);
    add(&resv, &f2, Usage::Read);
    {
        let g = resv.lock_single();
        let all: Vec<_> = g.iter(Usage::Bookkeep).collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].0.ptr_eq(&f2) && all[0].1 == Usage::Read);
    }
    // READ -> BOOKKEEP would degrade: appended beside it instead.
    add(&resv, &f3, Usage::Bookkeep);
    let g = resv.lock_single();
    let all: Vec<_> = g.iter(Usage::Bookkeep).collect();
    assert_eq!(all.len(), 2);
    assert!(all[0].0.ptr_eq(&f2) && all[0].1 == Usage::Read);
    assert!(all[1].0.ptr_eq(&f3) && all[1].1 == Usage::Bookkeep);
}

#[test]
fn an_earlier_fence_of_the_same_context_does_not_replace() {
    let resv = Resv::new();
    let ctx = FenceContext::new("t", "earlier");
    let (_s1, f1) = ctx.next_fence();
    let (_s2, f2) = ctx.next_fence();
    add(&resv, &f2, Usage::Write);
    add(&resv, &f1, Usage::Write);
    assert_eq!(resv.lock_single().num_fences(), 2);
}

#[test]
fn a_signalled_entry_is_reused() {
    let resv = Resv::new();
    let (s1, f1) = FenceContext::new("t", "a").next_fence();
    let (_s2, f2) = FenceContext::new("t", "b").next_fence();
    add(&resv, &f1, Usage::Kernel);
    s1.signal();
    add(&resv, &f2, Usage::Bookkeep);
    let g = resv.lock_single();
    assert_eq!(g.num_fences(), 1);
    let all: Vec<_> = g.iter(Usage::Bookkeep).collect();
    assert!(all[0].0.ptr_eq(&f2) && all[0].1 == Usage::Bookkeep);
}

#[test]
fn locked_iteration_includes_signalled_fences_unlocked_skips_them() {
    let resv = Resv::new();
    let ctx = FenceContext::new("t", "skip");
    let (s1, f1) = ctx.next_fence();
    let (_s2, f2) = FenceContext::new("t", "other").next_fence();
    {
        let mut g = resv.lock_single();
        g.reserve_fences(2).unwrap();
        g.add_fence(&f1, Usage::Read);
        g.add_fence(&f2, Usage::Read);
        s1.signal();
        assert_eq!(g.iter(Usage::Read).count(), 2);
    }
    let unlocked = resv.get_fences(Usage::Read);
    assert_eq!(unlocked.len(), 1);
    assert!(unlocked[0].ptr_eq(&f2));
}

#[test]
fn reserve_zero_is_einval_and_growth_follows_the_kernel() {
    let resv = Resv::new();
    let mut g = resv.lock_single();
    let e = g.reserve_fences(0).unwrap_err();
    assert!(matches!(e, Error::NothingToReserve));
    assert_eq!(e.errno(), Errno::EINVAL);
    g.reserve_fences(3).unwrap();
    assert_eq!(g.reserved(), 3);
    let mut issuers = Vec::new();
    for i in 0..3 {
        let (s, f) = FenceContext::new("t", format!("grow{i}")).next_fence();
        g.add_fence(&f, Usage::Read);
        issuers.push(s);
    }
    assert_eq!(g.reserved(), 0);
    assert_eq!(g.num_fences(), 3);
    // The next reservation under a new lock: one under the guard that published pending
    // fences is a reclaim point inside the signalling obligation (reported).
    drop(g);
    let mut g = resv.lock_single();
    // Room for len + n = 11 (over twice the capacity of 4); signalled fences are left
    // behind when the table is rebuilt.
    issuers.pop().unwrap().signal();
    g.reserve_fences(8).unwrap();
    assert_eq!(g.num_fences(), 2);
    assert!(format!("{:?}", resv).contains("capacity: 11"), "{resv:?}");
}

#[test]
fn a_reservation_too_large_to_make_is_enomem() {
    // Kernel: dma_resv_reserve_fences() answers -ENOMEM when the list cannot be allocated.
    // Sizes past the address space used to overflow (a panic in debug builds, a wrapped
    // "Ok" with a bogus reservation in release builds).
    let resv = Resv::new();
    let mut g = resv.lock_single();
    for n in [usize::MAX, usize::MAX / 2 + 2, 1 << (usize::BITS - 2)] {
        let e = g.reserve_fences(n).unwrap_err();
        assert!(matches!(e, Error::NoMemory), "reserve_fences({n}): {e:?}");
        assert_eq!(e.errno(), Errno::ENOMEM);
        assert_eq!(g.reserved(), 0, "a failed reservation reserved");
    }
    // With entries: the length plus the request overflows. (A signalled entry: adding a
    // pending one starts the thread's signalling obligation, and a reservation inside it is
    // reported.)
    g.reserve_fences(1).unwrap();
    let (s, f) = FenceContext::new("t", "enomem").next_fence();
    s.signal();
    g.add_fence(&f, Usage::Read);
    assert!(matches!(g.reserve_fences(usize::MAX), Err(Error::NoMemory)));
    // Nothing was lost, and an ordinary reservation still works.
    assert_eq!(g.num_fences(), 1);
    g.reserve_fences(2).unwrap();
    assert_eq!(g.reserved(), 2);
    assert!(g.iter(Usage::Read).any(|(e, _)| e.ptr_eq(&f)));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "reservations do not survive an unlock")]
fn a_reservation_does_not_survive_an_unlock() {
    let resv = Resv::new();
    let (_s, f) = FenceContext::new("t", "bug").next_fence();
    {
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
    }
    let mut g = resv.lock_single();
    g.add_fence(&f, Usage::Write); // kernel: BUG_ON in a debug build
}

#[test]
fn containers_are_added_leaf_by_leaf() {
    let resv = Resv::new();
    let (_a, fa) = FenceContext::new("t", "leaf-a").next_fence();
    let (_b, fb) = FenceContext::new("t", "leaf-b").next_fence();
    let merged = dmabuf::fence::unwrap::merge(&[fa.clone(), fb.clone()]);
    assert!(merged.is_array());
    let mut g = resv.lock_single();
    g.reserve_fences(2).unwrap();
    g.add_fence(&merged, Usage::Write);
    let stored: Vec<_> = g.iter(Usage::Write).map(|(f, _)| f).collect();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|f| !f.is_container()));
}

#[test]
fn replace_fences_swaps_every_fence_of_a_context() {
    let resv = Resv::new();
    let preempt = FenceContext::new("t", "preempt");
    let (_p, pf) = preempt.next_fence();
    let (_o, other) = FenceContext::new("t", "other").next_fence();
    let (_r, repl) = FenceContext::new("t", "pt-update").next_fence();
    {
        let mut g = resv.lock_single();
        g.reserve_fences(2).unwrap();
        g.add_fence(&pf, Usage::Bookkeep);
        g.add_fence(&other, Usage::Read);
        g.replace_fences(preempt.id(), &repl, Usage::Bookkeep);
        let all: Vec<_> = g.iter(Usage::Bookkeep).collect();
        assert!(all[0].0.ptr_eq(&repl) && all[0].1 == Usage::Bookkeep);
        assert!(all[1].0.ptr_eq(&other));
    }
}

#[test]
fn a_container_stored_by_replace_fences_is_still_waited_for() {
    // dma_resv_replace_fences takes any fence, so an array can end up as an entry beside a
    // leaf. get_singleton (and so the exported sync file) must wait for the array's members:
    // an array of an array would be refused, and a singleton that silently fell back to
    // "nothing to wait for" would stop implicit sync while the buffer is busy.
    let resv = Resv::new();
    let preempt = FenceContext::new("t", "rc-preempt");
    let (_p, pf) = preempt.next_fence();
    let (so, other) = FenceContext::new("t", "rc-other").next_fence();
    let (sb, fb) = FenceContext::new("t", "rc-b").next_fence();
    let (sc, fc) = FenceContext::new("t", "rc-c").next_fence();
    let array = Fence::new_array(vec![fb, fc], alloc_contexts(NonZeroU64::MIN), 1).unwrap();
    {
        let mut g = resv.lock_single();
        g.reserve_fences(2).unwrap();
        g.add_fence(&pf, Usage::Write);
        g.add_fence(&other, Usage::Write);
        g.replace_fences(preempt.id(), &array, Usage::Write);
        assert!(g.iter(Usage::Write).any(|(f, _)| f.ptr_eq(&array)));
    }
    assert!(!resv.test_signaled(Usage::Write));
    let single = resv
        .get_singleton(Usage::Write)
        .expect("a busy buffer has a singleton");
    assert!(!single.is_signaled());
    let file = SyncFile::export(&resv, Access::Read);
    assert!(!file.is_signaled(), "export lost the busy buffer's fences");
    assert_eq!(
        file.wait_timeout(Duration::from_millis(1)),
        Err(WaitError::TimedOut)
    );
    so.signal();
    sb.signal();
    assert!(!single.is_signaled() && !file.is_signaled());
    sc.signal();
    assert_eq!(single.wait_timeout(WATCHDOG), Ok(()));
    assert_eq!(file.wait_timeout(WATCHDOG), Ok(()));
}

#[test]
fn get_singleton_none_one_or_an_array_of_all() {
    let resv = Resv::new();
    assert!(resv.get_singleton(Usage::Bookkeep).is_none());
    let (sa, fa) = FenceContext::new("t", "s-a").next_fence();
    add(&resv, &fa, Usage::Write);
    assert!(resv.get_singleton(Usage::Write).unwrap().ptr_eq(&fa));
    let (sb, fb) = FenceContext::new("t", "s-b").next_fence();
    add(&resv, &fb, Usage::Read);
    assert!(resv.get_singleton(Usage::Write).unwrap().ptr_eq(&fa));
    let all = resv.get_singleton(Usage::Read).unwrap();
    assert!(all.is_array());
    assert_eq!(all.seqno(), 1);
    sa.signal();
    assert!(!all.is_signaled());
    sb.signal();
    assert!(all.is_signaled());
}

#[test]
fn copy_fences_takes_the_unsignalled_fences_with_their_usages() {
    let src = Resv::new();
    let dst = Resv::new();
    let (s1, f1) = FenceContext::new("t", "c1").next_fence();
    let (_s2, f2) = FenceContext::new("t", "c2").next_fence();
    let (_s3, f3) = FenceContext::new("t", "c3").next_fence();
    add(&src, &f1, Usage::Kernel);
    add(&src, &f2, Usage::Bookkeep);
    add(&dst, &f3, Usage::Write);
    s1.signal();
    let mut g = dst.lock_single();
    g.copy_fences(&src);
    let all: Vec<_> = g.iter(Usage::Bookkeep).collect();
    assert_eq!(all.len(), 1);
    assert!(all[0].0.ptr_eq(&f2) && all[0].1 == Usage::Bookkeep);
}

#[test]
fn wait_timeout_polls_times_out_and_waits() {
    let resv = Resv::new();
    let (s, f) = FenceContext::new("t", "wait").next_fence();
    add(&resv, &f, Usage::Write);
    assert!(matches!(
        resv.wait_timeout(Usage::Write, Duration::ZERO),
        Err(WaitError::TimedOut)
    ));
    assert!(matches!(
        resv.wait_timeout(Usage::Write, Duration::from_millis(5)),
        Err(WaitError::TimedOut)
    ));
    // A kernel-usage query does not wait for a writer.
    resv.wait_timeout(Usage::Kernel, Duration::ZERO).unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        s.signal()
    });
    resv.wait_timeout(Usage::Read, Duration::from_secs(10))
        .unwrap();
    assert!(resv.test_signaled(Usage::Bookkeep));
    t.join().unwrap();
    resv.wait_for_signal(Usage::Bookkeep);
}

/// An issuer that arms lazily and whose work is always done when asked.
struct DoneWhenAsked(AtomicUsize);
impl FenceOps for DoneWhenAsked {
    fn enable_signaling(&self, _: &Fence) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        false
    }
}

#[test]
fn a_zero_timeout_wait_enables_each_fence_and_looks_again() {
    // Kernel: dma_resv_wait_timeout(.., 0) calls dma_fence_wait_timeout(fence, intr, 0) on
    // each unsignalled fence, which enables signalling first; dma_resv_test_signaled() only
    // looks.
    let ops = Arc::new(DoneWhenAsked(AtomicUsize::new(0)));
    let resv = Resv::new();
    let a = FenceContext::new("t", "zero-a");
    let b = FenceContext::new("t", "zero-b");
    let (_sa, fa) = a.next_fence_with_ops(ops.clone());
    let (_sb, fb) = b.next_fence_with_ops(ops.clone());
    add(&resv, &fa, Usage::Write);
    add(&resv, &fb, Usage::Read);
    assert!(!resv.test_signaled(Usage::Read));
    assert_eq!(ops.0.load(Ordering::SeqCst), 0, "test_signaled enabled");
    assert_eq!(resv.wait_timeout(Usage::Read, Duration::ZERO), Ok(()));
    assert_eq!(ops.0.load(Ordering::SeqCst), 2);
    assert!(fa.is_signaled_flag() && fb.is_signaled_flag());
    assert!(resv.test_signaled(Usage::Bookkeep));

    // A sync file's zero-timeout wait is its fence's.
    let (_sc, fc) = a.next_fence_with_ops(ops.clone());
    assert_eq!(SyncFile::new(fc).wait_timeout(Duration::ZERO), Ok(()));
    assert_eq!(ops.0.load(Ordering::SeqCst), 3);
}

struct DeadlineOps(Mutex<Option<MonotonicTime>>);
impl FenceOps for DeadlineOps {
    fn signaled(&self, _: &Fence) -> FenceStatus {
        FenceStatus::Pending
    }
    fn set_deadline(&self, _: &Fence, deadline: MonotonicTime) {
        *self.0.lock().unwrap() = Some(deadline);
    }
}

#[test]
fn set_deadline_reaches_the_fences_of_the_usages_asked() {
    let resv = Resv::new();
    let write_ops = Arc::new(DeadlineOps(Mutex::new(None)));
    let book_ops = Arc::new(DeadlineOps(Mutex::new(None)));
    let (_w, wf) = FenceContext::new("t", "dl-w").next_fence_with_ops(write_ops.clone());
    let (_b, bf) = FenceContext::new("t", "dl-b").next_fence_with_ops(book_ops.clone());
    add(&resv, &wf, Usage::Write);
    add(&resv, &bf, Usage::Bookkeep);
    let when = MonotonicTime::from_nanos(123_456);
    resv.set_deadline(Usage::Read, when);
    assert_eq!(*write_ops.0.lock().unwrap(), Some(when));
    assert_eq!(*book_ops.0.lock().unwrap(), None);
}

#[test]
fn describe_lists_up_to_read_and_hides_bookkeeping() {
    let resv = Resv::new();
    let (_w, wf) = FenceContext::new("drv", "tl-w").next_fence();
    let (_b, bf) = FenceContext::new("drv", "tl-b").next_fence();
    add(&resv, &wf, Usage::Write);
    add(&resv, &bf, Usage::Bookkeep);
    let text = resv.lock_single().describe();
    assert_eq!(text, format!("\twrite fence:{wf}\n"));
}

#[test]
fn lock_all_locks_distinct_objects_once() {
    let objs: Vec<Resv> = (0..4).map(|_| Resv::new()).collect();
    let ctx = Resv::acquire_ctx();
    let guards = Resv::lock_all(&ctx, &[&objs[2], &objs[0], &objs[2], &objs[3]]).unwrap();
    assert_eq!(guards.len(), 3);
    // In lock order; each guard's source is its object's first place in the list.
    for (i, g) in guards.iter_sources() {
        assert!(std::ptr::eq(
            g.resv(),
            [&objs[2], &objs[0], &objs[2], &objs[3]][i]
        ));
        assert_ne!(i, 2, "a repeat is not a source");
    }
    assert!(objs[0].is_locked_by(&ctx) && !objs[1].is_locked());
    ctx.done();
    drop(guards);
    assert!(objs.iter().all(|r| !r.is_locked()));
}

/// Readers that never take the lock run beside a writer that appends, replaces in place,
/// grows the table and signals: every snapshot holds only fences that were added with a
/// usage the query covers, and readers keep making progress.
#[test]
fn unlocked_readers_beside_a_writer() {
    let resv = Arc::new(Resv::new());
    let stop = Arc::new(AtomicBool::new(false));
    let known: Arc<Mutex<Vec<(u64, Usage)>>> = Arc::default();
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (resv, stop, known, reads) =
                (resv.clone(), stop.clone(), known.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut restarts = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut it = resv.iter_unlocked(Usage::Read);
                    let mut snapshot = Vec::new();
                    while let Some(f) = it.next() {
                        if it.is_restarted() {
                            snapshot.clear();
                        }
                        assert!(it.usage() <= Usage::Read);
                        snapshot.push((f.context(), it.usage()));
                    }
                    restarts += it.restarts();
                    let known = known.lock().unwrap();
                    for entry in &snapshot {
                        assert!(known.contains(entry), "never added: {entry:?}");
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                restarts
            })
        })
        .collect();
    let ctxs: Vec<FenceContext> = (0..16)
        .map(|i| FenceContext::new("t", format!("writer{i}")))
        .collect();
    let mut pending: Vec<Signaller> = Vec::new();
    let start = std::time::Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_millis(1500) {
        let ctx = &ctxs[(rounds % 16) as usize];
        let usage = Usage::ALL[(rounds % 4) as usize];
        let (s, f) = ctx.next_fence();
        known.lock().unwrap().push((ctx.id(), usage));
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(&f, usage);
        drop(g);
        pending.push(s);
        if pending.len() > 8 {
            pending.remove(0).signal();
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let restarts: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    println!(
        "writer rounds {rounds}, reader walks {}, restarts {restarts}",
        reads.load(Ordering::Relaxed)
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    for s in pending {
        s.signal();
    }
    assert!(resv.test_signaled(Usage::Bookkeep));
}
