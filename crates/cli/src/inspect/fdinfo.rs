//! Parser of one `/proc/PID/fdinfo/N` file of a dma-buf (kernel: `dma_buf_show_fdinfo`, after
//! the generic `pos:`, `flags:`, `mnt_id:` and, since 5.14, `ino:` lines).
//!
//! Lines are `key:\tvalue`; a dma-buf adds `size:` (bytes), `count:` (file references, less
//! the one the read itself holds), `exp_name:` and, when set, `name:`. Other keys are ignored.

use super::error::{ParseError, number};
use serde::Serialize;

const FILE: &str = "fdinfo";

/// A dma-buf descriptor's fdinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdInfo {
    /// The file position (`pos:`).
    pub pos: Option<u64>,
    /// The open flags, octal in the file (`flags:`).
    pub flags: Option<u32>,
    /// The mount id (`mnt_id:`).
    pub mnt_id: Option<u64>,
    /// The inode number (`ino:`, Linux 5.14 and later): the buffer's identity.
    pub ino: Option<u64>,
    /// Size in bytes (`size:`).
    pub size: u64,
    /// References to the buffer's file (`count:`).
    pub count: u64,
    /// The exporter's name (`exp_name:`).
    pub exp_name: String,
    /// The name set with `DMA_BUF_SET_NAME` (`name:`), `None` when unset.
    pub name: Option<String>,
}

/// Parses a dma-buf's fdinfo text.
///
/// # Errors
/// [`ParseError::Missing`] when `size`, `count` or `exp_name` is absent (the file is not a
/// dma-buf's); [`ParseError::BadNumber`] for a numeric field that does not parse.
pub fn parse_fdinfo(text: &str) -> Result<FdInfo, ParseError> {
    let mut pos = None;
    let mut flags = None;
    let mut mnt_id = None;
    let mut ino = None;
    let mut size = None;
    let mut count = None;
    let mut exp_name = None;
    let mut name = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.strip_prefix('\t').unwrap_or(value);
        match key {
            "pos" if pos.is_none() => pos = Some(number(FILE, n, "pos", value, 10)?),
            "flags" if flags.is_none() => flags = Some(number(FILE, n, "flags", value, 8)?),
            "mnt_id" if mnt_id.is_none() => mnt_id = Some(number(FILE, n, "mnt_id", value, 10)?),
            "ino" if ino.is_none() => ino = Some(number(FILE, n, "ino", value, 10)?),
            "size" if size.is_none() => size = Some(number(FILE, n, "size", value, 10)?),
            "count" if count.is_none() => count = Some(number(FILE, n, "count", value, 10)?),
            "exp_name" if exp_name.is_none() => exp_name = Some(value.trim().to_owned()),
            "name" if name.is_none() => name = Some(value.to_owned()),
            _ => {}
        }
    }
    let missing = |field| ParseError::Missing { file: FILE, field };
    Ok(FdInfo {
        pos,
        flags,
        mnt_id,
        ino,
        size: size.ok_or_else(|| missing("size"))?,
        count: count.ok_or_else(|| missing("count"))?,
        exp_name: exp_name.ok_or_else(|| missing("exp_name"))?,
        name,
    })
}
