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

/// Reads bufinfo and every process under `roots` into a [`Report`].
///
/// Never fails: what cannot be read is reported in the result.
pub fn collect(roots: &Roots) -> Report {
    let bufinfo = match std::fs::read_to_string(&roots.bufinfo) {
        Ok(text) => parse_bufinfo(&text).map_err(|e| e.to_string()),
        Err(e) => Err(describe(&e)),
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
    Report::build(bufinfo, &scans)
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
