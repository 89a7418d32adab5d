//! `dmabuf inspect`'s parsers on recorded samples (`tests/samples/`), on malformed input (a
//! clear error, never a panic, also under proptest), the join into a report, and a collection
//! over a fake `/proc` tree.
#![cfg(target_os = "linux")]

use dmabuf_cli::inspect::{
    BufinfoSource, ParseError, ProcessScan, Report, Roots, collect, parse_bufinfo, parse_fdinfo,
    parse_maps,
};
use proptest::prelude::*;
use std::path::PathBuf;

const BUFINFO: &str = include_str!("samples/bufinfo.txt");
const FDINFO_NAMED: &str = include_str!("samples/fdinfo-named.txt");
const FDINFO_OLD: &str = include_str!("samples/fdinfo-old-kernel.txt");
const FDINFO_REGULAR: &str = include_str!("samples/fdinfo-regular-file.txt");
const MAPS: &str = include_str!("samples/maps.txt");

#[test]
fn bufinfo_sample_parses_every_buffer() {
    let info = parse_bufinfo(BUFINFO).unwrap();
    assert_eq!(info.buffers.len(), 3);
    assert_eq!(info.totals, Some((3, 1_060_864)));
    let sum: u64 = info.buffers.iter().map(|b| b.size).sum();
    assert_eq!(sum, 1_060_864);

    let cam = &info.buffers[0];
    assert_eq!(cam.size, 8192);
    assert_eq!(cam.flags, 2);
    assert_eq!(cam.mode, 0xa0007);
    assert_eq!(cam.count, 3);
    assert_eq!(cam.exp_name, "system");
    assert_eq!(cam.ino, Some(211));
    assert_eq!(cam.name.as_deref(), Some("camera-0"));
    assert_eq!(cam.attached, ["vgem"]);
    assert_eq!(cam.fences.len(), 2);
    assert_eq!(cam.fences[0].usage, "write");
    assert!(cam.fences[0].signalled);
    assert_eq!(cam.fences[1].usage, "read");
    assert!(!cam.fences[1].signalled);

    let udma = &info.buffers[1];
    assert_eq!(udma.flags, 0x80002);
    assert_eq!(udma.name, None);
    assert!(udma.attached.is_empty());

    let gpu = &info.buffers[2];
    assert_eq!(gpu.name.as_deref(), Some("gpu render"));
    assert_eq!(gpu.attached, ["0000:00:02.0", "vgem"]);
}

#[test]
fn bufinfo_of_old_kernels_without_ino_and_name() {
    let text = "\nDma-buf Objects:\nsize\tflags\tmode\tcount\texp_name\n\
                00004096\t00000002\t00000007\t00000001\tion\n\tAttached Devices:\n\
                Total 0 devices attached\n\nTotal 1 objects, 4096 bytes\n";
    let info = parse_bufinfo(text).unwrap();
    assert_eq!(info.buffers[0].ino, None);
    assert_eq!(info.buffers[0].exp_name, "ion");
}

#[test]
fn empty_bufinfo_is_no_buffers() {
    let info = parse_bufinfo("\nDma-buf Objects:\nsize\tflags\tmode\tcount\texp_name\tino\tname\n\nTotal 0 objects, 0 bytes\n").unwrap();
    assert!(info.buffers.is_empty());
}

#[test]
fn malformed_bufinfo_names_the_line() {
    assert_eq!(
        parse_bufinfo("").unwrap_err(),
        ParseError::Missing {
            file: "bufinfo",
            field: "\"Dma-buf Objects:\" title"
        }
    );
    let bad_size = BUFINFO.replace("00008192\t", "8k\t");
    let e = parse_bufinfo(&bad_size).unwrap_err();
    assert_eq!(
        e,
        ParseError::BadNumber {
            file: "bufinfo",
            line: 4,
            field: "size",
            value: "8k".into()
        }
    );
    assert_eq!(e.to_string(), "bufinfo line 4: size \"8k\" is not a number");
    let e = parse_bufinfo("Dma-buf Objects:\n\tvgem\n").unwrap_err();
    assert!(matches!(e, ParseError::Malformed { line: 2, .. }), "{e}");
    let e = parse_bufinfo("Dma-buf Objects:\n1\t2\t3\n").unwrap_err();
    assert!(e.to_string().contains("5 to 7 tab-separated fields"), "{e}");
    let wrong_count = BUFINFO.replace("Total 2 devices attached", "Total 5 devices attached");
    assert!(matches!(
        parse_bufinfo(&wrong_count).unwrap_err(),
        ParseError::Malformed { line: 19, .. }
    ));
}

#[test]
fn fdinfo_samples() {
    let named = parse_fdinfo(FDINFO_NAMED).unwrap();
    assert_eq!(named.ino, Some(211));
    assert_eq!(named.flags, Some(0o2000002));
    assert_eq!(named.size, 8192);
    assert_eq!(named.count, 3);
    assert_eq!(named.exp_name, "system");
    assert_eq!(named.name.as_deref(), Some("camera-0"));

    let old = parse_fdinfo(FDINFO_OLD).unwrap();
    assert_eq!(old.ino, None);
    assert_eq!(old.name, None);
    assert_eq!(old.exp_name, "udmabuf");

    assert_eq!(
        parse_fdinfo(FDINFO_REGULAR).unwrap_err(),
        ParseError::Missing {
            file: "fdinfo",
            field: "size"
        }
    );
}

#[test]
fn malformed_fdinfo_is_a_clear_error() {
    let e = parse_fdinfo(&FDINFO_NAMED.replace("count:\t3", "count:\tmany")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fdinfo line 6: count \"many\" is not a number"
    );
    let e = parse_fdinfo(&FDINFO_NAMED.replace("flags:\t02000002", "flags:\t9")).unwrap_err();
    assert!(matches!(e, ParseError::BadNumber { field: "flags", .. }));
}

#[test]
fn maps_sample_keeps_the_dmabuf_mappings() {
    let maps = parse_maps(MAPS).unwrap();
    let inodes: Vec<u64> = maps.iter().map(|m| m.inode).collect();
    assert_eq!(inodes, [211, 212, 213]);
    assert_eq!(maps[0].name.as_deref(), Some("camera-0"));
    assert_eq!(maps[0].len(), 0x2000);
    assert_eq!(maps[0].perms, "rw-s");
    assert_eq!(maps[1].name, None);
    assert_eq!(maps[1].len(), 0x10_0000);
    assert_eq!(maps[2].name, None);
}

#[test]
fn malformed_maps_names_the_line() {
    let e = parse_maps("7f00-7e00 rw-s 00000000 00:0e 5 /dmabuf:\n").unwrap_err();
    assert!(matches!(e, ParseError::Malformed { line: 1, .. }), "{e}");
    let e = parse_maps(&format!("{MAPS}zzzz-7e00 rw-s 0 00:0e 5 /dmabuf:\n")).unwrap_err();
    assert_eq!(
        e,
        ParseError::BadNumber {
            file: "maps",
            line: 10,
            field: "start",
            value: "zzzz".into()
        }
    );
    let e = parse_maps("7f00-7f10 rw-s\n").unwrap_err();
    assert!(e.to_string().contains("expected an offset"), "{e}");
}

/// Two processes: a camera holding and mapping buffers 211 and 212, a GPU holding 211 and
/// mapping 213; a third refused.
fn scans() -> Vec<ProcessScan> {
    use dmabuf_cli::inspect::HeldFd;
    let named = parse_fdinfo(FDINFO_NAMED).unwrap();
    let mut old = parse_fdinfo(FDINFO_OLD).unwrap();
    old.ino = Some(212);
    let maps = parse_maps(MAPS).unwrap();
    vec![
        ProcessScan {
            pid: 100,
            comm: "camera".into(),
            fds: vec![
                HeldFd {
                    fd: 5,
                    inode: 211,
                    info: named.clone(),
                },
                HeldFd {
                    fd: 6,
                    inode: 212,
                    info: old,
                },
            ],
            maps: maps[..2].to_vec(),
            unreadable: None,
        },
        ProcessScan {
            pid: 200,
            comm: "gpu".into(),
            fds: vec![HeldFd {
                fd: 9,
                inode: 211,
                info: named,
            }],
            maps: maps[2..].to_vec(),
            unreadable: None,
        },
        ProcessScan {
            pid: 1,
            comm: "init".into(),
            unreadable: Some("fd: permission denied".into()),
            ..ProcessScan::default()
        },
    ]
}

#[test]
fn report_from_proc_alone_joins_by_inode() {
    let r = Report::build(Err("permission denied".into()), &scans());
    assert_eq!(
        r.bufinfo,
        BufinfoSource::Unavailable("permission denied".into())
    );
    let inodes: Vec<_> = r.buffers.iter().map(|b| b.inode).collect();
    assert_eq!(inodes, [Some(211), Some(212), Some(213)]);
    let cam = &r.buffers[0];
    assert_eq!(cam.exporter.as_deref(), Some("system"));
    assert_eq!(cam.holders.len(), 2);
    assert_eq!(cam.holders[0].fds, [5]);
    assert_eq!(cam.holders[1].pid, 200);
    assert_eq!(cam.mappers.len(), 1);
    // 213 is only mapped (read-only, one page): exporter unknown, size from the mapping.
    let only_mapped = &r.buffers[2];
    assert_eq!(only_mapped.exporter, None);
    assert_eq!(only_mapped.size, 4096);
    assert_eq!(r.total_bytes, 8192 + 1_048_576 + 4096);

    let camera = r.processes.iter().find(|p| p.pid == 100).unwrap();
    assert_eq!((camera.fd_buffers, camera.fd_bytes), (2, 8192 + 1_048_576));
    assert_eq!(
        (camera.mapped_buffers, camera.mapped_bytes),
        (2, 8192 + 1_048_576)
    );
    assert_eq!(camera.total_bytes, 8192 + 1_048_576);
    let gpu = r.processes.iter().find(|p| p.pid == 200).unwrap();
    assert_eq!(gpu.total_bytes, 8192 + 4096);
    assert!(r.processes.iter().all(|p| p.pid != 1));
    assert_eq!(r.unreadable.len(), 1);

    let exporters: Vec<_> = r
        .exporters
        .iter()
        .map(|e| (e.exporter.as_str(), e.buffers, e.bytes))
        .collect();
    assert_eq!(
        exporters,
        [
            ("?", 1, 4096),
            ("system", 1, 8192),
            ("udmabuf", 1, 1_048_576)
        ]
    );
    let text = r.to_string();
    assert!(
        text.starts_with("3 dma-bufs, 1.0 MiB (/proc only)\nbufinfo: permission denied\n"),
        "{text}"
    );
    assert!(text.contains("100(camera):5 200(gpu):9"), "{text}");
    // What a scan could not read: root is suggested only to a scan that did not run as root.
    assert!(
        text.contains("\nNot fully readable (1 process; root or ptrace access shows more):\n"),
        "{text}"
    );
    let as_root = Report {
        scanned_as_root: true,
        ..r
    }
    .to_string();
    assert!(
        as_root.contains("\nNot fully readable, even as root (1 process):\n"),
        "{as_root}"
    );
    assert!(!as_root.contains("root or ptrace"), "{as_root}");
}

#[test]
fn report_with_bufinfo_takes_sizes_and_exporters_from_it() {
    let r = Report::build(Ok(parse_bufinfo(BUFINFO).unwrap()), &scans());
    assert_eq!(r.bufinfo, BufinfoSource::Read);
    assert_eq!(r.buffers.len(), 3);
    let gpu_buf = &r.buffers[2];
    assert_eq!(gpu_buf.exporter.as_deref(), Some("system"));
    assert_eq!(gpu_buf.name.as_deref(), Some("gpu render"));
    assert_eq!(gpu_buf.attached, ["0000:00:02.0", "vgem"]);
    assert_eq!(r.total_bytes, 1_060_864);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["buffers"][0]["inode"], 211);
    assert_eq!(json["exporters"][0]["exporter"], "system");
    assert_eq!(json["bufinfo"]["state"], "read");
}

/// A fake `/proc` (dangling symlinks stand for the descriptors) and a bufinfo file.
#[test]
fn collect_reads_a_proc_tree() {
    let root: PathBuf = std::env::temp_dir().join(format!("dmabuf-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let p = root.join("proc/4242");
    std::fs::create_dir_all(p.join("fd")).unwrap();
    std::fs::create_dir_all(p.join("fdinfo")).unwrap();
    std::fs::write(p.join("comm"), "camera\n").unwrap();
    std::os::unix::fs::symlink("/dmabuf:camera-0", p.join("fd/5")).unwrap();
    std::os::unix::fs::symlink("/dev/null", p.join("fd/0")).unwrap();
    std::fs::write(p.join("fdinfo/5"), FDINFO_NAMED).unwrap();
    std::fs::write(p.join("fdinfo/0"), FDINFO_REGULAR).unwrap();
    std::fs::write(p.join("maps"), MAPS).unwrap();
    std::fs::create_dir_all(root.join("proc/not-a-pid")).unwrap();
    std::fs::write(root.join("bufinfo"), BUFINFO).unwrap();

    let r = collect(&Roots {
        proc: root.join("proc"),
        bufinfo: root.join("bufinfo"),
    });
    assert_eq!(r.bufinfo, BufinfoSource::Read);
    assert_eq!(r.buffers.len(), 3);
    assert_eq!(r.buffers[0].holders[0].pid, 4242);
    assert_eq!(r.buffers[0].holders[0].fds, [5]);
    assert_eq!(r.processes.len(), 1);
    assert_eq!(r.processes[0].comm, "camera");
    assert_eq!(r.processes[0].mapped_buffers, 3);

    let r = collect(&Roots {
        proc: root.join("proc"),
        bufinfo: root.join("missing"),
    });
    // The path tried, what is wrong, how to fix it; root suggested only to others.
    let BufinfoSource::Unavailable(why) = &r.bufinfo else {
        panic!("bufinfo read from a missing file: {:?}", r.bufinfo)
    };
    let missing = root.join("missing");
    assert!(
        why.starts_with(&format!("{}: not found", missing.display())),
        "{why}"
    );
    assert!(why.contains("/sys/kernel/debug"), "{why}");
    assert_eq!(
        why.contains("run as root"),
        !rustix::process::geteuid().is_root(),
        "{why}"
    );
    assert_eq!(r.scanned_as_root, rustix::process::geteuid().is_root());
    std::fs::remove_dir_all(&root).unwrap();
}

/// Garbles a sample: replaces, inserts or deletes bytes at the given places.
fn garble(sample: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = sample.as_bytes().to_vec();
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match op % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #[test]
    fn parsers_never_panic_on_random_text(text in "\\PC*") {
        let _ = parse_bufinfo(&text);
        let _ = parse_fdinfo(&text);
        let _ = parse_maps(&text);
    }

    #[test]
    fn parsers_never_panic_on_random_lines(
        lines in proptest::collection::vec("[0-9a-f:\t -]{0,40}|Dma-buf Objects:|Total [0-9]{1,3} devices attached|\t[a-z ]{0,10}fence:.*", 0..20)
    ) {
        let text = lines.join("\n");
        let _ = parse_bufinfo(&text);
        let _ = parse_fdinfo(&text);
        let _ = parse_maps(&text);
    }

    #[test]
    fn parsers_never_panic_on_garbled_samples(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..16)
    ) {
        for sample in [BUFINFO, FDINFO_NAMED, FDINFO_OLD, MAPS] {
            let text = garble(sample, &edits);
            let _ = parse_bufinfo(&text);
            let _ = parse_fdinfo(&text);
            let _ = parse_maps(&text);
            let scans = vec![ProcessScan {
                pid: 1,
                comm: "x".into(),
                maps: parse_maps(&text).unwrap_or_default(),
                ..ProcessScan::default()
            }];
            let r = Report::build(parse_bufinfo(&text).map_err(|e| e.to_string()), &scans);
            let _ = r.to_string();
        }
    }
}

/// The command on this machine: an unreadable bufinfo is named with its path and the fix,
/// and a root process is never told to run as root.
#[test]
fn the_command_names_the_bufinfo_path_and_suggests_root_only_to_others() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .arg("inspect")
        .output()
        .expect("run dmabuf");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let root = rustix::process::geteuid().is_root();
    if text
        .lines()
        .next()
        .is_some_and(|l| l.ends_with("(/proc only)"))
    {
        let note = text.lines().nth(1).unwrap_or_default();
        assert!(
            note.starts_with("bufinfo: /sys/kernel/debug/dma_buf/bufinfo: "),
            "{text}"
        );
        assert_eq!(note.contains("run as root"), !root, "{text}");
    }
    if root {
        assert!(!text.contains("root or ptrace access"), "{text}");
    }
}
