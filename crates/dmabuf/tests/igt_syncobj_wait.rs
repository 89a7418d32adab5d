//! Port of igt-gpu-tools' `tests/syncobj_wait.c` (binary sync objects: reset, signal, and
//! `DRM_IOCTL_SYNCOBJ_WAIT` in every flag combination) to the in-process model.
//!
//! Mapping: a syncobj handle is a [`Syncobj`]; a sw_sync timeline is a [`Timeline`] and its
//! fence, imported with `syncobj_import_sync_file()`, a [`SyncFile`] given to
//! [`Syncobj::import_sync_file`]; `syncobj_wait_err()` is a [`Wait`] over point 0 of each
//! syncobj, [`Wait::all`] with `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL` and [`Wait::any`] without;
//! `timeout_nsec` 0 is a zero timeout, `short_timeout()` a tenth of a second and `UINT64_MAX`
//! no limit; `syncobj_reset()` and `syncobj_signal()` are [`Syncobj::reset`] and
//! [`Syncobj::signal`] on each syncobj. igt's timers (`SIGEV_THREAD`) are threads.
//!
//! Not ported:
//! * `invalid-wait-illegal-handle`, `invalid-reset-zero-handles`,
//!   `invalid-reset-illegal-handle`, `invalid-reset-one-illegal-handle`,
//!   `invalid-reset-bad-pad`, `invalid-signal-zero-handles`, `invalid-signal-illegal-handle`,
//!   `invalid-signal-one-illegal-handle`, `invalid-signal-bad-pad`: they test the ioctls'
//!   handle arrays and padding, which belong to the kernel layer; a [`Syncobj`] is always a
//!   valid object, and reset and signal take one.
//! * `wait-any-interrupted`, `wait-all-interrupted`: they interrupt the wait with signals;
//!   the model's waits are not interruptible (user space has no signals to send itself).
#[path = "syncobj_support/mod.rs"]
#[macro_use]
mod support;

use dmabuf::syncobj::{Point, Syncobj, Wait, WaitFlags};
use dmabuf::{Errno, Error};
use support::*;

// ports igt syncobj_wait: invalid-wait-bad-flags
#[test]
fn invalid_wait_bad_flags() {
    let err = WaitFlags::from_bits(0xdead_beef).unwrap_err();
    assert_eq!(err, Error::InvalidFlags(0xdead_beef));
    assert_eq!(err.errno(), Errno::EINVAL);
}

// ports igt syncobj_wait: invalid-wait-zero-handles
#[test]
fn invalid_wait_zero_handles() {
    assert_eq!(wait_err(&[], 0, Limit::Poll), EINVAL);
}

single_wait_subtests! {
    Point::BINARY;
    // ports igt syncobj_wait: invalid-single-wait-unsubmitted
    invalid_single_wait_unsubmitted: WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_wait: single-wait-for-submit-unsubmitted
    single_wait_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_wait: invalid-single-wait-all-unsubmitted
    invalid_single_wait_all_unsubmitted: WAIT_ALL | WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_wait: single-wait-all-for-submit-unsubmitted
    single_wait_all_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_wait: single-wait-submitted
    single_wait_submitted: WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: single-wait-for-submit-submitted
    single_wait_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: single-wait-all-submitted
    single_wait_all_submitted: WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: single-wait-all-for-submit-submitted
    single_wait_all_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: single-wait-signaled
    single_wait_signaled: WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: single-wait-for-submit-signaled
    single_wait_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: single-wait-all-signaled
    single_wait_all_signaled: WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: single-wait-all-for-submit-signaled
    single_wait_all_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SIGNALED => OK;

}

// ports igt syncobj_wait: wait-delayed-signal
// ports igt syncobj_wait: wait-for-submit-delayed-submit
// ports igt syncobj_wait: wait-all-delayed-signal
// ports igt syncobj_wait: wait-all-for-submit-delayed-submit
// ports igt syncobj_wait: reset-unsignaled
// ports igt syncobj_wait: reset-signaled
// ports igt syncobj_wait: reset-multiple-signaled
// ports igt syncobj_wait: reset-during-wait-for-submit
// ports igt syncobj_wait: wait-any-snapshot
// ports igt syncobj_wait: wait-all-snapshot
// ports igt syncobj_wait: wait-for-submit-snapshot
// ports igt syncobj_wait: wait-all-for-submit-snapshot
// ports igt syncobj_wait: wait-any-complex
// ports igt syncobj_wait: wait-all-complex
// ports igt syncobj_wait: wait-for-submit-complex
// ports igt syncobj_wait: wait-all-for-submit-complex
shared_subtests!(Point::BINARY);

// ports igt syncobj_wait: signal
#[test]
fn signal() {
    let s = Syncobj::new();
    let points = [(&s, Point::BINARY)];
    assert_eq!(wait_err(&points, 0, Limit::Poll), EINVAL);
    assert_eq!(wait_err(&points, WAIT_FOR_SUBMIT, Limit::Poll), ETIME);
    s.signal();
    assert_eq!(wait_err(&points, 0, Limit::Poll), OK);
    assert_eq!(wait_err(&points, WAIT_FOR_SUBMIT, Limit::Poll), OK);
}

multi_wait_subtests! {
    [Point::BINARY; 3];
    // ports igt syncobj_wait: invalid-multi-wait-unsubmitted
    invalid_multi_wait_unsubmitted: WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_wait: multi-wait-for-submit-unsubmitted
    multi_wait_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_wait: invalid-multi-wait-all-unsubmitted
    invalid_multi_wait_all_unsubmitted: WAIT_ALL | WAIT_UNSUBMITTED => EINVAL;
    // ports igt syncobj_wait: multi-wait-all-for-submit-unsubmitted
    multi_wait_all_for_submit_unsubmitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED => ETIME;
    // ports igt syncobj_wait: multi-wait-submitted
    multi_wait_submitted: WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: multi-wait-for-submit-submitted
    multi_wait_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: multi-wait-all-submitted
    multi_wait_all_submitted: WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: multi-wait-all-for-submit-submitted
    multi_wait_all_for_submit_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: invalid-multi-wait-unsubmitted-submitted
    invalid_multi_wait_unsubmitted_submitted: WAIT_UNSUBMITTED | WAIT_SUBMITTED => EINVAL;
    // ports igt syncobj_wait: multi-wait-for-submit-unsubmitted-submitted
    multi_wait_for_submit_unsubmitted_submitted: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: invalid-multi-wait-all-unsubmitted-submitted
    invalid_multi_wait_all_unsubmitted_submitted: WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED => EINVAL;
    // ports igt syncobj_wait: multi-wait-all-for-submit-unsubmitted-submitted
    multi_wait_all_for_submit_unsubmitted_submitted: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED => ETIME;
    // ports igt syncobj_wait: multi-wait-signaled
    multi_wait_signaled: WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: multi-wait-for-submit-signaled
    multi_wait_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: multi-wait-all-signaled
    multi_wait_all_signaled: WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: multi-wait-all-for-submit-signaled
    multi_wait_all_for_submit_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: invalid-multi-wait-unsubmitted-signaled
    invalid_multi_wait_unsubmitted_signaled: WAIT_UNSUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_wait: multi-wait-for-submit-unsubmitted-signaled
    multi_wait_for_submit_unsubmitted_signaled: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: invalid-multi-wait-all-unsubmitted-signaled
    invalid_multi_wait_all_unsubmitted_signaled: WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_wait: multi-wait-all-for-submit-unsubmitted-signaled
    multi_wait_all_for_submit_unsubmitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_wait: multi-wait-submitted-signaled
    multi_wait_submitted_signaled: WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: multi-wait-for-submit-submitted-signaled
    multi_wait_for_submit_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: multi-wait-all-submitted-signaled
    multi_wait_all_submitted_signaled: WAIT_ALL | WAIT_SUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_wait: multi-wait-all-for-submit-submitted-signaled
    multi_wait_all_for_submit_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_ALL | WAIT_SUBMITTED | WAIT_SIGNALED => ETIME;
    // ports igt syncobj_wait: invalid-multi-wait-unsubmitted-submitted-signaled
    invalid_multi_wait_unsubmitted_submitted_signaled: WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => EINVAL;
    // ports igt syncobj_wait: multi-wait-for-submit-unsubmitted-submitted-signaled
    multi_wait_for_submit_unsubmitted_submitted_signaled: WAIT_FOR_SUBMIT | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => OK;
    // ports igt syncobj_wait: invalid-multi-wait-all-unsubmitted-submitted-signaled
    invalid_multi_wait_all_unsubmitted_submitted_signaled: WAIT_ALL | WAIT_UNSUBMITTED | WAIT_SUBMITTED | WAIT_SIGNALED => EINVAL;
}

/// Not an igt subtest: an `EINVAL` says which entry has no fence.
#[test]
fn a_binary_wait_names_the_unsubmitted_entry() {
    let (a, b) = (Syncobj::new_signaled(), Syncobj::new());
    let err = Wait::new([(&a, Point::BINARY), (&b, Point::BINARY)])
        .all(None)
        .unwrap_err();
    assert_eq!(
        err,
        dmabuf::SyncobjWaitError::Unsubmitted { index: 1, point: 0 }
    );
}
