//! Port of igt-gpu-tools' `tests/sw_sync.c` (the sw_sync / sync_file subtests) to the
//! in-process model, plus one memory check of this crate's own.
//!
//! Mapping: a sw_sync timeline fd is a [`Timeline`]; a sync_file fd is a [`Fence`];
//! `sync_fence_merge(a, b)` is [`merge`]`(&[a, b])`; `sync_fence_count_status` counts
//! [`leaves`] (ACTIVE = a pending leaf, SIGNALED = a leaf signalled without error, ERROR = a
//! leaf signalled with an error); `sync_fence_wait(fd, ms)` is [`Fence::wait_for_signal_timeout`]
//! (`Ok` = igt's `0`, `Err(TimedOut)` = its `-ETIME`) and a wait of `-1` is [`Fence::wait_for_signal`];
//! `sync_fence_status` is [`Fence::status`]; closing the timeline fd is [`Timeline::close`] or
//! dropping its last handle. Child processes become threads.
//!
//! Iteration counts are the upstream ones; where upstream uses `rand()` a small deterministic
//! PRNG stands in.

use dmabuf::fence::unwrap::{leaves, merge};
use dmabuf::{Errno, Error, Fence, FenceStatus, MonotonicTime, TimedOut, Timeline};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// `sync_fence_wait(fd, 0) == 0`: a zero timeout polls; `false` is igt's `-ETIME`.
fn signalled_now(f: &Fence) -> bool {
    match f.wait_for_signal_timeout(Duration::ZERO) {
        Ok(()) => true,
        Err(TimedOut) => false,
    }
}

/// `sync_fence_count_status(fd, SW_SYNC_FENCE_STATUS_ACTIVE)`.
fn count_active(f: &Fence) -> usize {
    leaves(f)
        .filter(|l| l.status() == FenceStatus::Pending)
        .count()
}

/// `sync_fence_count_status(fd, SW_SYNC_FENCE_STATUS_SIGNALED)`.
fn count_signaled(f: &Fence) -> usize {
    leaves(f)
        .filter(|l| l.status() == FenceStatus::Signaled)
        .count()
}

/// Closes the given timelines if the thread holding the guard panics, so that no other thread
/// blocks forever on a point that will never be reached: their waits complete with `ENOENT`,
/// their own checks fail, and the test reports the first panic instead of hanging.
struct CloseOnPanic<'a>(&'a [Timeline]);

impl Drop for CloseOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.iter().for_each(Timeline::close);
        }
    }
}

/// A deterministic stand-in for libc `rand()` (SplitMix64, upper 31 bits: `0..=RAND_MAX`).
struct Rand(u64);

impl Rand {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn rand(&mut self) -> u32 {
        (self.next_u64() >> 33) as u32
    }
}

/// The primes below `limit`, as igt's `for_each_prime_number` visits them.
fn primes_below(limit: u32) -> Vec<u32> {
    (2..limit)
        .filter(|&n| (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .collect()
}

// ports igt sw_sync: alloc_timeline
#[test]
fn alloc_timeline() {
    let timeline = Timeline::new("alloc_timeline");
    assert!(!timeline.is_closed());
    assert_eq!(timeline.value(), 0);
    timeline.close();
    assert!(timeline.is_closed());
}

// ports igt sw_sync: alloc_fence
#[test]
fn alloc_fence() {
    let timeline = Timeline::new("alloc_fence");
    // Point 0 is not after the value (0): born signalled, and not tracked.
    let in_fence = timeline.create_fence(0).expect("create_fence(0)");
    assert!(in_fence.is_signaled());
    assert_eq!(in_fence.status(), FenceStatus::Signaled);
    assert_eq!(in_fence.seqno(), 0);
    assert_eq!(timeline.pending_points(), 0);
    drop(in_fence);
    timeline.close();
}

// ports igt sw_sync: alloc_fence_invalid_timeline
//
// Upstream passes fd -1. In-process there is no invalid handle to pass, so the port is the one
// way creation can fail: on a closed timeline, with `Error::TimelineClosed` (ENOENT).
#[test]
fn alloc_fence_invalid_timeline() {
    let timeline = Timeline::new("alloc_fence_invalid_timeline");
    timeline.close();
    let err = timeline
        .create_fence(0)
        .expect_err("did not fail to create fence on invalid timeline");
    assert_eq!(err, Error::TimelineClosed);
    assert_eq!(err.errno(), Errno::ENOENT);
}

// ports igt sw_sync: timeline_closed
#[test]
fn timeline_closed() {
    let timeline = Timeline::new("timeline_closed");
    let fence = timeline.create_fence(1).expect("create_fence(1)");
    assert!(!signalled_now(&fence));

    timeline.close();
    assert!(
        signalled_now(&fence),
        "failure waiting on unsignalled fence on closed timeline"
    );
    assert_eq!(
        fence.status(),
        FenceStatus::Failed(Errno::ENOENT),
        "failure in marking up an unsignalled fence on closed timeline"
    );
    assert_eq!(fence.status().to_raw(), -2);

    // Closing the fd is also what dropping the last handle does.
    let timeline = Timeline::new("timeline_closed_by_drop");
    let fence = timeline.create_fence(1).expect("create_fence(1)");
    let clone = timeline.clone();
    drop(timeline);
    assert!(
        !signalled_now(&fence),
        "a live clone keeps the timeline open"
    );
    drop(clone);
    assert!(signalled_now(&fence));
    assert_eq!(fence.status(), FenceStatus::Failed(Errno::ENOENT));
}

// ports igt sw_sync: timeline_closed_signaled
#[test]
fn timeline_closed_signaled() {
    let timeline = Timeline::new("timeline_closed_signaled");
    let fence = timeline.create_fence(1).expect("create_fence(1)");

    timeline.inc(1);
    timeline.close();
    assert!(
        signalled_now(&fence),
        "failure waiting on signalled fence for closed timeline"
    );
    // Signalled before the close: no error.
    assert_eq!(fence.status(), FenceStatus::Signaled);
}

// ports igt sw_sync: alloc_merge_fence
#[test]
fn alloc_merge_fence() {
    let timeline = [Timeline::new("merge0"), Timeline::new("merge1")];
    let in_fence = [
        timeline[0].create_fence(1).expect("create"),
        timeline[1].create_fence(1).expect("create"),
    ];
    let fence_merge = merge(&[in_fence[1].clone(), in_fence[0].clone()]);
    assert_eq!(leaves(&fence_merge).count(), 2);
    assert_eq!(count_active(&fence_merge), 2);
    drop(in_fence);
    drop(fence_merge);
    timeline.iter().for_each(Timeline::close);
}

// ports igt sw_sync: sync_busy
#[test]
fn sync_busy() {
    let timeline = Timeline::new("sync_busy");
    let fence = timeline.create_fence(5).expect("create_fence(5)");

    // Not signalled yet.
    assert!(
        !signalled_now(&fence),
        "fence signalled early (timeline value 0, fence seqno 5)"
    );

    // Advance timeline from 0 -> 1.
    timeline.inc(1);
    assert!(
        !signalled_now(&fence),
        "fence signalled early (timeline value 1, fence seqno 5)"
    );

    // Advance timeline from 1 -> 5: signals the fence.
    timeline.inc(4);
    assert!(
        signalled_now(&fence),
        "fence not signalled (timeline value 5, fence seqno 5)"
    );

    // Go even further, and confirm the wait still succeeds.
    timeline.inc(5);
    assert!(
        signalled_now(&fence),
        "fence not signalled (timeline value 10, fence seqno 5)"
    );

    let primes = primes_below(100);
    assert_eq!(primes.len(), 25);
    let mut seqno = 10;
    for prime in primes {
        seqno += prime;
        let fence_prime = timeline.create_fence(seqno).expect("create");
        timeline.inc(prime);
        assert!(
            signalled_now(&fence_prime),
            "fence not signalled during test of prime timeline increments"
        );
    }
    assert_eq!(timeline.value(), seqno);
}

// ports igt sw_sync: sync_busy_fork
//
// The child process becomes a thread. Upstream's child sleeps 1 s before advancing; 200 ms is
// enough to make the parent really block, and keeps the suite short. The parent's 2 s wait is
// upstream's.
#[test]
fn sync_busy_fork() {
    let timeline = Timeline::new("sync_busy_fork");
    let fence = timeline.create_fence(1).expect("create_fence(1)");

    assert!(
        !signalled_now(&fence),
        "fence signalled (it should not have been signalled yet)"
    );

    thread::scope(|s| {
        let timeline = &timeline;
        s.spawn(move || {
            thread::sleep(Duration::from_millis(200));
            // Advance timeline from 0 -> 1.
            timeline.inc(1);
        });

        fence
            .wait_timeout(Duration::from_millis(2000))
            .expect("fence not signalled (timeline value 1 fence seqno 1)");
    });
    assert_eq!(fence.status(), FenceStatus::Signaled);
}

// ports igt sw_sync: sync_busy_fork_unixsocket
//
// Upstream hands the timeline fd to a child process over a Unix socket (SCM_RIGHTS). There are
// no fds in-process: the equivalent is handing a `Timeline` handle (a clone: a new reference to
// the same timeline, as a passed fd is) to another thread over a channel. The parent's 2 s
// wait is upstream's.
#[test]
fn sync_busy_fork_unixsocket() {
    let timeline = Timeline::new("sync_busy_fork_unixsocket");
    let fence = timeline.create_fence(1).expect("create_fence(1)");
    let (tx, rx) = mpsc::channel::<Timeline>();

    let child = thread::spawn(move || {
        let socket_timeline = rx.recv().expect("receive the timeline");
        // Advance timeline from 0 -> 1.
        socket_timeline.inc(1);
    });

    assert!(
        !signalled_now(&fence),
        "fence signalled (it should not have been signalled yet)"
    );
    tx.send(timeline.clone()).expect("send the timeline");
    fence
        .wait_timeout(Duration::from_millis(2000))
        .expect("fence not signalled (timeline value 1 fence seqno 1)");

    child.join().expect("child");
    assert_eq!(timeline.value(), 1);
    assert_eq!(fence.status(), FenceStatus::Signaled);
}

// ports igt sw_sync: sync_merge_invalid
//
// Upstream merges with fds that are not sync_files (-1, a DRM device, a plain file) and
// expects failure. In-process there is no such thing: every `Fence` is a fence, and a merge
// cannot fail. The nearest inputs are fences with nothing to contribute — the stub, an
// already-signalled fence, nothing at all — and the port checks that merging with them gives a
// valid result: the one pending input itself, or an already-signalled fence.
#[test]
fn sync_merge_invalid() {
    let timeline = Timeline::new("sync_merge_invalid");
    let in_fence = timeline.create_fence(1).expect("create_fence(1)");

    // With the stub: the pending input itself.
    let fence_merge = merge(&[in_fence.clone(), Fence::stub()]);
    assert!(fence_merge.ptr_eq(&in_fence));
    assert_eq!(count_active(&fence_merge), 1);

    // With a fence born signalled on another timeline, in either order.
    let other = Timeline::new("sync_merge_invalid_other");
    let expired = other.create_fence(0).expect("create_fence(0)");
    assert!(expired.is_signaled());
    for fence_merge in [
        merge(&[in_fence.clone(), expired.clone()]),
        merge(&[expired.clone(), in_fence.clone()]),
    ] {
        assert!(fence_merge.ptr_eq(&in_fence));
        assert_eq!(leaves(&fence_merge).count(), 1);
    }

    // With a private signalled stub.
    let stub = Fence::signaled_stub(MonotonicTime::now());
    let fence_merge = merge(&[stub, in_fence.clone()]);
    assert!(fence_merge.ptr_eq(&in_fence));

    // Nothing pending at all: an already-signalled fence, never an error.
    for fence_merge in [
        merge(&[]),
        merge(&[Fence::stub(), Fence::stub()]),
        merge(&[expired.clone(), expired.clone()]),
    ] {
        assert!(signalled_now(&fence_merge));
        assert_eq!(fence_merge.status(), FenceStatus::Signaled);
        assert_eq!(count_active(&fence_merge), 0);
    }

    // The pending input is untouched by all of the above.
    assert!(!signalled_now(&in_fence));
    timeline.inc(1);
    assert!(signalled_now(&in_fence));
}

// ports igt sw_sync: sync_merge
#[test]
fn sync_merge() {
    let timeline = Timeline::new("sync_merge");
    let in_fence = [
        timeline.create_fence(1).expect("create"),
        timeline.create_fence(2).expect("create"),
        timeline.create_fence(3).expect("create"),
    ];

    let fence_merge = merge(&[in_fence[0].clone(), in_fence[1].clone()]);
    let fence_merge = merge(&[in_fence[2].clone(), fence_merge]);

    // All fences have one active point (even the merge).
    for (i, f) in in_fence.iter().enumerate() {
        assert_eq!(
            count_active(f),
            1,
            "in_fence[{i}] has too many active fences"
        );
    }
    assert_eq!(
        count_active(&fence_merge),
        1,
        "fence_merge has too many active fences"
    );

    // fence_merge is not signalled until the max of fences 0, 1, 2.
    timeline.inc(1);
    assert_eq!(
        count_signaled(&in_fence[0]),
        1,
        "in_fence[0] did not signal"
    );
    assert_eq!(
        count_active(&fence_merge),
        1,
        "fence_merge signalled too early"
    );

    timeline.inc(1);
    assert_eq!(
        count_signaled(&in_fence[1]),
        1,
        "in_fence[1] did not signal"
    );
    assert_eq!(
        count_active(&fence_merge),
        1,
        "fence_merge signalled too early"
    );

    timeline.inc(1);
    assert_eq!(
        count_signaled(&in_fence[2]),
        1,
        "in_fence[2] did not signal"
    );
    assert!(
        count_active(&fence_merge) == 0 && count_signaled(&fence_merge) == 1,
        "fence_merge did not signal"
    );
}

// ports igt sw_sync: sync_merge_same
#[test]
fn sync_merge_same() {
    let timeline = Timeline::new("sync_merge_same");
    let in_fence0 = timeline.create_fence(1).expect("create_fence(1)");
    let in_fence1 = merge(&[in_fence0.clone(), in_fence0.clone()]);

    assert_eq!(count_signaled(&in_fence0), 0, "fence signalled too early");
    assert_eq!(count_active(&in_fence1), 1);

    timeline.inc(1);
    assert_eq!(count_signaled(&in_fence0), 1, "fence did not signal");
    assert_eq!(count_signaled(&in_fence1), 1, "merged fence did not signal");
}

// ports igt sw_sync: sync_multi_timeline_wait
#[test]
fn sync_multi_timeline_wait() {
    let timeline = [
        Timeline::new("multi0"),
        Timeline::new("multi1"),
        Timeline::new("multi2"),
    ];
    let in_fence: Vec<Fence> = timeline
        .iter()
        .map(|t| t.create_fence(5).expect("create_fence(5)"))
        .collect();

    let fence_merge = merge(&[in_fence[0].clone(), in_fence[1].clone()]);
    let fence_merge = merge(&[in_fence[2].clone(), fence_merge]);

    // Confirm the fence is not signalled.
    assert_eq!(count_active(&fence_merge), 3, "fence signalled too early");
    assert!(
        !signalled_now(&fence_merge),
        "failure waiting on fence until timeout"
    );

    for (advanced, t) in timeline.iter().enumerate() {
        t.inc(5);
        let signaled = advanced + 1;
        assert!(
            count_active(&fence_merge) == 3 - signaled && count_signaled(&fence_merge) == signaled,
            "fence did not signal properly"
        );
    }

    // Confirm a wait succeeds.
    fence_merge
        .wait_timeout(Duration::from_millis(100))
        .expect("failure waiting on signalled fence");
}

/// igt's `MULTI_CONSUMER_ITERATIONS`.
const MULTI_CONSUMER_ITERATIONS: u32 = 1 << 12;

/// igt caps the consumer threads at 8 and at the number of online CPUs; at least 2 here so
/// the test always crosses threads.
fn multi_consumer_threads() -> u32 {
    let cpus = thread::available_parallelism().map_or(2, |n| n.get());
    cpus.clamp(2, 8) as u32
}

/// The consumer threads' wait bound. igt uses 1 s as a guard against hanging, not as a
/// performance bound; 10 s keeps it a hang guard on a shared, loaded machine with two CPUs.
const CONSUMER_WAIT: Duration = Duration::from_secs(10);

/// A counting semaphore (igt uses a POSIX `sem_t`) that a failing thread can poison, so the
/// producer stops instead of waiting for a post that will never come.
#[derive(Default)]
struct Semaphore {
    state: Mutex<(u32, bool)>,
    cv: Condvar,
}

impl Semaphore {
    fn post(&self) {
        self.state.lock().unwrap().0 += 1;
        self.cv.notify_one();
    }

    fn poison(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }

    /// Takes one count; `false` if the semaphore was poisoned.
    fn wait(&self) -> bool {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.1 {
                return false;
            }
            if st.0 > 0 {
                st.0 -= 1;
                return true;
            }
            st = self.cv.wait(st).unwrap();
        }
    }
}

// ports igt sw_sync: sync_multi_consumer
#[test]
fn sync_multi_consumer() {
    let threads = multi_consumer_threads();
    let timeline = Timeline::new("sync_multi_consumer");
    let counter = AtomicU32::new(0);
    let sem = Semaphore::default();

    let failures: Vec<String> = thread::scope(|s| {
        // Start the consumer threads.
        let handles: Vec<_> = (0..threads)
            .map(|thread_id| {
                let (timeline, counter, sem) = (&timeline, &counter, &sem);
                s.spawn(move || -> Result<(), String> {
                    let run = || {
                        for i in 0..MULTI_CONSUMER_ITERATIONS {
                            let next_point = i * threads + thread_id;
                            let fence = timeline
                                .create_fence(next_point)
                                .map_err(|e| format!("create {next_point}: {e}"))?;
                            fence
                                .wait_timeout(CONSUMER_WAIT)
                                .map_err(|e| format!("wait {next_point}: {e}"))?;
                            let seen = counter.load(Ordering::Acquire);
                            if seen != next_point {
                                return Err(format!("point {next_point} saw counter {seen}"));
                            }
                            sem.post();
                        }
                        Ok(())
                    };
                    let r = run();
                    if r.is_err() {
                        sem.poison();
                    }
                    r
                })
            })
            .collect();

        // Produce "content".
        for _ in 0..threads * MULTI_CONSUMER_ITERATIONS {
            if !sem.wait() {
                // A consumer failed: release the others (their waits end with ENOENT and
                // their counter checks fail) and report.
                timeline.close();
                break;
            }
            counter.fetch_add(1, Ordering::Release);
            timeline.inc(1);
        }

        handles
            .into_iter()
            .filter_map(|h| h.join().expect("consumer panicked").err())
            .collect()
    });

    timeline.close();
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "a sync thread reported failure"
    );
    assert_eq!(
        counter.load(Ordering::Acquire),
        threads * MULTI_CONSUMER_ITERATIONS
    );
}

// ports igt sw_sync: sync_multi_consumer_producer
#[test]
fn sync_multi_consumer_producer() {
    let threads = multi_consumer_threads();
    let timeline = Timeline::new("sync_multi_consumer_producer");
    let counter = AtomicU32::new(0);

    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|thread_id| {
                let (timeline, counter) = (&timeline, &counter);
                s.spawn(move || -> Result<(), String> {
                    let run = || {
                        for i in 0..MULTI_CONSUMER_ITERATIONS {
                            let next_point = i * threads + thread_id;
                            let fence = timeline
                                .create_fence(next_point)
                                .map_err(|e| format!("create {next_point}: {e}"))?;
                            fence
                                .wait_timeout(CONSUMER_WAIT)
                                .map_err(|e| format!("wait {next_point}: {e}"))?;
                            let seen = counter.fetch_add(1, Ordering::AcqRel);
                            if seen != next_point {
                                return Err(format!("point {next_point} saw counter {seen}"));
                            }
                            // Kick off the next thread.
                            timeline.inc(1);
                        }
                        Ok(())
                    };
                    let r = run();
                    if r.is_err() {
                        // Release the others rather than leave them to time out.
                        timeline.close();
                    }
                    r
                })
            })
            .collect();

        handles
            .into_iter()
            .filter_map(|h| h.join().expect("thread panicked").err())
            .collect()
    });

    timeline.close();
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "a sync thread reported failure"
    );
    assert_eq!(
        counter.load(Ordering::Acquire),
        threads * MULTI_CONSUMER_ITERATIONS
    );
}

// ports igt sw_sync: sync_multi_producer_single_consumer
//
// Runs for upstream's 1 s. Upstream's busy-polling producer asserts that no leaf reports
// status -1; ENOENT (-2), which the consumer's closing of its timeline gives the last pending
// point, is therefore not counted there. The port states that directly: an error is a failure
// unless it is ENOENT after the consumer timeline was closed.
#[test]
fn sync_multi_producer_single_consumer() {
    const N: u32 = 5;
    const RUN_FOR: Duration = Duration::from_secs(1);
    // timelines[0] is the consumer's, timelines[1 + id] producer id's.
    let timelines: Vec<Timeline> = std::iter::once(Timeline::new("cons"))
        .chain((0..N).map(|id| Timeline::new(format!("prod{id}"))))
        .collect();
    let counter = AtomicU32::new(0);

    let rounds = thread::scope(|s| {
        for id in 0..N {
            let (timelines, counter) = (&timelines, &counter);
            s.spawn(move || {
                let _guard = CloseOnPanic(timelines);
                let cons = &timelines[0];
                let own = &timelines[1 + id as usize];
                let mut seqno = 0u32;
                // Exit once the consumer closed its timeline.
                while let Ok(fence) = cons.create_fence(seqno) {
                    seqno += 1;
                    // Wait for the consumer, varying the means of waiting.
                    if !id.is_multiple_of(8) {
                        fence.wait_for_signal();
                    } else {
                        loop {
                            for leaf in leaves(&fence) {
                                if let FenceStatus::Failed(e) = leaf.status() {
                                    assert!(
                                        e == Errno::ENOENT && cons.is_closed(),
                                        "error {e} occurred on fence"
                                    );
                                }
                            }
                            if count_active(&fence) == 0 {
                                break;
                            }
                            // Upstream polls with an ioctl (a system call) per round.
                            thread::yield_now();
                        }
                    }
                    counter.fetch_add(1, Ordering::AcqRel);
                    own.inc(1);
                }
            });
        }

        // The consumer.
        let _guard = CloseOnPanic(&timelines);
        let (cons, prods) = (&timelines[0], &timelines[1..]);
        let start = Instant::now();
        let mut seqno = 0u32;
        while start.elapsed() < RUN_FOR {
            seqno += 1;
            let mut fence = prods[0].create_fence(seqno).expect("create");
            for prod in &prods[1..] {
                let tmp = prod.create_fence(seqno).expect("create");
                fence = merge(&[tmp, fence]);
            }

            // See an increment from every producer.
            fence.wait_for_signal();
            assert_eq!(fence.status(), FenceStatus::Signaled);
            assert_eq!(
                counter.load(Ordering::Acquire),
                N * seqno,
                "counter value mismatch"
            );

            // Release the producer threads.
            cons.inc(1);
        }
        cons.close();
        seqno
    });

    assert!(rounds > 0);
    // Each producer counts once per consumer point it got past: points 0..rounds for certain,
    // then point `rounds` (released by the last increment) unless the close beat its
    // creation, and point `rounds + 1` if it was created before the close signalled it.
    let count = counter.load(Ordering::Acquire);
    assert!(
        (N * rounds..=N * (rounds + 2)).contains(&count),
        "{count} increments after {rounds} rounds"
    );
}

// ports igt sw_sync: sync_expired_merge
//
// Runs for upstream's 1 s.
#[test]
fn sync_expired_merge() {
    const RUN_FOR: Duration = Duration::from_secs(1);
    let timeline = Timeline::new("sync_expired_merge");

    timeline.inc(100);
    let expired = timeline.create_fence(1).expect("create_fence(1)");
    assert!(signalled_now(&expired), "failure waiting for expired fence");

    drop(merge(&[expired.clone(), expired.clone()]));

    let start = Instant::now();
    let mut merges = 0u64;
    while start.elapsed() < RUN_FOR {
        let fence = merge(&[expired.clone(), expired.clone()]);
        fence
            .wait_timeout(Duration::ZERO)
            .expect("failure waiting on fence");
        fence.wait_for_signal();
        assert_eq!(fence.status(), FenceStatus::Signaled);
        merges += 1;
    }
    assert!(merges > 0);
    // Nothing was tracked for the expired point, however many merges referenced it.
    assert_eq!(timeline.pending_points(), 0);
    assert_eq!(expired.status(), FenceStatus::Signaled);
}

// ports igt sw_sync: sync_random_merge
#[test]
fn sync_random_merge() {
    const NBR_TIMELINE: usize = 32;
    const NBR_MERGE: usize = 1024;
    // Upstream seeds with time(NULL); a fixed seed keeps failures reproducible.
    let mut rng = Rand(0x0123_4567_89ab_cdef);

    let timeline_arr: Vec<Timeline> = (0..NBR_TIMELINE)
        .map(|i| Timeline::new(format!("random{i}")))
        .collect();
    let mut fence_map: [Option<u32>; NBR_TIMELINE] = [None; NBR_TIMELINE];

    let sync_pt = rng.rand();
    let mut fence = timeline_arr[0].create_fence(sync_pt).expect("create");
    fence_map[0] = Some(sync_pt);

    // Randomly create points on a fixed set of timelines, and merge them together.
    for _ in 0..NBR_MERGE {
        let timeline_offset = rng.rand() as usize % NBR_TIMELINE;
        let sync_pt = rng.rand();

        // Keep track of the latest point on each timeline.
        fence_map[timeline_offset] =
            Some(fence_map[timeline_offset].map_or(sync_pt, |m| m.max(sync_pt)));

        let tmpfence = timeline_arr[timeline_offset]
            .create_fence(sync_pt)
            .expect("create");
        fence = merge(&[tmpfence, fence]);
    }

    let size = fence_map.iter().flatten().count();
    assert_eq!(leaves(&fence).count(), size);

    // Trigger the merged fence.
    for (timeline, latest) in timeline_arr.iter().zip(fence_map) {
        if let Some(latest) = latest {
            assert!(
                !signalled_now(&fence),
                "failure waiting on fence until timeout"
            );
            // Increment the timeline to its latest point.
            timeline.inc(latest);
        }
    }

    // Check that the fence is triggered.
    fence
        .wait_timeout(Duration::from_millis(1))
        .expect("failure triggering fence");
}

// Not an igt subtest: this crate's promise (timeline.rs "Rules") that signalled points are
// forgotten, so a timeline advanced past a million points holds no memory for them.
#[test]
fn timeline_memory_after_million_points() {
    const POINTS: u32 = 1_000_000;
    let timeline = Timeline::new("million");
    let keep_at = [
        1,
        POINTS / 4,
        POINTS / 2,
        POINTS / 2 + 1,
        POINTS - 1,
        POINTS,
    ];
    let mut kept = Vec::new();

    for i in 1..=POINTS {
        let fence = timeline.create_fence(i).expect("create");
        if keep_at.contains(&i) {
            kept.push(fence);
        }
        // Every other handle is dropped here.
    }
    // A pending point lives until it signals even with no handle left (documented difference
    // from sw_sync, which unlinks it on release).
    assert_eq!(timeline.pending_points(), POINTS as usize);

    timeline.inc(POINTS / 2);
    assert_eq!(timeline.pending_points(), (POINTS - POINTS / 2) as usize);
    for f in &kept {
        assert_eq!(signalled_now(f), f.seqno() <= u64::from(POINTS / 2));
    }

    // Advance past all of them.
    timeline.inc(POINTS - POINTS / 2 + 1);
    assert_eq!(timeline.value(), POINTS + 1);
    assert_eq!(
        timeline.pending_points(),
        0,
        "signalled points are still held"
    );

    for f in &kept {
        f.wait_timeout(Duration::ZERO)
            .expect("kept fence signalled");
        f.wait_for_signal();
        assert_eq!(f.status(), FenceStatus::Signaled);
        assert!(f.timestamp().is_some());
    }

    // Points at or before the value are born signalled and never tracked.
    let old = timeline.create_fence(POINTS / 3).expect("create");
    assert!(old.is_signaled());
    assert_eq!(timeline.pending_points(), 0);
}
