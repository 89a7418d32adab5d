//! The scenarios igt's `syncobj_wait` and `syncobj_timeline` share, written once: the first
//! runs them with binary waits on the syncobjs' fences, the second with timeline waits on
//! point 1. vgem fences stand in for sw_sync fences (see [`attach`](super::attach)).

use super::{Attached, attach, drm, errno_of, trigger, vgem};
use dmabuf_linux::{DrmDevice, Error, Syncobj, Vgem, WaitFlags};
use rustix::io::Errno;
use std::time::Duration;

/// igt's short time: 100 ms.
pub const SHORT: Duration = Duration::from_millis(100);
/// The deadline of a wait that must succeed: longer than igt's 200 ms, for the emulated guest
/// (still well inside the ten seconds after which vgem signals a fence by itself).
pub const LONG: Duration = Duration::from_secs(3);

/// The waits a suite makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `DRM_IOCTL_SYNCOBJ_WAIT` on the syncobjs' fences (point 0).
    Binary,
    /// `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT` on point 1 (or the points given).
    Timeline,
}

impl Api {
    /// The point the suite's fences are attached at and waited for.
    pub fn point(self) -> u64 {
        match self {
            Api::Binary => 0,
            Api::Timeline => 1,
        }
    }

    /// Waits for `syncobjs` at `points` (binary waits ignore them).
    pub fn wait(
        self,
        dev: &DrmDevice,
        syncobjs: &[&Syncobj],
        points: &[u64],
        flags: WaitFlags,
        timeout: Option<Duration>,
    ) -> Result<u32, Error> {
        match self {
            Api::Binary => dev.wait(syncobjs, flags, timeout),
            Api::Timeline => {
                let pairs: Vec<(&Syncobj, u64)> = syncobjs
                    .iter()
                    .copied()
                    .zip(points.iter().copied())
                    .collect();
                dev.timeline_wait(&pairs, flags, timeout)
            }
        }
    }

    /// Waits for one syncobj at the suite's point.
    pub fn wait_one(
        self,
        dev: &DrmDevice,
        syncobj: &Syncobj,
        flags: WaitFlags,
        timeout: Option<Duration>,
    ) -> Result<u32, Error> {
        self.wait(dev, &[syncobj], &[self.point()], flags, timeout)
    }
}

/// Where a syncobj (or point) stands when a wait begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No fence.
    Unsubmitted,
    /// A pending fence.
    Submitted,
    /// A signalled fence.
    Signaled,
}

/// Syncobjs for `points`, in the stages igt gives them: each listed stage once, in order, the
/// last one for the rest. Returns them with their fences (kept to signal them at the end).
pub fn staged<'v>(
    dev: &DrmDevice,
    vgem: &'v Vgem,
    stages: &[Stage],
    points: &[u64],
) -> (Vec<Syncobj>, Vec<Attached<'v>>) {
    let mut syncobjs = Vec::new();
    let mut fences = Vec::new();
    for (i, &point) in points.iter().enumerate() {
        let stage = stages[i.min(stages.len() - 1)];
        let syncobj = dev.create_syncobj().unwrap();
        if stage != Stage::Unsubmitted {
            let mut fence = attach(vgem, &syncobj, point);
            if stage == Stage::Signaled {
                fence.signal();
            }
            fences.push(fence);
        }
        syncobjs.push(syncobj);
    }
    (syncobjs, fences)
}

/// The points of igt `syncobj_timeline`'s multi-waits: three timeline points (igt draws them
/// from 1 to 1000) and two binary syncobjs (point 0).
pub const TIMELINE_MULTI: [u64; 5] = [384, 0, 887, 778, 0];

/// igt's single-wait and multi-wait subtest `name` (igt's name, `_` for `-`), whose flags and
/// syncobj stages the name spells, as igt builds it: one syncobj (at the suite's point), or
/// three binary syncobjs, or the points of [`TIMELINE_MULTI`]; the wait must answer what the
/// kernel answers for them ([`kernel_answer`]).
pub fn named_wait(api: Api, name: &str) {
    let words: Vec<&str> = name.split('_').collect();
    let has = |w: &str| words.contains(&w);
    let mut flags = WaitFlags::ANY;
    for (word, flag) in [
        ("all", WaitFlags::ALL),
        ("for", WaitFlags::FOR_SUBMIT),
        ("available", WaitFlags::AVAILABLE),
    ] {
        if has(word) {
            flags = flags | flag;
        }
    }
    let stages: Vec<Stage> = words
        .iter()
        .filter_map(|w| match *w {
            "unsubmitted" => Some(Stage::Unsubmitted),
            "submitted" => Some(Stage::Submitted),
            "signaled" => Some(Stage::Signaled),
            _ => None,
        })
        .collect();
    let points = match (api, has("multi")) {
        (Api::Binary, false) => vec![0],
        (Api::Binary, true) => vec![0; 3],
        (Api::Timeline, false) => vec![1],
        (Api::Timeline, true) => TIMELINE_MULTI.to_vec(),
    };
    let expect = kernel_answer(flags, &stages);
    // igt's prefix says what igt expects ("invalid", and in syncobj_timeline "etime"): the
    // kernel agrees but for WAIT_AVAILABLE on a point without a fence, which igt expects
    // refused and Linux 6.12 waits for.
    if !flags.contains(WaitFlags::AVAILABLE) {
        assert_eq!(
            words[0] == "invalid",
            expect == Some(Errno::INVAL),
            "{name}"
        );
        if api == Api::Timeline {
            assert_eq!(words[0] == "etime", expect == Some(Errno::TIME), "{name}");
        }
    }
    wait_expecting(api, &points, &stages, flags, expect);
}

/// What Linux 6.12 answers a wait with `flags` on syncobjs in `stages` (the last one standing
/// for the rest): `EINVAL` for one without a fence unless the flags wait for submission
/// (`FOR_SUBMIT` or `AVAILABLE`); else, waiting for all, `ETIME` while any is unsubmitted or
/// (without `AVAILABLE`) pending; waiting for any, success once one is signalled (or with
/// `AVAILABLE` submitted), else `ETIME`.
pub fn kernel_answer(flags: WaitFlags, stages: &[Stage]) -> Option<Errno> {
    let waits_for_submit =
        flags.contains(WaitFlags::FOR_SUBMIT) || flags.contains(WaitFlags::AVAILABLE);
    let available = flags.contains(WaitFlags::AVAILABLE);
    let done = |s: &Stage| *s == Stage::Signaled || (available && *s == Stage::Submitted);
    if stages.contains(&Stage::Unsubmitted) && !waits_for_submit {
        Some(Errno::INVAL)
    } else if flags.contains(WaitFlags::ALL) {
        (!stages.iter().all(done)).then_some(Errno::TIME)
    } else {
        (!stages.iter().any(done)).then_some(Errno::TIME)
    }
}

/// igt's `test_single_wait` and `test_multi_wait`: a wait on syncobjs at `points` in `stages`
/// answers `expect` when it only looks, with a short timeout, and (unless it times out) with
/// none.
pub fn wait_expecting(
    api: Api,
    points: &[u64],
    stages: &[Stage],
    flags: WaitFlags,
    expect: Option<Errno>,
) {
    let dev = drm();
    let vgem = vgem();
    let (syncobjs, _fences) = staged(&dev, &vgem, stages, points);
    let refs: Vec<&Syncobj> = syncobjs.iter().collect();
    for timeout in [Some(Duration::ZERO), Some(SHORT), None] {
        if timeout.is_none() && expect == Some(Errno::TIME) {
            continue;
        }
        let answer = api.wait(&dev, &refs, points, flags, timeout);
        assert_eq!(errno_of(answer), expect, "{stages:?} {flags:?} {timeout:?}");
    }
}

/// igt's `test_wait_delayed_signal`: a fence attached now and signalled after [`SHORT`] (or,
/// with `FOR_SUBMIT`, attached and signalled then) ends a wait that began before.
pub fn delayed_signal(api: Api, flags: WaitFlags) {
    let dev = drm();
    let vgem = vgem();
    let syncobj = dev.create_syncobj().unwrap();
    let point = api.point();
    std::thread::scope(|s| {
        if flags.contains(WaitFlags::FOR_SUBMIT) {
            s.spawn(|| {
                std::thread::sleep(SHORT);
                trigger(&vgem, &syncobj, point);
            });
        } else {
            let mut fence = attach(&vgem, &syncobj, point);
            s.spawn(move || {
                std::thread::sleep(SHORT);
                fence.signal();
            });
        }
        api.wait_one(&dev, &syncobj, flags, Some(LONG))
            .expect("signalled before the deadline");
    });
}

/// igt's `test_reset_unsignaled`: a syncobj without a fence stays without one after a reset.
pub fn reset_unsignaled(api: Api) {
    let dev = drm();
    let syncobj = dev.create_syncobj().unwrap();
    let look = |s: &Syncobj| errno_of(api.wait_one(&dev, s, WaitFlags::ANY, Some(Duration::ZERO)));
    assert_eq!(look(&syncobj), Some(Errno::INVAL));
    syncobj.reset().unwrap();
    assert_eq!(look(&syncobj), Some(Errno::INVAL));
}

/// igt's `test_reset_signaled` and `test_reset_multiple_signaled`: signalled syncobjs have no
/// fence after a reset.
pub fn reset_signaled(api: Api, count: usize) {
    let dev = drm();
    let vgem = vgem();
    let syncobjs: Vec<Syncobj> = (0..count).map(|_| dev.create_syncobj().unwrap()).collect();
    for s in &syncobjs {
        trigger(&vgem, s, api.point());
    }
    let refs: Vec<&Syncobj> = syncobjs.iter().collect();
    let points = vec![api.point(); count];
    let all = api.wait(&dev, &refs, &points, WaitFlags::ANY, Some(Duration::ZERO));
    assert_eq!(errno_of(all), None);
    dev.reset(&refs).unwrap();
    for s in &syncobjs {
        let one = api.wait_one(&dev, s, WaitFlags::ANY, Some(Duration::ZERO));
        assert_eq!(errno_of(one), Some(Errno::INVAL));
    }
}

/// igt's `test_reset_during_wait_for_submit`: a reset while a wait for submit is waiting
/// changes nothing; the fence attached and signalled after it ends the wait.
pub fn reset_during_wait_for_submit(api: Api) {
    let dev = drm();
    let vgem = vgem();
    let syncobj = dev.create_syncobj().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(SHORT);
            syncobj.reset().unwrap();
            trigger(&vgem, &syncobj, api.point());
        });
        api.wait_one(&dev, &syncobj, WaitFlags::FOR_SUBMIT, Some(LONG))
            .expect("signalled after the reset");
    });
}

/// igt's `test_signal`: a syncobj without a fence is invalid to wait for and times out with
/// `FOR_SUBMIT`; after a CPU signal both waits succeed at once.
pub fn signal(api: Api) {
    let dev = drm();
    let syncobj = dev.create_syncobj().unwrap();
    let look = |flags| errno_of(api.wait_one(&dev, &syncobj, flags, Some(Duration::ZERO)));
    assert_eq!(look(WaitFlags::ANY), Some(Errno::INVAL));
    assert_eq!(look(WaitFlags::FOR_SUBMIT), Some(Errno::TIME));
    match api {
        Api::Binary => syncobj.signal().unwrap(),
        Api::Timeline => syncobj.timeline_signal(api.point()).unwrap(),
    }
    assert_eq!(look(WaitFlags::ANY), None);
    assert_eq!(look(WaitFlags::FOR_SUBMIT), None);
}

/// igt's `test_wait_snapshot`: a wait takes its fences when it begins (or, waiting for submit,
/// when they are attached): triggering the first, resetting it and attaching a fence that is
/// never signalled does not hold it back, and the second ends it.
pub fn snapshot(api: Api, flags: WaitFlags) {
    let dev = drm();
    let vgem = vgem();
    let point = api.point();
    let (a, b) = (dev.create_syncobj().unwrap(), dev.create_syncobj().unwrap());
    let mut fences: [Option<Attached<'_>>; 2] = [None, None];
    if !flags.contains(WaitFlags::FOR_SUBMIT) {
        fences = [
            Some(attach(&vgem, &a, point)),
            Some(attach(&vgem, &b, point)),
        ];
    }
    let step = || std::thread::sleep(SHORT / 2);
    let first = std::thread::scope(|s| {
        let waiter = s.spawn(|| api.wait(&dev, &[&a, &b], &[point, point], flags, Some(LONG)));
        step();
        if flags.contains(WaitFlags::ALL) {
            match fences[0].as_mut() {
                Some(fence) => fence.signal(),
                None => trigger(&vgem, &a, point),
            }
        } else if flags.contains(WaitFlags::FOR_SUBMIT) {
            fences[0] = Some(attach(&vgem, &a, point));
        }
        step();
        a.reset().unwrap();
        step();
        let _never = attach(&vgem, &a, point);
        step();
        match fences[1].as_mut() {
            Some(fence) => fence.signal(),
            None => trigger(&vgem, &b, point),
        }
        waiter.join().unwrap()
    });
    let first = first.expect("the wait ends when the second signals");
    if !flags.contains(WaitFlags::ALL) {
        assert_eq!(first, 1);
    }
}

/// igt's shuffled order of syncobjs for [`complex`]: 0 to 7, four times each.
const SHUFFLED: [usize; 32] = [
    2, 0, 6, 1, 1, 4, 5, 2, 0, 7, 1, 7, 6, 3, 4, 5, 0, 2, 7, 3, 5, 4, 0, 6, 7, 3, 2, 5, 6, 1, 4, 3,
];

/// igt's `test_wait_complex`: eight syncobjs go through submit, signal, reset and resubmit in
/// a shuffled order while a wait on the first two runs; it ends when they have signalled (all,
/// or the first to signal).
pub fn complex(api: Api, flags: WaitFlags) {
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Step {
        Unsubmitted,
        Submitted,
        Signaled,
        Reset,
        Resubmitted,
    }
    let dev = drm();
    let vgem = vgem();
    let point = api.point();
    let syncobjs: Vec<Syncobj> = (0..8).map(|_| dev.create_syncobj().unwrap()).collect();
    let mut fences: Vec<Option<Attached<'_>>> = if flags.contains(WaitFlags::FOR_SUBMIT) {
        (0..8).map(|_| None).collect()
    } else {
        syncobjs
            .iter()
            .map(|s| Some(attach(&vgem, s, point)))
            .collect()
    };
    let mut stage = [Step::Unsubmitted; 8];
    let (mut first_signaled, mut signaled) = (None, 0);
    let answer = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let pair = [&syncobjs[0], &syncobjs[1]];
            api.wait(&dev, &pair, &[point, point], flags, Some(LONG))
        });
        std::thread::sleep(Duration::from_millis(20));
        for i in SHUFFLED {
            match stage[i] {
                Step::Unsubmitted => {
                    if flags.contains(WaitFlags::FOR_SUBMIT) {
                        fences[i] = Some(attach(&vgem, &syncobjs[i], point));
                    }
                    stage[i] = Step::Submitted;
                }
                Step::Submitted => {
                    fences[i].as_mut().expect("submitted").signal();
                    first_signaled.get_or_insert(i);
                    signaled += 1;
                    stage[i] = Step::Signaled;
                }
                Step::Signaled => {
                    syncobjs[i].reset().unwrap();
                    stage[i] = Step::Reset;
                }
                Step::Reset => {
                    fences[i] = Some(attach(&vgem, &syncobjs[i], point));
                    stage[i] = Step::Resubmitted;
                }
                Step::Resubmitted => panic!("syncobj {i} visited a fifth time"),
            }
            let done = if flags.contains(WaitFlags::ALL) {
                signaled == syncobjs.len()
            } else {
                signaled > 0
            };
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        waiter.join().unwrap()
    });
    let answer = answer.expect("the wait ends");
    if flags.contains(WaitFlags::ALL) {
        assert_eq!(signaled, syncobjs.len());
    } else {
        assert_eq!(signaled, 1);
        assert_eq!(Some(answer as usize), first_signaled);
    }
}

/// igt's `test_wait_interrupted`, the waiting side, in a child process: tells the parent its
/// pid, then (with `FOR_SUBMIT`) waits for a syncobj without a fence, then for one with a
/// pending fence, each time telling the parent before and after; both waits must time out at
/// their deadline however often the parent stops and continues the process.
pub fn interrupted_child(api: Api, flags: WaitFlags, socket: std::os::unix::net::UnixStream) {
    use std::io::Write;
    let mut socket = socket;
    let dev = drm();
    let vgem = vgem();
    let syncobj = dev.create_syncobj().unwrap();
    writeln!(socket, "{}", rustix::process::getpid().as_raw_nonzero()).unwrap();
    let mut wait = |what: &str| {
        writeln!(socket, "waiting").unwrap();
        let started = std::time::Instant::now();
        let answer = api.wait_one(&dev, &syncobj, flags, Some(SHORT * 5));
        assert_eq!(errno_of(answer), Some(Errno::TIME), "{what}");
        // The kernel turns the absolute deadline into a count of ticks each time the stopped
        // and continued wait restarts (`drm_timeout_abs_to_jiffies()`): it may end a tick
        // (4 ms at Debian's 250 Hz) before the deadline.
        let slack = Duration::from_millis(10);
        assert!(
            started.elapsed() + slack >= SHORT * 5,
            "{what}: returned {:?} early",
            SHORT * 5 - started.elapsed()
        );
        writeln!(socket, "done").unwrap();
    };
    if flags.contains(WaitFlags::FOR_SUBMIT) {
        wait("unsubmitted");
    }
    let _fence = attach(&vgem, &syncobj, api.point());
    wait("submitted");
    writeln!(socket, "end").unwrap();
}

/// igt's `test_wait_interrupted`, the interrupting side: runs `test` (whose child runs
/// [`interrupted_child`]) and stops and continues the child while each of its waits runs.
pub fn interrupted(test: &'static str) {
    use rustix::process::{Signal, kill_process};
    let (parent, child) = std::os::unix::net::UnixStream::pair().unwrap();
    let run = super::spawn_child(test, child);
    let pid: i32 = read_line(&parent).parse().expect("the child's pid");
    let pid = rustix::process::Pid::from_raw(pid).expect("a pid");
    let mut stops = 0;
    loop {
        match read_line(&parent).as_str() {
            "waiting" => {
                // Stop and continue the child until its next line (the wait is over).
                while !has_input(&parent) {
                    if kill_process(pid, Signal::STOP).is_err() {
                        break; // gone: the join below reports why
                    }
                    while state(pid) == Some('R') || state(pid) == Some('S') {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    stops += usize::from(state(pid) == Some('T'));
                    std::thread::sleep(Duration::from_millis(5));
                    let _ = kill_process(pid, Signal::CONT);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            "done" => {}
            "end" | "" => break,
            other => panic!("unexpected line {other:?}"),
        }
    }
    run.join()
        .expect("the child's waits timed out at their deadlines");
    assert!(stops > 0, "the child was never stopped while waiting");
}

/// One line from `socket`, read a byte at a time (nothing is read past it); empty at the end
/// of the stream.
fn read_line(socket: &std::os::unix::net::UnixStream) -> String {
    use std::io::Read;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = (&*socket).read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Whether a byte is ready to read on `socket`, without reading it.
fn has_input(socket: &std::os::unix::net::UnixStream) -> bool {
    let ready = rustix::event::poll(
        &mut [rustix::event::PollFd::new(
            socket,
            rustix::event::PollFlags::IN,
        )],
        Some(&rustix::event::Timespec::default()),
    );
    matches!(ready, Ok(1))
}

/// The state letter of process `pid` (`/proc/<pid>/stat`): `T` when stopped; `None` once it
/// is gone.
fn state(pid: rustix::process::Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
    // The state follows the command name, which is in parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// igt's `test_wait_bad_flags`, `test_wait_zero_handles` and `test_wait_illegal_handle`:
/// the kernel's own answers, through `raw`, to a wait with unknown flags (`EINVAL`), with no
/// handles (Linux 6.12: success at once, where igt expects `EINVAL`), and on handle 0, which
/// no file has (`ENOENT`).
pub fn invalid_wait(api: Api, case: &str) {
    use dmabuf_linux::raw::{self, SyncobjWait};
    let dev = drm();
    let (handles, flags): (&[u32], u32) = match case {
        "bad-flags" => (&[], 0xdead_beef),
        "zero-handles" => (&[], 0),
        "illegal-handle" => (&[0], 0),
        other => unreachable!("{other}"),
    };
    let wait = SyncobjWait {
        handles,
        flags,
        ..SyncobjWait::default()
    };
    let answer = match api {
        Api::Binary => raw::syncobj_wait(&dev, &wait),
        Api::Timeline => raw::syncobj_timeline_wait(&dev, &wait),
    };
    let expect = match case {
        "bad-flags" => Some(Errno::INVAL),
        "zero-handles" => None,
        _ => Some(Errno::NOENT),
    };
    assert_eq!(errno_of(answer), expect, "{case}");
    if case == "zero-handles" {
        assert_eq!(api.wait(&dev, &[], &[], WaitFlags::ANY, None).unwrap(), 0);
    }
}

/// igt's `test_wait_interrupted` as one test named `test`: the child process it starts runs
/// [`interrupted_child`], the test's own process [`interrupted`].
pub fn interrupted_test(api: Api, flags: WaitFlags, test: &'static str) {
    match super::child_socket() {
        Some(socket) => interrupted_child(api, flags, socket),
        None => interrupted(test),
    }
}

/// The subtests `syncobj_wait` and `syncobj_timeline` share, one test each, for the suite named
/// `$suite` waiting with `$api`; each is documented as the port of its igt subtest.
#[macro_export]
macro_rules! shared_scenario_tests {
    ($suite:literal, $api:expr, $needs:literal) => {
        $crate::shared_scenario_tests! {@each $suite, $needs;
            invalid_wait_bad_flags "invalid-wait-bad-flags" => invalid_wait($api, "bad-flags");
            invalid_wait_zero_handles "invalid-wait-zero-handles"
                => invalid_wait($api, "zero-handles");
            invalid_wait_illegal_handle "invalid-wait-illegal-handle"
                => invalid_wait($api, "illegal-handle");
            wait_delayed_signal "wait-delayed-signal"
                => delayed_signal($api, dmabuf_linux::WaitFlags::ANY);
            wait_for_submit_delayed_submit "wait-for-submit-delayed-submit"
                => delayed_signal($api, dmabuf_linux::WaitFlags::FOR_SUBMIT);
            wait_all_delayed_signal "wait-all-delayed-signal"
                => delayed_signal($api, dmabuf_linux::WaitFlags::ALL);
            wait_all_for_submit_delayed_submit "wait-all-for-submit-delayed-submit"
                => delayed_signal($api, dmabuf_linux::WaitFlags::ALL | dmabuf_linux::WaitFlags::FOR_SUBMIT);
            reset_unsignaled "reset-unsignaled" => reset_unsignaled($api);
            reset_signaled "reset-signaled" => reset_signaled($api, 1);
            reset_multiple_signaled "reset-multiple-signaled" => reset_signaled($api, 3);
            reset_during_wait_for_submit "reset-during-wait-for-submit"
                => reset_during_wait_for_submit($api);
            signal "signal" => signal($api);
            wait_any_snapshot "wait-any-snapshot"
                => snapshot($api, dmabuf_linux::WaitFlags::ANY);
            wait_all_snapshot "wait-all-snapshot"
                => snapshot($api, dmabuf_linux::WaitFlags::ALL);
            wait_for_submit_snapshot "wait-for-submit-snapshot"
                => snapshot($api, dmabuf_linux::WaitFlags::FOR_SUBMIT);
            wait_all_for_submit_snapshot "wait-all-for-submit-snapshot"
                => snapshot($api, dmabuf_linux::WaitFlags::ALL | dmabuf_linux::WaitFlags::FOR_SUBMIT);
            wait_any_complex "wait-any-complex"
                => complex($api, dmabuf_linux::WaitFlags::ANY);
            wait_all_complex "wait-all-complex"
                => complex($api, dmabuf_linux::WaitFlags::ALL);
            wait_for_submit_complex "wait-for-submit-complex"
                => complex($api, dmabuf_linux::WaitFlags::FOR_SUBMIT);
            wait_all_for_submit_complex "wait-all-for-submit-complex"
                => complex($api, dmabuf_linux::WaitFlags::ALL | dmabuf_linux::WaitFlags::FOR_SUBMIT);
            wait_any_interrupted "wait-any-interrupted"
                => interrupted_test($api, dmabuf_linux::WaitFlags::ANY, "wait_any_interrupted");
            wait_all_interrupted "wait-all-interrupted"
                => interrupted_test($api, dmabuf_linux::WaitFlags::ALL, "wait_all_interrupted");
        }
    };
    (@each $suite:literal, $needs:literal;
        $($name:ident $subtest:literal => $scenario:ident($($arg:expr),*);)*) => {$(
        #[doc = concat!("ports igt ", $suite, ": ", $subtest)]
        #[test]
        #[ignore = $needs]
        fn $name() {
            $crate::common::scenarios::$scenario($($arg),*);
        }
    )*};
}

/// igt's single-wait and multi-wait subtests named: one test each, running [`named_wait`]
/// with `$api`.
#[macro_export]
macro_rules! named_wait_tests {
    ($suite:literal, $api:expr, $needs:literal; $($name:ident)*) => {$(
        #[doc = concat!("ports igt ", $suite, ": ", stringify!($name), " (`_` for `-`)")]
        #[test]
        #[ignore = $needs]
        fn $name() {
            $crate::common::scenarios::named_wait($api, stringify!($name));
        }
    )*};
}
