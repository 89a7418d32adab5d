//! Where reports go: the calling thread's [`capture`] if one runs on it, else the process-wide
//! collector of a running [`capture_all`], else the global [`ReportMode`]: panic (the default in
//! debug builds, so tests fail at the bad acquisition), log once per distinct problem (the
//! default in release builds), or collect for [`take_reports`].
//!
//! # Rules
//! * The closest collector wins: a report goes to one place only. A thread's own [`capture`]
//!   keeps its reports from [`capture_all`], which takes those of every other thread, whether
//!   or not `capture_all`'s closure started it.
//! * One [`capture_all`] runs at a time in the process: a call from another thread waits for
//!   the running one to end. On its own thread a call nests like [`capture`].
//! * A logged report reaches a reader: with no `tracing` subscriber to take it, it is written
//!   to standard error.
//! * A report never panics a thread that is already unwinding from a panic (a second panic
//!   would abort the process): in panic mode it is written to standard error instead.
//! * The validator's own state is consistent before a report goes out, so the unwinding a
//!   panicking report starts finds held what is really held (see [`crate::held`]).
//! * On a thread whose thread-locals are being destroyed, [`capture`] may find its own state
//!   gone: it then runs its closure without capturing, and reports follow the global mode.

use crate::report::{ProblemKey, Report};
use parking_lot::{Mutex, ReentrantMutex};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use tracing::subscriber::NoSubscriber;

/// What happens to a report that neither [`capture`] nor [`capture_all`] collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportMode {
    /// Panic at the offending call (default with debug assertions).
    Panic,
    /// Log each distinct problem once through `tracing::error!` (target `dmabuf::lockdep`;
    /// the default without debug assertions). Where no `tracing` subscriber is installed,
    /// globally or for the reporting thread, the report is written to standard error instead,
    /// once as well; a subscriber that filters the event out is obeyed.
    LogOnce,
    /// Keep them for [`take_reports`].
    Collect,
}

static MODE: AtomicU8 = AtomicU8::new(if cfg!(debug_assertions) { 0 } else { 1 });
static COLLECTED: Mutex<Vec<Report>> = Mutex::new(Vec::new());
static LOGGED: Mutex<Option<HashSet<ProblemKey>>> = Mutex::new(None);

/// A collection of reports, where one is being made.
type Slot = Option<Vec<Report>>;

std::thread_local! {
    /// This thread's [`capture`].
    static CAPTURE: RefCell<Slot> = const { RefCell::new(None) };
}

/// The process-wide collection of [`capture_all`].
static ALL: Mutex<Slot> = Mutex::new(None);
/// Held by the thread that runs [`capture_all`], for as long as it runs.
static ALL_TURN: ReentrantMutex<()> = ReentrantMutex::new(());

/// Sets the global report mode; returns the previous one.
pub fn set_report_mode(mode: ReportMode) -> ReportMode {
    let v = match mode {
        ReportMode::Panic => 0,
        ReportMode::LogOnce => 1,
        ReportMode::Collect => 2,
    };
    match MODE.swap(v, Ordering::AcqRel) {
        0 => ReportMode::Panic,
        1 => ReportMode::LogOnce,
        _ => ReportMode::Collect,
    }
}

/// Takes the reports collected in [`ReportMode::Collect`].
pub fn take_reports() -> Vec<Report> {
    std::mem::take(&mut *COLLECTED.lock())
}

/// Runs `f` and returns what it returned with every report found on this thread meanwhile,
/// whatever the global mode. Reports found on other threads are not captured here: they go to
/// [`capture_all`] if one runs, else follow the global mode.
///
/// ```
/// use dmabuf_lockdep::{LockClass, Mutex, Kind, capture};
/// static A: LockClass = LockClass::new("doc.capture.A");
/// static B: LockClass = LockClass::new("doc.capture.B");
/// let a = Mutex::new(&A, ());
/// let b = Mutex::new(&B, ());
/// let ((), reports) = capture(|| {
///     { let _a = a.lock(); let _b = b.lock(); }
///     { let _b = b.lock(); let _a = a.lock(); } // ABBA
/// });
/// assert_eq!(reports.len(), 1);
/// assert_eq!(reports[0].kind, Kind::CircularDependency);
/// ```
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Report>) {
    // Once this thread's capture state is gone (a thread-local destructor), there is nothing
    // to capture into.
    collect(
        |slot| {
            CAPTURE
                .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), slot))
                .ok()
        },
        f,
    )
}

/// Runs `f` and returns what it returned with every report found meanwhile on any thread of
/// the process that is not inside a [`capture`] of its own, whatever the global mode: a
/// worker's, a signalling thread's, one that `f` spawned or one that was running already.
///
/// One `capture_all` runs at a time: a call on another thread waits until the running one
/// returns (so tests that run in parallel each collect their own reports), and a thread
/// that `f` waits for must not call it. A call inside `f`, on `f`'s thread, nests: it
/// collects until it returns, and the outer call collects the rest. Reports of threads that
/// outlive `f` go back to the global mode when it returns.
///
/// ```
/// use dmabuf_lockdep::{Kind, capture_all, signalling};
/// let ((), reports) = capture_all(|| {
///     std::thread::spawn(|| {
///         let _section = signalling::begin_signalling();
///         signalling::might_wait(); // a wait inside a signalling section
///     })
///     .join()
///     .unwrap();
/// });
/// assert!(reports.iter().any(|r| r.kind == Kind::WaitInSignalling));
/// ```
pub fn capture_all<R>(f: impl FnOnce() -> R) -> (R, Vec<Report>) {
    let _turn = ALL_TURN.lock();
    collect(|slot| Some(std::mem::replace(&mut *ALL.lock(), slot)), f)
}

/// Runs `f` while `swap` has put a fresh collection in place, and answers what was collected.
/// `swap` exchanges the content of a slot (`None`: the slot is gone, and `f` runs without
/// collecting); the slot's earlier content is put back even if `f` panics.
fn collect<R>(swap: impl Fn(Slot) -> Option<Slot>, f: impl FnOnce() -> R) -> (R, Vec<Report>) {
    let Some(outer) = swap(Some(Vec::new())) else {
        return (f(), Vec::new());
    };
    /// Puts the outer collection back if `f` unwinds.
    struct Restore<S: Fn(Slot) -> Option<Slot>>(S, Option<Slot>);
    impl<S: Fn(Slot) -> Option<Slot>> Drop for Restore<S> {
        fn drop(&mut self) {
            if let Some(outer) = self.1.take() {
                let _ = (self.0)(outer);
            }
        }
    }
    let mut restore = Restore(swap, Some(outer));
    let r = f();
    let outer = restore.1.take().unwrap_or(None);
    let found = (restore.0)(outer).flatten();
    (r, found.unwrap_or_default())
}

/// Delivers a report. Must be called with no validator lock held and the validator's state
/// consistent (it may panic).
pub(crate) fn deliver(report: Report) {
    let mut report = Some(report);
    let _ = CAPTURE.try_with(|c| {
        if let Some(captured) = c.borrow_mut().as_mut() {
            captured.extend(report.take());
        }
    });
    let Some(report) = report else {
        return;
    };
    if let Some(all) = ALL.lock().as_mut() {
        all.push(report);
        return;
    }
    match MODE.load(Ordering::Acquire) {
        0 if std::thread::panicking() => {
            eprintln!(
                "dmabuf-lockdep: found while this thread unwinds from a panic (not raised: a \
                 second panic would abort)\n{report}"
            );
        }
        0 => panic!("{report}"),
        1 => {
            let mut logged = LOGGED.lock();
            if logged.get_or_insert_with(HashSet::new).insert(report.key()) {
                drop(logged);
                log(&report);
            }
        }
        _ => COLLECTED.lock().push(report),
    }
}

/// Logs a report through `tracing`, or on standard error where no subscriber would see it:
/// none is installed, globally or for this thread (and a report found inside a subscriber's
/// own call sees none either).
fn log(report: &Report) {
    let subscribed = tracing::dispatcher::get_default(|d| !d.is::<NoSubscriber>());
    if subscribed {
        tracing::error!(target: "dmabuf::lockdep", "{report}");
    } else {
        eprintln!("dmabuf-lockdep: reported once (no tracing subscriber is installed)\n{report}");
    }
}
