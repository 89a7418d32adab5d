//! `dmabuf inspect`: the system's dma-bufs, as Android's `dmabuf_dump` shows them.
//!
//! Three pure parsers read the kernel's texts — [`parse_bufinfo`] (debugfs, root only),
//! [`parse_fdinfo`] (one descriptor) and [`parse_maps`] (one process's mappings) — and
//! [`Report::build`] joins what they found by inode: each buffer with its size, exporter, name,
//! the processes holding a descriptor to it and those mapping it, with totals per process and
//! per exporter. [`collect`] reads the live system (`/proc`, debugfs) into a [`Report`],
//! noting the processes it may not look into.

mod bufinfo;
mod collect;
mod error;
mod fdinfo;
mod maps;
mod report;

pub use bufinfo::{BufInfo, BufInfoEntry, ResvFence, parse_bufinfo};
pub use collect::{BUFINFO_PATH, Roots, collect, is_dmabuf_link};
pub use error::ParseError;
pub use fdinfo::{FdInfo, parse_fdinfo};
pub use maps::{DmaBufMapping, parse_maps};
pub use report::{
    Buffer, BufinfoSource, ExporterTotals, HeldFd, Holder, Mapper, ProcessScan, ProcessTotals,
    Report, Unreadable,
};

use crate::Failure;

/// Options of `dmabuf inspect`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `dmabuf inspect`: collects the live system's report and prints it on stdout, as tables (or,
/// with `--json`, as JSON).
///
/// # Errors
/// The report could not be written as JSON.
pub fn run(args: &Args) -> Result<(), Failure> {
    let report = collect(&Roots::default());
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(Failure::new)?;
        println!("{json}");
    } else {
        print!("{report}");
    }
    Ok(())
}
