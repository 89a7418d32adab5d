//! `dmabuf sync-file info|merge|wait`: kernel sync_files named by an inherited descriptor
//! number, a `/proc/PID/fd/N` path, or any other path.
//!
//! A number is this process's own descriptor (as inherited from the shell: `3<&…`); it is
//! duplicated, never closed. `/proc/PID/fd/N` (and `/dev/fd/N`) is fetched from process PID
//! with `pidfd_open` + `pidfd_getfd` (ptrace access to PID is needed), falling back to
//! opening the path. Any other path is opened read-only.
//!
//! Exit codes: 0 success; 1 error; 2 bad usage; for `wait`, 3 timed out and 4 the fence
//! signalled with an error.

use crate::Failure;
use dmabuf::FenceStatus;
use dmabuf_linux::{SyncFileFd, SyncFileInfo};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use serde::Serialize;
use std::ffi::OsString;
use std::time::Duration;

/// Exit code of `wait` when the timeout ran out.
pub const EXIT_TIMED_OUT: u8 = 3;
/// Exit code of `wait` when the fence signalled with an error.
pub const EXIT_FENCE_ERROR: u8 = 4;

/// The `sync-file` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SyncFileCommand {
    /// Print a sync_file's name, status and fences (driver, timeline, status, timestamp).
    ///
    /// FILE is a descriptor number inherited from the caller (e.g. `3`), a path
    /// /proc/PID/fd/N (taken from process PID with pidfd_getfd), or another path.
    Info {
        /// The sync_file: a descriptor number, /proc/PID/fd/N, or a path.
        file: String,
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
        /// The first sync_file.
        a: String,
        /// The second sync_file.
        b: String,
        /// The merged file's name (at most 31 bytes).
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
        file: String,
        /// Give up after this many milliseconds (default: wait forever).
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
    },
}

/// What went wrong in a `sync-file` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum SyncFileError {
    /// The FILE could not be opened.
    #[error("{file}: {source}")]
    Open {
        /// The FILE as given.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// A system call on the FILE failed.
    #[error("{file}: {call}: {errno}")]
    Sys {
        /// The FILE as given.
        file: String,
        /// The call.
        call: &'static str,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The sync_file layer refused (not a sync_file, bad name, …).
    #[error("{file}: {source}")]
    Linux {
        /// The FILE as given.
        file: String,
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

/// Runs a `sync-file` subcommand.
pub fn run(cmd: SyncFileCommand) -> Result<(), Failure> {
    match cmd {
        SyncFileCommand::Info { file, json } => {
            let sf = open(&file)?;
            let info = sf.info().map_err(linux(&file))?;
            print_info(&file, &info, json)?;
            Ok(())
        }
        SyncFileCommand::Merge {
            a,
            b,
            name,
            json,
            command,
        } => {
            let fa = open(&a)?;
            let fb = open(&b)?;
            let merged = fa.merge(&name, &fb).map_err(linux(&a))?;
            if command.is_empty() {
                let info = merged.info().map_err(linux("merged"))?;
                print_info("merged", &info, json)?;
                Ok(())
            } else {
                drop((fa, fb));
                run_with(merged, &command)
            }
        }
        SyncFileCommand::Wait { file, timeout } => {
            let sf = open(&file)?;
            match sf.wait(timeout.map(Duration::from_millis)) {
                Ok(()) => {}
                Err(dmabuf_linux::Error::TimedOut) => {
                    return Err(SyncFileError::TimedOut {
                        file,
                        ms: timeout.unwrap_or(0),
                    }
                    .into());
                }
                Err(e) => return Err(linux(&file)(e).into()),
            }
            match sf.status().map_err(linux(&file))? {
                FenceStatus::Failed(errno) => Err(SyncFileError::FenceError { file, errno }.into()),
                _ => Ok(()),
            }
        }
    }
}

fn linux(file: &str) -> impl FnOnce(dmabuf_linux::Error) -> SyncFileError + '_ {
    move |source| SyncFileError::Linux {
        file: file.to_owned(),
        source,
    }
}

/// Opens FILE (a descriptor number, `/proc/PID/fd/N`, `/dev/fd/N`, or a path) as a sync_file.
pub fn open(file: &str) -> Result<SyncFileFd, SyncFileError> {
    let fd = open_fd(file)?;
    SyncFileFd::from_fd(fd).map_err(|(source, _fd)| SyncFileError::Linux {
        file: file.to_owned(),
        source,
    })
}

/// The descriptor FILE names, as a new descriptor of this process.
fn open_fd(file: &str) -> Result<OwnedFd, SyncFileError> {
    let sys = |call| {
        move |errno| SyncFileError::Sys {
            file: file.to_owned(),
            call,
            errno,
        }
    };
    if let Ok(n) = file.parse::<i32>() {
        if n < 0 {
            return Err(sys("fd")(Errno::BADF));
        }
        return match get_fd(rustix::process::getpid(), n) {
            Err(Errno::NOSYS) => open_path(&format!("/proc/self/fd/{n}"), file),
            r => r.map_err(sys("pidfd_getfd")),
        };
    }
    if let Some((pid, n)) = proc_fd(file) {
        let pid = match pid {
            Some(p) => rustix::process::Pid::from_raw(p).ok_or_else(|| sys("pid")(Errno::SRCH))?,
            None => rustix::process::getpid(),
        };
        return match get_fd(pid, n) {
            Ok(fd) => Ok(fd),
            // Without ptrace access (or pidfds), reopening the path may still work.
            Err(errno) => open_path(file, file).map_err(|_| sys("pidfd_getfd")(errno)),
        };
    }
    open_path(file, file)
}

/// `pidfd_getfd(pidfd_open(pid), n)`.
fn get_fd(pid: rustix::process::Pid, n: i32) -> Result<OwnedFd, Errno> {
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    rustix::process::pidfd_getfd(&pidfd, n, rustix::process::PidfdGetfdFlags::empty())
}

/// `open(path, O_RDONLY | O_CLOEXEC)`.
fn open_path(path: &str, file: &str) -> Result<OwnedFd, SyncFileError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| SyncFileError::Open {
            file: file.to_owned(),
            source,
        })
}

/// `/proc/PID/fd/N` → `(Some(PID), N)`; `/proc/self/fd/N` and `/dev/fd/N` → `(None, N)`.
fn proc_fd(path: &str) -> Option<(Option<i32>, i32)> {
    let (pid, n) = if let Some(n) = path.strip_prefix("/dev/fd/") {
        (None, n)
    } else {
        let rest = path.strip_prefix("/proc/")?;
        let (pid, n) = rest.split_once("/fd/")?;
        let pid = if pid == "self" {
            None
        } else {
            Some(pid.parse().ok()?)
        };
        (pid, n)
    };
    Some((pid, n.parse().ok().filter(|&n: &i32| n >= 0)?))
}

/// A status as text: `pending`, `signaled` or `error`, and the error's name.
fn status_text(status: FenceStatus) -> (&'static str, Option<String>) {
    match status {
        FenceStatus::Pending => ("pending", None),
        FenceStatus::Signaled => ("signaled", None),
        FenceStatus::Failed(errno) => ("error", Some(errno.to_string())),
    }
}

/// `info`'s JSON.
#[derive(Serialize)]
struct InfoJson<'a> {
    file: &'a str,
    name: &'a str,
    status: &'static str,
    error: Option<String>,
    fences: Vec<FenceJson<'a>>,
}

/// One fence in `info`'s JSON.
#[derive(Serialize)]
struct FenceJson<'a> {
    driver: &'a str,
    timeline: &'a str,
    status: &'static str,
    error: Option<String>,
    timestamp_ns: Option<u64>,
}

fn print_info(file: &str, info: &SyncFileInfo, json: bool) -> Result<(), SyncFileError> {
    let (status, error) = status_text(info.status);
    if json {
        let fences = info
            .fences
            .iter()
            .map(|f| {
                let (status, error) = status_text(f.status);
                FenceJson {
                    driver: &f.driver,
                    timeline: &f.timeline,
                    status,
                    error,
                    timestamp_ns: f.timestamp.map(|t| t.as_nanos()),
                }
            })
            .collect();
        let out = InfoJson {
            file,
            name: &info.name,
            status,
            error,
            fences,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let n = info.fences.len();
    println!(
        "{file}: {:?} {status}{}, {n} fence{}",
        info.name,
        error.map(|e| format!(" ({e})")).unwrap_or_default(),
        if n == 1 { "" } else { "s" }
    );
    for f in &info.fences {
        let (status, error) = status_text(f.status);
        println!(
            "  {:<16} {:<24} {status}{}{}",
            f.driver,
            f.timeline,
            error.map(|e| format!(" ({e})")).unwrap_or_default(),
            f.timestamp
                .map(|t| format!(" at {t} s"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Runs `command` with `merged` open (not close-on-exec) as the lowest descriptor from 3;
/// returns with the command's exit code.
fn run_with(merged: SyncFileFd, command: &[OsString]) -> Result<(), Failure> {
    let program = command[0].to_string_lossy().into_owned();
    let sys = |call| {
        move |errno| SyncFileError::Sys {
            file: "merged".into(),
            call,
            errno,
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
        Some(code) => Err(Failure {
            message: String::new(),
            code: u8::try_from(code).unwrap_or(1),
        }),
        None => Err(Failure::new(format!("{program}: {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::proc_fd;

    #[test]
    fn proc_fd_paths() {
        assert_eq!(proc_fd("/proc/12/fd/3"), Some((Some(12), 3)));
        assert_eq!(proc_fd("/proc/self/fd/7"), Some((None, 7)));
        assert_eq!(proc_fd("/dev/fd/4"), Some((None, 4)));
        assert_eq!(proc_fd("/proc/12/fdinfo/3"), None);
        assert_eq!(proc_fd("/proc/x/fd/3"), None);
        assert_eq!(proc_fd("/tmp/file"), None);
    }
}
