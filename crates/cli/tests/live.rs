//! `inspect` on the live system, with dma-bufs this test allocates from the system heap: it
//! finds them by inode, with this process holding (and mapping) them. Needs
//! `/dev/dma_heap/system` (the workspace's real-kernel harness, `vm/run`, runs it as root in
//! Linux 6.12, with `--include-ignored`); the test is ignored unless asked for, and then a
//! missing heap fails it.
#![cfg(target_os = "linux")]

use dmabuf_cli::inspect::{BufinfoSource, Roots, collect};
use dmabuf_linux::DmaHeap;
use std::os::fd::AsRawFd;

#[test]
#[ignore = "needs /dev/dma_heap/system (runs in the qemu guest)"]
fn inspect_finds_the_buffers_this_process_holds_and_maps() {
    let heap = DmaHeap::open("system").expect("/dev/dma_heap/system");
    let held = heap.alloc(16 * 4096).unwrap();
    held.set_name("cli-held").unwrap();
    let mapped = heap.alloc(4 * 4096).unwrap();
    mapped.set_name("cli-mapped").unwrap();
    let map = mapped.mmap().unwrap();
    let held_ino = held.fdinfo().unwrap();
    assert_eq!(held_ino.size, 16 * 4096);

    let report = collect(&Roots::default());
    let me = std::process::id();
    let find = |name: &str| {
        report
            .buffers
            .iter()
            .find(|b| b.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in the report:\n{report}"))
    };
    let b = find("cli-held");
    assert_eq!(b.size, 16 * 4096);
    assert_eq!(b.exporter.as_deref(), Some("system"));
    let holder = b.holders.iter().find(|h| h.pid == me).unwrap();
    assert_eq!(holder.fds, [u32::try_from(held.as_raw_fd()).unwrap()]);
    assert!(b.mappers.is_empty());

    let m = find("cli-mapped");
    assert_eq!(m.size, 4 * 4096);
    assert!(m.holders.iter().any(|h| h.pid == me));
    let mapper = m.mappers.iter().find(|x| x.pid == me).unwrap();
    assert_eq!((mapper.mappings, mapper.mapped_bytes), (1, 4 * 4096));

    let totals = report.processes.iter().find(|p| p.pid == me).unwrap();
    assert!(totals.fd_bytes >= 20 * 4096);
    assert!(totals.mapped_bytes >= 4 * 4096);
    let system = report
        .exporters
        .iter()
        .find(|e| e.exporter == "system")
        .unwrap();
    assert!(system.buffers >= 2);
    if report.bufinfo == BufinfoSource::Read {
        assert!(b.count.is_some());
    } else {
        eprintln!("note: debugfs bufinfo not read: {:?}", report.bufinfo);
    }
    drop(map);
}
