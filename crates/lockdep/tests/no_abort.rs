//! The validator never aborts the process: neither when a report panics (the default report
//! mode in tests) and the unwinding releases what the thread holds, nor when it is used from
//! thread-local destructors after its own per-thread state is gone (a guard or a fence kept in
//! a thread-local and dropped as the thread exits). Each scenario runs in a child process,
//! where an abort is an exit status rather than the end of the test binary.

use dmabuf_lockdep::signalling::{begin_signalling, in_signalling_section, might_wait};
use dmabuf_lockdep::{
    LockClass, Mutex, ReportMode, capture, held_classes, is_held, reclaim, set_report_mode, ww,
};
use dmabuf_testkit::scenario_in_child;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};

static DRIVER: LockClass = LockClass::new("test.thread_exit.driver_lock");
static DRIVER_LOCK: Mutex<()> = Mutex::new(&DRIVER, ());
static WW_CLASS: LockClass = LockClass::new("test.thread_exit.ww_mutex");

/// What the destructor saw: 0 = did not run, 1 = ran and found no validator state, 2 = ran
/// with the state still there (the test then did not test what it means to).
static SEEN: AtomicU8 = AtomicU8::new(0);

/// Uses every per-thread part of the validator when dropped.
struct UsesTheValidatorOnDrop;

impl Drop for UsesTheValidatorOnDrop {
    fn drop(&mut self) {
        let ((), reports) = capture(|| {
            let _g = DRIVER_LOCK.lock();
            let state_gone = !is_held(&DRIVER);
            {
                let _section = begin_signalling();
                assert!(!state_gone || !in_signalling_section());
                if state_gone {
                    // A wait inside a section: it would be reported on a checked thread.
                    might_wait();
                }
            }
            reclaim::might_reclaim();
            drop(reclaim::reclaim_scope());
            let ctx = ww::acquire_init(&WW_CLASS);
            ww::before_lock(ctx, &WW_CLASS, 1, false);
            ww::locked(ctx, 1);
            ww::unlocked(ctx, 1);
            ww::acquire_fini(ctx);
            SEEN.store(if state_gone { 1 } else { 2 }, Ordering::SeqCst);
        });
        assert!(reports.is_empty(), "{reports:?}");
    }
}

std::thread_local! {
    static EARLY: RefCell<Option<UsesTheValidatorOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn the_validator_skips_a_thread_whose_state_is_gone_instead_of_aborting() {
    if scenario_in_child("the_validator_skips_a_thread_whose_state_is_gone_instead_of_aborting")
        .is_some()
    {
        return;
    }
    std::thread::spawn(|| {
        // Registered before the validator's own thread-locals, so destroyed after them.
        EARLY.with(|e| *e.borrow_mut() = Some(UsesTheValidatorOnDrop));
        drop(DRIVER_LOCK.lock());
        let ((), reports) = capture(|| drop(DRIVER_LOCK.lock()));
        assert!(reports.is_empty());
        let ctx = ww::acquire_init(&WW_CLASS);
        ww::acquire_fini(ctx);
    })
    .join()
    .expect("the thread exits cleanly");
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        1,
        "the destructor ran after the state went"
    );
}

/// Runs `f`, which must panic with a report of `title`, and checks that the thread holds
/// nothing afterwards: the unwinding released everything the thread really held, and the
/// acquisition that was reported was never recorded.
fn panics_and_leaves_nothing_held(title: &str, f: impl FnOnce()) {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the report panics");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains(title), "{message}");
    assert_eq!(held_classes(), [], "after: {message}");
}

#[test]
fn a_report_that_panics_leaves_the_held_stack_to_the_unwinding() {
    if let Some(stderr) =
        scenario_in_child("a_report_that_panics_leaves_the_held_stack_to_the_unwinding")
    {
        assert!(
            !stderr.contains("unwinds from a panic"),
            "a follow-on report during the unwinding:\n{stderr}"
        );
        return;
    }
    set_report_mode(ReportMode::Panic);
    static A: LockClass = LockClass::new("test.no_abort.A");
    static B: LockClass = LockClass::new("test.no_abort.B");
    static WORKER: LockClass = LockClass::new("test.no_abort.worker");
    static CTX_CLASS: LockClass = LockClass::new("test.no_abort.ww");
    let (a, b, worker) = (
        Mutex::new(&A, ()),
        Mutex::new(&B, ()),
        Mutex::new(&WORKER, ()),
    );

    // A cycle: reported before B -> A is recorded, then B is released by the unwinding.
    drop((a.lock(), b.lock()));
    panics_and_leaves_nothing_held("circular locking", || {
        let _b = b.lock();
        let _a = a.lock();
    });
    // Recursive locking of a held lock.
    panics_and_leaves_nothing_held("recursive locking", || {
        let _a = a.lock();
        let _again = a.lock();
    });
    // A wait inside a section: the section stays held for its guard to end.
    panics_and_leaves_nothing_held("fence wait inside a fence signalling section", || {
        let _section = begin_signalling();
        might_wait();
    });
    // A lock taken in a section is later held around a wait: the wait's momentary
    // acquisition of the signalling pseudo-lock closes the cycle.
    {
        let _section = begin_signalling();
        drop(worker.lock());
    }
    panics_and_leaves_nothing_held("held around a fence wait", || {
        let _g = worker.lock();
        might_wait();
    });
    // Reclaim inside a section.
    panics_and_leaves_nothing_held("memory reclaim", || {
        let _section = begin_signalling();
        reclaim::might_reclaim();
    });
    // A second ww acquire context: the first stays this thread's.
    let first = ww::acquire_init(&CTX_CLASS);
    let payload = catch_unwind(|| ww::acquire_init(&CTX_CLASS)).expect_err("reported");
    assert!(
        payload
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("TwoContexts"))
    );
    let ((), reports) = capture(|| {
        ww::before_lock(first, &CTX_CLASS, 1, false);
        ww::locked(first, 1);
        ww::unlocked(first, 1);
        ww::acquire_fini(first);
    });
    assert!(reports.is_empty(), "{reports:?}");
    // Ending a context with a lock held ends it all the same.
    let ctx = ww::acquire_init(&CTX_CLASS);
    ww::before_lock(ctx, &CTX_CLASS, 1, false);
    ww::locked(ctx, 1);
    let payload = catch_unwind(|| ww::acquire_fini(ctx)).expect_err("reported");
    assert!(
        payload
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("FiniWithLocksHeld"))
    );
    let ((), reports) = capture(|| ww::acquire_fini(ww::acquire_init(&CTX_CLASS)));
    assert!(reports.is_empty(), "{reports:?}");
}
