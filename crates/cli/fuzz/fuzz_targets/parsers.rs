//! Fuzzes the `inspect` parsers: any bytes, as (lossy) text, through bufinfo, fdinfo and maps,
//! and whatever parses through the report join and its text form. None may panic.
#![no_main]

use dmabuf_cli::inspect::{ProcessScan, Report, parse_bufinfo, parse_fdinfo, parse_maps};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let bufinfo = parse_bufinfo(&text).map_err(|e| e.to_string());
    let fdinfo = parse_fdinfo(&text);
    let maps = parse_maps(&text).unwrap_or_default();
    let fds = fdinfo
        .ok()
        .map(|info| dmabuf_cli::inspect::HeldFd {
            fd: 3,
            inode: info.ino.unwrap_or(1),
            info,
        })
        .into_iter()
        .collect();
    let scan = ProcessScan {
        pid: 1,
        comm: "fuzz".into(),
        fds,
        maps,
        unreadable: None,
    };
    let report = Report::build(bufinfo, &[scan]);
    let _ = report.to_string();
});
