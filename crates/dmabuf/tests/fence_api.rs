//! Tests of the fence API behaviours the project requires beyond the kernel's own selftests
//! (`st_dma_fence.rs` ports those):
//! context allocation and seqnos, ordering in 64- and 32-bit mode, issuer leaks, timestamps,
//! `Display`, the issuer hooks ([`FenceOps`]: lazy once-only enabling, polling, deadlines,
//! detach on signal), callback threading/order/removal, `wait_any`, the async future, fence
//! arrays, many waiters, and the errno of every [`Error`].
//!
//! Tests that could hang on a library bug (deadlocks, lost wake-ups) run the risky part on a
//! helper thread and fail after [`WATCHDOG`] instead of hanging the suite.

use dmabuf::fence::{
    CallbackHandle, Fence, FenceContext, FenceOps, FenceStatus, alloc_contexts, set_leak_hook,
    try_alloc_contexts, wait_any, wait_any_deadline,
};
use dmabuf::{Errno, Error, FenceFailed, MonotonicTime, WaitError};
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use dmabuf_testkit as support;

/// How long a test waits for something that should happen at once before declaring a hang.
const WATCHDOG: Duration = Duration::from_secs(4);

/// [`support::within_watchdog`] with this file's limit.
fn within_watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    support::within_watchdog(what, WATCHDOG, f)
}

// ---------------------------------------------------------------------------------------------
// Contexts and seqnos
// ---------------------------------------------------------------------------------------------

#[test]
fn alloc_contexts_returns_n_consecutive_unique_ids() {
    // Several threads allocate blocks at once; the blocks must not overlap and never hold 0.
    let blocks: Vec<(u64, u64)> = thread::scope(|s| {
        let handles: Vec<_> = (1..=8u64)
            .map(|n| {
                s.spawn(move || {
                    let first = alloc_contexts(NonZeroU64::new(n).unwrap());
                    (first, n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids: Vec<u64> = blocks
        .iter()
        .flat_map(|&(first, n)| first..first + n)
        .collect();
    let total = ids.len();
    assert_eq!(total, (1..=8).sum::<u64>() as usize);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "context id blocks overlap");
    assert!(!ids.contains(&0), "context 0 belongs to the stub");

    // A later allocation comes after every id handed out so far.
    let next = alloc_contexts(NonZeroU64::MIN);
    assert!(blocks.iter().all(|&(first, n)| next >= first + n));

    // FenceContext::new allocates a fresh id too.
    let (a, b) = (FenceContext::new("t", "a"), FenceContext::new("t", "b"));
    assert_ne!(a.id(), b.id());
    assert_ne!(a.id(), 0);

    // A context over an id from a block reports that id.
    let first = try_alloc_contexts(3).unwrap();
    let ctx = FenceContext::with_id(first + 2, "t", "block");
    assert_eq!(ctx.id(), first + 2);
    assert_eq!(ctx.next_fence().1.context(), first + 2);
}

#[test]
fn try_alloc_contexts_zero_is_einval() {
    let err = try_alloc_contexts(0).unwrap_err();
    assert_eq!(err, Error::ZeroContexts);
    assert_eq!(err.errno(), Errno::EINVAL);
    let first = try_alloc_contexts(2).unwrap();
    assert!(try_alloc_contexts(1).unwrap() >= first + 2);
}

#[test]
fn context_ids_never_wrap_so_a_merge_still_waits_for_every_context() {
    // A reservation larger than the ids left used to wrap the counter: the next context got
    // an id already in use, and a merge of fences from the two "same" timelines kept only
    // the later seqno, signalling while the other fence was pending.
    let a = FenceContext::new("t", "before");
    let err = try_alloc_contexts(u64::MAX).unwrap_err();
    assert_eq!(err, Error::ContextsExhausted);
    assert_eq!(err.errno(), Errno::ENOSPC);
    let b = FenceContext::new("t", "after");
    assert!(b.id() > a.id(), "{} then {}", a.id(), b.id());

    let (sa, fa) = a.fence(1);
    let (sb, fb) = b.fence(5);
    let merged = dmabuf::fence::unwrap::merge(&[fa, fb]);
    sb.signal();
    assert!(!merged.is_signaled(), "a's fence is still pending");
    sa.signal();
    assert!(merged.is_signaled());
}

#[test]
fn exhausted_context_ids_are_an_error_or_a_panic_never_an_id_twice() {
    if !support::is_child() {
        let (status, stderr) =
            support::in_child("exhausted_context_ids_are_an_error_or_a_panic_never_an_id_twice");
        assert!(status.success(), "child: {status}\n{stderr}");
        return;
    }
    // The counter is process-wide: this runs alone in a child process.
    let next = try_alloc_contexts(1).unwrap() + 1;
    // Ids up to u64::MAX - 1 can be handed out: leave three.
    let left = u64::MAX - next;
    assert_eq!(try_alloc_contexts(left - 3), Ok(next));
    assert_eq!(try_alloc_contexts(4), Err(Error::ContextsExhausted));
    assert_eq!(try_alloc_contexts(u64::MAX), Err(Error::ContextsExhausted));
    assert_eq!(
        alloc_contexts(NonZeroU64::new(2).unwrap()),
        u64::MAX - 3,
        "a failed reservation takes nothing"
    );
    let last = FenceContext::new("t", "last");
    assert_eq!(last.id(), u64::MAX - 1);
    assert_eq!(try_alloc_contexts(1), Err(Error::ContextsExhausted));
    // The infallible calls panic rather than hand out an id in use.
    let panics = |f: &dyn Fn()| {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .expect_err("exhausted ids panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    };
    let message = panics(&|| {
        let _ = alloc_contexts(NonZeroU64::MIN);
    });
    assert!(message.contains("no fence context ids left"), "{message}");
    panics(&|| drop(FenceContext::new("t", "one too many")));
    panics(&|| drop(dmabuf::Timeline::new("one too many")));
    assert_eq!(try_alloc_contexts(1), Err(Error::ContextsExhausted));
}

#[test]
fn seqnos_per_context_are_1_2_3() {
    let ctx = FenceContext::new("t", "seqno");
    let seqnos: Vec<u64> = (0..3).map(|_| ctx.next_fence().1.seqno()).collect();
    assert_eq!(seqnos, [1, 2, 3]);
    assert_eq!(ctx.next_seqno(), 4);
    // Each context counts on its own.
    let other = FenceContext::new("t", "other");
    assert_eq!(other.next_fence().1.seqno(), 1);
    let (_s, f) = ctx.next_fence();
    assert_eq!((f.context(), f.seqno()), (ctx.id(), 5));
    assert_eq!(f.driver_name(), "t");
    assert_eq!(f.timeline_name(), "seqno");
}

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

#[test]
fn is_later_within_one_context() {
    let ctx = FenceContext::new("t", "order");
    let (_s1, f1) = ctx.next_fence();
    let (_s2, f2) = ctx.next_fence();
    assert_eq!(f2.is_later(&f1), Ok(true));
    assert_eq!(f1.is_later(&f2), Ok(false));
    assert_eq!(f1.is_later(&f1), Ok(false));
    assert_eq!(f1.is_later_or_same(&f1), Ok(true));
    assert_eq!(f2.is_later_or_same(&f1), Ok(true));
    assert_eq!(f1.is_later_or_same(&f2), Ok(false));
    assert!(f1.later(&f2).unwrap().unwrap().ptr_eq(&f2));
    assert!(f2.later(&f1).unwrap().unwrap().ptr_eq(&f2));
}

#[test]
fn later_or_same_means_the_same_fence_not_an_equal_seqno() {
    // Kernel: dma_fence_is_later_or_same(f1, f2) is `f1 == f2 || dma_fence_is_later(f1, f2)`,
    // pointer identity: a distinct fence at the same seqno is neither.
    for ctx in [
        FenceContext::new("t", "same-seqno64"),
        FenceContext::new("t", "same-seqno32").with_wrapping_seqno(),
    ] {
        let (_s1, f1) = ctx.fence(7);
        let (_s2, f2) = ctx.fence(7);
        assert_eq!(f1.is_later_or_same(&f1.clone()), Ok(true));
        assert_eq!(f2.is_later_or_same(&f1), Ok(false));
        assert_eq!(f1.is_later_or_same(&f2), Ok(false));
        let (_s3, f3) = ctx.fence(8);
        assert_eq!(f3.is_later_or_same(&f1), Ok(true));
    }
}

#[test]
fn is_later_64bit_seqnos_do_not_wrap() {
    let ctx = FenceContext::new("t", "seqno64");
    assert!(ctx.is_seqno64());
    let (_a, max32) = ctx.fence(u64::from(u32::MAX));
    let (_b, one) = ctx.fence(1);
    let (_c, above32) = ctx.fence(u64::from(u32::MAX) + 1);
    let (_d, max64) = ctx.fence(u64::MAX);
    assert!(one.is_seqno64());
    assert_eq!(one.is_later(&max32), Ok(false));
    assert_eq!(max32.is_later(&one), Ok(true));
    assert_eq!(above32.is_later(&max32), Ok(true));
    assert_eq!(max64.is_later(&above32), Ok(true));
    assert_eq!(one.is_later(&max64), Ok(false));
}

#[test]
fn is_later_32bit_seqnos_wrap() {
    let ctx = FenceContext::new("t", "seqno32").with_wrapping_seqno();
    assert!(!ctx.is_seqno64());
    let (_a, max32) = ctx.fence(u64::from(u32::MAX));
    let (_b, one) = ctx.fence(1);
    assert!(!one.is_seqno64());
    assert_eq!(one.is_later(&max32), Ok(true), "u32::MAX then 1 must wrap");
    assert_eq!(max32.is_later(&one), Ok(false));
    assert_eq!(one.is_later_or_same(&max32), Ok(true));
    assert!(one.later(&max32).unwrap().unwrap().ptr_eq(&one));
    // Half the 32-bit space apart is the edge of the wrap window.
    let (_c, two) = ctx.fence(2);
    let (_d, far) = ctx.fence(2 + (1u64 << 31) - 1);
    assert_eq!(far.is_later(&two), Ok(true));
}

#[test]
fn comparing_fences_of_different_contexts_is_context_mismatch() {
    let (ca, cb) = (FenceContext::new("t", "a"), FenceContext::new("t", "b"));
    let (_sa, a) = ca.next_fence();
    let (_sb, b) = cb.next_fence();
    let mismatch = Error::ContextMismatch(ca.id(), cb.id());
    assert_eq!(a.is_later(&b), Err(mismatch.clone()));
    assert_eq!(a.is_later_or_same(&b), Err(mismatch.clone()));
    assert_eq!(a.later(&b).unwrap_err(), mismatch);
    assert_eq!(
        b.is_later(&a),
        Err(Error::ContextMismatch(cb.id(), ca.id()))
    );
    assert_eq!(mismatch.errno(), Errno::EINVAL);
}

#[test]
fn later_returns_none_when_the_later_fence_is_signalled() {
    let ctx = FenceContext::new("t", "later");
    let (_s1, f1) = ctx.next_fence();
    let (s2, f2) = ctx.next_fence();
    s2.signal();
    assert!(f1.later(&f2).unwrap().is_none());
    assert!(f2.later(&f1).unwrap().is_none());
    // The earlier one signalled is no reason for None.
    let (s3, f3) = ctx.next_fence();
    let (_s4, f4) = ctx.next_fence();
    s3.signal();
    assert!(f3.later(&f4).unwrap().unwrap().ptr_eq(&f4));
}

// ---------------------------------------------------------------------------------------------
// Issuer leaks
// ---------------------------------------------------------------------------------------------

/// Every leak the hook saw: (context, seqno, status seen inside the hook).
static LEAKS: Mutex<Vec<(u64, u64, FenceStatus)>> = Mutex::new(Vec::new());

/// Installs one process-wide leak hook recording into [`LEAKS`]; tests filter by context, since
/// tests in this binary run in parallel.
fn install_leak_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        set_leak_hook(Some(std::sync::Arc::new(|f: &Fence| {
            LEAKS.lock().unwrap_or_else(|e| e.into_inner()).push((
                f.context(),
                f.seqno(),
                f.status(),
            ));
        })));
    });
}

fn leaks_of(ctx: &FenceContext) -> Vec<(u64, FenceStatus)> {
    LEAKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.0 == ctx.id())
        .map(|l| (l.1, l.2))
        .collect()
}

#[test]
fn issuer_dropped_unsignalled_signals_ecanceled_and_calls_leak_hook() {
    install_leak_hook();
    let ctx = FenceContext::new("t", "leak");
    let (issuer, fence) = ctx.next_fence();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    fence
        .add_callback(move |f| *s.lock().unwrap() = Some(f.status()))
        .unwrap();
    drop(issuer);
    assert_eq!(fence.status(), FenceStatus::Failed(Errno::ECANCELED));
    assert_eq!(
        *seen.lock().unwrap(),
        Some(FenceStatus::Failed(Errno::ECANCELED)),
        "callbacks run with the ECANCELED status"
    );
    assert_eq!(
        leaks_of(&ctx),
        [(1, FenceStatus::Failed(Errno::ECANCELED))],
        "leak hook not called exactly once, after the fence was cancelled"
    );

    // An error set before the drop is replaced by ECANCELED.
    let (mut issuer, fence) = ctx.next_fence();
    issuer.set_error(Errno::EIO);
    drop(issuer);
    assert_eq!(fence.error(), Some(Errno::ECANCELED));
    assert_eq!(leaks_of(&ctx).len(), 2);

    // Issuers that signalled are no leaks.
    let (issuer, _fence) = ctx.next_fence();
    issuer.signal();
    let (issuer, _fence) = ctx.next_fence();
    issuer.signal_with_error(Errno::EIO);
    assert_eq!(
        leaks_of(&ctx).len(),
        2,
        "a signalled issuer was reported leaked"
    );
}

/// Ops whose poll reports completion from a switchable "hardware" status.
struct PolledOps {
    status: Mutex<FenceStatus>,
}

impl PolledOps {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            status: Mutex::new(FenceStatus::Pending),
        })
    }

    fn complete(&self, status: FenceStatus) {
        *self.status.lock().unwrap() = status;
    }
}

impl FenceOps for PolledOps {
    fn signaled(&self, _fence: &Fence) -> FenceStatus {
        *self.status.lock().unwrap()
    }
}

#[test]
fn issuer_dropped_after_ops_report_completion_does_not_cancel() {
    install_leak_hook();
    let ctx = FenceContext::new("t", "leak-polled");
    let ops = PolledOps::new();
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    // The hardware completed; nobody has polled yet. The fence is complete as far as any
    // consumer can tell, so its status must not depend on whether a poll came before the drop.
    ops.complete(FenceStatus::Signaled);
    drop(issuer);
    assert_eq!(fence.status(), FenceStatus::Signaled);
    assert!(
        leaks_of(&ctx).is_empty(),
        "a completed fence was reported leaked"
    );
}

// ---------------------------------------------------------------------------------------------
// Timestamps and Display
// ---------------------------------------------------------------------------------------------

#[test]
fn timestamp_is_none_while_pending_and_the_signal_time_after() {
    let ctx = FenceContext::new("t", "ts");
    let (issuer, fence) = ctx.next_fence();
    assert_eq!(fence.timestamp(), None);
    let in_cb = Arc::new(Mutex::new(None));
    let c = in_cb.clone();
    fence
        .add_callback(move |f| *c.lock().unwrap() = Some(f.timestamp()))
        .unwrap();
    let before = MonotonicTime::now();
    issuer.signal();
    let after = MonotonicTime::now();
    let ts = fence.timestamp().expect("no timestamp after signalling");
    assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
    assert_eq!(
        *in_cb.lock().unwrap(),
        Some(Some(ts)),
        "callbacks see the timestamp"
    );

    // A fence signalled by a poll gets a timestamp too.
    let ops = PolledOps::new();
    let (_issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    assert_eq!(fence.timestamp(), None);
    ops.complete(FenceStatus::Signaled);
    let before = MonotonicTime::now();
    assert!(fence.is_signaled());
    let ts = fence
        .timestamp()
        .expect("no timestamp after a poll signalled");
    assert!(before <= ts && ts <= MonotonicTime::now());
}

#[test]
fn signal_timestamp_sets_an_explicit_timestamp() {
    let ctx = FenceContext::new("t", "ts");
    let (issuer, fence) = ctx.next_fence();
    let when = MonotonicTime::from_nanos(123_456_789);
    assert!(issuer.signal_timestamp(when));
    assert_eq!(fence.timestamp(), Some(when));
    assert_eq!(fence.status(), FenceStatus::Signaled);

    let stub = Fence::signaled_stub(when);
    assert!(stub.is_signaled());
    assert_eq!(stub.timestamp(), Some(when));
}

#[test]
fn display_format_is_ctx_seqno_timeline_driver_state() {
    let ctx = FenceContext::new("drv", "tl");
    let (issuer, fence) = ctx.next_fence();
    assert_eq!(
        fence.to_string(),
        format!("{}:1 tl drv unsignalled", ctx.id())
    );
    issuer.signal();
    assert_eq!(
        fence.to_string(),
        format!("{}:1 tl drv signalled", ctx.id())
    );
    assert_eq!(Fence::stub().to_string(), "0:0 stub stub signalled");
}

// ---------------------------------------------------------------------------------------------
// FenceOps
// ---------------------------------------------------------------------------------------------

/// Ops counting `enable_signaling` calls, answering with `arm`.
struct EnableOps {
    enables: AtomicUsize,
    arm: bool,
}

impl EnableOps {
    fn new(arm: bool) -> Arc<Self> {
        Arc::new(Self {
            enables: AtomicUsize::new(0),
            arm,
        })
    }

    fn enables(&self) -> usize {
        self.enables.load(Ordering::SeqCst)
    }
}

impl FenceOps for EnableOps {
    fn enable_signaling(&self, fence: &Fence) -> bool {
        assert!(
            !fence.is_signaled_flag(),
            "enable_signaling on a signalled fence"
        );
        self.enables.fetch_add(1, Ordering::SeqCst);
        // Widen the window for concurrent enablers.
        thread::sleep(Duration::from_millis(2));
        self.arm
    }
}

#[test]
fn enable_signaling_is_lazy_and_called_exactly_once_under_concurrency() {
    let ctx = FenceContext::new("t", "enable");
    let ops = EnableOps::new(true);
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    // Creation and queries do not enable.
    assert!(!fence.is_signaled());
    assert_eq!(fence.status(), FenceStatus::Pending);
    assert_eq!(ops.enables(), 0, "enable_signaling called eagerly");
    // A zero-timeout wait does: the kernel's dma_fence_wait_timeout() enables signalling
    // before it looks, whatever the timeout, so a fence armed only on demand can complete
    // for a caller that polls. It is one of the racers below.

    const THREADS: usize = 8;
    let start = Arc::new(Barrier::new(THREADS));
    let added = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (fence, start, added, ran) =
                (fence.clone(), start.clone(), added.clone(), ran.clone());
            thread::spawn(move || {
                start.wait();
                match i % 4 {
                    0 => {
                        fence
                            .add_callback(move |_| {
                                ran.fetch_add(1, Ordering::SeqCst);
                            })
                            .unwrap();
                        added.fetch_add(1, Ordering::SeqCst);
                    }
                    1 => fence.enable_sw_signaling(),
                    2 => assert_eq!(fence.wait_timeout(WATCHDOG), Ok(())),
                    // Pending or signalled, depending on when it runs.
                    _ => drop(fence.wait_timeout(Duration::ZERO)),
                }
            })
        })
        .collect();
    let adders = (0..THREADS).filter(|i| i % 4 == 0).count();
    let deadline = Instant::now() + WATCHDOG;
    while added.load(Ordering::SeqCst) < adders {
        assert!(Instant::now() < deadline, "callback adders did not finish");
        thread::yield_now();
    }
    issuer.signal();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ops.enables(), 1, "enable_signaling not called exactly once");
    assert_eq!(ran.load(Ordering::SeqCst), adders);
    // Nothing re-enables a signalled fence.
    fence.enable_sw_signaling();
    assert!(fence.add_callback(|_| {}).is_err());
    assert_eq!(ops.enables(), 1);
}

#[test]
fn enable_signaling_returning_false_signals_the_fence() {
    let ctx = FenceContext::new("t", "enable-false");

    let ops = EnableOps::new(false);
    let (_issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    fence.enable_sw_signaling();
    assert_eq!(ops.enables(), 1);
    assert!(
        fence.is_signaled_flag(),
        "not signalled after enable returned false"
    );
    assert_eq!(fence.status(), FenceStatus::Signaled);

    // Through add_callback: enabling signals it, so the callback comes back unrun.
    let ops = EnableOps::new(false);
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let err = fence
        .add_callback(move |_| r.store(true, Ordering::SeqCst))
        .expect_err("callback queued on a fence its enable signalled");
    assert_eq!(err.errno(), Errno::ENOENT);
    assert!(!ran.load(Ordering::SeqCst));
    assert!(fence.is_signaled_flag());
    assert!(!issuer.signal(), "issuer's signal was not a no-op");

    // Through a wait: returns at once.
    let ops = EnableOps::new(false);
    let (_issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    within_watchdog("wait on a fence enable signalled", move || {
        fence.wait_for_signal()
    });
    assert_eq!(ops.enables(), 1);
}

#[test]
fn a_zero_timeout_wait_enables_signalling_then_looks_again() {
    // Kernel: dma_fence_wait_timeout(fence, intr, 0) calls dma_fence_enable_sw_signaling()
    // before it checks, so an issuer that arms lazily (and answers "already done" from
    // enable_signaling) is seen to complete by a caller that only polls.
    let ctx = FenceContext::new("t", "poll-enables");
    let ops = EnableOps::new(false);
    let (_issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    assert_eq!(fence.wait_timeout(Duration::ZERO), Ok(()));
    assert_eq!(ops.enables(), 1);
    assert!(fence.is_signaled_flag());

    // Still pending after enabling: TimedOut, without blocking; enabled once only.
    let ops = EnableOps::new(true);
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    for _ in 0..3 {
        assert_eq!(fence.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut));
    }
    assert_eq!(ops.enables(), 1);
    issuer.signal();
    assert_eq!(fence.wait_timeout(Duration::ZERO), Ok(()));

    // wait_any's zero timeout stays a pure poll, as dma_fence_wait_any_timeout()'s does.
    let ops = EnableOps::new(false);
    let (_issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    assert_eq!(
        wait_any(std::slice::from_ref(&fence), Some(Duration::ZERO)),
        Err(Error::TimedOut)
    );
    assert_eq!(ops.enables(), 0);
}

#[test]
fn signaled_poll_signals_the_fence_with_its_error() {
    let ctx = FenceContext::new("t", "poll");

    let ops = PolledOps::new();
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    assert_eq!(fence.status(), FenceStatus::Pending);
    ops.complete(FenceStatus::Failed(Errno::EIO));
    assert!(!fence.is_signaled_flag(), "signalled before any poll");
    assert_eq!(fence.status(), FenceStatus::Failed(Errno::EIO));
    assert!(
        fence.is_signaled_flag(),
        "the poll did not signal the fence"
    );
    assert!(fence.timestamp().is_some());
    // The issuer's later signal is a no-op and does not change the error.
    assert!(!issuer.signal_with_error(Errno::ENODATA));
    assert_eq!(fence.error(), Some(Errno::EIO));

    let ops = PolledOps::new();
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    fence
        .add_callback(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    ops.complete(FenceStatus::Signaled);
    assert!(fence.is_signaled());
    assert_eq!(fence.status(), FenceStatus::Signaled);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the poll that signalled did not run the callbacks"
    );
    assert!(!issuer.signal());
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

/// Ops recording deadlines: how many, and the earliest.
struct DeadlineOps {
    calls: AtomicUsize,
    earliest: AtomicU64,
    seqno: AtomicU64,
}

impl FenceOps for DeadlineOps {
    fn set_deadline(&self, fence: &Fence, deadline: MonotonicTime) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seqno.store(fence.seqno(), Ordering::SeqCst);
        self.earliest
            .fetch_min(deadline.as_nanos(), Ordering::SeqCst);
    }
}

#[test]
fn set_deadline_is_forwarded_to_ops_and_ignored_after_signalling() {
    let ctx = FenceContext::new("t", "deadline");
    let ops = Arc::new(DeadlineOps {
        calls: AtomicUsize::new(0),
        earliest: AtomicU64::new(u64::MAX),
        seqno: AtomicU64::new(0),
    });
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    let now = MonotonicTime::now();
    fence.set_deadline(now + Duration::from_millis(10));
    fence.set_deadline(now + Duration::from_millis(5));
    fence.set_deadline(now + Duration::from_millis(20));
    assert_eq!(ops.calls.load(Ordering::SeqCst), 3);
    assert_eq!(ops.seqno.load(Ordering::SeqCst), fence.seqno());
    assert_eq!(
        ops.earliest.load(Ordering::SeqCst),
        (now + Duration::from_millis(5)).as_nanos()
    );
    issuer.signal();
    fence.set_deadline(now + Duration::from_millis(1));
    assert_eq!(
        ops.calls.load(Ordering::SeqCst),
        3,
        "deadline forwarded after signalling"
    );
    assert_eq!(
        ops.earliest.load(Ordering::SeqCst),
        (now + Duration::from_millis(5)).as_nanos()
    );

    // An array forwards deadlines to its members.
    let ops = Arc::new(DeadlineOps {
        calls: AtomicUsize::new(0),
        earliest: AtomicU64::new(u64::MAX),
        seqno: AtomicU64::new(0),
    });
    let (_m, member) = ctx.next_fence_with_ops(ops.clone());
    let array = Fence::new_array(vec![member], alloc_contexts(NonZeroU64::MIN), 1).unwrap();
    array.set_deadline(now);
    assert_eq!(ops.calls.load(Ordering::SeqCst), 1);
    assert_eq!(ops.earliest.load(Ordering::SeqCst), now.as_nanos());
}

#[test]
fn signalled_fence_drops_its_ops_while_consumers_live() {
    let ctx = FenceContext::new("t", "detach");

    // Signalled by its issuer.
    let ops = EnableOps::new(true);
    let weak = Arc::downgrade(&ops);
    let (issuer, fence) = ctx.next_fence_with_ops(ops);
    fence.enable_sw_signaling();
    assert!(weak.upgrade().is_some(), "ops dropped before the signal");
    issuer.signal();
    assert!(weak.upgrade().is_none(), "ops still alive after the signal");
    assert!(fence.is_signaled());

    // Signalled by a poll.
    let ops = PolledOps::new();
    let weak = Arc::downgrade(&ops);
    let (_issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    ops.complete(FenceStatus::Signaled);
    drop(ops);
    assert!(weak.upgrade().is_some());
    assert!(fence.is_signaled());
    assert!(
        weak.upgrade().is_none(),
        "ops still alive after a poll signalled"
    );

    // Signalled because enable_signaling returned false.
    let ops = EnableOps::new(false);
    let weak = Arc::downgrade(&ops);
    let (_issuer, fence) = ctx.next_fence_with_ops(ops);
    fence.enable_sw_signaling();
    assert!(fence.is_signaled_flag());
    assert!(
        weak.upgrade().is_none(),
        "ops still alive after enable said done"
    );

    // Cancelled by a dropped issuer.
    install_leak_hook();
    let ops = EnableOps::new(true);
    let weak = Arc::downgrade(&ops);
    let (issuer, fence) = ctx.next_fence_with_ops(ops);
    drop(issuer);
    assert_eq!(fence.error(), Some(Errno::ECANCELED));
    assert!(weak.upgrade().is_none(), "ops still alive after cancel");
}

// ---------------------------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------------------------

#[test]
fn callbacks_run_in_the_signaller_thread_in_order_before_signal_returns() {
    let ctx = FenceContext::new("t", "cb-order");
    let (issuer, fence) = ctx.next_fence();
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        let log = log.clone();
        fence
            .add_callback(move |_| log.lock().unwrap().push((i, thread::current().id())))
            .unwrap();
    }
    let signaller = {
        let log = log.clone();
        thread::spawn(move || {
            issuer.signal();
            // Everything ran before signal returned.
            (thread::current().id(), log.lock().unwrap().len())
        })
    };
    let (signaller_id, len_at_return) = signaller.join().unwrap();
    assert_eq!(
        len_at_return, 5,
        "callbacks still pending when signal returned"
    );
    let log = log.lock().unwrap();
    let order: Vec<i32> = log.iter().map(|e| e.0).collect();
    assert_eq!(
        order,
        [0, 1, 2, 3, 4],
        "callbacks not run in the order added"
    );
    assert!(
        log.iter().all(|e| e.1 == signaller_id),
        "a callback ran outside the signaller's thread"
    );
    assert_ne!(signaller_id, thread::current().id());
}

#[test]
fn remove_before_signal_returns_true_and_the_callback_never_runs() {
    let ctx = FenceContext::new("t", "cb-remove");
    let (issuer, fence) = ctx.next_fence();
    let ran = Arc::new(AtomicUsize::new(0));
    let (r1, r2) = (ran.clone(), ran.clone());
    let h1 = fence
        .add_callback(move |_| {
            r1.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let _h2 = fence
        .add_callback(move |_| {
            r2.fetch_add(10, Ordering::SeqCst);
        })
        .unwrap();
    assert!(h1.fence().ptr_eq(&fence));
    assert_eq!(Arc::strong_count(&ran), 3);
    assert!(h1.remove(), "remove before signal returned false");
    assert_eq!(
        Arc::strong_count(&ran),
        2,
        "a removed callback was not dropped"
    );
    issuer.signal();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        10,
        "removed callback ran or the other did not"
    );
}

#[test]
fn remove_while_the_callback_runs_elsewhere_waits_for_it() {
    let ctx = FenceContext::new("t", "cb-remove-running");
    let (issuer, fence) = ctx.next_fence();
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let handle = {
        let (started, finished) = (started.clone(), finished.clone());
        fence
            .add_callback(move |_| {
                started.store(true, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(50));
                finished.store(true, Ordering::SeqCst);
            })
            .unwrap()
    };
    let signaller = thread::spawn(move || issuer.signal());
    let deadline = Instant::now() + WATCHDOG;
    while !started.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "callback never started");
        thread::yield_now();
    }
    let removed = within_watchdog("remove of a running callback", move || handle.remove());
    assert!(!removed, "removed a callback that was running");
    assert!(
        finished.load(Ordering::SeqCst),
        "remove returned while the callback was still running"
    );
    assert!(signaller.join().unwrap());
}

/// Ops holding a callback handle on their own fence, removed when the ops are dropped.
struct RemovesOnDrop {
    handle: Mutex<Option<CallbackHandle>>,
    removed: Arc<Mutex<Option<bool>>>,
}
impl FenceOps for RemovesOnDrop {}
impl Drop for RemovesOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.handle.lock().unwrap().take() {
            *self.removed.lock().unwrap() = Some(h.remove());
        }
    }
}

#[test]
fn ops_dropped_by_the_signal_may_remove_a_callback_of_their_fence() {
    // The signal detaches the ops; when the fence held the last reference their drop runs
    // in the signalling thread. It used to run before the callbacks, while the fence was
    // marked as running callbacks that this thread had not started: `remove` waited for
    // itself.
    let ctx = FenceContext::new("t", "ops-drop-remove");
    let removed = Arc::new(Mutex::new(None));
    let ran = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(RemovesOnDrop {
        handle: Mutex::new(None),
        removed: removed.clone(),
    });
    let weak = Arc::downgrade(&ops);
    let (issuer, fence) = ctx.next_fence_with_ops(ops.clone());
    let r = ran.clone();
    let h = fence
        .add_callback(move |_| r.store(true, Ordering::SeqCst))
        .unwrap();
    *ops.handle.lock().unwrap() = Some(h);
    drop(ops); // the fence holds the last reference now
    assert!(within_watchdog("ops drop removing a callback", move || {
        issuer.signal()
    }));
    assert!(ran.load(Ordering::SeqCst), "the callback did not run");
    assert_eq!(
        *removed.lock().unwrap(),
        Some(false),
        "removed after it ran"
    );
    assert!(weak.upgrade().is_none(), "ops still alive after the signal");
    assert!(fence.is_signaled_flag());
}

#[test]
fn callback_removing_callbacks_of_its_own_fence_does_not_deadlock() {
    let ctx = FenceContext::new("t", "cb-remove-inside");
    let (issuer, fence) = ctx.next_fence();
    type Slot = Arc<Mutex<Option<CallbackHandle>>>;
    let own: Slot = Arc::new(Mutex::new(None));
    let other: Slot = Arc::new(Mutex::new(None));
    let results = Arc::new(Mutex::new(Vec::new()));
    let other_ran = Arc::new(AtomicBool::new(false));

    // Callback A removes itself and then B, which is queued after it.
    let a = {
        let (own, other, results) = (own.clone(), other.clone(), results.clone());
        fence
            .add_callback(move |_| {
                let mine = own.lock().unwrap().take().unwrap();
                let b = other.lock().unwrap().take().unwrap();
                let mut results = results.lock().unwrap();
                results.push(mine.remove());
                results.push(b.remove());
            })
            .unwrap()
    };
    let b = {
        let other_ran = other_ran.clone();
        fence
            .add_callback(move |_| other_ran.store(true, Ordering::SeqCst))
            .unwrap()
    };
    *own.lock().unwrap() = Some(a);
    *other.lock().unwrap() = Some(b);

    assert!(within_watchdog("remove inside a callback", move || {
        issuer.signal()
    }));
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 2);
    assert!(!results[0], "a running callback reported itself removed");
    // B was not yet run when A removed it: either the removal succeeded and B never runs, or
    // it reported `false` and B ran (the documented behaviour). Never both or neither.
    assert_eq!(
        results[1],
        !other_ran.load(Ordering::SeqCst),
        "remove's answer disagrees with whether the callback ran"
    );
}

// ---------------------------------------------------------------------------------------------
// wait_any
// ---------------------------------------------------------------------------------------------

#[test]
fn wait_any_on_no_fences_is_no_fences() {
    for timeout in [None, Some(Duration::ZERO), Some(Duration::from_millis(1))] {
        let err = wait_any(&[], timeout).unwrap_err();
        assert_eq!(err, Error::NoFences, "timeout {timeout:?}");
        assert_eq!(err.errno(), Errno::EINVAL);
    }
    assert_eq!(
        wait_any_deadline(&[], MonotonicTime::now()),
        Err(Error::NoFences)
    );
}

#[test]
fn wait_any_zero_timeout_polls() {
    let ctx = FenceContext::new("t", "any-poll");
    let (_a, fa) = ctx.next_fence();
    let (b, fb) = ctx.next_fence();
    let fences = [fa, fb];
    assert_eq!(
        wait_any(&fences, Some(Duration::ZERO)),
        Err(Error::TimedOut)
    );
    b.signal();
    assert_eq!(wait_any(&fences, Some(Duration::ZERO)), Ok(1));
}

#[test]
fn wait_any_returns_the_first_signalled_in_slice_order() {
    let ctx = FenceContext::new("t", "any-order");
    let (_a, fa) = ctx.next_fence();
    let (b, fb) = ctx.next_fence();
    let (_c, fc) = ctx.next_fence();
    let (d, fd) = ctx.next_fence();
    let fences = [fa, fb, fc, fd];
    // Signal the later one in the slice first.
    d.signal();
    b.signal();
    assert_eq!(wait_any(&fences, Some(Duration::ZERO)), Ok(1));
    assert_eq!(wait_any(&fences, None), Ok(1));
    assert_eq!(wait_any(&fences, Some(Duration::from_secs(1))), Ok(1));
    assert_eq!(
        wait_any_deadline(&fences, MonotonicTime::now() + Duration::from_secs(1)),
        Ok(1)
    );
}

#[test]
fn wait_any_wakes_when_another_thread_signals_one() {
    let ctx = FenceContext::new("t", "any-wake");
    let (_a, fa) = ctx.next_fence();
    let (_b, fb) = ctx.next_fence();
    let (c, fc) = ctx.next_fence();
    let fences = vec![fa, fb, fc];
    let signaller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        c.signal();
    });
    let r = within_watchdog("wait_any", move || wait_any(&fences, None));
    assert_eq!(r, Ok(2));
    signaller.join().unwrap();
}

#[test]
fn wait_any_times_out() {
    let ctx = FenceContext::new("t", "any-timeout");
    let (_a, fa) = ctx.next_fence();
    let (_b, fb) = ctx.next_fence();
    let fences = vec![fa, fb];
    let start = Instant::now();
    let r = within_watchdog("timed wait_any", move || {
        wait_any(&fences, Some(Duration::from_millis(5)))
    });
    assert_eq!(r, Err(Error::TimedOut));
    assert!(
        start.elapsed() >= Duration::from_millis(5),
        "timed out early"
    );

    let (_c, fc) = ctx.next_fence();
    assert_eq!(
        wait_any_deadline(&[fc], MonotonicTime::now() + Duration::from_millis(2)),
        Err(Error::TimedOut)
    );
}

// ---------------------------------------------------------------------------------------------
// Async
// ---------------------------------------------------------------------------------------------

/// A waker that unparks a thread and counts its wakes.
struct ThreadWaker {
    thread: thread::Thread,
    wakes: AtomicUsize,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn thread_waker() -> Arc<ThreadWaker> {
    Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    })
}

/// A minimal executor: polls `fut` with `waker`, parking the thread between polls.
fn block_on<F: Future>(fut: F, waker: &Arc<ThreadWaker>) -> F::Output {
    let mut fut = pin!(fut);
    let w = Waker::from(waker.clone());
    let mut cx = Context::from_waker(&w);
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("future never completed");
        thread::park_timeout(left);
    }
}

#[test]
fn wait_async_resolves_after_another_thread_signals() {
    let ctx = FenceContext::new("t", "async");
    let (issuer, fence) = ctx.next_fence();
    let waker = thread_waker();
    let mut fut = pin!(fence.wait_async());
    // First poll: pending, the waker is armed.
    {
        let w = Waker::from(waker.clone());
        assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
    }
    let signaller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(5));
        issuer.signal()
    });
    assert_eq!(block_on(fut.as_mut(), &waker), Ok(()));
    assert!(fence.is_signaled());
    assert!(waker.wakes.load(Ordering::SeqCst) >= 1, "never woken");
    assert!(signaller.join().unwrap());

    // On a signalled fence the future is ready at once.
    let w = Waker::from(thread_waker());
    assert!(
        pin!(fence.wait_async())
            .poll(&mut Context::from_waker(&w))
            .is_ready()
    );
}

#[test]
fn wait_async_says_how_the_work_ended() {
    let ctx = FenceContext::new("t", "async-failed");
    let (issuer, fence) = ctx.next_fence();
    let waker = thread_waker();
    let mut fut = pin!(fence.wait_async());
    {
        let w = Waker::from(waker.clone());
        assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
    }
    issuer.signal_with_error(Errno::EIO);
    assert_eq!(block_on(fut.as_mut(), &waker), Err(FenceFailed(Errno::EIO)));
    // Ready at once on a fence that has already failed.
    let w = Waker::from(thread_waker());
    assert_eq!(
        pin!(fence.wait_async()).poll(&mut Context::from_waker(&w)),
        Poll::Ready(Err(FenceFailed(Errno::EIO)))
    );
}

#[test]
fn wait_async_wakes_the_latest_waker() {
    let ctx = FenceContext::new("t", "async-rewake");
    let (issuer, fence) = ctx.next_fence();
    let (first, second) = (thread_waker(), thread_waker());
    let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
    let mut fut = pin!(fence.wait_async());
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&w1))
            .is_pending()
    );
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&w2))
            .is_pending()
    );
    issuer.signal();
    assert_eq!(first.wakes.load(Ordering::SeqCst), 0, "stale waker woken");
    assert_eq!(
        second.wakes.load(Ordering::SeqCst),
        1,
        "latest waker not woken"
    );
    assert!(fut.as_mut().poll(&mut Context::from_waker(&w2)).is_ready());
}

#[test]
fn dropping_a_pending_future_removes_its_callback() {
    let ctx = FenceContext::new("t", "async-drop");
    let (issuer, fence) = ctx.next_fence();
    let waker = thread_waker();
    let w = Waker::from(waker.clone());
    {
        let mut fut = Box::pin(fence.wait_async());
        assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        assert_eq!(
            Arc::strong_count(&waker),
            3,
            "the future did not keep a waker"
        );
    }
    assert_eq!(
        Arc::strong_count(&waker),
        2,
        "the dropped future's callback still holds its waker"
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    fence
        .add_callback(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    issuer.signal();
    assert_eq!(
        waker.wakes.load(Ordering::SeqCst),
        0,
        "a dropped future was woken"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the other callback did not run"
    );
}

// ---------------------------------------------------------------------------------------------
// Arrays
// ---------------------------------------------------------------------------------------------

fn new_array(members: Vec<Fence>) -> dmabuf::Result<Fence> {
    Fence::new_array(members, alloc_contexts(NonZeroU64::MIN), 1)
}

#[test]
fn array_signals_when_all_members_have() {
    let ctx = FenceContext::new("t", "array");

    // Polled, never enabled.
    let (issuers, members): (Vec<_>, Vec<_>) = (0..3).map(|_| ctx.next_fence()).unzip();
    let array = new_array(members.clone()).unwrap();
    assert!(array.is_array() && array.is_container());
    assert_eq!(array.array_members().unwrap().len(), 3);
    let mut issuers = issuers.into_iter();
    issuers.next().unwrap().signal();
    issuers.next().unwrap().signal();
    assert!(
        !array.is_signaled(),
        "array signalled with a member pending"
    );
    issuers.next().unwrap().signal();
    assert!(array.is_signaled());
    assert_eq!(array.status(), FenceStatus::Signaled);

    // Enabled: the last member's signal signals the array and runs its callbacks.
    let (issuers, members): (Vec<_>, Vec<_>) = (0..3).map(|_| ctx.next_fence()).unzip();
    let array = new_array(members).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    array
        .add_callback(move |_| r.store(true, Ordering::SeqCst))
        .unwrap();
    let mut issuers = issuers.into_iter().rev();
    issuers.next().unwrap().signal();
    issuers.next().unwrap().signal();
    assert!(!array.is_signaled_flag());
    assert!(!ran.load(Ordering::SeqCst));
    issuers.next().unwrap().signal();
    assert!(
        array.is_signaled_flag(),
        "array not signalled by its last member"
    );
    assert!(ran.load(Ordering::SeqCst));

    // A waiter on the array wakes when the last member signals on another thread.
    let (issuers, members): (Vec<_>, Vec<_>) = (0..2).map(|_| ctx.next_fence()).unzip();
    let array = new_array(members).unwrap();
    let signaller = thread::spawn(move || {
        for i in issuers {
            thread::sleep(Duration::from_millis(2));
            i.signal();
        }
    });
    let waited = array.clone();
    within_watchdog("wait on an array", move || waited.wait_for_signal());
    assert!(array.is_signaled());
    signaller.join().unwrap();

    // No members: signalled at once.
    assert!(new_array(Vec::new()).unwrap().is_signaled());
}

#[test]
fn array_propagates_the_first_member_error() {
    let ctx = FenceContext::new("t", "array-error");

    // Enabled: the first error to arrive wins.
    let (mut issuers, members): (Vec<_>, Vec<_>) = (0..3).map(|_| ctx.next_fence()).unzip();
    let array = new_array(members).unwrap();
    array.enable_sw_signaling();
    let i2 = issuers.pop().unwrap();
    let i1 = issuers.pop().unwrap();
    let i0 = issuers.pop().unwrap();
    i1.signal_with_error(Errno::EIO);
    i0.signal_with_error(Errno::ENODATA);
    assert_eq!(array.status(), FenceStatus::Pending);
    i2.signal();
    assert_eq!(array.status(), FenceStatus::Failed(Errno::EIO));

    // Polled: one failed member fails the array.
    let (mut issuers, members): (Vec<_>, Vec<_>) = (0..2).map(|_| ctx.next_fence()).unzip();
    let array = new_array(members).unwrap();
    issuers.pop().unwrap().signal_with_error(Errno::ETIME);
    issuers.pop().unwrap().signal();
    assert_eq!(array.status(), FenceStatus::Failed(Errno::ETIME));
}

#[test]
fn array_rejects_container_members() {
    let ctx = FenceContext::new("t", "array-nest");
    let (_a, fa) = ctx.next_fence();
    let (_b, fb) = ctx.next_fence();
    let inner = new_array(vec![fa.clone()]).unwrap();
    let err = new_array(vec![fb.clone(), inner]).unwrap_err();
    assert_eq!(err, Error::ContainerMember);
    assert_eq!(err.errno(), Errno::EINVAL);
    let chain = Fence::new_chain(None, fa, 1).unwrap();
    assert_eq!(
        new_array(vec![chain, fb]).unwrap_err(),
        Error::ContainerMember
    );
}

#[test]
fn array_does_not_enable_members_until_it_is_enabled() {
    let ctx = FenceContext::new("t", "array-lazy");
    type Enable = fn(&Fence);
    let ways: [(&str, Enable); 4] = [
        ("enable_sw_signaling", |a| a.enable_sw_signaling()),
        ("timed wait", |a| {
            assert_eq!(
                a.wait_timeout(Duration::from_millis(1)),
                Err(WaitError::TimedOut)
            );
        }),
        // A zero-timeout wait enables too (kernel: dma_fence_wait_timeout() enables
        // signalling whatever the timeout).
        ("zero-timeout wait", |a| {
            assert_eq!(a.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut));
        }),
        ("add_callback", |a| {
            a.add_callback(|_| {}).unwrap();
        }),
    ];
    for (how, enable) in ways {
        let ops = EnableOps::new(true);
        let (_m, member) = ctx.next_fence_with_ops(ops.clone());
        let (_p, plain) = ctx.next_fence();
        let array = new_array(vec![member, plain]).unwrap();
        assert!(!array.is_signaled());
        assert_eq!(array.status(), FenceStatus::Pending);
        assert_eq!(ops.enables(), 0, "member enabled before the array ({how})");
        enable(&array);
        assert_eq!(ops.enables(), 1, "member not enabled by {how}");
        array.enable_sw_signaling();
        assert_eq!(ops.enables(), 1, "member enabled twice ({how})");
    }
}

// ---------------------------------------------------------------------------------------------
// Many waiters
// ---------------------------------------------------------------------------------------------

#[test]
fn many_waiters_on_one_fence_all_wake() {
    const WAITERS: usize = 8;
    let ctx = FenceContext::new("t", "waiters");
    let (issuer, fence) = ctx.next_fence();
    let (tx, rx) = mpsc::channel();
    let ready = Arc::new(Barrier::new(WAITERS + 1));
    let threads: Vec<_> = (0..WAITERS)
        .map(|i| {
            let (fence, tx, ready) = (fence.clone(), tx.clone(), ready.clone());
            thread::spawn(move || {
                ready.wait();
                fence.wait_for_signal();
                assert!(fence.is_signaled_flag());
                tx.send(i).unwrap();
            })
        })
        .collect();
    ready.wait();
    // Give the waiters time to park (correctness does not depend on it).
    thread::sleep(Duration::from_millis(20));
    assert!(
        rx.try_recv().is_err(),
        "a waiter returned before the signal"
    );
    issuer.signal();
    let deadline = Instant::now() + WATCHDOG;
    let mut woken: Vec<usize> = (0..WAITERS)
        .map(|_| {
            let left = deadline.saturating_duration_since(Instant::now());
            rx.recv_timeout(left).expect("a waiter was never woken")
        })
        .collect();
    woken.sort_unstable();
    assert_eq!(woken, (0..WAITERS).collect::<Vec<_>>());
    for t in threads {
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn error_variants_map_to_kernel_errnos() {
    let cases = [
        (Error::ContextMismatch(1, 2), Errno::EINVAL),
        (Error::TimedOut, Errno::ETIME),
        (Error::NoFences, Errno::EINVAL),
        (Error::ContainerMember, Errno::EINVAL),
        (Error::SeqnoNotInChain { seqno: 7 }, Errno::EINVAL),
        (Error::ZeroContexts, Errno::EINVAL),
        (Error::ContextsExhausted, Errno::ENOSPC),
        (Error::TimelineClosed, Errno::ENOENT),
    ];
    for (err, errno) in cases {
        assert_eq!(err.errno(), errno, "{err:?}");
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(Errno::ETIME.raw(), 62);
    assert_eq!(Errno::EINVAL.raw(), 22);
    assert_eq!(Errno::ENOENT.raw(), 2);
    assert_eq!(dmabuf::AlreadySignaled(()).errno(), Errno::ENOENT);
}
