//! `dmabuf syncobj info|wait|signal`: DRM sync objects held by any process, named by a
//! [FILE argument](crate::file_arg) (a descriptor number, `/proc/PID/fd/N`, or a path) that
//! is an opaque syncobj file (`anon_inode:syncobj_file`, what `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD`
//! and Vulkan's opaque semaphore export give, what Wayland's `linux-drm-syncobj-v1` passes).
//!
//! A syncobj file is used through a handle in a DRM device file, so each subcommand imports
//! it into one ([`find_device`]). A syncobj belongs to no device: any render node whose
//! driver has timeline syncobjs can import it. The device is `--device PATH` when given;
//! else, for `/proc/PID/fd/N`, the first render node process PID has open whose driver has
//! timeline syncobjs; else the first such render node under `/dev/dri`.
//!
//! Exit codes: 0 success; 1 error; 2 bad usage; 5 no DRM device with timeline syncobjs to
//! import the syncobj into; for `wait`, 3 timed out and 4 the point signalled with an error,
//! as `sync-file wait`.

mod device;
mod info;

pub use device::find_device;

use crate::Failure;
use crate::file_arg::{FileArg, FileError, file_arg, open_fd};
pub use crate::sync_file::{EXIT_FENCE_ERROR, EXIT_TIMED_OUT};
use dmabuf::FenceStatus;
use dmabuf_linux::{Syncobj, SyncobjFd, WaitFlags};
use std::path::PathBuf;
use std::time::Duration;

/// Exit code when no DRM device with timeline syncobjs can import the syncobj.
pub const EXIT_NO_DEVICE: u8 = 5;

/// Options of `dmabuf syncobj`: one of its subcommands, and the device to use.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
    /// The DRM device to import the syncobj into (a render node such as
    /// /dev/dri/renderD128); its driver needs timeline syncobjs. Default: a render node the
    /// process holding the syncobj has open, or the first under /dev/dri.
    #[arg(long, global = true, value_name = "PATH")]
    pub device: Option<PathBuf>,
}

/// The `syncobj` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a syncobj's last signalled and last submitted points and its fence's status.
    ///
    /// The fence is a timeline's newest point (signalled once every point has), or a binary
    /// syncobj's fence; a syncobj that is no timeline has points 0. FILE is a syncobj file: a descriptor number of this process, inherited from the caller
    /// (e.g. `3`), a path /proc/PID/fd/N (descriptor N of process PID, taken with
    /// pidfd_getfd), or another path.
    Info {
        /// The syncobj file: a descriptor number, /proc/PID/fd/N, or a path.
        #[arg(value_parser = file_arg)]
        file: FileArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait until a timeline point signals (POINT 0: a binary syncobj's fence).
    ///
    /// A point nobody has submitted yet is an error, unless --for-submit (or --available)
    /// waits for it to be. Exits 0 when it signalled (or, with --available, was submitted), 3
    /// when the timeout ran out, 4 when it signalled with an error, 5 when there is no DRM
    /// device to import the syncobj into, 1 on any other error.
    Wait {
        /// The syncobj file: a descriptor number, /proc/PID/fd/N, or a path.
        #[arg(value_parser = file_arg)]
        file: FileArg,
        /// The timeline point.
        point: u64,
        /// Give up after this many milliseconds (default: wait forever).
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
        /// Wait for the point to be submitted first (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT).
        #[arg(long)]
        for_submit: bool,
        /// Wait only until the point is submitted, not until it signals
        /// (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE).
        #[arg(long)]
        available: bool,
    },
    /// Signal a timeline point from the CPU, waking every process waiting for it.
    ///
    /// The point is added already signalled (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL), so it must be
    /// above the last submitted one: a CPU signal cannot signal a point already submitted.
    /// POINT 0 replaces a binary syncobj's fence with a signalled one
    /// (DRM_IOCTL_SYNCOBJ_SIGNAL).
    Signal {
        /// The syncobj file: a descriptor number, /proc/PID/fd/N, or a path.
        #[arg(value_parser = file_arg)]
        file: FileArg,
        /// The timeline point.
        point: u64,
    },
}

/// What went wrong in a `syncobj` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum SyncobjError {
    /// What FILE names cannot be had.
    #[error(transparent)]
    File(#[from] FileError),
    /// What FILE names is not a syncobj file.
    #[error("{}: {} is not a syncobj file", .file.text, .file.named)]
    NotSyncobj {
        /// The FILE.
        file: FileArg,
    },
    /// No render node under `/dev/dri` has a driver with timeline syncobjs.
    #[error("{source}; name a render node with --device")]
    NoDevice {
        /// [`dmabuf_linux::Error::NoTimelineSyncobj`], naming the nodes tried.
        source: dmabuf_linux::Error,
    },
    /// The `--device` given cannot take the syncobj.
    #[error("--device {}: {problem}", .path.display())]
    BadDevice {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A syncobj call on what FILE names failed.
    #[error("{}: {}: {source}", .file.text, .file.named)]
    Linux {
        /// The FILE.
        file: FileArg,
        /// The error.
        source: dmabuf_linux::Error,
    },
    /// `wait` without `--for-submit` or `--available` for a point nobody has submitted.
    #[error(
        "{file}: point {point} has not been submitted{}; --for-submit waits for it",
        last_submitted.map(|l| format!(" (the last submitted is {l})")).unwrap_or_default()
    )]
    Unsubmitted {
        /// The FILE as given.
        file: String,
        /// The point.
        point: u64,
        /// The last submitted point, if the query answered.
        last_submitted: Option<u64>,
    },
    /// `signal` of a point not above the last submitted one.
    #[error(
        "{file}: point {point} is not above the last submitted point {last_submitted}: a CPU \
         signal adds a new point, it cannot signal a submitted one"
    )]
    Submitted {
        /// The FILE as given.
        file: String,
        /// The point.
        point: u64,
        /// The last submitted point.
        last_submitted: u64,
    },
    /// `wait` ran out of time.
    #[error("{file}: point {point}: timed out after {ms} ms")]
    TimedOut {
        /// The FILE as given.
        file: String,
        /// The point.
        point: u64,
        /// The timeout.
        ms: u64,
    },
    /// `wait`: the point signalled with an error.
    #[error("{file}: point {point} signalled with error {errno}")]
    PointError {
        /// The FILE as given.
        file: String,
        /// The point.
        point: u64,
        /// The error of the point's fence.
        errno: dmabuf::Errno,
    },
    /// JSON output failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<SyncobjError> for Failure {
    fn from(e: SyncobjError) -> Failure {
        let code = match e {
            SyncobjError::TimedOut { .. } => EXIT_TIMED_OUT,
            SyncobjError::PointError { .. } => EXIT_FENCE_ERROR,
            SyncobjError::NoDevice { .. } | SyncobjError::BadDevice { .. } => EXIT_NO_DEVICE,
            _ => 1,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

/// `dmabuf syncobj`: runs its subcommand; `info` prints on stdout, `wait` and `signal` print
/// nothing when they succeed.
///
/// # Errors
/// What FILE names cannot be had or is not a syncobj file, there is no DRM device to import it
/// into, a syncobj call failed, `wait` timed out, its point signalled with an error or was
/// not submitted, `signal`'s point was submitted already.
pub fn run(args: &Args) -> Result<(), Failure> {
    match &args.command {
        Command::Info { file, json } => {
            let syncobj = import(file, args)?;
            let info = info::read(&syncobj).map_err(linux(file))?;
            info::print(&file.text, &syncobj, &info, *json)?;
        }
        Command::Wait {
            file,
            point,
            timeout,
            for_submit,
            available,
        } => {
            let syncobj = import(file, args)?;
            wait(file, &syncobj, *point, *timeout, *for_submit, *available)?;
        }
        Command::Signal { file, point } => {
            let syncobj = import(file, args)?;
            signal(file, &syncobj, *point)?;
        }
    }
    Ok(())
}

/// Opens what FILE names as a syncobj file.
///
/// # Errors
/// What FILE names cannot be had, or is not a syncobj file.
pub fn open(file: &FileArg) -> Result<SyncobjFd, SyncobjError> {
    let fd = open_fd(file)?;
    SyncobjFd::from_fd(fd).map_err(|(source, _fd)| match source {
        dmabuf_linux::Error::NotSyncobjFile => SyncobjError::NotSyncobj { file: file.clone() },
        source => linux(file)(source),
    })
}

/// The syncobj FILE names, imported into the device [`find_device`] chooses.
fn import(file: &FileArg, args: &Args) -> Result<Syncobj, SyncobjError> {
    let fd = open(file)?;
    let holder = match file.named {
        crate::file_arg::Named::OtherFd { pid, .. } => Some(pid),
        _ => None,
    };
    let device = find_device(
        args.device.as_deref(),
        holder,
        dmabuf_linux::DRM_DIR.as_ref(),
    )?;
    device.import_syncobj(&fd).map_err(linux(file))
}

/// `wait`: waits for `point` with the flags asked for, then reads the point's status.
fn wait(
    file: &FileArg,
    syncobj: &Syncobj,
    point: u64,
    timeout: Option<u64>,
    for_submit: bool,
    available: bool,
) -> Result<(), SyncobjError> {
    let mut flags = WaitFlags::ALL;
    if for_submit {
        flags = flags | WaitFlags::FOR_SUBMIT;
    }
    if available {
        flags = flags | WaitFlags::AVAILABLE;
    }
    match syncobj.wait(point, flags, timeout.map(Duration::from_millis)) {
        Ok(()) => {}
        Err(dmabuf_linux::Error::TimedOut) => {
            return Err(SyncobjError::TimedOut {
                file: file.text.clone(),
                point,
                ms: timeout.unwrap_or(0),
            });
        }
        Err(dmabuf_linux::Error::Unsubmitted { .. }) => {
            return Err(SyncobjError::Unsubmitted {
                file: file.text.clone(),
                point,
                last_submitted: syncobj.last_submitted().ok(),
            });
        }
        Err(e) => return Err(linux(file)(e)),
    }
    if available {
        return Ok(());
    }
    // The wait does not report a fence's error; the point's sync_file does (on its leaves).
    // A point reset since the wait has no fence left to ask: it signalled all the same.
    match syncobj.export_point(point).and_then(|f| f.info()) {
        Ok(info) => match info.status {
            FenceStatus::Failed(errno) => Err(SyncobjError::PointError {
                file: file.text.clone(),
                point,
                errno,
            }),
            _ => Ok(()),
        },
        Err(dmabuf_linux::Error::Unsubmitted { .. }) => Ok(()),
        Err(e) => Err(linux(file)(e)),
    }
}

/// `signal`: CPU-signals `point`, which must be above the last submitted one (point 0 always
/// may).
fn signal(file: &FileArg, syncobj: &Syncobj, point: u64) -> Result<(), SyncobjError> {
    if point == 0 {
        return syncobj.signal().map_err(linux(file));
    }
    let last_submitted = syncobj.last_submitted().map_err(linux(file))?;
    if point <= last_submitted {
        return Err(SyncobjError::Submitted {
            file: file.text.clone(),
            point,
            last_submitted,
        });
    }
    syncobj.timeline_signal(point).map_err(linux(file))
}

fn linux(file: &FileArg) -> impl FnOnce(dmabuf_linux::Error) -> SyncobjError + '_ {
    move |source| SyncobjError::Linux {
        file: file.clone(),
        source,
    }
}
