//! One stage process: what the parent tells it ([`Setup`]), what it tells the parent at the
//! end ([`StageReport`]), and what every role shares ([`Stage`]): its neighbours, its trace,
//! its tallies, and waits that notice a dead neighbour.
//!
//! A stage is the `dmabuf` binary run as `dmabuf __stage`, its standard input a socket to
//! the parent. It asks to be killed when the parent dies (`PR_SET_PDEATHSIG`), so no stage
//! outlives the run. It counts its open descriptors when it starts and again when its role
//! has dropped everything, and reports both.

use super::devices::Allocator;
use super::wire::{Channel, Msg, WireError};
use crate::trace::{Trace, Track};
use dmabuf::lockdep::{ReportMode, set_report_mode, take_reports};
use dmabuf::{Fence, MonotonicTime, WaitError};
use rustix::fd::{AsFd, OwnedFd};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, Write};
use std::time::{Duration, Instant};

/// How long a stage waits for something its neighbours owe it before it gives up on them.
/// Longer than any reader's timeout (`--timeout-ms` is at most [`MAX_TIMEOUT`] with
/// `--kernel`), which is what notices a hung render.
pub const STALL: Duration = Duration::from_secs(60);
/// The longest reader timeout `--kernel` takes: vgem signals a pending fence by itself after
/// ten seconds, which a longer wait would take for the render.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(8);
/// The most buffers on an edge: the camera's and the renderer's objects go in one message,
/// with the two timelines, and a message here carries at most 64 descriptors.
pub const MAX_BUFFERS: usize = 62;
/// How often a blocked stage looks whether its neighbours are still there.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// A stage's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Fills buffers and signals acquire points.
    Camera,
    /// Renders each capture into a buffer of its own.
    Renderer,
    /// Reads renders through implicit sync.
    Encoder,
    /// Reads renders through timeline points, and releases them.
    Display,
}

impl Role {
    /// Every role, upstream first.
    pub const ALL: [Role; 4] = [Role::Camera, Role::Renderer, Role::Encoder, Role::Display];

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Camera => "camera",
            Role::Renderer => "renderer",
            Role::Encoder => "encoder",
            Role::Display => "display",
        }
    }
}

/// What the parent tells a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// The stage's role.
    pub role: Role,
    /// Frames to run.
    pub frames: u64,
    /// Buffers on each edge.
    pub buffers: usize,
    /// The seed of the frames' content.
    pub seed: u64,
    /// The frame whose first render hangs.
    pub fault: Option<u64>,
    /// How long a reader waits for a render before it reports the attempt failed.
    pub timeout_ms: u64,
    /// Where buffers come from.
    pub allocator: Allocator,
    /// The trace's origin on `CLOCK_MONOTONIC`.
    pub origin_ns: u64,
    /// Whether to trace.
    pub trace: bool,
}

/// What a stage tells the parent at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageReport {
    /// The process id.
    pub pid: u32,
    /// Frames the stage finished (captured, rendered, or read intact).
    pub frames: u64,
    /// The readers: the frames read intact, each with its latency from capture to read
    /// (microseconds).
    pub delivered: Vec<(u64, u64)>,
    /// Per frame, the time the stage spent on it (microseconds).
    pub latencies_us: Vec<u64>,
    /// Fences this stage signalled for another stage: `(edge, id, CLOCK_MONOTONIC ns)` just
    /// before the signal (edge 0: camera → renderer by frame; 1 and 2: renderer → encoder and
    /// → display by point).
    pub signals: Vec<(u8, u64, u64)>,
    /// Waits of this stage for another stage's fences: `(edge, id, start, end)`, the
    /// `CLOCK_MONOTONIC` ns when the wait began and just after it ended.
    pub wakes: Vec<(u8, u64, u64, u64)>,
    /// Fence and point waits.
    pub waits: u64,
    /// Waits that ran out of time.
    pub timeouts: u64,
    /// Renders reset and done again.
    pub rerendered: u64,
    /// Frame bytes checked.
    pub bytes_checked: u64,
    /// Frames whose content was wrong.
    pub corrupt: Vec<String>,
    /// Library fences created and signalled.
    pub fences: (u64, u64),
    /// Open descriptors when the stage started (with the parent's socket it keeps open),
    /// and once its role had dropped everything.
    pub fds: (usize, usize),
    /// The most descriptors open at the end of a frame.
    pub fds_peak: usize,
    /// The validator's reports.
    pub validator_reports: Vec<String>,
    /// Trace events.
    pub trace: Vec<serde_json::Value>,
    /// Why the stage stopped early.
    pub error: Option<String>,
}

/// Why a stage's role stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A neighbour went away or said something wrong.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A kernel call failed.
    #[error("{0}")]
    Kernel(#[from] dmabuf_linux::Error),
    /// A wait ran out with the neighbour still there, or the parent set the stage up wrong.
    #[error("{0}")]
    Stalled(String),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Report(String),
}

/// What every role has.
pub struct Stage {
    /// The options.
    pub setup: Setup,
    /// The socket to the parent.
    pub parent: Channel,
    /// The trace (recording only if asked for).
    pub trace: Trace,
    /// The main thread's track.
    pub track: Track,
    /// The tallies so far.
    pub report: StageReport,
    /// When the last [`wait`](Self::wait) began (`CLOCK_MONOTONIC` ns).
    wait_began: u64,
}

/// The outcome of [`Stage::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The fence signalled without an error.
    Signalled,
    /// The fence signalled with this error.
    Failed(dmabuf::Errno),
    /// The limit passed.
    TimedOut,
}

impl Stage {
    /// Waits for `fence` at most `limit`, looking every few milliseconds whether a neighbour
    /// (`watching`) or the parent went away. Counts the wait, and a timeout.
    ///
    /// # Errors
    /// [`StageError::Wire`] naming the neighbour that hung up.
    pub fn wait(
        &mut self,
        fence: &Fence,
        watching: &[&Channel],
        limit: Duration,
    ) -> Result<Waited, StageError> {
        self.report.waits += 1;
        self.wait_began = MonotonicTime::now().as_nanos();
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match fence.wait_timeout(left.min(LOOK_EVERY)) {
                Ok(()) => return Ok(Waited::Signalled),
                Err(WaitError::Failed(e)) => return Ok(Waited::Failed(e)),
                Err(WaitError::TimedOut) => {}
            }
            for c in watching.iter().copied().chain([&self.parent]) {
                // A neighbour that exits after its last signal is no failure: look again.
                if c.hung_up() && !fence.is_signaled() {
                    return Err(WireError::HungUp { peer: c.peer() }.into());
                }
            }
            if left.is_zero() {
                self.report.timeouts += 1;
                return Ok(Waited::TimedOut);
            }
        }
    }

    /// Notes that this stage is about to signal fence `id` of `edge` for another stage.
    pub fn signalling(&mut self, edge: u8, id: u64) {
        let now = MonotonicTime::now().as_nanos();
        self.report.signals.push((edge, id, now));
    }

    /// Notes that this stage's last wait, for fence `id` of `edge`, just ended.
    pub fn woke(&mut self, edge: u8, id: u64) {
        let now = MonotonicTime::now().as_nanos();
        self.report.wakes.push((edge, id, self.wait_began, now));
    }

    /// Counts the descriptors open now, for the peak.
    pub fn sample_fds(&mut self) {
        if let Some(n) = open_fds() {
            self.report.fds_peak = self.report.fds_peak.max(n);
        }
    }

    /// Receives the next message from `from`, giving up after [`STALL`].
    ///
    /// # Errors
    /// As [`Channel::recv`].
    pub fn recv(
        &self,
        from: &Channel,
        what: &'static str,
    ) -> Result<(Msg, Vec<OwnedFd>), StageError> {
        Ok(from.recv(Some(STALL), what)?)
    }

    /// Tells the parent frame `frame` arrived intact here.
    ///
    /// # Errors
    /// The parent is gone.
    pub fn delivered(&mut self, frame: u64, latency: Duration) -> Result<(), StageError> {
        self.report
            .delivered
            .push((frame, latency.as_micros() as u64));
        self.parent.send(&Msg::Delivered { frame }, &[])?;
        Ok(())
    }
}

/// The number of descriptors this process has open.
fn open_fds() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    // Less the directory's own descriptor.
    Some(dir.count().saturating_sub(1))
}

/// `dmabuf __stage ROLE`: runs the role the parent names on the socket that is standard
/// input (`role`, from the command line, must be its name), then sends the report. Exits 1
/// if the role stopped early.
///
/// # Errors
/// The parent could not be heard or told (the stage then has no one to report to), or named
/// another role.
pub fn main(role: &str) -> Result<(), crate::Failure> {
    // If the parent dies, so does the stage.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let fds_before = open_fds().ok_or_else(|| {
        crate::Failure::new("cannot count this stage's descriptors in /proc/self/fd")
    })?;
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(crate::Failure::new)?;
    let parent = Channel::new(stdin, "parent");
    let (msg, neighbours) = parent
        .recv(Some(Duration::from_secs(30)), "the setup")
        .map_err(crate::Failure::new)?;
    let Msg::Setup(setup) = msg else {
        return Err(crate::Failure::new(format!(
            "the parent sent {msg:?}, not the setup"
        )));
    };
    if setup.buffers == 0 || setup.buffers > MAX_BUFFERS {
        return Err(crate::Failure::new(format!(
            "set up with {} buffers: 1 to {MAX_BUFFERS} work",
            setup.buffers
        )));
    }
    if setup.role.name() != role {
        return Err(crate::Failure::new(format!(
            "started as the {role} stage, set up as the {}",
            setup.role.name()
        )));
    }
    set_report_mode(ReportMode::Collect);
    let _ = take_reports();
    let origin = MonotonicTime::from_nanos(setup.origin_ns);
    let pid = std::process::id();
    let mut stage = Stage {
        trace: Trace::starting_at(setup.trace, origin),
        track: Track { pid, tid: pid },
        report: StageReport {
            pid,
            ..StageReport::default()
        },
        setup,
        parent,
        wait_began: 0,
    };
    stage.trace.name_process(pid, stage.setup.role.name());
    stage
        .trace
        .name_thread(stage.track, stage.setup.role.name());
    let outcome = match stage.setup.role {
        Role::Camera => super::camera::run(&mut stage, neighbours),
        Role::Renderer => super::renderer::run(&mut stage, neighbours),
        Role::Encoder | Role::Display => super::reader::run(&mut stage, neighbours),
    };
    stage.report.error = outcome.err().map(|e| e.to_string());
    stage.report.validator_reports = take_reports().iter().map(|r| r.to_string()).collect();
    stage.report.trace = stage.trace.events();
    // The parent's socket and the standard input are open as they were at the start.
    // A count that cannot be taken at the end shows as a leak.
    stage.report.fds = (fds_before + 1, open_fds().unwrap_or(usize::MAX));
    let failed = stage.report.error.is_some();
    send_report(&stage.parent, &stage.report).map_err(crate::Failure::new)?;
    if failed {
        Err(crate::Failure::reported(1))
    } else {
        Ok(())
    }
}

/// Sends `report` in a memfd (a report with its trace is larger than a packet).
fn send_report(parent: &Channel, report: &StageReport) -> Result<(), StageError> {
    let sys = |call| move |errno| dmabuf_linux::Error::Sys { call, errno };
    let memfd = rustix::fs::memfd_create("dmabuf-stage-report", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(sys("memfd_create"))?;
    let mut file = std::fs::File::from(memfd);
    serde_json::to_writer(&mut file, report).map_err(|e| StageError::Report(e.to_string()))?;
    file.flush()
        .map_err(|e| StageError::Report(e.to_string()))?;
    parent.send(&Msg::Report, &[file.as_fd()])?;
    Ok(())
}

/// Reads a report a stage sent in `memfd`.
///
/// # Errors
/// What is wrong with it.
pub fn read_report(memfd: OwnedFd) -> Result<StageReport, String> {
    let mut file = std::fs::File::from(memfd);
    let mut text = String::new();
    file.rewind()
        .and_then(|()| file.read_to_string(&mut text))
        .map_err(|e| format!("cannot read its report: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("its report is no report: {e}"))
}
