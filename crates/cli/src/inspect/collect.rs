//! Reads the live system: debugfs bufinfo when readable, then every process's dma-buf
//! descriptors (`/proc/PID/fd`, `/proc/PID/fdinfo`) and mappings (`/proc/PID/maps`).
//!
//! Unprivileged, other users' processes refuse their `fd` directory and `maps`; those are
//! listed in [`Report::unreadable`] and the rest is shown. Processes that exit during the scan
//! are skipped.

use super::bufinfo::parse_bufinfo;
use super::fdinfo::parse_fdinfo;
use super::maps::parse_maps;
use super::report::{HeldFd, ProcessScan, Report};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where debugfs shows every dma-buf (root only, debugfs mounted).
pub const BUFINFO_PATH: &str = "/sys/kernel/debug/dma_buf/bufinfo";

/// The files [`collect`] reads: `/proc` and [`BUFINFO_PATH`] unless a test points elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The proc file system.
    pub proc: PathBuf,
    /// The debugfs bufinfo file.
    pub bufinfo: PathBuf,
}

impl Default for Roots {
    fn default() -> Roots {
        Roots {
            proc: "/proc".into(),
            bufinfo: BUFINFO_PATH.into(),
        }
    }
}

/// Whether a `/proc/PID/fd/N` link target names a dma-buf (`/dmabuf:<name>` on current
/// kernels, `anon_inode:dmabuf` on old ones).
pub fn is_dmabuf_link(target: &str) -> bool {
    target.starts_with("/dmabuf:") || target == "anon_inode:dmabuf"
}

/// Where debugfs is mounted, for the kernel's dma-buf files under it.
const DEBUGFS: &str = "/sys/kernel/debug";

/// Reads bufinfo and every process under `roots` into a [`Report`].
///
/// Never fails: what cannot be read is reported in the result, bufinfo with its path and how
/// to make it readable.
pub fn collect(roots: &Roots) -> Report {
    let root = rustix::process::geteuid().is_root();
    let bufinfo = match std::fs::read_to_string(&roots.bufinfo) {
        Ok(text) => parse_bufinfo(&text).map_err(|e| format!("{}: {e}", roots.bufinfo.display())),
        Err(e) => Err(bufinfo_unreadable(
            &roots.bufinfo,
            &e,
            root,
            debugfs_mounted(),
        )),
    };
    let mut pids: Vec<u32> = match std::fs::read_dir(&roots.proc) {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    pids.sort_unstable();
    let scans: Vec<ProcessScan> = pids
        .into_iter()
        .filter_map(|pid| scan_process(&roots.proc.join(pid.to_string()), pid))
        .collect();
    let mut report = Report::build(bufinfo, &scans);
    report.scanned_as_root = root;
    report
}

/// Whether debugfs is mounted at [`DEBUGFS`] (`/proc/self/mounts`).
fn debugfs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| {
        mounts.lines().any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            fields.next() == Some(DEBUGFS) && fields.next() == Some("debugfs")
        })
    })
}

/// Why bufinfo at `path` could not be read (`error`), and how to make it readable: mount
/// debugfs if it is not, run as root if this process (`root`: its effective uid is 0) is not.
fn bufinfo_unreadable(path: &Path, error: &std::io::Error, root: bool, mounted: bool) -> String {
    let what = format!("{}: {}", path.display(), describe(error));
    match error.kind() {
        ErrorKind::NotFound if !mounted => format!(
            "{what}; mount debugfs at {DEBUGFS} (mount -t debugfs none {DEBUGFS}){}",
            if root { "" } else { " and run as root" }
        ),
        ErrorKind::NotFound => {
            format!(
                "{what}, although debugfs is mounted at {DEBUGFS}: the kernel has no dma-buf \
                 debugfs"
            )
        }
        ErrorKind::PermissionDenied if !root => {
            format!("{what}; debugfs is readable by root only: run as root")
        }
        ErrorKind::PermissionDenied => {
            format!("{what}, even as root (the kernel can refuse debugfs, e.g. in lockdown mode)")
        }
        _ => what,
    }
}

/// A short lower-case reason for an I/O error.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::NotFound => "not found".into(),
        _ => e.to_string(),
    }
}

/// One process; `None` when it has gone.
fn scan_process(dir: &Path, pid: u32) -> Option<ProcessScan> {
    let comm = std::fs::read_to_string(dir.join("comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_else(|_| "?".into());
    let mut scan = ProcessScan {
        pid,
        comm,
        ..ProcessScan::default()
    };
    let mut problems = Vec::new();
    match std::fs::read_dir(dir.join("fd")) {
        Ok(entries) => {
            let mut fds: Vec<u32> = entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort_unstable();
            for fd in fds {
                if let Some(held) = held_fd(dir, fd) {
                    scan.fds.push(held);
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => problems.push(format!("fd: {}", describe(&e))),
    }
    match std::fs::read_to_string(dir.join("maps")) {
        Ok(text) => match parse_maps(&text) {
            Ok(maps) => scan.maps = maps,
            Err(e) => problems.push(e.to_string()),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => problems.push(format!("maps: {}", describe(&e))),
    }
    if !problems.is_empty() {
        scan.unreadable = Some(problems.join("; "));
    }
    Some(scan)
}

/// Descriptor `fd` of the process at `dir`, if it is a dma-buf that can still be read.
fn held_fd(dir: &Path, fd: u32) -> Option<HeldFd> {
    let link = dir.join("fd").join(fd.to_string());
    let target = std::fs::read_link(&link).ok()?;
    if !is_dmabuf_link(target.to_str()?) {
        return None;
    }
    let text = std::fs::read_to_string(dir.join("fdinfo").join(fd.to_string())).ok()?;
    let info = parse_fdinfo(&text).ok()?;
    let inode = match info.ino {
        Some(ino) => ino,
        None => std::fs::metadata(&link).ok()?.ino(),
    };
    Some(HeldFd { fd, inode, info })
}

#[cfg(test)]
mod tests {
    use super::{BUFINFO_PATH, bufinfo_unreadable};
    use std::io::{Error, ErrorKind};
    use std::path::Path;

    #[test]
    fn an_unreadable_bufinfo_names_its_path_and_the_fix_and_suggests_root_only_to_others() {
        let path = Path::new(BUFINFO_PATH);
        let missing = Error::from(ErrorKind::NotFound);
        assert_eq!(
            bufinfo_unreadable(path, &missing, false, false),
            "/sys/kernel/debug/dma_buf/bufinfo: not found; mount debugfs at /sys/kernel/debug \
             (mount -t debugfs none /sys/kernel/debug) and run as root"
        );
        assert_eq!(
            bufinfo_unreadable(path, &missing, true, false),
            "/sys/kernel/debug/dma_buf/bufinfo: not found; mount debugfs at /sys/kernel/debug \
             (mount -t debugfs none /sys/kernel/debug)"
        );
        assert_eq!(
            bufinfo_unreadable(path, &missing, true, true),
            "/sys/kernel/debug/dma_buf/bufinfo: not found, although debugfs is mounted at \
             /sys/kernel/debug: the kernel has no dma-buf debugfs"
        );
        let denied = Error::from(ErrorKind::PermissionDenied);
        assert_eq!(
            bufinfo_unreadable(path, &denied, false, true),
            "/sys/kernel/debug/dma_buf/bufinfo: permission denied; debugfs is readable by root \
             only: run as root"
        );
        let as_root = bufinfo_unreadable(path, &denied, true, true);
        assert!(as_root.contains("even as root"), "{as_root}");
        for (error, mounted) in [(&missing, false), (&missing, true), (&denied, true)] {
            let text = bufinfo_unreadable(path, error, true, mounted);
            assert!(!text.contains("run as root"), "{text}");
        }
    }
}
