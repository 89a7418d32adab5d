//! What the ports of igt's syncobj tests share: igt's helpers (`syncobj_attach_sw_sync`,
//! `syncobj_trigger`, `syncobj_wait_err`, its test flags) over the in-process model, with a
//! library [`Timeline`] where igt uses sw_sync.
#![allow(dead_code, unused_macros)] // each port uses its own part

use dmabuf::syncobj::{IfUnsubmitted, Point, Syncobj, Wait, WaitFlags};
use dmabuf::{Errno, SyncFile, Timeline};
use std::time::Duration;

/// igt's `SHORT_TIME_NSEC`: a tenth of a second.
pub const SHORT_TIME: Duration = Duration::from_millis(100);

/// igt's test flags: how to wait.
pub const WAIT_FOR_SUBMIT: u32 = 1 << 0;
pub const WAIT_ALL: u32 = 1 << 1;
pub const WAIT_AVAILABLE: u32 = 1 << 2;
/// igt's test flags: what state the syncobjs are in.
pub const WAIT_UNSUBMITTED: u32 = 1 << 3;
pub const WAIT_SUBMITTED: u32 = 1 << 4;
pub const WAIT_SIGNALED: u32 = 1 << 5;

/// What a wait answers, as igt compares it: `Ok` for 0, else the errno.
pub type Expect = Result<(), Errno>;
pub const OK: Expect = Ok(());
pub const EINVAL: Expect = Err(Errno::EINVAL);
pub const ETIME: Expect = Err(Errno::ETIME);

/// `flags_for_test_flags()`: the wait's flags, and whether it is a wait for all.
pub fn flags_for(test_flags: u32) -> (WaitFlags, bool) {
    let mut flags = WaitFlags::NONE;
    if test_flags & WAIT_FOR_SUBMIT != 0 {
        flags |= WaitFlags::FOR_SUBMIT;
    }
    if test_flags & WAIT_AVAILABLE != 0 {
        flags |= WaitFlags::AVAILABLE;
    }
    (flags, test_flags & WAIT_ALL != 0)
}

/// igt's time limits: 0 (a poll), `short_timeout()`, and `UINT64_MAX` (none).
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Poll,
    Short,
    Forever,
}

/// `syncobj_timeline_wait_err()` (and `syncobj_wait_err()` with every point 0).
pub fn wait_err(points: &[(&Syncobj, Point)], test_flags: u32, limit: Limit) -> Expect {
    wait_first(points, test_flags, limit).map(drop)
}

/// The wait of [`wait_err`], answering `first_signaled` for a wait for any.
pub fn wait_first(
    points: &[(&Syncobj, Point)],
    test_flags: u32,
    limit: Limit,
) -> Result<usize, Errno> {
    let (flags, all) = flags_for(test_flags);
    let wait = Wait::new(points.iter().copied()).flags(flags);
    let timeout = match limit {
        Limit::Poll => Some(Duration::ZERO),
        Limit::Short => Some(SHORT_TIME),
        Limit::Forever => None,
    };
    let answer = if all {
        wait.all(timeout).map(|()| 0)
    } else {
        wait.any(timeout)
    };
    answer.map_err(|e| e.errno())
}

/// Every syncobj at point 0: a binary wait.
pub fn binary(syncobjs: &[&Syncobj]) -> Vec<(Syncobj, Point)> {
    syncobjs
        .iter()
        .map(|s| ((*s).clone(), Point::BINARY))
        .collect()
}

/// Borrows owned pairs for [`wait_err`].
pub fn pairs(points: &[(Syncobj, Point)]) -> Vec<(&Syncobj, Point)> {
    points.iter().map(|(s, p)| (s, *p)).collect()
}

/// `syncobj_attach_sw_sync()`: a new timeline's point 1 becomes `point` of the syncobj (for
/// point 0 imported as a sync file; else imported into a temporary binary syncobj and
/// transferred); the timeline is returned.
pub fn attach_sw_sync(s: &Syncobj, point: Point) -> Timeline {
    let timeline = Timeline::new("igt");
    let fence = timeline.create_fence(1).expect("open timeline");
    if point.is_binary() {
        s.import_sync_file(&SyncFile::new(fence));
    } else {
        binary_to_timeline(s, point, &SyncFile::new(fence));
    }
    timeline
}

/// `syncobj_import_sync_file()` into a fresh syncobj, then `syncobj_binary_to_timeline()`.
pub fn binary_to_timeline(timeline: &Syncobj, point: Point, file: &SyncFile) {
    let tmp = Syncobj::new();
    tmp.import_sync_file(file);
    Syncobj::transfer(&tmp, Point::BINARY, timeline, point, IfUnsubmitted::Fail)
        .expect("the binary syncobj has a fence");
}

/// `syncobj_trigger()`: attach a sw_sync point and signal it.
pub fn trigger(s: &Syncobj, point: Point) {
    attach_sw_sync(s, point).inc(1);
}

/// Runs `f` after `delay` on another thread (igt's `set_timer()` with `SIGEV_THREAD`).
pub fn after(delay: Duration, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        f();
    })
}

/// igt's `STAGE_*` of `test_wait_complex()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Unsubmitted,
    Submitted,
    Signaled,
    Reset,
    Resubmitted,
}

/// The numbers 0-7, each four times, shuffled (igt's `shuffled_0_7_x4`).
pub const SHUFFLED_0_7_X4: [usize; 32] = [
    2, 0, 6, 1, 1, 4, 5, 2, 0, 7, 1, 7, 6, 3, 4, 5, 0, 2, 7, 3, 5, 4, 0, 6, 7, 3, 2, 5, 6, 1, 4, 3,
];

/// `test_single_wait()`: one syncobj at `point`, unsubmitted, submitted or signalled, waited
/// for with a poll, a short limit and (unless a timeout is expected) none.
pub fn single_wait(point: Point, test_flags: u32, expect: Expect) {
    let s = Syncobj::new();
    let mut timeline = None;
    if test_flags & (WAIT_SUBMITTED | WAIT_SIGNALED) != 0 {
        timeline = Some(attach_sw_sync(&s, point));
    }
    if test_flags & WAIT_SIGNALED != 0 {
        timeline.as_ref().expect("attached").inc(1);
    }
    let points = [(&s, point)];
    assert_eq!(wait_err(&points, test_flags, Limit::Poll), expect);
    assert_eq!(wait_err(&points, test_flags, Limit::Short), expect);
    if expect != ETIME {
        assert_eq!(wait_err(&points, test_flags, Limit::Forever), expect);
    }
}

/// `test_multi_wait()`: syncobjs at `points`, the first in the lowest state of `test_flags`
/// and each next one in the next state named, the rest in the last.
pub fn multi_wait(points: &[Point], test_flags: u32, expect: Expect) {
    let syncobjs: Vec<Syncobj> = points.iter().map(|_| Syncobj::new()).collect();
    let mut states = test_flags & (WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED);
    // Kept open: closing a sw_sync timeline signals its points (with ENOENT).
    let mut timelines = Vec::new();
    for (s, point) in syncobjs.iter().zip(points) {
        let state = states & states.wrapping_neg();
        if states & !state != 0 {
            states &= !state;
        }
        if state & (WAIT_SUBMITTED | WAIT_SIGNALED) != 0 {
            let timeline = attach_sw_sync(s, *point);
            if state & WAIT_SIGNALED != 0 {
                timeline.inc(1);
            }
            timelines.push(timeline);
        }
    }
    let waited: Vec<(&Syncobj, Point)> = syncobjs.iter().zip(points.iter().copied()).collect();
    assert_eq!(wait_err(&waited, test_flags, Limit::Poll), expect);
    assert_eq!(wait_err(&waited, test_flags, Limit::Short), expect);
    if expect != ETIME {
        assert_eq!(wait_err(&waited, test_flags, Limit::Forever), expect);
    }
}

/// `test_wait_delayed_signal()`: the point is triggered (for submit: attached and signalled)
/// a short time after the wait starts, which waits twice as long.
pub fn wait_delayed_signal(point: Point, test_flags: u32) {
    let s = Syncobj::new();
    let delayed = if test_flags & WAIT_FOR_SUBMIT != 0 {
        let s = s.clone();
        after(SHORT_TIME, move || trigger(&s, point))
    } else {
        let timeline = attach_sw_sync(&s, point);
        after(SHORT_TIME, move || timeline.inc(1))
    };
    let (flags, all) = flags_for(test_flags);
    let wait = Wait::new([(&s, point)]).flags(flags);
    let answer = if all {
        wait.all(Some(SHORT_TIME * 2))
    } else {
        wait.any(Some(SHORT_TIME * 2)).map(drop)
    };
    assert_eq!(answer, Ok(()));
    delayed.join().expect("trigger");
}

/// `test_reset_unsignaled()`.
pub fn reset_unsignaled(point: Point) {
    let s = Syncobj::new();
    assert_eq!(wait_err(&[(&s, point)], 0, Limit::Poll), EINVAL);
    s.reset();
    assert_eq!(wait_err(&[(&s, point)], 0, Limit::Poll), EINVAL);
}

/// `test_reset_signaled()`.
pub fn reset_signaled(point: Point) {
    let s = Syncobj::new();
    trigger(&s, point);
    assert_eq!(wait_err(&[(&s, point)], 0, Limit::Poll), OK);
    s.reset();
    assert_eq!(wait_err(&[(&s, point)], 0, Limit::Poll), EINVAL);
}

/// `test_reset_multiple_signaled()`.
pub fn reset_multiple_signaled(point: Point) {
    let syncobjs: Vec<Syncobj> = (0..3).map(|_| Syncobj::new()).collect();
    syncobjs.iter().for_each(|s| trigger(s, point));
    let waited: Vec<(&Syncobj, Point)> = syncobjs.iter().map(|s| (s, point)).collect();
    assert_eq!(wait_err(&waited, 0, Limit::Poll), OK);
    syncobjs.iter().for_each(Syncobj::reset);
    for s in &syncobjs {
        assert_eq!(wait_err(&[(s, point)], 0, Limit::Poll), EINVAL);
    }
}

/// `test_reset_during_wait_for_submit()`: a reset in the middle of a wait for submit is a
/// no-op for it; the trigger that follows completes it.
pub fn reset_during_wait_for_submit(point: Point) {
    let s = Syncobj::new();
    let delayed = {
        let s = s.clone();
        after(SHORT_TIME, move || {
            s.reset();
            trigger(&s, point);
        })
    };
    let wait = Wait::new([(&s, point)]).flags(WaitFlags::FOR_SUBMIT);
    assert_eq!(wait.all(Some(SHORT_TIME * 2)), Ok(()));
    delayed.join().expect("reset and trigger");
}

/// A thread waiting for `point` of the first two syncobjs (igt's `wait_thread_func()`),
/// answering `first_signaled` for a wait for any.
fn wait_for_two(
    syncobjs: &[Syncobj],
    point: Point,
    test_flags: u32,
    timeout: Duration,
) -> std::thread::JoinHandle<Result<Option<usize>, dmabuf::SyncobjWaitError>> {
    let pair = [syncobjs[0].clone(), syncobjs[1].clone()];
    std::thread::spawn(move || {
        let (flags, all) = flags_for(test_flags);
        let wait = Wait::new([(&pair[0], point), (&pair[1], point)]).flags(flags);
        if all {
            wait.all(Some(timeout)).map(|()| None)
        } else {
            wait.any(Some(timeout)).map(Some)
        }
    })
}

/// `test_wait_snapshot()`: a waiter for two points; the first is triggered (for all) or
/// submitted (for submit), reset and submitted again with a fence that never signals; the
/// second then completes the wait, which must not have picked up the new fence.
pub fn wait_snapshot(point: Point, test_flags: u32) {
    let syncobjs = [Syncobj::new(), Syncobj::new()];
    let mut timelines: [Option<Timeline>; 3] = [None, None, None];
    if test_flags & WAIT_FOR_SUBMIT == 0 {
        timelines[0] = Some(attach_sw_sync(&syncobjs[0], point));
        timelines[1] = Some(attach_sw_sync(&syncobjs[1], point));
    }
    let waiter = wait_for_two(&syncobjs, point, test_flags, SHORT_TIME);
    std::thread::sleep(SHORT_TIME / 5);
    // Try to fool the wait by triggering, or partly triggering, the first point.
    if test_flags & WAIT_ALL != 0 {
        match &timelines[0] {
            None => trigger(&syncobjs[0], point),
            Some(t) => t.inc(1),
        }
    } else if test_flags & WAIT_FOR_SUBMIT != 0 {
        timelines[0] = Some(attach_sw_sync(&syncobjs[0], point));
    }
    std::thread::sleep(SHORT_TIME / 5);
    syncobjs[0].reset();
    std::thread::sleep(SHORT_TIME / 5);
    // Submitted so that it never signals: a wait that picked it up would time out.
    timelines[2] = Some(attach_sw_sync(&syncobjs[0], point));
    std::thread::sleep(SHORT_TIME / 5);
    match &timelines[1] {
        None => trigger(&syncobjs[1], point),
        Some(t) => t.inc(1),
    }
    let first = waiter.join().expect("waiter").expect("the wait completes");
    if test_flags & WAIT_ALL == 0 {
        assert_eq!(first, Some(1));
    }
}

/// `test_wait_complex()`: eight syncobjs go through their stages in a shuffled order while a
/// thread waits for the first two (as upstream: `count_handles = 2`).
pub fn wait_complex(point: Point, test_flags: u32) {
    let syncobjs: Vec<Syncobj> = (0..8).map(|_| Syncobj::new()).collect();
    let mut stage = [Stage::Unsubmitted; 8];
    let mut timelines: Vec<Option<Timeline>> = if test_flags & WAIT_FOR_SUBMIT != 0 {
        (0..8).map(|_| None).collect()
    } else {
        syncobjs
            .iter()
            .map(|s| Some(attach_sw_sync(s, point)))
            .collect()
    };
    let waiter = wait_for_two(&syncobjs, point, test_flags, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(20));
    let mut first_signaled = None;
    let mut num_signaled = 0;
    for i in SHUFFLED_0_7_X4 {
        let now = stage[i];
        stage[i] = match now {
            Stage::Unsubmitted => {
                if test_flags & WAIT_FOR_SUBMIT == 0 {
                    assert!(timelines[i].is_some(), "attached up front");
                } else {
                    timelines[i] = Some(attach_sw_sync(&syncobjs[i], point));
                }
                Stage::Submitted
            }
            Stage::Submitted => {
                timelines[i].take().expect("submitted").inc(1);
                first_signaled.get_or_insert(i);
                num_signaled += 1;
                Stage::Signaled
            }
            Stage::Signaled => {
                syncobjs[i].reset();
                Stage::Reset
            }
            Stage::Reset => {
                timelines[i] = Some(attach_sw_sync(&syncobjs[i], point));
                Stage::Resubmitted
            }
            Stage::Resubmitted => panic!("should not reach this stage"),
        };
        if (test_flags & WAIT_ALL != 0 && num_signaled == syncobjs.len())
            || (test_flags & WAIT_ALL == 0 && num_signaled > 0)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = waiter.join().expect("waiter").expect("the wait completes");
    if test_flags & WAIT_ALL != 0 {
        assert_eq!(num_signaled, syncobjs.len());
    } else {
        assert_eq!(num_signaled, 1);
        assert_eq!(first, first_signaled);
    }
}

/// One test per igt subtest of `test_single_wait()` at `$point`: `name: test flags =>
/// expected answer;`.
macro_rules! single_wait_subtests {
    ($point:expr; $($name:ident: $flags:expr => $expect:expr;)*) => {$(
        #[test]
        fn $name() {
            support::single_wait($point, $flags, $expect);
        }
    )*};
}

/// One test per igt subtest of `test_multi_wait()` over `$points`.
macro_rules! multi_wait_subtests {
    ($points:expr; $($name:ident: $flags:expr => $expect:expr;)*) => {$(
        #[test]
        fn $name() {
            support::multi_wait(&$points, $flags, $expect);
        }
    )*};
}

/// The subtests `syncobj_wait` and `syncobj_timeline` share, as tests of syncobjs at
/// `$point`, named after them: the delayed signals, the resets, the snapshots and the complex
/// waits.
macro_rules! shared_subtests {
    ($point:expr) => {
        #[test]
        fn wait_delayed_signal() {
            support::wait_delayed_signal($point, 0);
        }
        #[test]
        fn wait_for_submit_delayed_submit() {
            support::wait_delayed_signal($point, WAIT_FOR_SUBMIT);
        }
        #[test]
        fn wait_all_delayed_signal() {
            support::wait_delayed_signal($point, WAIT_ALL);
        }
        #[test]
        fn wait_all_for_submit_delayed_submit() {
            support::wait_delayed_signal($point, WAIT_ALL | WAIT_FOR_SUBMIT);
        }
        #[test]
        fn reset_unsignaled() {
            support::reset_unsignaled($point);
        }
        #[test]
        fn reset_signaled() {
            support::reset_signaled($point);
        }
        #[test]
        fn reset_multiple_signaled() {
            support::reset_multiple_signaled($point);
        }
        #[test]
        fn reset_during_wait_for_submit() {
            support::reset_during_wait_for_submit($point);
        }
        #[test]
        fn wait_any_snapshot() {
            support::wait_snapshot($point, 0);
        }
        #[test]
        fn wait_all_snapshot() {
            support::wait_snapshot($point, WAIT_ALL);
        }
        #[test]
        fn wait_for_submit_snapshot() {
            support::wait_snapshot($point, WAIT_FOR_SUBMIT);
        }
        #[test]
        fn wait_all_for_submit_snapshot() {
            support::wait_snapshot($point, WAIT_ALL | WAIT_FOR_SUBMIT);
        }
        #[test]
        fn wait_any_complex() {
            support::wait_complex($point, 0);
        }
        #[test]
        fn wait_all_complex() {
            support::wait_complex($point, WAIT_ALL);
        }
        #[test]
        fn wait_for_submit_complex() {
            support::wait_complex($point, WAIT_FOR_SUBMIT);
        }
        #[test]
        fn wait_all_for_submit_complex() {
            support::wait_complex($point, WAIT_ALL | WAIT_FOR_SUBMIT);
        }
    };
}
