//! Port of the Linux kernel's sync selftests (`tools/testing/selftests/sync/`: `sync_alloc.c`,
//! `sync_fence.c`, `sync_merge.c`, `sync_wait.c`, `sync_stress_parallelism.c`,
//! `sync_stress_consumer.c`, `sync_stress_merge.c`) to the in-process model.
//!
//! Mapping: a sw_sync timeline fd is a [`Timeline`]; a sync_file fd is a [`Fence`];
//! `sync_merge(a, b)` is [`merge`]`(&[a, b])`; the per-fence list of `SYNC_IOC_FILE_INFO` is
//! [`leaves`] (ACTIVE = a pending leaf, SIGNALED = a leaf signalled without error, ERROR = a
//! leaf signalled with an error); `sync_wait(fd, ms)` is [`Fence::wait_for_signal_timeout`] (`Ok` = the
//! kernel's `> 0`, `Err(TimedOut)` = its `0`) and `sync_wait(fd, -1)` is [`Fence::wait_for_signal`];
//! destroying a timeline is [`Timeline::close`] or dropping its last handle.
//!
//! Upstream forks one process per test; here each is a `#[test]`. Iteration counts are the
//! upstream ones. Where upstream relies on `rand()` a small deterministic PRNG stands in.

use dmabuf::fence::unwrap::{leaves, merge};
use dmabuf::{Errno, Error, Fence, FenceStatus, TimedOut, Timeline};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

/// `sync_wait(fd, 0)`: a zero timeout polls. `true` is the kernel's `> 0`, `false` its `0`.
fn signalled_now(f: &Fence) -> bool {
    match f.wait_for_signal_timeout(Duration::ZERO) {
        Ok(()) => true,
        Err(TimedOut) => false,
    }
}

/// `sync_fence_count_with_status(fd, FENCE_STATUS_ACTIVE)`.
fn count_active(f: &Fence) -> usize {
    leaves(f)
        .filter(|l| l.status() == FenceStatus::Pending)
        .count()
}

/// `sync_fence_count_with_status(fd, FENCE_STATUS_SIGNALED)`.
fn count_signaled(f: &Fence) -> usize {
    leaves(f)
        .filter(|l| l.status() == FenceStatus::Signaled)
        .count()
}

/// `sync_fence_count_with_status(fd, FENCE_STATUS_ERROR)`: leaves signalled with an error.
fn count_error(f: &Fence) -> usize {
    leaves(f)
        .filter(|l| matches!(l.status(), FenceStatus::Failed(_)))
        .count()
}

/// Upstream's `busy_wait_on_fence`: poll the leaf statuses until none is active, asserting no
/// leaf failed. Upstream polls with an ioctl per round (a system call); the yield plays that
/// part here, so a spinning poller cannot starve the threads it waits for on a machine with two CPUs.
fn busy_wait_on_fence(f: &Fence) {
    loop {
        assert_eq!(count_error(f), 0, "error occurred on fence {f}");
        if count_active(f) == 0 {
            break;
        }
        thread::yield_now();
    }
    assert!(
        f.is_signaled(),
        "every leaf signalled but the fence did not"
    );
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

/// A deterministic stand-in for libc `rand()` (SplitMix64, upper 31 bits), so failures
/// reproduce.
struct Rand(u64);

impl Rand {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..=RAND_MAX` (glibc: `i32::MAX`), as `rand()` returns.
    fn rand(&mut self) -> u32 {
        (self.next_u64() >> 33) as u32
    }
}

// ports sync selftests: test_alloc_timeline
#[test]
fn test_alloc_timeline() {
    let timeline = Timeline::new("test_alloc_timeline");
    // sw_sync_timeline_is_valid: a usable, open timeline at value 0.
    assert!(!timeline.is_closed());
    assert_eq!(timeline.value(), 0);
    assert_eq!(timeline.pending_points(), 0);
    // sw_sync_timeline_destroy
    timeline.close();
    assert!(timeline.is_closed());
}

// ports sync selftests: test_alloc_fence
#[test]
fn test_alloc_fence() {
    let timeline = Timeline::new("test_alloc_fence");
    let fence = timeline.create_fence(1).expect("failure allocating fence");
    // sw_sync_fence_is_valid: a live fence of this timeline, pending at point 1.
    assert_eq!(fence.context(), timeline.context());
    assert_eq!(fence.seqno(), 1);
    assert_eq!(fence.status(), FenceStatus::Pending);
    assert_eq!(timeline.pending_points(), 1);
    drop(fence);
    timeline.close();
}

// ports sync selftests: test_alloc_fence_negative
//
// Upstream creates a fence on fd -1 and expects failure. In-process there is no invalid handle
// to pass (a `Timeline` is always a real timeline), so the port is the one way creation can
// fail: on a closed (destroyed) timeline, with `Error::TimelineClosed` (the kernel's ENOENT).
#[test]
fn test_alloc_fence_negative() {
    let timeline = Timeline::new("test_alloc_fence_negative");
    timeline.close();
    let err = timeline
        .create_fence(1)
        .expect_err("success allocating a fence on a closed timeline");
    assert_eq!(err, Error::TimelineClosed);
    assert_eq!(err.errno(), Errno::ENOENT);
    assert_eq!(timeline.pending_points(), 0);
}

// ports sync selftests: test_fence_one_timeline_wait
#[test]
fn test_fence_one_timeline_wait() {
    let timeline = Timeline::new("test_fence_one_timeline_wait");
    let fence = timeline.create_fence(5).expect("failure allocating fence");

    // Wait on fence until timeout.
    assert!(!signalled_now(&fence), "signalled at value 0");

    // Advance timeline from 0 -> 1.
    timeline.inc(1);
    assert!(!signalled_now(&fence), "signalled at value 1");

    // Signal the fence.
    timeline.inc(4);
    assert!(signalled_now(&fence), "not signalled at value 5");

    // Go even further, and confirm wait still succeeds.
    timeline.inc(10);
    assert!(signalled_now(&fence), "not signalled at value 15");
    assert_eq!(fence.status(), FenceStatus::Signaled);
}

// ports sync selftests: test_fence_one_timeline_merge
#[test]
fn test_fence_one_timeline_merge() {
    let timeline = Timeline::new("test_fence_one_timeline_merge");
    // Create fences a, b, c and merge them all into d.
    let a = timeline.create_fence(1).expect("failure allocating a");
    let b = timeline.create_fence(2).expect("failure allocating b");
    let c = timeline.create_fence(3).expect("failure allocating c");

    let d = merge(&[b.clone(), a.clone()]);
    let d = merge(&[c.clone(), d]);

    // Every fence has one active point, even d: one timeline collapses to its latest point.
    // (Upstream checks `a` four times over; the evident intent, each of a, b, c, d, is ported.)
    assert_eq!(count_active(&a), 1, "a has too many active fences");
    assert_eq!(count_active(&b), 1, "b has too many active fences");
    assert_eq!(count_active(&c), 1, "c has too many active fences");
    assert_eq!(count_active(&d), 1, "d has too many active fences");

    // d is not signalled until the max of a, b, c.
    timeline.inc(1);
    assert_eq!(count_signaled(&a), 1, "a did not signal");
    assert_eq!(count_active(&d), 1, "d signalled too early");

    timeline.inc(1);
    assert_eq!(count_signaled(&b), 1, "b did not signal");
    assert_eq!(count_active(&d), 1, "d signalled too early");

    timeline.inc(1);
    assert_eq!(count_signaled(&c), 1, "c did not signal");
    assert!(
        count_active(&d) == 0 && count_signaled(&d) == 1,
        "d did not signal"
    );
    assert!(signalled_now(&d));
}

// ports sync selftests: test_fence_merge_same_fence
#[test]
fn test_fence_merge_same_fence() {
    let timeline = Timeline::new("test_fence_merge_same_fence");
    let fence = timeline.create_fence(5).expect("failure allocating fence");

    let merged = merge(&[fence.clone(), fence.clone()]);
    assert_eq!(
        leaves(&merged).count(),
        1,
        "the same fence twice is one leaf"
    );
    assert_eq!(count_signaled(&merged), 0, "fence signalled too early");

    timeline.inc(5);
    assert_eq!(count_signaled(&merged), 1, "fence did not signal");
    assert!(signalled_now(&merged));
}

// ports sync selftests: test_fence_multi_timeline_wait
#[test]
fn test_fence_multi_timeline_wait() {
    let timeline_a = Timeline::new("timelineA");
    let timeline_b = Timeline::new("timelineB");
    let timeline_c = Timeline::new("timelineC");

    let fence_a = timeline_a.create_fence(5).expect("fenceA");
    let fence_b = timeline_b.create_fence(5).expect("fenceB");
    let fence_c = timeline_c.create_fence(5).expect("fenceC");

    let merged = merge(&[fence_b, fence_a]);
    let merged = merge(&[fence_c, merged]);

    // Confirm the fence is not signalled.
    assert_eq!(count_active(&merged), 3, "fence signalled too early");
    assert!(!signalled_now(&merged), "wait did not time out");

    timeline_a.inc(5);
    assert!(
        count_active(&merged) == 2 && count_signaled(&merged) == 1,
        "fence did not signal properly"
    );

    timeline_b.inc(5);
    assert!(
        count_active(&merged) == 1 && count_signaled(&merged) == 2,
        "fence did not signal properly"
    );

    timeline_c.inc(5);
    assert!(
        count_active(&merged) == 0 && count_signaled(&merged) == 3,
        "fence did not signal properly"
    );

    // Confirm a wait succeeds.
    merged
        .wait_timeout(Duration::from_millis(100))
        .expect("failure waiting on signalled fence");
}

// ports sync selftests: test_stress_two_threads_shared_timeline
#[test]
fn test_stress_two_threads_shared_timeline() {
    const ITERATIONS: u32 = 1 << 16;
    let timelines = [Timeline::new("test_stress_two_threads_shared_timeline")];
    // Upstream hammers a plain int and relies on the fences for ordering. Relaxed load/store
    // (never a read-modify-write) keeps that: the count is only right if the timeline hands
    // the turn over strictly in order.
    let counter = AtomicU32::new(0);

    thread::scope(|s| {
        for thread_id in 0..2u32 {
            let (timelines, counter) = (&timelines, &counter);
            s.spawn(move || {
                let _guard = CloseOnPanic(timelines);
                let timeline = &timelines[0];
                for i in 0..ITERATIONS {
                    let point = i * 2 + thread_id;
                    let fence = timeline
                        .create_fence(point)
                        .expect("failure allocating fence");

                    // Wait on the prior thread to complete.
                    fence.wait_for_signal();
                    assert_eq!(
                        fence.status(),
                        FenceStatus::Signaled,
                        "problem occurred on prior thread"
                    );

                    // Confirm the previous thread's writes are visible, then increment.
                    let seen = counter.load(Ordering::Relaxed);
                    assert_eq!(seen, point, "counter got damaged");
                    counter.store(seen + 1, Ordering::Relaxed);

                    // Kick off the other thread.
                    timeline.inc(1);
                }
            });
        }
    });

    // The threads did not trample on one another.
    assert_eq!(counter.load(Ordering::Relaxed), ITERATIONS * 2);
    assert_eq!(timelines[0].value(), ITERATIONS * 2);
    assert_eq!(timelines[0].pending_points(), 0);
}

// ports sync selftests: test_consumer_stress_multi_producer_single_consumer
#[test]
fn test_consumer_stress_multi_producer_single_consumer() {
    const ITERATIONS: u32 = 1 << 12;
    const N: u32 = 5;
    // timelines[0] is the consumer's, timelines[1 + id] producer id's.
    let timelines: Vec<Timeline> = std::iter::once(Timeline::new("consumer"))
        .chain((0..N).map(|id| Timeline::new(format!("producer{id}"))))
        .collect();
    let counter = Mutex::new(0u32);

    thread::scope(|s| {
        for id in 0..N {
            let (timelines, counter) = (&timelines, &counter);
            s.spawn(move || {
                let _guard = CloseOnPanic(timelines);
                let consumer = &timelines[0];
                let own = &timelines[1 + id as usize];
                for i in 0..ITERATIONS {
                    let fence = consumer.create_fence(i).expect("failure creating fence");

                    // Wait for the consumer to finish, varying the means of waiting.
                    if !(ITERATIONS + id).is_multiple_of(8) {
                        fence.wait_for_signal();
                        assert_eq!(fence.status(), FenceStatus::Signaled);
                    } else {
                        busy_wait_on_fence(&fence);
                    }

                    // Every producer increments the counter; the consumer checks it.
                    *counter.lock().unwrap() += 1;
                    own.inc(1);
                }
            });
        }

        // The consumer runs here.
        let _guard = CloseOnPanic(&timelines);
        let (consumer, producers) = (&timelines[0], &timelines[1..]);
        for it in 1..=ITERATIONS {
            let mut fence = producers[0].create_fence(it).expect("create");
            for producer in &producers[1..] {
                let tmp = producer.create_fence(it).expect("create");
                fence = merge(&[tmp, fence]);
            }

            // See an increment from every producer, varying the means of waiting.
            if !ITERATIONS.is_multiple_of(8) {
                fence.wait_for_signal();
            } else {
                busy_wait_on_fence(&fence);
            }
            assert_eq!(*counter.lock().unwrap(), N * it, "counter value mismatch");

            // Release the producer threads.
            consumer.inc(1);
        }
    });

    assert_eq!(*counter.lock().unwrap(), N * ITERATIONS);
}

// ports sync selftests: test_merge_stress_random_merge
#[test]
fn test_merge_stress_random_merge() {
    const TIMELINE_COUNT: usize = 32;
    const MERGE_COUNT: usize = 1024 * 32;
    // Upstream seeds with time(NULL); a fixed seed keeps failures reproducible.
    let mut rng = Rand::new(0x5ee5_d5e1_f7e5_7001);

    let timelines: Vec<Timeline> = (0..TIMELINE_COUNT)
        .map(|i| Timeline::new(format!("merge{i}")))
        .collect();

    // Point 0 is born signalled, as upstream's first fence is.
    let mut fence = timelines[0]
        .create_fence(0)
        .expect("failure creating fence");
    let mut fence_map: [Option<u32>; TIMELINE_COUNT] = [None; TIMELINE_COUNT];
    fence_map[0] = Some(0);

    // Randomly create points on a fixed set of timelines and merge them together.
    for _ in 0..MERGE_COUNT {
        let offset = rng.rand() as usize % TIMELINE_COUNT;
        let point = rng.rand();

        // Keep track of the latest point on each timeline.
        fence_map[offset] = Some(fence_map[offset].map_or(point, |m| m.max(point)));

        let tmp = timelines[offset]
            .create_fence(point)
            .expect("failure creating fence");
        fence = merge(&[tmp, fence]);
    }

    let size = fence_map.iter().flatten().count();

    // Confirm the map matches the fence: one leaf per timeline used, at its latest point.
    assert_eq!(
        leaves(&fence).count(),
        size,
        "quantity of elements not matching"
    );
    for leaf in leaves(&fence) {
        let idx = timelines
            .iter()
            .position(|t| t.context() == leaf.context())
            .expect("a leaf from a foreign context");
        assert_eq!(Some(leaf.seqno() as u32), fence_map[idx]);
    }

    // Trigger the merged fence.
    for (timeline, latest) in timelines.iter().zip(fence_map) {
        if let Some(latest) = latest {
            assert!(
                !signalled_now(&fence),
                "signalled before every timeline advanced"
            );
            // Increment the timeline to its latest point.
            timeline.inc(latest);
        }
    }

    // Check that the fence is triggered.
    assert!(signalled_now(&fence), "failure triggering fence");
    assert!(timelines.iter().all(|t| t.pending_points() == 0));
}
