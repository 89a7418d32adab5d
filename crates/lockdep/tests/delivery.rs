//! Where reports go: `capture_all` collects the reports of every thread, a thread's own
//! `capture` keeps its reports, and collectors on different threads take turns; a logged
//! report goes to a `tracing` subscriber, or to standard error where there is none.
//!
//! `capture_all` takes the reports of every thread in the process, so every test of this
//! binary collects its reports through `capture` or `capture_all`, or runs in a child process
//! of its own (the tests that set the global report mode).

use dmabuf_lockdep::{
    Kind, LockClass, Mutex, Report, ReportMode, capture, capture_all, set_report_mode, signalling,
};
use dmabuf_testkit::scenario_in_child;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata};

/// Takes `a` then `b`, then `b` then `a`: one circular dependency, reported on this thread.
fn abba(a: &Mutex<()>, b: &Mutex<()>) {
    drop((a.lock(), b.lock()));
    let _b = b.lock();
    let _a = a.lock();
}

/// The class names of each report's cycle.
fn cycles(reports: &[Report]) -> Vec<Vec<&'static str>> {
    reports.iter().map(Report::cycle_classes).collect()
}

#[test]
fn a_report_on_a_spawned_thread_is_collected() {
    static A: LockClass = LockClass::new("test.delivery.spawned.A");
    static B: LockClass = LockClass::new("test.delivery.spawned.B");
    let (a, b) = (Mutex::new(&A, ()), Mutex::new(&B, ()));
    let ((), reports) = capture_all(|| {
        std::thread::scope(|s| {
            s.spawn(|| abba(&a, &b));
        });
    });
    assert_eq!(
        cycles(&reports),
        [["test.delivery.spawned.B", "test.delivery.spawned.A"]]
    );
    assert_eq!(reports[0].kind, Kind::CircularDependency);
}

#[test]
fn a_report_of_a_thread_started_before_the_collector_is_collected() {
    let (started, collecting, reported) = (Barrier::new(2), Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            started.wait();
            collecting.wait();
            let section = signalling::begin_signalling();
            signalling::might_wait();
            drop(section);
            reported.wait();
        });
        started.wait();
        let ((), reports) = capture_all(|| {
            collecting.wait();
            reported.wait();
        });
        assert_eq!(
            reports.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [Kind::WaitInSignalling]
        );
    });
}

#[test]
fn a_thread_that_captures_keeps_its_own_reports() {
    static A: LockClass = LockClass::new("test.delivery.own.A");
    static B: LockClass = LockClass::new("test.delivery.own.B");
    let (a, b) = (Mutex::new(&A, ()), Mutex::new(&B, ()));
    let (own, all) = capture_all(|| {
        std::thread::scope(|s| {
            s.spawn(|| capture(|| abba(&a, &b)).1)
                .join()
                .expect("the worker")
        })
    });
    assert!(all.is_empty(), "{all:?}");
    assert_eq!(
        cycles(&own),
        [["test.delivery.own.B", "test.delivery.own.A"]]
    );
}

#[test]
fn collectors_on_two_threads_take_turns() {
    static CLASSES: [[LockClass; 2]; 2] = [
        [
            LockClass::new("test.delivery.turns.0.A"),
            LockClass::new("test.delivery.turns.0.B"),
        ],
        [
            LockClass::new("test.delivery.turns.1.A"),
            LockClass::new("test.delivery.turns.1.B"),
        ],
    ];
    let both = Barrier::new(2);
    std::thread::scope(|s| {
        for [a, b] in &CLASSES {
            let both = &both;
            s.spawn(move || {
                let (a, b) = (Mutex::new(a, ()), Mutex::new(b, ()));
                both.wait();
                let ((), reports) = capture_all(|| {
                    std::thread::scope(|s| {
                        s.spawn(|| abba(&a, &b));
                    });
                });
                assert_eq!(cycles(&reports), [[b.class().name(), a.class().name()]]);
            });
        }
    });
}

#[test]
fn a_nested_collector_takes_what_is_found_while_it_runs_even_when_it_unwinds() {
    static A: LockClass = LockClass::new("test.delivery.nested.A");
    static B: LockClass = LockClass::new("test.delivery.nested.B");
    static C: LockClass = LockClass::new("test.delivery.nested.C");
    static D: LockClass = LockClass::new("test.delivery.nested.D");
    let (a, b) = (Mutex::new(&A, ()), Mutex::new(&B, ()));
    let (c, d) = (Mutex::new(&C, ()), Mutex::new(&D, ()));
    let (inner, outer) = capture_all(|| {
        let ((), inner) = capture_all(|| {
            std::thread::scope(|s| {
                s.spawn(|| abba(&a, &b));
            });
        });
        // An inner collector that unwinds gives the collection back to the outer one.
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            capture_all(|| panic!("the closure panics"))
        }));
        assert!(unwound.is_err());
        std::thread::scope(|s| {
            s.spawn(|| abba(&c, &d));
        });
        inner
    });
    assert_eq!(
        cycles(&inner),
        [["test.delivery.nested.B", "test.delivery.nested.A"]]
    );
    assert_eq!(
        cycles(&outer),
        [["test.delivery.nested.D", "test.delivery.nested.C"]]
    );
}

/// The title of the report that [`wait_in_a_signalling_section_twice`] raises.
const WAIT_IN_SECTION: &str = "WARNING: fence wait inside a fence signalling section";

/// The same problem twice: logged once.
fn wait_in_a_signalling_section_twice() {
    for _ in 0..2 {
        let _section = signalling::begin_signalling();
        signalling::might_wait();
    }
}

#[test]
fn without_a_subscriber_a_logged_report_goes_to_standard_error_once() {
    if let Some(stderr) =
        scenario_in_child("without_a_subscriber_a_logged_report_goes_to_standard_error_once")
    {
        assert_eq!(stderr.matches(WAIT_IN_SECTION).count(), 1, "{stderr}");
        assert!(stderr.contains("no tracing subscriber"), "{stderr}");
        return;
    }
    set_report_mode(ReportMode::LogOnce);
    wait_in_a_signalling_section_twice();
}

/// Events of the validator's target that [`Counter`] saw.
static EVENTS: AtomicUsize = AtomicUsize::new(0);

/// A subscriber that counts the validator's events.
struct Counter;

impl tracing::Subscriber for Counter {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "dmabuf::lockdep" {
            EVENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn with_a_subscriber_a_logged_report_is_an_event_once_and_not_on_standard_error() {
    if let Some(stderr) = scenario_in_child(
        "with_a_subscriber_a_logged_report_is_an_event_once_and_not_on_standard_error",
    ) {
        assert!(!stderr.contains(WAIT_IN_SECTION), "{stderr}");
        return;
    }
    set_report_mode(ReportMode::LogOnce);
    tracing::subscriber::with_default(Counter, wait_in_a_signalling_section_twice);
    assert_eq!(EVENTS.load(Ordering::Relaxed), 1);
}
