//! `dmabuf sync-file info|merge|wait`: kernel sync_files named by a descriptor number, a
//! `/proc/PID/fd/N` path, or any other path (a [FILE argument](crate::file_arg)).
//!
//! Exit codes: 0 success; 1 error; 2 bad usage (a malformed descriptor number among them);
//! for `wait`, 3 timed out and 4 the fence signalled with an error.

mod info;

pub(crate) use info::status_text;

use crate::Failure;
use crate::file_arg::{FileArg, FileError, file_arg, open_fd};
use dmabuf::FenceStatus;
use dmabuf_linux::SyncFileFd;
use rustix::fd::{AsFd, AsRawFd};
use rustix::io::Errno;
use std::ffi::OsString;
use std::time::Duration;

/// Options of `dmabuf sync-file`: one of its subcommands.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Exit code of `wait` when the timeout ran out.
pub const EXIT_TIMED_OUT: u8 = 3;
/// Exit code of `wait` when the fence signalled with an error.
pub const EXIT_FENCE_ERROR: u8 = 4;

/// The `sync-file` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a sync_file's name, status and fences (driver, timeline, status, timestamp).
    ///
    /// FILE is a descriptor number of this process, inherited from the caller (e.g. `3`), a
    /// path /proc/PID/fd/N (descriptor N of process PID, taken with pidfd_getfd), or another
    /// path.
    Info {
        /// The sync_file: a descriptor number, /proc/PID/fd/N, or a path.
        #[arg(value_parser = file_arg)]
        file: FileArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge two sync_files into one signalled when both are.
    ///
    /// Without COMMAND, prints the merged file's info (the file ends with this process).
    /// With `-- COMMAND [ARGS...]`, runs COMMAND with the merged sync_file open as a
    /// descriptor (the lowest free one from 3, normally 3), named in the environment as
    /// DMABUF_SYNC_FILE_FD; an argument `{fd}` is replaced by its number. Exits with
    /// COMMAND's exit code.
    Merge {
        /// The first sync_file: a descriptor number, /proc/PID/fd/N, or a path.
        #[arg(value_parser = file_arg)]
        a: FileArg,
        /// The second sync_file, as the first.
        #[arg(value_parser = file_arg)]
        b: FileArg,
        /// The merged file's name: the kernel keeps the first 31 bytes (up to a NUL).
        #[arg(long, default_value = "dmabuf-merge")]
        name: String,
        /// Print the merged info as JSON (without COMMAND).
        #[arg(long)]
        json: bool,
        /// A command to hand the merged sync_file to.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Wait until a sync_file signals.
    ///
    /// Exits 0 when it signalled, 3 when the timeout ran out, 4 when it signalled with an
    /// error, 1 on any other error.
    Wait {
        /// The sync_file: a descriptor number, /proc/PID/fd/N, or a path.
        #[arg(value_parser = file_arg)]
        file: FileArg,
        /// Give up after this many milliseconds (default: wait forever).
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
    },
}

/// What went wrong in a `sync-file` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum SyncFileError {
    /// What FILE names cannot be had.
    #[error(transparent)]
    File(#[from] FileError),
    /// What FILE names is not a sync_file.
    #[error("{}: {} is not a sync_file ({errno})", .file.text, .file.named)]
    NotSyncFile {
        /// The FILE.
        file: FileArg,
        /// What the probe got.
        errno: Errno,
    },
    /// dmabuf-linux's sync_file calls refused (a bad name, a failed ioctl, …).
    #[error("{}: {}: {source}", .file.text, .file.named)]
    Linux {
        /// The FILE.
        file: FileArg,
        /// The error.
        source: dmabuf_linux::Error,
    },
    /// `wait` ran out of time.
    #[error("{file}: timed out after {ms} ms")]
    TimedOut {
        /// The FILE as given.
        file: String,
        /// The timeout.
        ms: u64,
    },
    /// `wait`: the fence signalled with an error.
    #[error("{file}: signalled with error {errno}")]
    FenceError {
        /// The FILE as given.
        file: String,
        /// The fence's error.
        errno: dmabuf::Errno,
    },
    /// The COMMAND of `merge` could not be run.
    #[error("{command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// JSON output failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<SyncFileError> for Failure {
    fn from(e: SyncFileError) -> Failure {
        let code = match e {
            SyncFileError::TimedOut { .. } => EXIT_TIMED_OUT,
            SyncFileError::FenceError { .. } => EXIT_FENCE_ERROR,
            _ => 1,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

/// `dmabuf sync-file`: runs its subcommand, printing what it reports on stdout.
///
/// # Errors
/// What FILE names cannot be had or is not a sync_file, a call on it failed, `wait` timed
/// out or its fence signalled with an error, `merge`'s COMMAND could not run or failed.
pub fn run(args: &Args) -> Result<(), Failure> {
    match &args.command {
        Command::Info { file, json } => {
            let sf = open(file)?;
            let info = sf.info().map_err(linux(file))?;
            info::print(&file.text, &info, *json)?;
            Ok(())
        }
        Command::Merge {
            a,
            b,
            name,
            json,
            command,
        } => {
            let fa = open(a)?;
            let fb = open(b)?;
            let merged = fa.merge(name, &fb).map_err(linux(a))?;
            if command.is_empty() {
                let info = merged.info().map_err(linux(&FileArg::merged()))?;
                info::print("merged", &info, *json)?;
                Ok(())
            } else {
                drop((fa, fb));
                run_with(merged, command)
            }
        }
        Command::Wait { file, timeout } => {
            let sf = open(file)?;
            match sf.wait(timeout.map(Duration::from_millis)) {
                Ok(()) => {}
                Err(dmabuf_linux::Error::TimedOut) => {
                    return Err(SyncFileError::TimedOut {
                        file: file.text.clone(),
                        ms: timeout.unwrap_or(0),
                    }
                    .into());
                }
                Err(e) => return Err(linux(file)(e).into()),
            }
            match sf.status().map_err(linux(file))? {
                FenceStatus::Failed(errno) => Err(SyncFileError::FenceError {
                    file: file.text.clone(),
                    errno,
                }
                .into()),
                _ => Ok(()),
            }
        }
    }
}

/// Opens what FILE names as a sync_file.
///
/// # Errors
/// What FILE names cannot be had, or is not a sync_file.
pub fn open(file: &FileArg) -> Result<SyncFileFd, SyncFileError> {
    let fd = open_fd(file)?;
    SyncFileFd::from_fd(fd).map_err(|(source, _fd)| match source {
        dmabuf_linux::Error::NotSyncFile { errno } => SyncFileError::NotSyncFile {
            file: file.clone(),
            errno,
        },
        source => SyncFileError::Linux {
            file: file.clone(),
            source,
        },
    })
}

fn linux(file: &FileArg) -> impl FnOnce(dmabuf_linux::Error) -> SyncFileError + '_ {
    move |source| SyncFileError::Linux {
        file: file.clone(),
        source,
    }
}

/// Runs `command` with `merged` open (not close-on-exec) as the lowest descriptor from 3;
/// returns with the command's exit code.
fn run_with(merged: SyncFileFd, command: &[OsString]) -> Result<(), Failure> {
    let program = command[0].to_string_lossy().into_owned();
    let sys = |call| {
        move |errno| {
            SyncFileError::from(FileError::Sys {
                file: FileArg::merged(),
                call,
                errno,
            })
        }
    };
    let fd = rustix::io::fcntl_dupfd_cloexec(merged.as_fd(), 3).map_err(sys("F_DUPFD_CLOEXEC"))?;
    drop(merged);
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty()).map_err(sys("F_SETFD"))?;
    let n = fd.as_raw_fd().to_string();
    let args = command[1..].iter().map(|a| {
        if a == "{fd}" {
            OsString::from(&n)
        } else {
            a.clone()
        }
    });
    let status = std::process::Command::new(&command[0])
        .args(args)
        .env("DMABUF_SYNC_FILE_FD", &n)
        .status()
        .map_err(|source| SyncFileError::Spawn {
            command: program.clone(),
            source,
        })?;
    drop(fd);
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure::reported(u8::try_from(code).unwrap_or(1))),
        None => Err(Failure::new(format!("{program}: {status}"))),
    }
}
