//! The validator never aborts the process, also when it is used from thread-local destructors
//! after its own per-thread state is gone (a guard or a fence kept in a thread-local and
//! dropped as the thread exits). Each scenario runs in a child process, where an abort is an
//! exit status rather than the end of the test binary.

use dmabuf_lockdep::signalling::{begin_signalling, in_signalling_section, might_wait};
use dmabuf_lockdep::{LockClass, Mutex, capture, is_held, reclaim, ww};
use std::cell::RefCell;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Set in the child process [`in_child`] starts.
const CHILD: &str = "DMABUF_LOCKDEP_NO_ABORT_CHILD";

/// Runs `test` of this binary alone in a child process (with [`CHILD`] set) and returns its
/// exit status and standard error; kills it and fails after a minute.
fn in_child(test: &str) -> (ExitStatus, String) {
    use std::io::Read;
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the test binary");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{test} did not finish within a minute in its child process");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

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
    if std::env::var_os(CHILD).is_some() {
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
        return;
    }
    let (status, stderr) =
        in_child("the_validator_skips_a_thread_whose_state_is_gone_instead_of_aborting");
    assert!(status.success(), "child: {status}\n{stderr}");
}
