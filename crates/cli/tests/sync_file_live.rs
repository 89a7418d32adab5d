//! `dmabuf sync-file` on real kernel sync_files: pending vgem fences exported from vgem
//! buffers, named to the binary as an inherited descriptor and as `/proc/PID/fd/N`. Needs
//! vgem (the workspace's real-kernel harness, `vm/run`, runs it as root in Linux 6.12 and puts
//! the `dmabuf` binary at its build path, with `--include-ignored`); the test is ignored unless
//! asked for, and then a missing vgem device or binary fails it.
#![cfg(target_os = "linux")]

mod common;

use common::{dmabuf, json};
use dmabuf_linux::{Access, SyncFileFd, Vgem};
use rustix::fd::AsRawFd;

/// A sync_file of one pending vgem fence, and the fence.
fn pending(vgem: &Vgem) -> (SyncFileFd, dmabuf_linux::VgemFence<'_>) {
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fence = buf.attach_fence(true).expect("fence");
    let file = buf
        .export()
        .expect("dma-buf")
        .export_sync_file(Access::Read)
        .expect("export");
    (file, fence)
}

#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn info_merge_and_wait_on_pending_kernel_fences() {
    let vgem = Vgem::open().expect("a vgem device");
    assert!(
        std::path::Path::new(env!("CARGO_BIN_EXE_dmabuf")).exists(),
        "the dmabuf binary is not at its build path, {}",
        env!("CARGO_BIN_EXE_dmabuf")
    );
    let (a, fence_a) = pending(&vgem);
    let (b, fence_b) = pending(&vgem);
    // `a` as an inherited descriptor (same number in the child), `b` through /proc.
    rustix::io::fcntl_setfd(&a, rustix::io::FdFlags::empty()).expect("inheritable");
    let a_arg = a.as_raw_fd().to_string();
    let b_arg = format!("/proc/{}/fd/{}", std::process::id(), b.as_raw_fd());

    let info = json(&dmabuf(&["sync-file", "info", "--json", &a_arg]));
    assert_eq!(info["status"], "pending");
    assert_eq!(info["fences"].as_array().expect("fences").len(), 1);
    assert_eq!(info["fences"][0]["driver"], "vgem");

    let merged = json(&dmabuf(&[
        "sync-file",
        "merge",
        "--json",
        "--name",
        "both",
        &a_arg,
        &b_arg,
    ]));
    assert_eq!(merged["name"], "both");
    assert_eq!(merged["fences"].as_array().expect("fences").len(), 2);
    assert_eq!(merged["status"], "pending");

    let waited = dmabuf(&["sync-file", "wait", "--timeout", "20", &b_arg]);
    assert_eq!(waited.status.code(), Some(3), "timed out while pending");

    fence_a.signal().expect("signal");
    fence_b.signal().expect("signal");
    let waited = dmabuf(&["sync-file", "wait", "--timeout", "5000", &b_arg]);
    assert_eq!(waited.status.code(), Some(0), "signalled");
    let info = json(&dmabuf(&["sync-file", "info", "--json", &a_arg]));
    assert_eq!(info["status"], "signaled");
    assert!(info["fences"][0]["timestamp_ns"].as_u64().is_some());
}
