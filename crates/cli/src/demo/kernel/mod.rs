//! `dmabuf demo --kernel`: the pipeline across processes, on real kernel objects.
//!
//! Four stage processes (the `dmabuf` binary run again as `dmabuf __stage`), connected by
//! Unix sockets that carry small messages and, once, the shared objects as descriptors:
//!
//! ```text
//! camera ──timeline points──▶ renderer ──implicit sync (vgem fence in the buffer)──▶ encoder
//!                                      └─timeline points (acquire / release)─────────▶ display
//! ```
//!
//! Buffers come from the system dma-heap (or udmabuf); every stage maps them and reads or
//! writes inside `DMA_BUF_IOCTL_SYNC` brackets. The camera → renderer and renderer → display
//! edges order buffers with timeline syncobj points (acquire and release, as Wayland's
//! explicit-sync protocol does); the renderer → encoder edge with the fences in the buffer's
//! reservation object, exported as a sync file by the encoder. Each process bridges its
//! library fences to the kernel objects and back: a library fence signals a kernel point
//! ([`Syncobj::signal_point_when`](dmabuf_linux::Syncobj::signal_point_when)), and a kernel
//! point or sync file becomes a library fence the process waits on through an epoll reactor.
//!
//! The parent ([`run`]) checks the devices first (a host without them gets exit 2 and the
//! list of what is missing), starts the stages, hands each its sockets, counts the frames
//! both readers received for the progress line, and collects each stage's report: counts,
//! latencies, descriptors open before and after, validator reports and trace events. A
//! stage that dies is noticed by its neighbours (their sockets hang up, and every wait looks)
//! and by the parent; the run then stops every stage, names the dead one and exits 1.
//!
//! * [`devices`] — what the run needs, and the buffers it allocates;
//! * [`wire`] — the sockets and messages;
//! * [`stage`] — a stage process: setup, report, waits that notice a dead neighbour;
//! * [`camera`], [`renderer`], [`reader`] — the roles;
//! * [`frame`] — a frame's bytes, checked end to end;
//! * [`summary`] — what a run reports.

pub mod camera;
pub mod devices;
pub mod frame;
pub mod reader;
pub mod renderer;
pub mod stage;
pub mod summary;
pub mod wire;

use super::{Args, DemoError, TraceFile};
use crate::Failure;
use crate::trace::Trace;
use devices::Devices;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::{AsFd, OwnedFd};
use stage::{Role, STALL, Setup, StageReport, read_report};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
pub use summary::KernelSummary;
use wire::{Channel, Msg, WireError};

/// How long the parent lets the other stages report after one died or failed.
const GRACE: Duration = Duration::from_secs(5);

/// One stage as the parent sees it.
struct StageProcess {
    role: Role,
    process: Child,
    control: Option<Channel>,
    report: Option<StageReport>,
    /// Its control socket hung up without a report: it died by itself.
    died: bool,
}

/// Runs the pipeline across processes and writes the trace if asked; prints nothing but the
/// progress line.
///
/// # Errors
/// [`DemoError::Devices`] (exit 2) when a device is missing; [`DemoError::Stages`] when a
/// stage died or stopped early; the trace file's errors.
pub fn execute(args: &Args) -> Result<KernelSummary, DemoError> {
    args.check().map_err(DemoError::Options)?;
    let devices = devices::probe().map_err(DemoError::Devices)?;
    let file = args.trace.as_deref().map(TraceFile::create).transpose()?;
    let trace = Trace::new(file.is_some());
    match pipeline(args, &devices, &trace) {
        Ok(summary) => {
            if let Some(file) = file {
                file.write(&trace)?;
            }
            Ok(summary)
        }
        Err(e) => {
            if let Some(file) = file {
                file.discard();
            }
            Err(e)
        }
    }
}

/// `dmabuf demo --kernel`: runs it, prints the summary on stdout.
///
/// # Errors
/// As [`execute`]; a run whose summary counts a failure (exit 1, the cause on stderr).
pub fn run(args: &Args) -> Result<(), Failure> {
    match execute(args) {
        Ok(summary) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{summary}");
            if let Some(path) = &args.trace {
                let _ = writeln!(
                    out,
                    "trace written to {} (open it in ui.perfetto.dev)",
                    path.display()
                );
            }
            match summary.failure() {
                None => Ok(()),
                Some(cause) => {
                    eprintln!("dmabuf demo --kernel: FAILED: {cause}");
                    Err(Failure::reported(1))
                }
            }
        }
        Err(e) => Err(Failure {
            message: e.to_string(),
            code: e.exit_code(),
        }),
    }
}

/// Starts the stages, wires them, and collects their reports.
fn pipeline(args: &Args, devices: &Devices, trace: &Trace) -> Result<KernelSummary, DemoError> {
    let stages_error = |what: String| DemoError::Stages(what);
    // This very binary, also if it was replaced on disk meanwhile.
    let exe = std::path::PathBuf::from("/proc/self/exe");
    if !exe.exists() {
        return Err(stages_error(
            "cannot run this binary again: /proc/self/exe is missing (is /proc mounted?)".into(),
        ));
    }
    let started = Instant::now();
    let origin = trace.origin();
    let fault = args.fault();
    let mut children: Vec<StageProcess> = Vec::new();
    // Whatever happens from here on, no stage is left behind.
    let outcome = start_and_collect(args, devices, trace, &exe, origin, fault, &mut children);
    for c in &mut children {
        if c.report.is_none() || outcome.is_err() {
            let _ = c.process.kill();
        }
    }
    let statuses: Vec<_> = children.iter_mut().map(|c| c.process.wait()).collect();
    outcome?;
    // The stages that died first, then those the run stopped, then those that stopped on
    // their own with an error (usually a neighbour that died).
    let mut failures = Vec::new();
    for (c, status) in children.iter().zip(&statuses) {
        if c.died {
            failures.push(format!(
                "the {} stage (pid {}) died: {}",
                c.role.name(),
                c.process.id(),
                describe(status)
            ));
        }
    }
    for c in children.iter().filter(|c| !c.died && c.report.is_none()) {
        failures.push(format!(
            "the {} stage (pid {}) did not finish, and was stopped",
            c.role.name(),
            c.process.id()
        ));
    }
    for c in &children {
        if let Some(e) = c.report.as_ref().and_then(|r| r.error.as_ref()) {
            failures.push(format!("the {} stopped: {e}", c.role.name()));
        }
    }
    if !failures.is_empty() {
        return Err(DemoError::Stages(failures.join("; ")));
    }
    let reports: Vec<(Role, StageReport)> = children
        .into_iter()
        .map(|c| (c.role, c.report.expect("every stage reported")))
        .collect();
    for (_, r) in &reports {
        trace.extend(r.trace.clone());
    }
    Ok(KernelSummary::new(
        args,
        devices,
        fault,
        started.elapsed(),
        reports,
    ))
}

/// What became of a stage process that sent no report.
fn describe(status: &std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => match (s.signal(), s.code()) {
            (Some(9), _) => "killed by signal 9 (SIGKILL)".into(),
            (Some(sig), _) => format!("killed by signal {sig}"),
            (None, Some(code)) => format!("exited with code {code} without a report"),
            (None, None) => format!("{s}"),
        },
        Err(e) => format!("cannot be waited for: {e}"),
    }
}

/// Starts every stage (filling `children` as they start), sends each its setup and sockets,
/// and reads the control sockets until every stage reported or went away.
fn start_and_collect(
    args: &Args,
    devices: &Devices,
    trace: &Trace,
    exe: &std::path::Path,
    origin: dmabuf::MonotonicTime,
    fault: Option<u64>,
    children: &mut Vec<StageProcess>,
) -> Result<(), DemoError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| DemoError::Stages(format!("{what}: {e}"))
    };
    let wire = |e: WireError| DemoError::Stages(e.to_string());
    // The edges: camera–renderer, renderer–encoder, renderer–display.
    let (ren_cam, cam_ren) = wire::pair("renderer", "camera").map_err(io("socketpair"))?;
    let (ren_enc, enc_ren) = wire::pair("renderer", "encoder").map_err(io("socketpair"))?;
    let (ren_dis, dis_ren) = wire::pair("renderer", "display").map_err(io("socketpair"))?;
    let mut sockets: HashMap<Role, Vec<OwnedFd>> = HashMap::from([
        (Role::Camera, vec![cam_ren.into_fd()]),
        (
            Role::Renderer,
            vec![ren_cam.into_fd(), ren_enc.into_fd(), ren_dis.into_fd()],
        ),
        (Role::Encoder, vec![enc_ren.into_fd()]),
        (Role::Display, vec![dis_ren.into_fd()]),
    ]);
    for role in Role::ALL {
        let (control, child_end) = wire::pair("parent", role.name()).map_err(io("socketpair"))?;
        let process = Command::new(exe)
            .args(["__stage", role.name()])
            .stdin(Stdio::from(child_end.into_fd()))
            .stdout(Stdio::null())
            .spawn()
            .map_err(io(&format!("cannot start the {} stage", role.name())))?;
        children.push(StageProcess {
            role,
            process,
            control: Some(control),
            report: None,
            died: false,
        });
        let setup = Setup {
            role,
            frames: args.frames,
            buffers: args.buffers as usize,
            seed: args.seed,
            fault,
            timeout_ms: args.timeout().as_millis() as u64,
            allocator: devices.allocator,
            origin_ns: origin.as_nanos(),
            trace: trace.is_enabled(),
        };
        let fds = sockets.remove(&role).unwrap_or_default();
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let control = children.last().and_then(|c| c.control.as_ref());
        if let Some(control) = control {
            control.send(&Msg::Setup(setup), &borrowed).map_err(wire)?;
        }
    }
    collect(args, children)
}

/// Reads every stage's control socket until each reported or went away; stops waiting for
/// the others [`GRACE`] after one went away or failed.
fn collect(args: &Args, children: &mut [StageProcess]) -> Result<(), DemoError> {
    let progress =
        super::progress::Progress::new(crate::progress::shown(args.quiet), Some(args.frames));
    // Per frame, which readers (bit 0 the encoder, bit 1 the display) have it intact.
    let mut arrived: HashMap<u64, u8> = HashMap::new();
    let mut done = 0u64;
    let mut trouble: Option<Instant> = None;
    let mut last_heard = Instant::now();
    loop {
        let open: Vec<usize> = (0..children.len())
            .filter(|&i| children[i].control.is_some())
            .collect();
        if open.is_empty() {
            break;
        }
        if trouble.is_some_and(|t| t.elapsed() > GRACE) || last_heard.elapsed() > STALL * 2 {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = open
            .iter()
            .map(|&i| {
                let c = children[i].control.as_ref().expect("open");
                PollFd::new(c, PollFlags::IN)
            })
            .collect();
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(DemoError::Stages(format!("poll: {e}"))),
        }
        let ready: Vec<usize> = open
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(&i, _)| i)
            .collect();
        drop(fds);
        for i in ready {
            let child = &mut children[i];
            let control = child.control.as_ref().expect("open");
            match control.recv(Some(Duration::ZERO), "a message") {
                Ok((Msg::Delivered { frame }, _)) => {
                    last_heard = Instant::now();
                    let bit = match child.role {
                        Role::Encoder => 1,
                        Role::Display => 2,
                        _ => 0,
                    };
                    let got = arrived.entry(frame).or_default();
                    if *got != 3 {
                        *got |= bit;
                        if *got == 3 {
                            done += 1;
                            progress.update_frames(done);
                        }
                    }
                }
                Ok((Msg::Report, mut fds)) if fds.len() == 1 => {
                    last_heard = Instant::now();
                    let report = read_report(fds.remove(0)).map_err(|e| {
                        DemoError::Stages(format!("the {}: {e}", child.role.name()))
                    })?;
                    if report.error.is_some() {
                        trouble.get_or_insert_with(Instant::now);
                    }
                    child.report = Some(report);
                    child.control = None;
                }
                Ok((other, _)) => {
                    return Err(DemoError::Stages(format!(
                        "the {} sent {other:?}",
                        child.role.name()
                    )));
                }
                Err(WireError::TimedOut { .. }) => {}
                Err(_) => {
                    // Gone without a report: it died.
                    trouble.get_or_insert_with(Instant::now);
                    child.control = None;
                    child.died = true;
                }
            }
        }
    }
    progress.finish_frames(done);
    Ok(())
}
