//! Scenarios that must be silent under the validator, written once for both builds: with the
//! `lockdep` feature `dmabuf::lockdep` is the validator and checks them; without it the same
//! names are a facade that runs them and reports nothing. No `cfg` is needed.

use dmabuf::fence::FenceContext;
use dmabuf::lockdep::{self, LockClass, Mutex, capture, signalling};
use dmabuf::resv::{Resv, Usage};

static DRIVER: LockClass = LockClass::new("test.validator_setup.driver_lock");

#[test]
fn submit_then_complete_is_silent() {
    let buffer = Resv::new();
    let driver = Mutex::new(&DRIVER, Vec::new());
    let (done, fence) = FenceContext::new("test", "setup").next_fence();
    let ((), reports) = capture(|| {
        // Submit: lock, reserve, publish, unlock; the driver lock is not held meanwhile.
        let mut locked = buffer.lock_single();
        locked.reserve_fences(1).unwrap();
        locked.add_fence(&fence, Usage::Write);
        drop(locked);
        driver.lock().push(fence.seqno());
        // Complete: a signalling section that takes the driver lock, never held around a
        // fence wait.
        {
            let _section = signalling::begin_signalling();
            driver.lock().clear();
        }
        done.signal();
        buffer.wait(Usage::Bookkeep).unwrap();
    });
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!(
        lockdep::is_enabled(),
        cfg!(feature = "lockdep"),
        "the facade checks nothing; the validator is on by default"
    );
    assert!(lockdep::take_reports().is_empty());
}
