//! DRM sync objects, the kernel against the in-process model: one script runs on syncobjs of a
//! real render node (the virtio GPU in the qemu guest, with vgem fences as pending work) and on
//! `dmabuf::syncobj` syncobjs (with library fences), and everything the two report must agree
//! with `==`: every call's success or errno, the points `DRM_IOCTL_SYNCOBJ_QUERY` answers (last
//! signalled and last submitted), every wait's answer (the index a wait for any answers,
//! `EINVAL`, `ETIME`), and what the sync file of every point exported shows, compared as
//! `sync_file_diff` compares sync files (`common::diff`), stubs included.
//!
//! The sequences:
//! * waits in every flag combination (all or any, `WAIT_FOR_SUBMIT` or not, for timeline waits
//!   `WAIT_AVAILABLE` or not, a deadline or none) on one, two and three syncobjs whose points
//!   are unsubmitted, submitted or signalled, in every order, binary and timeline, each looking
//!   once and waiting briefly;
//! * binary syncobjs: created signalled or not, CPU-signalled, given a sync file, exported
//!   (the file a snapshot), reset, and a file exported from one imported into another;
//! * timeline points submitted out of order and signalled out of order, each point and both
//!   queries looked at after every step;
//! * CPU signals of timeline points: in order, past a pending point, below the last point,
//!   point 0, several syncobjs in one call, on top of a binary fence, and a reset;
//! * transfers between binary syncobjs and timeline points, of points unsubmitted, pending,
//!   signalled and collected since, to the same timeline and to another, and a transfer that
//!   waits for submit, satisfied and timing out (the kernel's five seconds);
//! * wait flags neither knows, on the binary and the timeline wait.
//!
//! Both worlds make the same calls: a kernel point is exported and imported through a
//! temporary binary syncobj and a transfer (`Syncobj::export_point`, `import_point`), and the
//! library's side does the same with a temporary model syncobj. The kernel's waits are the raw
//! ioctls, so the flags reach the kernel as given; the model's are a `Wait` with flags from the
//! same bits (`WaitFlags::from_bits`, `WAIT_ALL` being the choice of `all` or `any` and
//! `WAIT_DEADLINE` a fence deadline).
//!
//! Left out, since the two cannot agree by construction:
//! * handles: a model syncobj is a value, not a number in a DRM file, so a missing handle, one
//!   of another file, or an array with a bad handle in it cannot be written; nor can padding,
//!   or bad flags of the calls whose flags the model types (a transfer's wait for submit,
//!   the query's `LAST_SUBMITTED`, create's `SIGNALED`). The kernel's answers to those are in
//!   `igt_syncobj_*` and `syncobj`. The wait's flags are bits on both sides and are compared.
//! * `WAIT_AVAILABLE` on the binary wait (`DRM_IOCTL_SYNCOBJ_WAIT`), which the kernel refuses:
//!   the model has one wait, whose point 0 is the binary one, and takes the flag there.
//! * the index a wait for all answers (`first_signaled`: the first point already done when it
//!   began, else `u32::MAX`): the model's `Wait::all` answers none.
//! * fence contexts, names and timestamps (see `common::diff`); eventfds, where the model
//!   notifies through callbacks and futures (`igt_syncobj_eventfd` on each side).
//! * waits that an event ends while they wait (a point submitted or signalled meanwhile, a
//!   reset during the wait): their answers depend on timing, and the igt ports cover them on
//!   each side.
//!
//! One answer differs and is left out for that reason: a wait over no points, which Linux
//! 6.12 answers with success at once (`igt_syncobj_wait`'s `invalid_wait_zero_handles`) and
//! the model with `EINVAL`, as earlier kernels did and igt expects.
//!
//! vgem signals a pending fence by itself after ten seconds, so each script's kernel half must
//! be done before (checked). Waits that must time out wait [`BRIEF`]; every other wait finds
//! its points done when it starts.
//!
//! Each test needs the render node and vgem and is ignored unless asked for
//! (`--include-ignored`); it runs in the qemu guest (Linux 6.12) and fails where a device is
//! missing (see `common`).

mod common;
use common::diff::{KernelFiles, LibraryFiles, P, S, STUB, Seen, SyncFiles, agree};
use common::scenarios::{Api, Stage, kernel_answer};
use common::{drm, no_leak, vgem};
use dmabuf::MonotonicTime;
use dmabuf::syncobj::{self as model, IfUnsubmitted, Point};
use dmabuf_linux::{DrmDevice, FenceStatus, Syncobj, WaitFlags, raw};
use rustix::io::Errno;
use std::time::{Duration, Instant};

/// A wait that only looks.
const LOOK: Duration = Duration::ZERO;
/// A wait that goes to sleep: long enough to, short enough for the many that time out.
const BRIEF: Duration = Duration::from_millis(3);
/// The uAPI's `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE`.
const WAIT_DEADLINE: u32 = 1 << 3;
/// vgem signals a fence by itself after this long.
const VGEM_TIMEOUT: Duration = Duration::from_secs(10);
const EINVAL: i32 = Errno::INVAL.raw_os_error();
const ETIME: i32 = Errno::TIME.raw_os_error();

/// A call's answer: its value, or the errno.
type Answer<T> = Result<T, i32>;
/// A wait's answer: for a wait for any the index of the first point done; for all, none.
type Waited = Answer<Option<u32>>;

/// One world's syncobjs and sync files, by index.
trait World {
    /// The world's sync files.
    fn files(&mut self) -> &mut dyn SyncFiles;
    /// `DRM_IOCTL_SYNCOBJ_CREATE`, signalled or not; returns the syncobj's index.
    fn create(&mut self, signaled: bool) -> usize;
    /// Sync file `file`'s fence as the syncobj's fence (point 0) or as point `point`.
    fn import(&mut self, syncobj: usize, point: u64, file: usize);
    /// The fence of point `point` (0: the syncobj's fence) as a new sync file; its index.
    fn export(&mut self, syncobj: usize, point: u64) -> Answer<usize>;
    /// `DRM_IOCTL_SYNCOBJ_RESET`.
    fn reset(&mut self, syncobj: usize);
    /// `DRM_IOCTL_SYNCOBJ_SIGNAL`.
    fn signal(&mut self, syncobj: usize);
    /// `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL` of `(syncobj, point)` pairs in one call.
    fn timeline_signal(&mut self, points: &[(usize, u64)]);
    /// `DRM_IOCTL_SYNCOBJ_QUERY`: each syncobj's last signalled or last submitted point.
    fn query(&mut self, syncobjs: &[usize], last_submitted: bool) -> Vec<u64>;
    /// `DRM_IOCTL_SYNCOBJ_TRANSFER` from `(syncobj, point)` to `(syncobj, point)`.
    fn transfer(&mut self, src: (usize, u64), dst: (usize, u64), for_submit: bool) -> Answer<()>;
    /// `DRM_IOCTL_SYNCOBJ_WAIT` (binary: every point 0) or `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`
    /// with the uAPI's flag bits, timing out `timeout` from now (zero: look once).
    fn wait(&mut self, api: Api, points: &[(usize, u64)], bits: u32, timeout: Duration) -> Waited;
}

/// A deadline hint for waits with `WAIT_DEADLINE`.
fn soon() -> MonotonicTime {
    MonotonicTime::now() + Duration::from_millis(1)
}

/// The kernel: syncobjs of a render node.
struct Kernel<'v> {
    dev: DrmDevice,
    syncobjs: Vec<Syncobj>,
    files: KernelFiles<'v>,
}

fn kernel_errno(e: dmabuf_linux::Error) -> i32 {
    e.errno().raw_os_error()
}

impl World for Kernel<'_> {
    fn files(&mut self) -> &mut dyn SyncFiles {
        &mut self.files
    }
    fn create(&mut self, signaled: bool) -> usize {
        let s = match signaled {
            true => self.dev.create_syncobj_signaled(),
            false => self.dev.create_syncobj(),
        };
        self.syncobjs.push(s.expect("create"));
        self.syncobjs.len() - 1
    }
    fn import(&mut self, syncobj: usize, point: u64, file: usize) {
        self.syncobjs[syncobj]
            .import_point(point, self.files.get(file))
            .expect("import");
    }
    fn export(&mut self, syncobj: usize, point: u64) -> Answer<usize> {
        let file = self.syncobjs[syncobj].export_point(point);
        Ok(self.files.add(file.map_err(kernel_errno)?, false))
    }
    fn reset(&mut self, syncobj: usize) {
        self.syncobjs[syncobj].reset().expect("reset");
    }
    fn signal(&mut self, syncobj: usize) {
        self.syncobjs[syncobj].signal().expect("signal");
    }
    fn timeline_signal(&mut self, points: &[(usize, u64)]) {
        let pairs: Vec<(&Syncobj, u64)> = points
            .iter()
            .map(|&(s, p)| (&self.syncobjs[s], p))
            .collect();
        self.dev.timeline_signal(&pairs).expect("timeline signal");
    }
    fn query(&mut self, syncobjs: &[usize], last_submitted: bool) -> Vec<u64> {
        let refs: Vec<&Syncobj> = syncobjs.iter().map(|&s| &self.syncobjs[s]).collect();
        self.dev.query(&refs, last_submitted).expect("query")
    }
    fn transfer(&mut self, src: (usize, u64), dst: (usize, u64), for_submit: bool) -> Answer<()> {
        let to = &self.syncobjs[dst.0];
        let moved = self.syncobjs[src.0].transfer_to(src.1, to, dst.1, for_submit);
        moved.map_err(kernel_errno)
    }
    fn wait(&mut self, api: Api, points: &[(usize, u64)], bits: u32, timeout: Duration) -> Waited {
        let handles: Vec<u32> = points
            .iter()
            .map(|&(s, _)| self.syncobjs[s].handle())
            .collect();
        let values: Vec<u64> = points.iter().map(|&(_, p)| p).collect();
        let timeout_nsec = match timeout {
            LOOK => 0,
            t => i64::try_from(MonotonicTime::now().saturating_add(t).as_nanos()).unwrap(),
        };
        let wait = raw::SyncobjWait {
            handles: &handles,
            points: Some(&values),
            timeout_nsec,
            flags: bits,
            pad: 0,
            deadline_nsec: soon().as_nanos(),
        };
        let answer = match api {
            Api::Binary => raw::syncobj_wait(&self.dev, &wait),
            Api::Timeline => raw::syncobj_timeline_wait(&self.dev, &wait),
        };
        let all = bits & WaitFlags::ALL.bits() != 0;
        answer
            .map(|first| (!all).then_some(first))
            .map_err(kernel_errno)
    }
}

/// The model: `dmabuf::syncobj`, calling what the kernel layer calls.
#[derive(Default)]
struct Library {
    syncobjs: Vec<model::Syncobj>,
    files: LibraryFiles,
}

impl World for Library {
    fn files(&mut self) -> &mut dyn SyncFiles {
        &mut self.files
    }
    fn create(&mut self, signaled: bool) -> usize {
        self.syncobjs.push(match signaled {
            true => model::Syncobj::new_signaled(),
            false => model::Syncobj::new(),
        });
        self.syncobjs.len() - 1
    }
    fn import(&mut self, syncobj: usize, point: u64, file: usize) {
        // As `Syncobj::import_point`: into a temporary binary syncobj, transferred from it.
        let (file, dst) = (self.files.get(file), &self.syncobjs[syncobj]);
        if point == 0 {
            return dst.import_sync_file(file);
        }
        let binary = model::Syncobj::new();
        binary.import_sync_file(file);
        let moved = model::Syncobj::transfer(
            &binary,
            Point::BINARY,
            dst,
            Point(point),
            IfUnsubmitted::Fail,
        );
        moved.expect("import");
    }
    fn export(&mut self, syncobj: usize, point: u64) -> Answer<usize> {
        // As `Syncobj::export_point`: transferred to a temporary binary syncobj, exported.
        let src = &self.syncobjs[syncobj];
        let file = match point {
            0 => src.export_sync_file(),
            _ => {
                let binary = model::Syncobj::new();
                let fail = IfUnsubmitted::Fail;
                model::Syncobj::transfer(src, Point(point), &binary, Point::BINARY, fail)
                    .and_then(|()| binary.export_sync_file())
            }
        };
        Ok(self.files.add(file.map_err(|e| e.errno().raw())?, false))
    }
    fn reset(&mut self, syncobj: usize) {
        self.syncobjs[syncobj].reset();
    }
    fn signal(&mut self, syncobj: usize) {
        self.syncobjs[syncobj].signal();
    }
    fn timeline_signal(&mut self, points: &[(usize, u64)]) {
        for &(s, p) in points {
            self.syncobjs[s].timeline_signal(Point(p));
        }
    }
    fn query(&mut self, syncobjs: &[usize], last_submitted: bool) -> Vec<u64> {
        let point = |s: &model::Syncobj| match last_submitted {
            true => s.last_submitted_point(),
            false => s.last_signaled_point(),
        };
        syncobjs
            .iter()
            .map(|&s| point(&self.syncobjs[s]).get())
            .collect()
    }
    fn transfer(&mut self, src: (usize, u64), dst: (usize, u64), for_submit: bool) -> Answer<()> {
        let how = match for_submit {
            true => IfUnsubmitted::WaitForSubmit,
            false => IfUnsubmitted::Fail,
        };
        let (from, to) = (&self.syncobjs[src.0], &self.syncobjs[dst.0]);
        model::Syncobj::transfer(from, Point(src.1), to, Point(dst.1), how)
            .map_err(|e| e.errno().raw())
    }
    fn wait(&mut self, api: Api, points: &[(usize, u64)], bits: u32, timeout: Duration) -> Waited {
        assert!(
            api == Api::Timeline || points.iter().all(|&(_, p)| p == 0),
            "a binary wait has no points"
        );
        let all = WaitFlags::ALL.bits();
        let flags = model::WaitFlags::from_bits(bits & !(all | WAIT_DEADLINE));
        let pairs = points.iter().map(|&(s, p)| (&self.syncobjs[s], Point(p)));
        let mut wait = model::Wait::new(pairs).flags(flags.map_err(|e| e.errno().raw())?);
        if bits & WAIT_DEADLINE != 0 {
            wait = wait.fence_deadline(soon());
        }
        let answer = match bits & all != 0 {
            true => wait.all(Some(timeout)).map(|()| None),
            false => wait.any(Some(timeout)).map(|i| Some(i as u32)),
        };
        answer.map_err(|e| e.errno().raw())
    }
}

/// Runs `script` on the kernel and on the model, asserts they agree, and returns what the
/// model gave (for the expectations).
fn both<T: PartialEq + std::fmt::Debug>(script: impl Fn(&mut dyn World) -> T) -> T {
    let vgem = vgem();
    let mut kernel = Kernel {
        dev: drm(),
        syncobjs: Vec::new(),
        files: KernelFiles::new(&vgem),
    };
    let started = Instant::now();
    let k = script(&mut kernel);
    let took = started.elapsed();
    assert!(
        took < VGEM_TIMEOUT,
        "the kernel's half took {took:?}: vgem may have signalled its pending fences itself"
    );
    drop(kernel);
    agree(k, script(&mut Library::default()))
}

/// What a point shows: its sync file (or the export's errno) and three waits that only look
/// at it: without flags, waiting for submit, and waiting for availability.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    file: Answer<Seen>,
    looks: [Waited; 3],
}

fn show(w: &mut dyn World, syncobj: usize, point: u64) -> Shown {
    let file = w.export(syncobj, point).map(|f| w.files().seen(f));
    let flags = [WaitFlags::ANY, WaitFlags::FOR_SUBMIT, WaitFlags::AVAILABLE];
    let looks = flags.map(|f| w.wait(Api::Timeline, &[(syncobj, point)], f.bits(), LOOK));
    Shown { file, looks }
}

impl Shown {
    /// `U` (unsubmitted), or the point's sync file as [`file_brief`] gives it. Panics if the
    /// looks tell no stage or another stage than the file.
    fn brief(&self) -> String {
        let stage = match self.looks {
            [Ok(Some(0)), Ok(Some(0)), Ok(Some(0))] => 'S',
            [Err(ETIME), Err(ETIME), Ok(Some(0))] => 'P',
            [Err(EINVAL), Err(ETIME), Err(ETIME)] => 'U',
            _ => panic!("looks that tell no stage: {self:?}"),
        };
        let brief = match &self.file {
            Err(EINVAL) => "U".to_string(),
            Ok(seen) => file_brief(seen),
            Err(errno) => panic!("export: errno {errno}"),
        };
        assert!(brief.starts_with(stage), "{brief} for looks {self:?}");
        brief
    }
}

/// `P(…)` (pending) or `S(…)` (signalled) with the leaves: `p` pending, `s` signalled, `x` a
/// stub. Panics if the file shows anything else than a file of these leaves does.
fn file_brief(seen: &Seen) -> String {
    let pending = seen.leaves.contains(&P);
    let status = match pending {
        true => FenceStatus::Pending,
        false => FenceStatus::Signaled,
    };
    assert_eq!(*seen, Seen::of(status, seen.leaves.clone()));
    let leaves: String = seen
        .leaves
        .iter()
        .map(|l| match *l {
            P => 'p',
            S => 's',
            STUB => 'x',
            other => panic!("{other:?}"),
        })
        .collect();
    format!("{}({leaves})", if pending { 'P' } else { 'S' })
}

/// What one step of a script shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A call's success or errno.
    Call(Answer<()>),
    /// A syncobj: its last signalled and last submitted point, and its points from 0.
    Syncobj(u64, u64, Vec<Shown>),
    /// Several syncobjs' last signalled and last submitted points.
    Query(Vec<u64>, Vec<u64>),
    /// A sync file.
    File(Seen),
    /// Waits' answers.
    Waits(Vec<Waited>),
}

/// `ok`, `EINVAL`, `ETIME` or `errno N`, and for a wait for any the index instead of `ok`.
fn answer_brief<T>(answer: &Answer<T>, index: impl FnOnce(&T) -> Option<u32>) -> String {
    match answer {
        Ok(v) => index(v).map_or_else(|| "ok".into(), |i| i.to_string()),
        Err(EINVAL) => "EINVAL".into(),
        Err(ETIME) => "ETIME".into(),
        Err(errno) => format!("errno {errno}"),
    }
}

impl Step {
    /// [`answer_brief`]; `signalled/submitted` and each point's [`Shown::brief`]; the
    /// queries' points; the file's [`file_brief`]; each wait's [`answer_brief`].
    fn brief(&self) -> String {
        match self {
            Step::Call(answer) => answer_brief(answer, |_| None),
            Step::Syncobj(signaled, submitted, points) => {
                let points: Vec<String> = points.iter().map(Shown::brief).collect();
                format!("{signaled}/{submitted} {}", points.join(" "))
            }
            Step::Query(signaled, submitted) => format!("{signaled:?}/{submitted:?}"),
            Step::File(seen) => file_brief(seen),
            Step::Waits(answers) => {
                let answers: Vec<String> =
                    answers.iter().map(|a| answer_brief(a, |&i| i)).collect();
                answers.join(" ")
            }
        }
    }
}

/// The steps' briefs.
fn briefs(steps: &[Step]) -> Vec<String> {
    steps.iter().map(Step::brief).collect()
}

/// Syncobj `s`: its last signalled and last submitted point, then its points 0 to `last`.
fn syncobj(w: &mut dyn World, s: usize, last: u64) -> Step {
    let signaled = w.query(&[s], false)[0];
    let submitted = w.query(&[s], true)[0];
    Step::Syncobj(
        signaled,
        submitted,
        (0..=last).map(|p| show(w, s, p)).collect(),
    )
}

/// What file `file` shows now.
fn file(w: &mut dyn World, file: usize) -> Step {
    Step::File(w.files().seen(file))
}

const STAGES: [Stage; 3] = [Stage::Unsubmitted, Stage::Submitted, Stage::Signaled];

/// A new syncobj whose point `point` is at `stage`: no fence, a pending fence imported at the
/// point, or one imported and signalled.
fn staged(w: &mut dyn World, stage: Stage, point: u64) -> usize {
    let s = w.create(false);
    if stage != Stage::Unsubmitted {
        let f = w.files().pending();
        w.import(s, point, f);
        if stage == Stage::Signaled {
            w.files().signal(f);
        }
    }
    s
}

/// The point a matrix wait waits for at `position`: for timeline waits two timeline points
/// around point 0 of a syncobj used as a binary one, as igt's multi-waits mix them.
fn matrix_point(api: Api, position: usize) -> u64 {
    match api {
        Api::Binary => 0,
        Api::Timeline => [3, 0, 8][position],
    }
}

/// The stages the matrix waits on: each alone, every ordered pair, every order of all three.
fn sequences() -> Vec<Vec<Stage>> {
    let mut out: Vec<Vec<Stage>> = STAGES.iter().map(|&s| vec![s]).collect();
    for a in STAGES {
        for b in STAGES {
            out.push(vec![a, b]);
            let third = STAGES.iter().filter(|&&c| a != b && c != a && c != b);
            out.extend(third.map(|&c| vec![a, b, c]));
        }
    }
    out
}

/// The flags a wait of `api` takes, each with a deadline or without: all or any, for submit
/// or not, and for timeline waits available or not.
fn combinations(api: Api) -> Vec<(WaitFlags, bool)> {
    let mut out = Vec::new();
    for bits in 0..16u32 {
        let flag = |bit: u32, flag| match bits & bit {
            0 => WaitFlags::ANY,
            _ => flag,
        };
        let flags = flag(1, WaitFlags::ALL) | flag(2, WaitFlags::FOR_SUBMIT);
        let flags = flags | flag(4, WaitFlags::AVAILABLE);
        if api == Api::Timeline || !flags.contains(WaitFlags::AVAILABLE) {
            out.push((flags, bits & 8 != 0));
        }
    }
    out
}

/// One wait of the matrix, and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MatrixWait {
    stages: Vec<Stage>,
    flags: WaitFlags,
    deadline: bool,
    timeout: Duration,
    answer: Waited,
}

/// Every wait of [`combinations`] on every sequence of stages of [`sequences`], looking once
/// and waiting [`BRIEF`]. The syncobjs are made first, one for each position and stage.
fn matrix(w: &mut dyn World, api: Api) -> Vec<MatrixWait> {
    let pool: Vec<Vec<usize>> = (0..3)
        .map(|i| {
            let point = matrix_point(api, i);
            STAGES.iter().map(|&st| staged(w, st, point)).collect()
        })
        .collect();
    let mut out = Vec::new();
    for stages in sequences() {
        let points: Vec<(usize, u64)> = stages
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let index = STAGES.iter().position(|s| s == st).unwrap();
                (pool[i][index], matrix_point(api, i))
            })
            .collect();
        for (flags, deadline) in combinations(api) {
            let bits = flags.bits() | if deadline { WAIT_DEADLINE } else { 0 };
            for timeout in [LOOK, BRIEF] {
                out.push(MatrixWait {
                    stages: stages.clone(),
                    flags,
                    deadline,
                    timeout,
                    answer: w.wait(api, &points, bits, timeout),
                });
            }
        }
    }
    out
}

/// The answer Linux 6.12 gives a matrix wait ([`kernel_answer`]), with the index of the
/// first point done for a wait for any.
fn expected(m: &MatrixWait) -> Waited {
    let available = m.flags.contains(WaitFlags::AVAILABLE);
    let done = |s: &Stage| *s == Stage::Signaled || (available && *s == Stage::Submitted);
    match kernel_answer(m.flags, &m.stages) {
        Some(errno) => Err(errno.raw_os_error()),
        None if m.flags.contains(WaitFlags::ALL) => Ok(None),
        None => Ok(m.stages.iter().position(done).map(|i| i as u32)),
    }
}

/// Runs the matrix for `api` in both worlds and checks the answers against the kernel's rule.
fn matrix_agrees(api: Api) {
    no_leak(|| {
        let l = both(|w| matrix(w, api));
        let flags = if api == Api::Binary { 8 } else { 16 };
        assert_eq!(l.len(), sequences().len() * flags * 2);
        for m in &l {
            assert_eq!(m.answer, expected(m), "{m:?}");
        }
    });
}

// igt syncobj_wait's and syncobj_timeline's single-wait and multi-wait subtests, in every
// order and with a deadline or without
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn every_wait_flag_combination_agrees_on_binary_syncobjs() {
    matrix_agrees(Api::Binary);
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn every_wait_flag_combination_agrees_on_timeline_points() {
    matrix_agrees(Api::Timeline);
}

/// Binary syncobjs: created signalled or not, CPU-signalled, given a pending fence, exported
/// (the file a snapshot: a reset and the fence signalling later show in it as in the fence),
/// reset, a file of one imported into another, and a timeline point asked of a binary fence.
fn binary(w: &mut dyn World) -> Vec<Step> {
    let (empty, signaled) = (w.create(false), w.create(true));
    let mut out = vec![syncobj(w, empty, 0), syncobj(w, signaled, 0)];
    w.signal(empty);
    out.push(syncobj(w, empty, 0));
    let a = w.files().pending();
    w.import(empty, 0, a);
    out.push(syncobj(w, empty, 1));
    let snapshot = w.export(empty, 0).expect("a fence to export");
    w.reset(empty);
    out.extend([syncobj(w, empty, 0), file(w, snapshot)]);
    w.files().signal(a);
    out.push(file(w, snapshot));
    let other = w.create(false);
    w.import(other, 0, snapshot);
    out.push(syncobj(w, other, 1));
    // A CPU-signalled syncobj given a pending fence, then signalled over it, then reset twice.
    let b = w.files().pending();
    w.import(signaled, 0, b);
    out.push(syncobj(w, signaled, 0));
    w.signal(signaled);
    out.push(syncobj(w, signaled, 0));
    w.reset(signaled);
    w.reset(signaled);
    out.push(syncobj(w, signaled, 0));
    out
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn binary_syncobjs_agree() {
    no_leak(|| {
        let l = both(binary);
        assert_eq!(
            briefs(&l),
            [
                "0/0 U",
                "0/0 S(x)",
                "0/0 S(x)",
                "0/0 P(p) U",
                "0/0 U",
                "P(p)",
                "S(s)",
                "0/0 S(s) U",
                "0/0 P(p)",
                "0/0 S(x)",
                "0/0 U",
            ]
        );
    });
}

/// Four pending points submitted out of order (1, 5, 3 below the last, 7) and signalled out
/// of order (3, 1, 7, 5); after every step the timeline and waits that look at points 7 down
/// to 1 at once.
fn out_of_order(w: &mut dyn World) -> Vec<Step> {
    let t = w.create(false);
    let files: Vec<usize> = (0..4).map(|_| w.files().pending()).collect();
    let mut out = Vec::new();
    let mut step = |w: &mut dyn World| {
        out.push(syncobj(w, t, 8));
        out.push(all_points(w, t, 7));
    };
    for (&f, point) in files.iter().zip([1, 5, 3, 7]) {
        w.import(t, point, f);
        step(w);
    }
    for i in [2, 0, 3, 1] {
        w.files().signal(files[i]);
        step(w);
    }
    out
}

/// Waits that look at points `last` down to 1 of `syncobj` at once: for any, for any
/// waiting for submit, for any available, for all waiting for submit, for all available.
fn all_points(w: &mut dyn World, syncobj: usize, last: u64) -> Step {
    let points: Vec<(usize, u64)> = (1..=last).rev().map(|p| (syncobj, p)).collect();
    let (all, any) = (WaitFlags::ALL, WaitFlags::ANY);
    let flags = [
        any,
        any | WaitFlags::FOR_SUBMIT,
        any | WaitFlags::AVAILABLE,
        all | WaitFlags::FOR_SUBMIT,
        all | WaitFlags::AVAILABLE,
    ];
    let waits = flags.map(|f| w.wait(Api::Timeline, &points, f.bits(), LOOK));
    Step::Waits(waits.to_vec())
}

// igt syncobj_timeline: device-submit-unordered and device-signal-unordered, every point
// looked at after every step
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn points_submitted_and_signalled_out_of_order_agree() {
    no_leak(|| {
        let l = both(out_of_order);
        assert_eq!(
            briefs(&l),
            [
                "0/1 P(p) P(p) U U U U U U U",
                "EINVAL ETIME 6 ETIME ETIME",
                "0/5 P(pp) P(p) P(pp) P(pp) P(pp) P(pp) U U U",
                "EINVAL ETIME 2 ETIME ETIME",
                "0/5 P(ppp) P(ppp) P(ppp) P(ppp) P(ppp) P(ppp) U U U",
                "EINVAL ETIME 2 ETIME ETIME",
                "0/7 P(pppp) P(ppp) P(ppp) P(ppp) P(ppp) P(ppp) P(pppp) P(pppp) U",
                "ETIME ETIME 0 ETIME ok",
                "5/7 P(ppp) P(pp) P(pp) P(pp) P(pp) P(pp) P(ppp) P(ppp) U",
                "ETIME ETIME 0 ETIME ok",
                "5/7 P(pp) P(p) P(p) P(p) P(p) P(p) P(pp) P(pp) U",
                "ETIME ETIME 0 ETIME ok",
                "5/7 P(sp) P(p) P(p) P(p) P(p) P(p) P(sp) P(sp) U",
                "ETIME ETIME 0 ETIME ok",
                "7/7 S(s) S(x) S(x) S(x) S(x) S(x) S(s) S(s) U",
                "0 0 0 ok ok",
            ]
        );
    });
}

/// CPU signals of timeline points: three in order; past a pending point; below the last; point
/// 0; the pending point signalled; three syncobjs in one call (one at point 0); a binary CPU
/// signal of the timeline, points on top of it, a pending one, a reset and a point after it.
fn cpu_signals(w: &mut dyn World) -> Vec<Step> {
    let t = w.create(false);
    for p in 1..=3 {
        w.timeline_signal(&[(t, p)]);
    }
    let mut out = vec![syncobj(w, t, 4)];
    let a = w.files().pending();
    w.import(t, 4, a);
    w.timeline_signal(&[(t, 8)]);
    out.push(syncobj(w, t, 9));
    w.timeline_signal(&[(t, 6)]);
    out.push(syncobj(w, t, 9));
    w.timeline_signal(&[(t, 0)]);
    out.push(syncobj(w, t, 9));
    w.files().signal(a);
    out.push(syncobj(w, t, 9));
    let many = [w.create(false), w.create(false), w.create(false)];
    w.timeline_signal(&[(many[0], 1), (many[1], 4), (many[2], 0)]);
    out.push(Step::Query(w.query(&many, false), w.query(&many, true)));
    out.extend([syncobj(w, many[1], 5), syncobj(w, many[2], 1)]);
    w.signal(t);
    out.push(syncobj(w, t, 2));
    w.timeline_signal(&[(t, 2)]);
    out.push(syncobj(w, t, 3));
    let b = w.files().pending();
    w.import(t, 5, b);
    out.push(syncobj(w, t, 6));
    w.reset(t);
    out.push(syncobj(w, t, 1));
    w.timeline_signal(&[(t, 1)]);
    out.push(syncobj(w, t, 2));
    out
}

// igt syncobj_timeline: host-signal-points, host-signal-ordered, signal-point-0, signal-array
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn cpu_signals_of_points_agree() {
    no_leak(|| {
        let l = both(cpu_signals);
        assert_eq!(
            briefs(&l),
            [
                "3/3 S(x) S(x) S(x) S(x) U",
                "3/8 P(xp) S(x) S(x) S(x) P(p) P(xp) P(xp) P(xp) P(xp) U",
                "0/8 P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) U",
                "0/8 P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) P(xp) U",
                "8/8 S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) U",
                "[1, 4, 0]/[1, 4, 0]",
                "4/4 S(x) S(x) S(x) S(x) S(x) U",
                "0/0 S(x) U",
                "0/0 S(x) U U",
                "2/2 S(x) S(x) S(x) U",
                "2/5 P(p) S(x) S(x) P(p) P(p) P(p) U",
                "0/0 U U",
                "1/1 S(x) S(x) U",
            ]
        );
    });
}

/// Transfers: of nothing (a binary syncobj without a fence, an empty timeline); a binary
/// fence to a timeline point; a point to a binary syncobj, to a later point of its timeline,
/// waiting for submit of a point already there; an unsubmitted point; a point onto a syncobj
/// whose fence is another timeline's point; a signalled point (a stub); a point collected
/// since it signalled (the stub).
fn transfers(w: &mut dyn World) -> Vec<Step> {
    let (bin, tl, other) = (w.create(false), w.create(false), w.create(false));
    let (a, b) = (w.files().pending(), w.files().pending());
    let mut out = Vec::new();
    let moved =
        |w: &mut dyn World, src, dst, for_submit| Step::Call(w.transfer(src, dst, for_submit));
    out.push(moved(w, (bin, 0), (tl, 1), false));
    out.push(moved(w, (tl, 1), (bin, 0), false));
    w.import(bin, 0, a);
    out.push(moved(w, (bin, 0), (tl, 2), false));
    out.push(moved(w, (tl, 2), (other, 0), false));
    out.push(moved(w, (tl, 2), (tl, 4), false));
    out.push(moved(w, (tl, 4), (other, 0), true));
    out.push(moved(w, (tl, 9), (other, 0), false));
    out.extend([syncobj(w, tl, 5), syncobj(w, other, 1)]);
    w.import(tl, 6, b);
    out.push(moved(w, (tl, 6), (other, 3), false));
    out.push(syncobj(w, other, 4));
    w.files().signal(a);
    out.push(moved(w, (tl, 4), (other, 5), false));
    out.extend([syncobj(w, tl, 7), syncobj(w, other, 6)]);
    w.files().signal(b);
    for p in [7, 8, 9] {
        w.timeline_signal(&[(tl, p)]);
    }
    out.push(syncobj(w, tl, 9));
    out.push(moved(w, (tl, 1), (bin, 0), false));
    out.push(moved(w, (tl, 2), (bin, 10), false));
    out.push(syncobj(w, bin, 10));
    out
}

// igt syncobj_timeline: transfer-timeline-point, invalid-transfer-non-existent-point (its
// valid transfer), and the transfers to and from binary syncobjs
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn transfers_agree() {
    no_leak(|| {
        let l = both(transfers);
        assert_eq!(
            briefs(&l),
            [
                "EINVAL",
                "EINVAL",
                "ok",
                "ok",
                "ok",
                "ok",
                "EINVAL",
                "0/4 P(pp) P(p) P(p) P(pp) P(pp) U",
                "0/4 P(pp) P(p)",
                "ok",
                "0/4 P(pppp) P(pppp) P(pppp) P(pppp) P(pppp)",
                "ok",
                "4/6 P(p) S(x) S(x) S(x) S(x) P(p) P(p) U",
                "0/5 P(xsp) P(sp) P(sp) P(sp) P(sp) P(xsp) U",
                "9/9 S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x)",
                "ok",
                "ok",
                "10/10 S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x) S(x)",
            ]
        );
    });
}

/// A transfer that waits for submit of a point nobody submits: its answer, and whether it
/// took the kernel's five seconds.
fn transfer_for_submit_in_vain(w: &mut dyn World) -> (Answer<()>, bool) {
    let (src, dst) = (w.create(false), w.create(false));
    w.timeline_signal(&[(src, 1)]);
    let started = Instant::now();
    let answer = w.transfer((src, 2), (dst, 0), true);
    (answer, started.elapsed() >= model::WAIT_FOR_SUBMIT_TIMEOUT)
}

#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn a_transfer_waiting_for_submit_in_vain_times_out_after_five_seconds() {
    no_leak(|| assert_eq!(both(transfer_for_submit_in_vain), (Err(ETIME), true)));
}

/// Waits with flag bits neither side knows, binary and timeline, on a signalled syncobj and
/// on one without a fence.
fn unknown_flags(w: &mut dyn World) -> Vec<Waited> {
    let (done, empty) = (w.create(true), w.create(false));
    let mut out = Vec::new();
    for api in [Api::Binary, Api::Timeline] {
        for bits in [1 << 4, 1 << 5, 1 << 31, 0xdead_beef, u32::MAX] {
            for s in [done, empty] {
                out.push(w.wait(api, &[(s, 0)], bits, LOOK));
            }
        }
    }
    out
}

// igt syncobj_wait and syncobj_timeline: invalid-wait-bad-flags
#[test]
#[ignore = "needs a DRM render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn unknown_wait_flags_agree() {
    no_leak(|| assert_eq!(both(unknown_flags), [Err(EINVAL); 20]));
}
