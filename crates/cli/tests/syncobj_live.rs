//! `dmabuf syncobj` on real kernel syncobjs: timelines and binary syncobjs created here on the
//! first render node with timeline syncobjs, exported as syncobj files and named to the binary
//! as an inherited descriptor and as `/proc/PID/fd/N`; pending points are vgem fences. Needs
//! such a render node and vgem (the workspace's real-kernel harness, `vm/run`, runs it as root
//! in Linux 6.12 with a virtio GPU and puts the `dmabuf` binary at its build path, with
//! `--include-ignored`); the tests are ignored unless asked for, and then a missing device or
//! binary fails them.
#![cfg(target_os = "linux")]

mod common;

use common::{BIN, assert_one_line_error, dmabuf, json};
use dmabuf_linux::{Access, DrmDevice, SyncobjFd, Vgem};
use rustix::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

/// The render node, checked to be there with the binary.
fn device() -> DrmDevice {
    assert!(
        std::path::Path::new(BIN).exists(),
        "the dmabuf binary is not at its build path, {BIN}"
    );
    DrmDevice::find_timeline_syncobj().expect("a render node with timeline syncobjs")
}

/// `file` as an inherited descriptor number (the same in the child) and as
/// `/proc/PID/fd/N`.
fn names(file: &SyncobjFd) -> (String, String) {
    rustix::io::fcntl_setfd(file, rustix::io::FdFlags::empty()).expect("inheritable");
    let n = file.as_raw_fd();
    (
        n.to_string(),
        format!("/proc/{}/fd/{n}", std::process::id()),
    )
}

/// The exit code of `dmabuf syncobj args…`.
fn code(args: &[&str]) -> Option<i32> {
    let mut all = vec!["syncobj"];
    all.extend_from_slice(args);
    dmabuf(&all).status.code()
}

/// `dmabuf syncobj info --json file`.
fn info(file: &str) -> serde_json::Value {
    json(&dmabuf(&["syncobj", "info", "--json", file]))
}

/// `dmabuf syncobj wait file point --for-submit`, running (for a minute at most).
fn waiter(file: &str, point: &str) -> Child {
    Command::new(BIN)
        .args(["syncobj", "wait", "--for-submit", "--timeout", "60000"])
        .args([file, point])
        .stdin(Stdio::null())
        .spawn()
        .expect("run dmabuf")
}

#[test]
#[ignore = "needs a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn info_wait_and_signal_on_a_timeline() {
    let dev = device();
    let vgem = Vgem::open().expect("a vgem device");
    let timeline = dev.create_syncobj().expect("create");
    let file = timeline.export().expect("export");
    let (own, by_proc) = names(&file);

    let fresh = info(&own);
    assert_eq!(fresh["last_signaled"], 0);
    assert_eq!(fresh["last_submitted"], 0);
    assert_eq!(fresh["status"], "none");
    assert_eq!(fresh["driver"], dev.driver().name.as_str());
    // This process holds the render node: the syncobj is imported there.
    assert_eq!(info(&by_proc)["device"], dev.path().to_str().unwrap());

    // Point 1 signalled, point 2 a pending vgem fence.
    timeline.timeline_signal(1).expect("signal 1");
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fence = buf.attach_fence(true).expect("vgem fence");
    let pending = buf
        .export()
        .unwrap()
        .export_sync_file(Access::Read)
        .unwrap();
    timeline.import_point(2, &pending).expect("point 2");
    let both = info(&by_proc);
    assert_eq!(both["last_signaled"], 1);
    assert_eq!(both["last_submitted"], 2);
    assert_eq!(both["status"], "pending");
    let text = dmabuf(&["syncobj", "info", &own]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with(&format!(
            "{own}: last signalled point 1, last submitted point 2, fence pending\n  imported \
             into {} ({})\n",
            dev.path().display(),
            dev.driver().name
        )),
        "{text}"
    );

    assert_eq!(code(&["wait", &own, "1"]), Some(0));
    assert_eq!(code(&["wait", "--timeout", "20", &own, "2"]), Some(3));
    assert_eq!(
        code(&["wait", "--available", "--timeout", "20", &own, "2"]),
        Some(0)
    );
    assert_one_line_error(
        &dmabuf(&["syncobj", "wait", "--timeout", "20", &by_proc, "3"]),
        1,
        &format!(
            "{by_proc}: point 3 has not been submitted (the last submitted is 2); --for-submit \
             waits for it"
        ),
    );
    assert_eq!(
        code(&["wait", "--for-submit", "--timeout", "20", &own, "3"]),
        Some(3)
    );
    assert_one_line_error(
        &dmabuf(&["syncobj", "signal", &own, "2"]),
        1,
        &format!(
            "{own}: point 2 is not above the last submitted point 2: a CPU signal adds a new \
             point, it cannot signal a submitted one"
        ),
    );

    // A CPU signal of point 3 comes after pending point 2: a waiter for 3 returns once both
    // have signalled, and never before (it exits 0 only for a signalled point).
    let for_3 = waiter(&by_proc, "3");
    assert_eq!(code(&["signal", &by_proc, "3"]), Some(0));
    assert_eq!(code(&["wait", "--timeout", "20", &own, "3"]), Some(3));
    fence.signal().expect("vgem signal");
    assert_eq!(for_3.wait_with_output().unwrap().status.code(), Some(0));
    assert_eq!(code(&["wait", "--timeout", "5000", &own, "2"]), Some(0));

    // A signal alone wakes a waiter for a point nobody has submitted.
    let for_4 = waiter(&own, "4");
    assert_eq!(code(&["signal", &own, "4"]), Some(0));
    assert_eq!(for_4.wait_with_output().unwrap().status.code(), Some(0));
    let done = info(&own);
    assert_eq!(done["last_signaled"], 4);
    assert_eq!(done["last_submitted"], 4);
    assert_eq!(done["status"], "signaled");
    assert_eq!(timeline.query().unwrap(), 4);
}

#[test]
#[ignore = "needs a render node with timeline syncobjs (runs in the qemu guest)"]
fn a_binary_syncobj_is_point_0() {
    let dev = device();
    let binary = dev.create_syncobj().expect("create");
    let file = binary.export().expect("export");
    let (own, by_proc) = names(&file);
    let text = dmabuf(&["syncobj", "info", &own]);
    assert!(String::from_utf8_lossy(&text.stdout).starts_with(&format!(
        "{own}: last signalled point 0, last submitted point 0, no fence\n"
    )));
    assert_eq!(code(&["wait", "--timeout", "20", &own, "0"]), Some(1));
    assert_eq!(
        code(&["wait", "--for-submit", "--timeout", "20", &by_proc, "0"]),
        Some(3)
    );
    let for_0 = waiter(&by_proc, "0");
    assert_eq!(code(&["signal", &own, "0"]), Some(0));
    assert_eq!(for_0.wait_with_output().unwrap().status.code(), Some(0));
    let signalled = info(&by_proc);
    assert_eq!(signalled["status"], "signaled");
    assert_eq!(signalled["last_submitted"], 0);
    binary
        .wait(
            0,
            dmabuf_linux::WaitFlags::ALL,
            Some(std::time::Duration::ZERO),
        )
        .expect("signalled in the kernel");
}

#[test]
#[ignore = "needs a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn a_device_that_cannot_import_is_exit_5() {
    let dev = device();
    let timeline = dev.create_syncobj().expect("create");
    let file = timeline.export().expect("export");
    let (own, _) = names(&file);
    assert_one_line_error(
        &dmabuf(&["syncobj", "--device", "/dev/null", "info", &own]),
        5,
        "dmabuf: --device /dev/null: not a DRM device",
    );
    // vgem's render node: a DRM device without syncobjs.
    let vgem_node = std::fs::read_dir(dmabuf_linux::DRM_DIR)
        .expect("/dev/dri")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_str().is_some_and(|p| p.contains("renderD")))
        .find(|p| DrmDevice::open(p).is_ok_and(|d| d.driver().name == "vgem"))
        .expect("vgem's render node");
    let vgem_node = vgem_node.to_str().unwrap();
    assert_one_line_error(
        &dmabuf(&["syncobj", "wait", "--device", vgem_node, &own, "1"]),
        5,
        &format!("dmabuf: --device {vgem_node}: its driver (vgem) has no timeline syncobjs"),
    );
    // The render node given works as the one found.
    let given = json(&dmabuf(&[
        "syncobj",
        "info",
        "--json",
        "--device",
        dev.path().to_str().unwrap(),
        &own,
    ]));
    assert_eq!(given["device"], dev.path().to_str().unwrap());
}
