//! The joined view: buffers by inode, who holds and maps them, totals; text and JSON output.

use super::bufinfo::BufInfo;
use super::fdinfo::FdInfo;
use super::maps::DmaBufMapping;
use crate::plural;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

/// What one process showed: its dma-buf descriptors and mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessScan {
    /// The process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub comm: String,
    /// Its dma-buf descriptors.
    pub fds: Vec<HeldFd>,
    /// Its dma-buf mappings.
    pub maps: Vec<DmaBufMapping>,
    /// Why part of it could not be read (e.g. `fd: permission denied`), if so.
    pub unreadable: Option<String>,
}

/// A dma-buf descriptor a process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFd {
    /// The descriptor number.
    pub fd: u32,
    /// The buffer's inode (from fdinfo's `ino:` or `stat`).
    pub inode: u64,
    /// Its fdinfo.
    pub info: FdInfo,
}

/// Where the debugfs view came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum BufinfoSource {
    /// Read and parsed.
    Read,
    /// Not readable (the reason); the view is built from `/proc` alone.
    Unavailable(String),
}

/// One buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buffer {
    /// Its inode number (`None` for bufinfo entries of kernels that do not print it).
    pub inode: Option<u64>,
    /// Size in bytes (from bufinfo or fdinfo; from the largest mapping when only mapped).
    pub size: u64,
    /// The exporter, when known (not for buffers seen only mapped).
    pub exporter: Option<String>,
    /// The name set with `DMA_BUF_SET_NAME`.
    pub name: Option<String>,
    /// References to its file, from bufinfo or fdinfo.
    pub count: Option<u64>,
    /// Devices attached (bufinfo only).
    pub attached: Vec<String>,
    /// Processes holding a descriptor to it.
    pub holders: Vec<Holder>,
    /// Processes mapping it.
    pub mappers: Vec<Mapper>,
}

/// A process holding descriptors to a buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The process id.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// The descriptors.
    pub fds: Vec<u32>,
}

/// A process mapping a buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapper {
    /// The process id.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// How many mappings.
    pub mappings: usize,
    /// Bytes mapped, over all its mappings of the buffer.
    pub mapped_bytes: u64,
}

/// A process's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessTotals {
    /// The process id.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// Distinct buffers it holds a descriptor to.
    pub fd_buffers: usize,
    /// Their bytes.
    pub fd_bytes: u64,
    /// Distinct buffers it maps.
    pub mapped_buffers: usize,
    /// Their bytes (whole buffers).
    pub mapped_bytes: u64,
    /// Bytes of the buffers it holds or maps, each counted once.
    pub total_bytes: u64,
}

/// An exporter's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterTotals {
    /// The exporter (`?` for buffers only seen mapped).
    pub exporter: String,
    /// Its buffers.
    pub buffers: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// A process that could not be (fully) read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The process id.
    pub pid: u32,
    /// Its command name, if readable.
    pub comm: String,
    /// Why.
    pub reason: String,
}

/// The system's dma-bufs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether debugfs bufinfo was used.
    pub bufinfo: BufinfoSource,
    /// Every buffer, by inode.
    pub buffers: Vec<Buffer>,
    /// Totals per process holding or mapping a buffer, by pid.
    pub processes: Vec<ProcessTotals>,
    /// Totals per exporter, by name.
    pub exporters: Vec<ExporterTotals>,
    /// All buffers' bytes.
    pub total_bytes: u64,
    /// Processes that could not be fully read.
    pub unreadable: Vec<Unreadable>,
    /// Whether the scan ran as root (effective uid 0): what it could not read, root cannot
    /// either. [`Report::build`] leaves it false; [`collect`](super::collect) sets it.
    pub scanned_as_root: bool,
}

impl Report {
    /// Joins bufinfo (when read) and the processes' scans by inode.
    pub fn build(bufinfo: Result<BufInfo, String>, scans: &[ProcessScan]) -> Report {
        let mut by_inode: BTreeMap<u64, Buffer> = BTreeMap::new();
        let mut no_inode = Vec::new();
        let source = match bufinfo {
            Ok(info) => {
                for e in info.buffers {
                    let b = Buffer {
                        inode: e.ino,
                        size: e.size,
                        exporter: Some(e.exp_name),
                        name: e.name,
                        count: Some(e.count),
                        attached: e.attached,
                        holders: Vec::new(),
                        mappers: Vec::new(),
                    };
                    match e.ino {
                        Some(ino) => {
                            by_inode.insert(ino, b);
                        }
                        None => no_inode.push(b),
                    }
                }
                BufinfoSource::Read
            }
            Err(why) => BufinfoSource::Unavailable(why),
        };
        let blank = |inode| Buffer {
            inode: Some(inode),
            size: 0,
            exporter: None,
            name: None,
            count: None,
            attached: Vec::new(),
            holders: Vec::new(),
            mappers: Vec::new(),
        };
        let mut unreadable = Vec::new();
        for scan in scans {
            if let Some(reason) = &scan.unreadable {
                unreadable.push(Unreadable {
                    pid: scan.pid,
                    comm: scan.comm.clone(),
                    reason: reason.clone(),
                });
            }
            for fd in &scan.fds {
                let b = by_inode.entry(fd.inode).or_insert_with(|| blank(fd.inode));
                if b.exporter.is_none() {
                    b.size = fd.info.size;
                    b.exporter = Some(fd.info.exp_name.clone());
                    b.count = Some(fd.info.count);
                }
                if b.name.is_none() {
                    b.name.clone_from(&fd.info.name);
                }
                match b.holders.iter_mut().find(|h| h.pid == scan.pid) {
                    Some(h) => h.fds.push(fd.fd),
                    None => b.holders.push(Holder {
                        pid: scan.pid,
                        comm: scan.comm.clone(),
                        fds: vec![fd.fd],
                    }),
                }
            }
            for m in &scan.maps {
                let b = by_inode.entry(m.inode).or_insert_with(|| blank(m.inode));
                if b.exporter.is_none() {
                    b.size = b.size.max(m.offset.saturating_add(m.len()));
                }
                if b.name.is_none() {
                    b.name.clone_from(&m.name);
                }
                match b.mappers.iter_mut().find(|x| x.pid == scan.pid) {
                    Some(x) => {
                        x.mappings += 1;
                        x.mapped_bytes = x.mapped_bytes.saturating_add(m.len());
                    }
                    None => b.mappers.push(Mapper {
                        pid: scan.pid,
                        comm: scan.comm.clone(),
                        mappings: 1,
                        mapped_bytes: m.len(),
                    }),
                }
            }
        }
        let buffers: Vec<Buffer> = by_inode.into_values().chain(no_inode).collect();

        let mut procs: BTreeMap<u32, (String, BTreeSet<usize>, BTreeSet<usize>)> = BTreeMap::new();
        let mut exporters: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        let mut total_bytes = 0u64;
        for (i, b) in buffers.iter().enumerate() {
            total_bytes = total_bytes.saturating_add(b.size);
            let e = exporters
                .entry(b.exporter.clone().unwrap_or_else(|| "?".into()))
                .or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(b.size);
            for h in &b.holders {
                procs
                    .entry(h.pid)
                    .or_insert_with(|| (h.comm.clone(), Default::default(), Default::default()))
                    .1
                    .insert(i);
            }
            for m in &b.mappers {
                procs
                    .entry(m.pid)
                    .or_insert_with(|| (m.comm.clone(), Default::default(), Default::default()))
                    .2
                    .insert(i);
            }
        }
        let bytes = |set: &BTreeSet<usize>| {
            set.iter()
                .fold(0u64, |acc, &i| acc.saturating_add(buffers[i].size))
        };
        let processes = procs
            .into_iter()
            .map(|(pid, (comm, fds, maps))| ProcessTotals {
                pid,
                comm,
                fd_buffers: fds.len(),
                fd_bytes: bytes(&fds),
                mapped_buffers: maps.len(),
                mapped_bytes: bytes(&maps),
                total_bytes: bytes(&fds.union(&maps).copied().collect()),
            })
            .collect();
        let exporters = exporters
            .into_iter()
            .map(|(exporter, (buffers, bytes))| ExporterTotals {
                exporter,
                buffers,
                bytes,
            })
            .collect();
        Report {
            bufinfo: source,
            buffers,
            processes,
            exporters,
            total_bytes,
            unreadable,
            scanned_as_root: false,
        }
    }
}

/// Bytes in binary units, e.g. `4.0 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}, {} ({})",
            plural(self.buffers.len() as u64, "dma-buf", "dma-bufs"),
            human(self.total_bytes),
            match &self.bufinfo {
                BufinfoSource::Read => "debugfs bufinfo and /proc",
                BufinfoSource::Unavailable(_) => "/proc only",
            }
        )?;
        if let BufinfoSource::Unavailable(why) = &self.bufinfo {
            writeln!(f, "bufinfo: {why}")?;
        }
        if !self.buffers.is_empty() {
            writeln!(
                f,
                "\n{:>10}  {:>10}  {:<14} {:<20} {:<28} MAPPED BY",
                "INODE", "SIZE", "EXPORTER", "NAME", "HELD BY (pid(comm):fds)"
            )?;
            for b in &self.buffers {
                let mut held = String::new();
                for h in &b.holders {
                    let fds: Vec<String> = h.fds.iter().map(u32::to_string).collect();
                    let _ = write!(held, "{}({}):{} ", h.pid, h.comm, fds.join(","));
                }
                let mut mapped = String::new();
                for m in &b.mappers {
                    let _ = write!(mapped, "{}({})x{} ", m.pid, m.comm, m.mappings);
                }
                writeln!(
                    f,
                    "{:>10}  {:>10}  {:<14} {:<20} {:<28} {}",
                    b.inode.map_or_else(|| "-".into(), |i| i.to_string()),
                    human(b.size),
                    b.exporter.as_deref().unwrap_or("?"),
                    b.name.as_deref().unwrap_or("-"),
                    if held.is_empty() {
                        "-"
                    } else {
                        held.trim_end()
                    },
                    if mapped.is_empty() {
                        "-"
                    } else {
                        mapped.trim_end()
                    },
                )?;
            }
        }
        if !self.processes.is_empty() {
            writeln!(
                f,
                "\nPer process:\n{:>8}  {:<16} {:>8} {:>10} {:>8} {:>10} {:>10}",
                "PID", "COMM", "FD BUFS", "FD SIZE", "MAPPED", "MAP SIZE", "TOTAL"
            )?;
            for p in &self.processes {
                writeln!(
                    f,
                    "{:>8}  {:<16} {:>8} {:>10} {:>8} {:>10} {:>10}",
                    p.pid,
                    p.comm,
                    p.fd_buffers,
                    human(p.fd_bytes),
                    p.mapped_buffers,
                    human(p.mapped_bytes),
                    human(p.total_bytes)
                )?;
            }
        }
        if !self.exporters.is_empty() {
            writeln!(
                f,
                "\nPer exporter:\n{:<16} {:>8} {:>10}",
                "EXPORTER", "BUFFERS", "SIZE"
            )?;
            for e in &self.exporters {
                writeln!(
                    f,
                    "{:<16} {:>8} {:>10}",
                    e.exporter,
                    e.buffers,
                    human(e.bytes)
                )?;
            }
        }
        if !self.unreadable.is_empty() {
            let n = plural(self.unreadable.len() as u64, "process", "processes");
            if self.scanned_as_root {
                writeln!(f, "\nNot fully readable, even as root ({n}):")?;
            } else {
                writeln!(
                    f,
                    "\nNot fully readable ({n}; root or ptrace access shows more):"
                )?;
            }
            for u in &self.unreadable {
                writeln!(f, "{:>8}  {:<16} {}", u.pid, u.comm, u.reason)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(4096), "4.0 KiB");
        assert_eq!(human(8 << 20), "8.0 MiB");
    }
}
