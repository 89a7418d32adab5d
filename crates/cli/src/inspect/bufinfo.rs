//! Parser of debugfs `/sys/kernel/debug/dma_buf/bufinfo` (kernel: `dma_buf_debug_show`).
//!
//! The file is a table: a `Dma-buf Objects:` title, a column header, then per buffer one
//! tab-separated line (`size flags mode count exp_name ino name`, size and count in decimal,
//! flags and mode in hex, the name `<none>` when unset; kernels before 5.x lack `ino` and
//! `name`), its reservation fences as indented `<usage> fence:...` lines, an indented
//! `Attached Devices:` list and a `Total N devices attached` line; at the end
//! `Total N objects, M bytes`.

use super::error::{ParseError, number};
use serde::Serialize;

const FILE: &str = "bufinfo";

/// The whole `bufinfo` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BufInfo {
    /// Every buffer, in the kernel's order.
    pub buffers: Vec<BufInfoEntry>,
    /// The closing `Total N objects, M bytes` line, when present.
    pub totals: Option<(u64, u64)>,
}

/// One buffer's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BufInfoEntry {
    /// Size in bytes.
    pub size: u64,
    /// The file's `f_flags` (`O_RDWR`, `O_CLOEXEC`, …).
    pub flags: u32,
    /// The file's `f_mode`.
    pub mode: u32,
    /// References to the buffer's file.
    pub count: u64,
    /// The exporter's name.
    pub exp_name: String,
    /// The inode number of the buffer's file (`None` on kernels that do not print it).
    pub ino: Option<u64>,
    /// The name set with `DMA_BUF_SET_NAME`, `None` when unset.
    pub name: Option<String>,
    /// The fences of its reservation object.
    pub fences: Vec<ResvFence>,
    /// The devices attached to it (`dev_name`).
    pub attached: Vec<String>,
}

/// A fence line of a buffer's reservation object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResvFence {
    /// The usage (`kernel`, `write`, `read`, `bookkeep`; older kernels `exclusive`, `shared`).
    pub usage: String,
    /// The kernel's description after `fence:` (driver, timeline, seqno, state).
    pub description: String,
    /// Whether it has signalled.
    pub signalled: bool,
}

/// Parses the text of `bufinfo`.
///
/// # Errors
/// [`ParseError`] naming the first line that does not fit the layout.
pub fn parse_bufinfo(text: &str) -> Result<BufInfo, ParseError> {
    let mut info = BufInfo::default();
    let mut titled = false;
    let mut in_attached = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.trim() == "Dma-buf Objects:" {
            titled = true;
            continue;
        }
        if !titled {
            return Err(malformed(n, "the title \"Dma-buf Objects:\""));
        }
        if let Some(indented) = line.strip_prefix('\t') {
            let Some(buf) = info.buffers.last_mut() else {
                return Err(malformed(n, "a buffer line before indented lines"));
            };
            if indented.trim() == "Attached Devices:" {
                in_attached = true;
            } else if in_attached {
                buf.attached.push(indented.trim().to_owned());
            } else if let Some((usage, description)) = indented.split_once(" fence:") {
                let description = description.trim().to_owned();
                let signalled =
                    description.ends_with("signalled") && !description.ends_with("unsignalled");
                buf.fences.push(ResvFence {
                    usage: usage.trim().to_lowercase(),
                    description,
                    signalled,
                });
            } else {
                return Err(malformed(n, "a fence or \"Attached Devices:\" line"));
            }
            continue;
        }
        in_attached = false;
        if let Some(rest) = line.strip_prefix("Total ") {
            if let Some(count) = rest.strip_suffix(" devices attached") {
                let count: u64 = number(FILE, n, "attached devices", count, 10)?;
                let listed = info.buffers.last().map_or(0, |b| b.attached.len() as u64);
                if count != listed {
                    return Err(malformed(n, "as many attached devices as listed"));
                }
            } else if let Some((objects, bytes)) = rest.split_once(" objects, ") {
                let bytes = bytes
                    .strip_suffix(" bytes")
                    .ok_or_else(|| malformed(n, "\"Total N objects, M bytes\""))?;
                info.totals = Some((
                    number(FILE, n, "total objects", objects, 10)?,
                    number(FILE, n, "total bytes", bytes, 10)?,
                ));
            } else {
                return Err(malformed(n, "a \"Total\" line"));
            }
            continue;
        }
        if line.starts_with("size") && line.contains("exp_name") {
            continue; // the column header
        }
        info.buffers.push(parse_entry(n, line)?);
    }
    if !titled {
        return Err(ParseError::Missing {
            file: FILE,
            field: "\"Dma-buf Objects:\" title",
        });
    }
    Ok(info)
}

/// One buffer line: `size flags mode count exp_name [ino [name]]`, tab-separated.
fn parse_entry(n: usize, line: &str) -> Result<BufInfoEntry, ParseError> {
    let fields: Vec<&str> = line.splitn(7, '\t').collect();
    if fields.len() < 5 {
        return Err(malformed(n, "a buffer line of 5 to 7 tab-separated fields"));
    }
    let name = fields
        .get(6)
        .filter(|&&s| s != "<none>" && !s.is_empty())
        .map(|s| (*s).to_owned());
    Ok(BufInfoEntry {
        size: number(FILE, n, "size", fields[0], 10)?,
        flags: number(FILE, n, "flags", fields[1], 16)?,
        mode: number(FILE, n, "mode", fields[2], 16)?,
        count: number(FILE, n, "count", fields[3], 10)?,
        exp_name: fields[4].trim().to_owned(),
        ino: fields
            .get(5)
            .map(|s| number(FILE, n, "ino", s, 10))
            .transpose()?,
        name,
        fences: Vec::new(),
        attached: Vec::new(),
    })
}

fn malformed(line: usize, expected: &'static str) -> ParseError {
    ParseError::Malformed {
        file: FILE,
        line,
        expected,
    }
}
