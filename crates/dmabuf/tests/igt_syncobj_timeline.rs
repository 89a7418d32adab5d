//! Port of igt-gpu-tools' `tests/syncobj_timeline.c` (timeline sync objects: points, host
//! signals, queries, transfers and `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT` in every flag
//! combination) to the in-process model.
//!
//! Mapping: as in `igt_syncobj_wait.rs`, and: `syncobj_timeline_wait_err()` is a [`Wait`]
//! over `(syncobj, point)` pairs (with `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE` as
//! [`WaitFlags::AVAILABLE`]); `syncobj_timeline_signal()` is [`Syncobj::timeline_signal`],
//! `syncobj_timeline_query()` [`Syncobj::last_signaled_point`], `syncobj_binary_to_timeline()`
//! and `syncobj_timeline_to_timeline()` [`Syncobj::transfer`]. Where igt draws random
//! numbers (`rand()`), fixed ones or a small deterministic generator stand in.
//!
//! Expectations that differ from the igt source: `invalid-single-wait-available-unsubmitted`,
//! `invalid-single-wait-all-available-unsubmitted` and the eight
//! `invalid-multi-wait-[all-]available-unsubmitted*` subtests expect `EINVAL`, which kernels
//! before the 2023 fix "drm/syncobj: fix DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE" answered. Since
//! it (Linux 6.6, and 6.12, which the real-kernel tests run), a point without a fence is
//! waited for under WAIT_AVAILABLE as under WAIT_FOR_SUBMIT: the waits time out (`ETIME`),
//! or succeed for "any" when another point is available. The ports assert that.
//!
//! Not ported:
//! * `invalid-wait-illegal-handle`, `invalid-query-zero-handles`,
//!   `invalid-query-illegal-handle`, `invalid-query-one-illegal-handle`,
//!   `invalid-query-bad-pad`, `invalid-signal-zero-handles`, `invalid-signal-illegal-handle`,
//!   `invalid-signal-illegal-point`, `invalid-signal-one-illegal-handle`,
//!   `invalid-signal-bad-pad`, `invalid-transfer-illegal-handle`, `invalid-transfer-bad-pad`:
//!   they test the ioctls' handles, handle arrays, `flags` and padding fields, which belong to
//!   the kernel layer; a [`Syncobj`] is always a valid object and query and signal take one.
//! * `wait-any-interrupted`, `wait-all-interrupted`: they interrupt the wait with signals;
//!   the model's waits are not interruptible.
#[path = "syncobj_support/mod.rs"]
#[macro_use]
mod support;

use dmabuf::syncobj::{Point, Syncobj, WaitFlags};
use dmabuf::{Errno, Error, SyncFile, Timeline};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::*;

// ports igt syncobj_timeline: invalid-wait-bad-flags
#[test]
fn invalid_wait_bad_flags() {
    let err = WaitFlags::from_bits(0xdead_beef).unwrap_err();
    assert_eq!(err, Error::InvalidFlags(0xdead_beef));
    assert_eq!(err.errno(), Errno::EINVAL);
}

// ports igt syncobj_timeline: invalid-wait-zero-handles
#[test]
fn invalid_wait_zero_handles() {
    assert_eq!(wait_err(&[], 0, Limit::Poll), EINVAL);
}

// ports igt syncobj_timeline: signal-array
#[test]
fn signal_array() {
    let syncobjs: Vec<Syncobj> = (0..4).map(|_| Syncobj::new()).collect();
    let points = [Point(1), Point(1), Point(1), Point(0)];
    for (s, p) in syncobjs.iter().zip(points) {
        s.timeline_signal(p);
    }
    let waited: Vec<(&Syncobj, Point)> = syncobjs.iter().zip(points).take(3).collect();
    assert_eq!(wait_err(&waited, 0, Limit::Poll), OK);
    assert_eq!(
        wait_err(&[(&syncobjs[3], Point::BINARY)], 0, Limit::Poll),
        OK
    );
}

// ports igt syncobj_timeline: invalid-transfer-non-existent-point
#[test]
fn invalid_transfer_non_existent_point() {
    let s = Syncobj::new();
    s.timeline_signal(Point(63));
    // Point 63 is the last one, so it exists after all: the transfer succeeds.
    Syncobj::transfer(&s, Point(63), &s, Point(63 + 11), Default::default()).expect("transfer");
}

// ports igt syncobj_timeline: transfer-timeline-point
#[test]
fn transfer_timeline_point() {
    let timeline = Timeline::new("igt");
    let s = Syncobj::new();
    binary_to_timeline(
        &s,
        Point(1),
        &SyncFile::new(timeline.create_fence(1).unwrap()),
    );
    assert_eq!(s.last_signaled_point(), Point(0));
    assert_eq!(wait_err(&[(&s, Point(1))], WAIT_ALL, Limit::Poll), ETIME);
    timeline.inc(1);
    assert_eq!(s.last_signaled_point(), Point(1));
    assert_eq!(wait_err(&[(&s, Point(1))], WAIT_ALL, Limit::Poll), OK);
    s.timeline_signal(Point(2));
    Syncobj::transfer(&s, Point(2), &s, Point(3), Default::default()).expect("transfer");
    assert_eq!(s.last_signaled_point(), Point(3));
}

single_wait_subtests! {
    Point(1);
    // ports igt syncobj_timeline: invalid-single-wait-unsubmitted
    invalid_single_wait_unsubmitted: WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_timeline: etime-single-wait-for-submit-unsubmitted
    etime_single_wait_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-single-wait-all-unsubmitted
    invalid_single_wait_all_unsubmitted: WAIT_ALL | WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_timeline: etime-single-wait-all-for-submit-unsubmitted
    etime_single_wait_all_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-single-wait-available-unsubmitted
    invalid_single_wait_available_unsubmitted: WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: etime-single-wait-for-submit-available-unsubmitted
    etime_single_wait_for_submit_available_unsubmitted: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-single-wait-all-available-unsubmitted
    invalid_single_wait_all_available_unsubmitted: WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: etime-single-wait-all-for-submit-available-unsubmitted
    etime_single_wait_all_for_submit_available_unsubmitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-single-wait-submitted
    etime_single_wait_submitted: WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-single-wait-for-submit-submitted
    etime_single_wait_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-single-wait-all-submitted
    etime_single_wait_all_submitted: WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-single-wait-all-for-submit-submitted
    etime_single_wait_all_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: single-wait-available-submitted
    single_wait_available_submitted: WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: single-wait-for-submit-available-submitted
    single_wait_for_submit_available_submitted: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: single-wait-all-available-submitted
    single_wait_all_available_submitted: WAIT_ALL | WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: single-wait-all-for-submit-available-submitted
    single_wait_all_for_submit_available_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: single-wait-signaled
    single_wait_signaled: WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-for-submit-signaled
    single_wait_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-all-signaled
    single_wait_all_signaled: WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-all-for-submit-signaled
    single_wait_all_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-available-signaled
    single_wait_available_signaled: WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-for-submit-available-signaled
    single_wait_for_submit_available_signaled: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-all-available-signaled
    single_wait_all_available_signaled: WAIT_ALL | WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: single-wait-all-for-submit-available-signaled
    single_wait_all_for_submit_available_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_SIGNALED => OK;

}

// ports igt syncobj_timeline: wait-delayed-signal
// ports igt syncobj_timeline: wait-for-submit-delayed-submit
// ports igt syncobj_timeline: wait-all-delayed-signal
// ports igt syncobj_timeline: wait-all-for-submit-delayed-submit
// ports igt syncobj_timeline: reset-unsignaled
// ports igt syncobj_timeline: reset-signaled
// ports igt syncobj_timeline: reset-multiple-signaled
// ports igt syncobj_timeline: reset-during-wait-for-submit
// ports igt syncobj_timeline: wait-any-snapshot
// ports igt syncobj_timeline: wait-all-snapshot
// ports igt syncobj_timeline: wait-for-submit-snapshot
// ports igt syncobj_timeline: wait-all-for-submit-snapshot
// ports igt syncobj_timeline: wait-any-complex
// ports igt syncobj_timeline: wait-all-complex
// ports igt syncobj_timeline: wait-for-submit-complex
// ports igt syncobj_timeline: wait-all-for-submit-complex
shared_subtests!(Point(1));

// ports igt syncobj_timeline: signal
#[test]
fn signal() {
    let s = Syncobj::new();
    let points = [(&s, Point(1))];
    assert_eq!(wait_err(&points, 0, Limit::Poll), EINVAL);
    assert_eq!(wait_err(&points, WAIT_FOR_SUBMIT, Limit::Poll), ETIME);
    s.timeline_signal(Point(1));
    assert_eq!(wait_err(&points, 0, Limit::Poll), OK);
    assert_eq!(wait_err(&points, WAIT_FOR_SUBMIT, Limit::Poll), OK);
}

// ports igt syncobj_timeline: signal-point-0
#[test]
fn signal_point_0() {
    let s = Syncobj::new();
    s.timeline_signal(Point(0));
    assert_eq!(wait_err(&[(&s, Point(0))], 0, Limit::Poll), OK);
    // The binary wait (DRM_IOCTL_SYNCOBJ_WAIT) is the same wait at point 0.
    assert_eq!(
        wait_err(&[(&s, Point::BINARY)], WAIT_FOR_SUBMIT, Limit::Poll),
        OK
    );
}

/// igt's points for `test_multi_wait()`: three timeline points drawn from `1..=1000` (fixed
/// here) and two binary syncobjs.
const MULTI_POINTS: [Point; 5] = [Point(384), Point(0), Point(887), Point(778), Point(0)];

multi_wait_subtests! {
    MULTI_POINTS;
    // ports igt syncobj_timeline: invalid-multi-wait-unsubmitted
    invalid_multi_wait_unsubmitted: WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_timeline: etime-multi-wait-for-submit-unsubmitted
    etime_multi_wait_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-all-unsubmitted
    invalid_multi_wait_all_unsubmitted: WAIT_ALL | WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-unsubmitted
    etime_multi_wait_all_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-available-unsubmitted
    invalid_multi_wait_available_unsubmitted: WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: etime-multi-wait-for-submit-available-unsubmitted
    etime_multi_wait_for_submit_available_unsubmitted: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-all-available-unsubmitted
    invalid_multi_wait_all_available_unsubmitted: WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-available-unsubmitted
    etime_multi_wait_all_for_submit_available_unsubmitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-multi-wait-submitted
    etime_multi_wait_submitted: WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-multi-wait-for-submit-submitted
    etime_multi_wait_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-multi-wait-all-submitted
    etime_multi_wait_all_submitted: WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-submitted
    etime_multi_wait_all_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: multi-wait-available-submitted
    multi_wait_available_submitted: WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: multi-wait-for-submit-available-submitted
    multi_wait_for_submit_available_submitted: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: multi-wait-all-available-submitted
    multi_wait_all_available_submitted: WAIT_ALL | WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: multi-wait-all-for-submit-available-submitted
    multi_wait_all_for_submit_available_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-unsubmitted-submitted
    invalid_multi_wait_unsubmitted_submitted: WAIT_UNSUBMITTED | WAIT_SUBMITTED => EINVAL;
    // ports igt syncobj_timeline: etime-multi-wait-for-submit-unsubmitted-submitted
    etime_multi_wait_for_submit_unsubmitted_submitted: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-all-unsubmitted-submitted
    invalid_multi_wait_all_unsubmitted_submitted: WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED => EINVAL;
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-unsubmitted-submitted
    etime_multi_wait_all_for_submit_unsubmitted_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-available-unsubmitted-submitted
    invalid_multi_wait_available_unsubmitted_submitted: WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED => OK; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: multi-wait-for-submit-available-unsubmitted-submitted
    multi_wait_for_submit_available_unsubmitted_submitted: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-all-available-unsubmitted-submitted
    invalid_multi_wait_all_available_unsubmitted_submitted: WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED => ETIME; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-available-unsubmitted-submitted
    etime_multi_wait_all_for_submit_available_unsubmitted_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_timeline: multi-wait-signaled
    multi_wait_signaled: WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-for-submit-signaled
    multi_wait_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-all-signaled
    multi_wait_all_signaled: WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-all-for-submit-signaled
    multi_wait_all_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-available-signaled
    multi_wait_available_signaled: WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-for-submit-available-signaled
    multi_wait_for_submit_available_signaled: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-all-available-signaled
    multi_wait_all_available_signaled: WAIT_ALL | WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-all-for-submit-available-signaled
    multi_wait_all_for_submit_available_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-unsubmitted-signaled
    invalid_multi_wait_unsubmitted_signaled: WAIT_UNSUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_timeline: multi-wait-for-submit-unsubmitted-signaled
    multi_wait_for_submit_unsubmitted_signaled: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-all-unsubmitted-signaled
    invalid_multi_wait_all_unsubmitted_signaled: WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-unsubmitted-signaled
    etime_multi_wait_all_for_submit_unsubmitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-available-unsubmitted-signaled
    invalid_multi_wait_available_unsubmitted_signaled: WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SIGNALED => OK; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: multi-wait-for-submit-available-unsubmitted-signaled
    multi_wait_for_submit_available_unsubmitted_signaled: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-all-available-unsubmitted-signaled
    invalid_multi_wait_all_available_unsubmitted_signaled: WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SIGNALED => ETIME; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-available-unsubmitted-signaled
    etime_multi_wait_all_for_submit_available_unsubmitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_timeline: multi-wait-submitted-signaled
    multi_wait_submitted_signaled: WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-for-submit-submitted-signaled
    multi_wait_for_submit_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: etime-multi-wait-all-submitted-signaled
    etime_multi_wait_all_submitted_signaled: WAIT_ALL | WAIT_SUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-submitted-signaled
    etime_multi_wait_all_for_submit_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_timeline: multi-wait-available-submitted-signaled
    multi_wait_available_submitted_signaled: WAIT_AVAILABLE | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-for-submit-available-submitted-signaled
    multi_wait_for_submit_available_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-all-available-submitted-signaled
    multi_wait_all_available_submitted_signaled: WAIT_ALL | WAIT_AVAILABLE | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: multi-wait-all-for-submit-available-submitted-signaled
    multi_wait_all_for_submit_available_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_AVAILABLE | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-unsubmitted-submitted-signaled
    invalid_multi_wait_unsubmitted_submitted_signaled: WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_timeline: multi-wait-for-submit-unsubmitted-submitted-signaled
    multi_wait_for_submit_unsubmitted_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-all-unsubmitted-submitted-signaled
    invalid_multi_wait_all_unsubmitted_submitted_signaled: WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_timeline: etime-multi-wait-all-for-submit-unsubmitted-submitted-signaled
    etime_multi_wait_all_for_submit_unsubmitted_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_timeline: invalid-multi-wait-available-unsubmitted-submitted-signaled
    invalid_multi_wait_available_unsubmitted_submitted_signaled: WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => OK; // the igt source expects EINVAL: see the file's header
    // ports igt syncobj_timeline: multi-wait-for-submit-available-unsubmitted-submitted-signaled
    multi_wait_for_submit_available_unsubmitted_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_timeline: invalid-multi-wait-all-available-unsubmitted-submitted-signaled
    invalid_multi_wait_all_available_unsubmitted_submitted_signaled: WAIT_ALL | WAIT_AVAILABLE | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => ETIME; // the igt source expects EINVAL: see the file's header
}

/// `rand()`: a deterministic stand-in (a 64-bit LCG, its upper 31 bits).
fn rand(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

// ports igt syncobj_timeline: host-signal-points
#[test]
fn host_signal_points() {
    let s = Syncobj::new();
    let mut seed = 1;
    let mut value = 0;
    for _ in 0..100 {
        value += rand(&mut seed);
        s.timeline_signal(Point(value));
        let query = s.last_signaled_point();
        assert_eq!(query, Point(value));
        assert_eq!(wait_err(&[(&s, query)], WAIT_FOR_SUBMIT, Limit::Poll), OK);
        assert_eq!(
            wait_err(&[(&s, Point(query.0 - 1))], WAIT_ALL, Limit::Poll),
            OK
        );
    }
}

// ports igt syncobj_timeline: device-signal-unordered
#[test]
fn device_signal_unordered() {
    let s = Syncobj::new();
    let timeline = Timeline::new("igt");
    let point_indices = [0, 2, 1, 4, 3];
    let mut fences = vec![None; point_indices.len()];
    for (i, &at) in point_indices.iter().enumerate() {
        fences[at] = Some(timeline.create_fence(i as u32 + 1).unwrap());
    }
    for (i, fence) in fences.iter().enumerate() {
        let file = SyncFile::new(fence.clone().expect("made above"));
        binary_to_timeline(&s, Point(i as u64 + 1), &file);
    }
    let mut signaled = [false; 5];
    let mut value = Point(0);
    for &at in &point_indices {
        timeline.inc(1);
        signaled[at] = true;
        // The smallest value the timeline can have: the last point of the first run of
        // signalled ones.
        let min_value = signaled
            .iter()
            .take_while(|s| **s)
            .count()
            .saturating_sub(1) as u64;
        let query = s.last_signaled_point();
        assert!(query >= Point(min_value), "{query} < {min_value}");
        assert!(query >= value, "{query} went back from {value}");
        value = value.max(query);
        assert_eq!(wait_err(&[(&s, query)], WAIT_FOR_SUBMIT, Limit::Poll), OK);
        assert_eq!(wait_err(&[(&s, query)], WAIT_ALL, Limit::Poll), OK);
    }
}

// ports igt syncobj_timeline: device-submit-unordered
#[test]
fn device_submit_unordered() {
    let s = Syncobj::new();
    let timeline = Timeline::new("igt");
    for (i, point) in [1, 5, 3, 6, 7].into_iter().enumerate() {
        let file = SyncFile::new(timeline.create_fence(i as u32 + 1).unwrap());
        binary_to_timeline(&s, Point(point), &file);
    }
    // Points 1, 5 and 3 signal; nothing else is at or below 5, so waiting for 5 returns at
    // once for submission and for signalling.
    timeline.inc(3);
    let query = s.last_signaled_point();
    assert_eq!(query, Point(5));
    assert_eq!(wait_err(&[(&s, query)], WAIT_FOR_SUBMIT, Limit::Poll), OK);
    assert_eq!(wait_err(&[(&s, query)], WAIT_ALL, Limit::Poll), OK);
}

// ports igt syncobj_timeline: host-signal-ordered
#[test]
fn host_signal_ordered() {
    let s = Syncobj::new();
    let timeline = Timeline::new("igt");
    for i in 0..5 {
        let file = SyncFile::new(timeline.create_fence(i + 1).unwrap());
        binary_to_timeline(&s, Point(u64::from(i) + 1), &file);
    }
    timeline.inc(3);
    assert_eq!(s.last_signaled_point(), Point(3));
    s.timeline_signal(Point(8));
    assert_eq!(s.last_signaled_point(), Point(3));
    timeline.inc(5);
    assert_eq!(s.last_signaled_point(), Point(8));
}

// ports igt syncobj_timeline: 32bits-limit
#[test]
fn _32bits_limit() {
    let s = Syncobj::new();
    let running = Arc::new(AtomicBool::new(true));
    let (started_tx, started) = std::sync::mpsc::channel();
    let checker = {
        let (s, running) = (s.clone(), running.clone());
        std::thread::spawn(move || {
            let mut last = Point(0);
            let mut started_tx = Some(started_tx);
            while running.load(Ordering::Acquire) {
                let value = s.last_signaled_point();
                if let Some(tx) = started_tx.take() {
                    tx.send(()).expect("main thread");
                }
                assert!(last <= value, "{value} went back from {last}");
                last = value;
            }
        })
    };
    started.recv().expect("checker started");
    let timeline = Timeline::new("igt");
    let limit_diff = (1u64 << 31) - 1;
    let points = [1, 5, limit_diff + 5, limit_diff + 6, limit_diff * 2];
    for (i, point) in points.into_iter().enumerate() {
        let file = SyncFile::new(timeline.create_fence(i as u32 + 1).unwrap());
        binary_to_timeline(&s, Point(point), &file);
    }
    let mut last = Point(0);
    for _ in points {
        timeline.inc(1);
        let value = s.last_signaled_point();
        assert!(last <= value, "{value} went back from {last}");
        last = value;
    }
    assert_eq!(last, Point(limit_diff * 2));
    running.store(false, Ordering::Release);
    checker.join().expect("checker");
}
