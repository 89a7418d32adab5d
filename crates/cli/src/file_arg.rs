//! FILE arguments of `sync-file` and `syncobj`: a kernel object's descriptor, named by a
//! descriptor number, a `/proc/PID/fd/N` path, or any other path.
//!
//! A FILE argument is read as one of three things ([`Named`]):
//! * all digits: a descriptor of this process (as inherited from the shell: `3<&…`), duplicated,
//!   never closed; a number too large for a descriptor is refused, never taken for a path;
//! * `/proc/PID/fd/N`: descriptor N of process PID, taken with `pidfd_open` + `pidfd_getfd`
//!   (ptrace access to PID is needed), falling back to opening the path; `/proc/self/fd/N`
//!   and `/dev/fd/N` are descriptor N of this process;
//! * anything else: a path, opened read-only.
//!
//! [`file_arg`] reads one (clap's value parser); [`open_fd`] gives the descriptor it names,
//! whose kind each subcommand checks. Each [`FileError`] says which of the three the argument
//! was and what is wrong with it.

use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::process::Pid;
use std::fmt;

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
    /// The sync_file `sync-file merge` made, which no argument names.
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
    pub(crate) fn merged() -> FileArg {
        FileArg {
            text: "merged".into(),
            named: Named::Merged,
        }
    }
}

/// What FILE names cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
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

/// Reads a FILE argument (see the [module doc](self)); a number that cannot be a descriptor is a
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

/// The descriptor FILE names, as a new descriptor of this process (close-on-exec).
///
/// # Errors
/// The path cannot be opened, the descriptor is not open, the process does not exist, or
/// taking the descriptor failed.
pub fn open_fd(file: &FileArg) -> Result<OwnedFd, FileError> {
    let sys = |(call, errno)| FileError::Sys {
        file: file.clone(),
        call,
        errno,
    };
    let not_open = || FileError::NotOpen { file: file.clone() };
    match file.named {
        Named::OwnFd(n) => match get_fd(rustix::process::getpid(), n) {
            Ok(fd) => Ok(fd),
            Err((_, Errno::BADF)) => Err(not_open()),
            // Without pidfds (before Linux 5.6) the descriptor is opened again through /proc.
            Err((_, Errno::NOSYS)) => std::fs::File::open(format!("/proc/self/fd/{n}"))
                .map(OwnedFd::from)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => not_open(),
                    _ => FileError::Open {
                        file: file.text.clone(),
                        source: e,
                    },
                }),
            Err(e) => Err(sys(e)),
        },
        Named::OtherFd { pid, fd: n } => {
            let no_process = || FileError::NoProcess {
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
fn open_path(path: &str) -> Result<OwnedFd, FileError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| FileError::Open {
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
