//! Parser of `/proc/PID/maps`, keeping the mappings of dma-bufs.
//!
//! Each line is `start-end perms offset major:minor inode path`. A mapped dma-buf's path is
//! `/dmabuf:<name>` (the dma-buf file system's dentry name, the name empty when unset) on
//! current kernels, `anon_inode:dmabuf` on old ones; its inode is the buffer's.

use super::error::{ParseError, excerpt, number};
use serde::Serialize;

const FILE: &str = "maps";

/// One mapping of a dma-buf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmaBufMapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permissions, e.g. `rw-s`.
    pub perms: String,
    /// Offset into the buffer.
    pub offset: u64,
    /// The buffer's inode number.
    pub inode: u64,
    /// The buffer's name, when the path carries one.
    pub name: Option<String>,
}

impl DmaBufMapping {
    /// The mapping's length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping is empty (never, for a well-formed maps line).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Parses a maps text, checking every line's shape and keeping the dma-buf mappings.
///
/// # Errors
/// [`ParseError`] naming the first line that is not a maps line.
pub fn parse_maps(text: &str) -> Result<Vec<DmaBufMapping>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut rest = line;
        let mut field = |what: &'static str| -> Result<&str, ParseError> {
            let t = rest.trim_start_matches(' ');
            let end = t.find(' ').unwrap_or(t.len());
            let (f, r) = t.split_at(end);
            rest = r;
            if f.is_empty() {
                return Err(ParseError::Malformed {
                    file: FILE,
                    line: n,
                    expected: what,
                });
            }
            Ok(f)
        };
        let range = field("an address range")?;
        let perms = field("permissions")?.to_owned();
        let offset = field("an offset")?;
        let dev = field("a device")?;
        let inode = field("an inode")?;
        let path = rest.trim_start_matches(' ');
        let Some((start, end)) = range.split_once('-') else {
            return Err(ParseError::Malformed {
                file: FILE,
                line: n,
                expected: "an address range start-end",
            });
        };
        let start: u64 = number(FILE, n, "start", start, 16)?;
        let end: u64 = number(FILE, n, "end", end, 16)?;
        if end < start || perms.len() != 4 || !dev.contains(':') {
            return Err(ParseError::Malformed {
                file: FILE,
                line: n,
                expected: "start <= end, 4 permission letters and a major:minor device",
            });
        }
        let offset: u64 = number(FILE, n, "offset", offset, 16)?;
        let inode: u64 = number(FILE, n, "inode", inode, 10)?;
        let name = if let Some(name) = path.strip_prefix("/dmabuf:") {
            Some((!name.is_empty()).then(|| excerpt_name(name)))
        } else if path == "anon_inode:dmabuf" {
            Some(None)
        } else {
            None
        };
        if let Some(name) = name {
            out.push(DmaBufMapping {
                start,
                end,
                perms,
                offset,
                inode,
                name,
            });
        }
    }
    Ok(out)
}

/// A name as shown: the kernel caps names at 32 bytes; longer paths are cut the same way.
fn excerpt_name(name: &str) -> String {
    let name = name.strip_suffix(" (deleted)").unwrap_or(name);
    if name.len() > 64 {
        excerpt(name)
    } else {
        name.to_owned()
    }
}
