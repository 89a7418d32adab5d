//! `dmabuf sync-file info|merge|wait`: kernel sync_files named by a descriptor number, a
//! `/proc/PID/fd/N` path, or any other path.
//!
//! A FILE argument is read as one of three things ([`Named`]):
//! * all digits: a descriptor of this process (as inherited from the shell: `3<&…`), duplicated,
//!   never closed; a number too large for a descriptor is refused, never taken for a path;
//! * `/proc/PID/fd/N`: descriptor N of process PID, taken with `pidfd_open` + `pidfd_getfd`
//!   (ptrace access to PID is needed), falling back to opening the path; `/proc/self/fd/N`
//!   and `/dev/fd/N` are descriptor N of this process;
//! * anything else: a path, opened read-only.
//!
//! Each error says which of these the argument was and what is wrong with it.
//!
//! Exit codes: 0 success; 1 error; 2 bad usage (a malformed descriptor number among them);
//! for `wait`, 3 timed out and 4 the fence signalled with an error.

use crate::Failure;
use dmabuf::FenceStatus;
use dmabuf_linux::{SyncFileFd, SyncFileInfo};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::Pid;
use serde::Serialize;
use std::ffi::OsString;
use std::fmt;
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

/// What a FILE argument names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// A descriptor of this process: `N`, `/proc/self/fd/N` or `/dev/fd/N`.
    OwnFd(i32),
    /// Descriptor `fd` of process `pid`: `/proc/PID/fd/N`.
    OtherFd {
        /// The process.
        pid: i32,
        /// Its descriptor.
        fd: i32,
    },
    /// A file by its path.
    Path,
    /// The sync_file `merge` made.
    Merged,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Named::OwnFd(fd) => write!(f, "descriptor {fd} of this process"),
            Named::OtherFd { pid, fd } => write!(f, "descriptor {fd} of process {pid}"),
            Named::Path => f.write_str("the file"),
            Named::Merged => f.write_str("the merged sync_file"),
        }
    }
}

/// A FILE argument: the text as given and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileArg {
    /// The argument as given.
    pub text: String,
    /// What it names.
    pub named: Named,
}

impl FileArg {
    /// The merged sync_file, for the errors of operations on it.
    fn merged() -> FileArg {
        FileArg {
            text: "merged".into(),
            named: Named::Merged,
        }
    }
}

/// Reads a FILE argument (see the module doc); a number that cannot be a descriptor is a
/// usage error.
///
/// # Errors
/// A negative number, or one above `i32::MAX`.
pub fn file_arg(text: &str) -> Result<FileArg, String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let named = if digits(text) {
        let fd = text.parse().map_err(|_| {
            format!(
                "descriptor number {text} is out of range (at most {})",
                i32::MAX
            )
        })?;
        Named::OwnFd(fd)
    } else if text.strip_prefix('-').is_some_and(digits) {
        return Err(format!(
            "{text} is not a descriptor number (they are 0 or more)"
        ));
    } else {
        match proc_fd(text) {
            Some((Some(pid), fd)) => Named::OtherFd { pid, fd },
            Some((None, fd)) => Named::OwnFd(fd),
            None => Named::Path,
        }
    };
    Ok(FileArg {
        text: text.to_owned(),
        named,
    })
}

/// What went wrong in a `sync-file` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum SyncFileError {
    /// The path could not be opened.
    #[error("{file}: cannot open the file: {source}")]
    Open {
        /// The FILE as given.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The descriptor FILE names is not open in its process.
    #[error("{}: {} is not open", .file.text, .file.named)]
    NotOpen {
        /// The FILE.
        file: FileArg,
    },
    /// The process FILE names does not exist.
    #[error("{}: process {pid} does not exist", .file.text)]
    NoProcess {
        /// The FILE.
        file: FileArg,
        /// The process.
        pid: i32,
    },
    /// A system call on what FILE names failed.
    #[error("{}: {}: {call}: {errno}{}", .file.text, .file.named, hint(.file.named, *.errno))]
    Sys {
        /// The FILE.
        file: FileArg,
        /// The call.
        call: &'static str,
        /// The kernel's answer.
        errno: Errno,
    },
    /// What FILE names is not a sync_file.
    #[error("{}: {} is not a sync_file ({errno})", .file.text, .file.named)]
    NotSyncFile {
        /// The FILE.
        file: FileArg,
        /// What the probe got.
        errno: Errno,
    },
    /// The sync_file layer refused (a bad name, a failed ioctl, …).
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

/// What a failed call on what `named` names needs, if the errno says so.
fn hint(named: Named, errno: Errno) -> String {
    match (named, errno) {
        (Named::OtherFd { pid, .. }, Errno::PERM | Errno::ACCESS) => {
            format!("; taking a descriptor of process {pid} needs ptrace access to it")
        }
        _ => String::new(),
    }
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
            print_info(&file.text, &info, json)?;
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
                let info = merged.info().map_err(linux(&FileArg::merged()))?;
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
                        file: file.text,
                        ms: timeout.unwrap_or(0),
                    }
                    .into());
                }
                Err(e) => return Err(linux(&file)(e).into()),
            }
            match sf.status().map_err(linux(&file))? {
                FenceStatus::Failed(errno) => Err(SyncFileError::FenceError {
                    file: file.text,
                    errno,
                }
                .into()),
                _ => Ok(()),
            }
        }
    }
}

fn linux(file: &FileArg) -> impl FnOnce(dmabuf_linux::Error) -> SyncFileError + '_ {
    move |source| SyncFileError::Linux {
        file: file.clone(),
        source,
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

/// The descriptor FILE names, as a new descriptor of this process.
fn open_fd(file: &FileArg) -> Result<OwnedFd, SyncFileError> {
    let sys = |(call, errno)| SyncFileError::Sys {
        file: file.clone(),
        call,
        errno,
    };
    let not_open = || SyncFileError::NotOpen { file: file.clone() };
    match file.named {
        Named::OwnFd(n) => match get_fd(rustix::process::getpid(), n) {
            Ok(fd) => Ok(fd),
            Err((_, Errno::BADF)) => Err(not_open()),
            // Without pidfds (before Linux 5.6) the descriptor is opened again through /proc.
            Err((_, Errno::NOSYS)) => std::fs::File::open(format!("/proc/self/fd/{n}"))
                .map(OwnedFd::from)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => not_open(),
                    _ => SyncFileError::Open {
                        file: file.text.clone(),
                        source: e,
                    },
                }),
            Err(e) => Err(sys(e)),
        },
        Named::OtherFd { pid, fd: n } => {
            let no_process = || SyncFileError::NoProcess {
                file: file.clone(),
                pid,
            };
            let pid_ = Pid::from_raw(pid).ok_or_else(no_process)?;
            match get_fd(pid_, n) {
                Ok(fd) => Ok(fd),
                Err(("pidfd_open", Errno::SRCH)) => Err(no_process()),
                Err(("pidfd_getfd", Errno::BADF)) => Err(not_open()),
                // Without ptrace access (or pidfds), opening the path may still work.
                Err(e) => open_path(&file.text).map_err(|_| sys(e)),
            }
        }
        Named::Path | Named::Merged => open_path(&file.text),
    }
}

/// `pidfd_getfd(pidfd_open(pid), n)`; a failure names its call.
fn get_fd(pid: Pid, n: i32) -> Result<OwnedFd, (&'static str, Errno)> {
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| ("pidfd_open", e))?;
    rustix::process::pidfd_getfd(&pidfd, n, rustix::process::PidfdGetfdFlags::empty())
        .map_err(|e| ("pidfd_getfd", e))
}

/// `open(path, O_RDONLY | O_CLOEXEC)`.
fn open_path(path: &str) -> Result<OwnedFd, SyncFileError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| SyncFileError::Open {
            file: path.to_owned(),
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
            file: FileArg::merged(),
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
    use super::{FileArg, Named, file_arg, proc_fd};

    #[test]
    fn a_file_argument_is_a_descriptor_number_a_proc_path_or_a_path() {
        let named = |text: &str| file_arg(text).map(|f: FileArg| f.named);
        assert_eq!(named("3"), Ok(Named::OwnFd(3)));
        assert_eq!(named("007"), Ok(Named::OwnFd(7)));
        assert_eq!(named("2147483647"), Ok(Named::OwnFd(i32::MAX)));
        // All digits is a number always: too large is an error, not a path.
        assert_eq!(
            named("99999999999"),
            Err("descriptor number 99999999999 is out of range (at most 2147483647)".into())
        );
        assert_eq!(
            named("2147483648"),
            Err("descriptor number 2147483648 is out of range (at most 2147483647)".into())
        );
        assert_eq!(
            named("-1"),
            Err("-1 is not a descriptor number (they are 0 or more)".into())
        );
        assert_eq!(
            named("/proc/12/fd/3"),
            Ok(Named::OtherFd { pid: 12, fd: 3 })
        );
        assert_eq!(named("/proc/self/fd/4"), Ok(Named::OwnFd(4)));
        assert_eq!(named("/dev/fd/5"), Ok(Named::OwnFd(5)));
        for path in ["+3", "3a", "./3", "", "/proc/12/fd/x", "/tmp/sync"] {
            assert_eq!(named(path), Ok(Named::Path), "{path:?}");
        }
    }

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
