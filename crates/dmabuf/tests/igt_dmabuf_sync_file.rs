//! Port of igt-gpu-tools' `tests/dmabuf_sync_file.c` (sync_file support in dma-buf: the
//! export and import ioctls, and poll) to the in-process model.
//!
//! Mapping: a vgem buffer object and its dma-buf fd are one [`DmaBuf`] (a system-heap
//! buffer). `vgem_fence_attach(fd, &bo, flags)` makes a fence on a fresh context
//! (vgem gives every fence its own context, seqno 1) and adds it as a writer with
//! `VGEM_FENCE_WRITE`, else as a reader; `vgem_fence_signal` is [`Signaller::signal`]. A
//! sw_sync timeline is a [`Timeline`]. `dmabuf_export_sync_file(dmabuf, flags)` is
//! [`DmaBuf::export_sync_file`] and `dmabuf_import_sync_file` is [`DmaBuf::import_sync_file`],
//! with the access from [`Access::from_flags`].
//!
//! "Busy" is checked the ways upstream does: `dmabuf_busy` is the buffer's `poll()`
//! (`POLLOUT` when the WRITE flag is set, else `POLLIN`), here [`DmaBuf::is_ready`];
//! `sync_file_busy` polls a sync file, here [`SyncFile::is_signaled`];
//! `dmabuf_sync_file_busy` exports a file and polls it. Every `dmabuf_busy` here also
//! checks that an exported sync file, the zero-timeout [`DmaBuf::wait_ready`] and the
//! [`DmaBuf::ready`] future give the same answer.

use dmabuf::buf::DmaBuf;
use dmabuf::buf::exporters::SystemHeap;
use dmabuf::resv::{Access, Usage};
use dmabuf::{FenceContext, Signaller, SyncFile, TimedOut, Timeline};
use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

/// `DMA_BUF_SYNC_READ`.
const DMA_BUF_SYNC_READ: u32 = Access::SYNC_READ;
/// `DMA_BUF_SYNC_WRITE`.
const DMA_BUF_SYNC_WRITE: u32 = Access::SYNC_WRITE;
/// `DMA_BUF_SYNC_RW`.
const DMA_BUF_SYNC_RW: u32 = Access::SYNC_RW;
/// vgem's `VGEM_FENCE_WRITE` attach flag.
const VGEM_FENCE_WRITE: u32 = 0x1;

fn access(flags: u32) -> Access {
    Access::from_flags(flags).expect("valid DMA_BUF_SYNC flags")
}

/// `vgem_fence_attach()`: a new fence, on its own context, added to the buffer.
fn vgem_fence_attach(bo: &DmaBuf, flags: u32) -> Signaller {
    let (fence_issuer, fence) = FenceContext::new("vgem", "unbound").next_fence();
    let usage = if flags & VGEM_FENCE_WRITE != 0 {
        Usage::Write
    } else {
        Usage::Read
    };
    let mut locked = bo.resv().lock_single();
    locked.reserve_fences(1).expect("reserve one slot");
    locked.add_fence(&fence, usage);
    fence_issuer
}

/// A vgem buffer object exported as a dma-buf.
fn vgem_create() -> DmaBuf {
    SystemHeap::new().alloc(4096).expect("a page")
}

/// `vgem_fence_signal()`.
fn vgem_fence_signal(fence: Signaller) {
    assert!(fence.signal(), "the vgem fence signalled only once");
}

/// `sync_file_busy()`: a zero-timeout poll of the sync file.
fn sync_file_busy(sync_file: &SyncFile) -> bool {
    let busy = !sync_file.is_signaled();
    match sync_file.wait_for_signal_timeout(Duration::ZERO) {
        Ok(()) => assert!(!busy, "poll and a zero-timeout wait disagree"),
        Err(TimedOut) => assert!(busy, "poll and a zero-timeout wait disagree"),
    }
    busy
}

/// `dmabuf_export_sync_file()`.
fn dmabuf_export_sync_file(dmabuf: &DmaBuf, flags: u32) -> SyncFile {
    dmabuf.export_sync_file(access(flags))
}

/// `dmabuf_sync_file_busy()`: export the current fences and poll the file.
fn dmabuf_sync_file_busy(dmabuf: &DmaBuf, flags: u32) -> bool {
    sync_file_busy(&dmabuf_export_sync_file(dmabuf, flags))
}

/// `dmabuf_busy()`: the buffer's poll, `POLLOUT` if the WRITE flag is set, else `POLLIN`.
/// Also checks that the other ways of asking agree with it.
fn dmabuf_busy(dmabuf: &DmaBuf, flags: u32) -> bool {
    let access = access(flags);
    let busy = !dmabuf.is_ready(access);
    assert_eq!(
        dmabuf_sync_file_busy(dmabuf, flags),
        busy,
        "{access}: poll and an exported sync file disagree"
    );
    assert_eq!(
        dmabuf.wait_ready(access, Some(Duration::ZERO)).is_err(),
        busy,
        "{access}: poll and a zero-timeout wait disagree"
    );
    let mut cx = Context::from_waker(Waker::noop());
    let ready = std::pin::pin!(dmabuf.ready(access))
        .poll(&mut cx)
        .is_ready();
    assert_eq!(!ready, busy, "{access}: poll and the ready future disagree");
    busy
}

/// Asserts `dmabuf_busy` and `dmabuf_sync_file_busy` for READ, WRITE and RW, which upstream
/// checks one by one and which must agree.
#[track_caller]
fn assert_busy(dmabuf: &DmaBuf, [read, write, rw]: [bool; 3]) {
    for (flags, busy) in [
        (DMA_BUF_SYNC_READ, read),
        (DMA_BUF_SYNC_WRITE, write),
        (DMA_BUF_SYNC_RW, rw),
    ] {
        assert_eq!(dmabuf_busy(dmabuf, flags), busy, "dmabuf_busy({flags})");
        assert_eq!(
            dmabuf_sync_file_busy(dmabuf, flags),
            busy,
            "dmabuf_sync_file_busy({flags})"
        );
    }
}

/// `dmabuf_import_sync_file()`.
fn dmabuf_import_sync_file(dmabuf: &DmaBuf, flags: u32, sync_file: &SyncFile) {
    dmabuf
        .import_sync_file(sync_file, access(flags))
        .expect("DMA_BUF_IOCTL_IMPORT_SYNC_FILE");
}

/// `dmabuf_import_timeline_fence()`: a sw_sync point imported as a sync file.
fn dmabuf_import_timeline_fence(dmabuf: &DmaBuf, flags: u32, timeline: &Timeline, seqno: u32) {
    let fence = SyncFile::new(timeline.create_fence(seqno).expect("sw_sync point"));
    dmabuf_import_sync_file(dmabuf, flags, &fence);
}

// ports igt dmabuf_sync_file: export-basic
#[test]
fn export_basic() {
    let dmabuf = vgem_create();

    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_WRITE));
    assert!(!dmabuf_sync_file_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(!dmabuf_sync_file_busy(&dmabuf, DMA_BUF_SYNC_WRITE));

    let fence = vgem_fence_attach(&dmabuf, 0);
    assert_busy(&dmabuf, [false, true, true]);

    vgem_fence_signal(fence);
    assert_busy(&dmabuf, [false, false, false]);

    let fence = vgem_fence_attach(&dmabuf, VGEM_FENCE_WRITE);
    assert_busy(&dmabuf, [true, true, true]);

    vgem_fence_signal(fence);
    assert_busy(&dmabuf, [false, false, false]);
}

// ports igt dmabuf_sync_file: export-before-signal
#[test]
fn export_before_signal() {
    let dmabuf = vgem_create();

    assert!(!dmabuf_sync_file_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(!dmabuf_sync_file_busy(&dmabuf, DMA_BUF_SYNC_WRITE));

    let fence = vgem_fence_attach(&dmabuf, 0);

    let read_fd = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_READ);
    let write_fd = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_WRITE);

    assert!(!sync_file_busy(&read_fd));
    assert!(sync_file_busy(&write_fd));

    vgem_fence_signal(fence);

    assert!(!sync_file_busy(&read_fd));
    assert!(!sync_file_busy(&write_fd));

    drop((read_fd, write_fd));

    let fence = vgem_fence_attach(&dmabuf, VGEM_FENCE_WRITE);

    let read_fd = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_READ);
    let write_fd = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_WRITE);

    assert!(sync_file_busy(&read_fd));
    assert!(sync_file_busy(&write_fd));

    vgem_fence_signal(fence);

    assert!(!sync_file_busy(&read_fd));
    assert!(!sync_file_busy(&write_fd));
}

// ports igt dmabuf_sync_file: export-multiwait
#[test]
fn export_multiwait() {
    let dmabuf = vgem_create();

    let fence1 = vgem_fence_attach(&dmabuf, 0);
    let fence2 = vgem_fence_attach(&dmabuf, 0);

    let sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_WRITE);

    let fence3 = vgem_fence_attach(&dmabuf, 0);

    assert!(sync_file_busy(&sync_file));

    vgem_fence_signal(fence1);

    assert!(sync_file_busy(&sync_file));

    vgem_fence_signal(fence2);

    assert!(!sync_file_busy(&sync_file));

    vgem_fence_signal(fence3);
}

// ports igt dmabuf_sync_file: export-wait-after-attach
#[test]
fn export_wait_after_attach() {
    let dmabuf = vgem_create();

    let read_sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_READ);
    let write_sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_WRITE);

    let fence1 = vgem_fence_attach(&dmabuf, VGEM_FENCE_WRITE);

    assert!(!sync_file_busy(&read_sync_file));
    assert!(!sync_file_busy(&write_sync_file));
    drop((read_sync_file, write_sync_file));

    // These wait for fence1.
    let read_sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_READ);
    let write_sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_WRITE);

    assert!(sync_file_busy(&read_sync_file));
    assert!(sync_file_busy(&write_sync_file));

    vgem_fence_signal(fence1);
    let fence2 = vgem_fence_attach(&dmabuf, VGEM_FENCE_WRITE);

    // fence1 has signalled.
    assert!(!sync_file_busy(&read_sync_file));
    assert!(!sync_file_busy(&write_sync_file));

    // fence2 has not.
    assert!(dmabuf_sync_file_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(dmabuf_sync_file_busy(&dmabuf, DMA_BUF_SYNC_WRITE));

    vgem_fence_signal(fence2);
}

// ports igt dmabuf_sync_file: import-basic
#[test]
fn import_basic() {
    let dmabuf = vgem_create();

    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_WRITE));

    let timeline = Timeline::new("import_basic");

    dmabuf_import_timeline_fence(&dmabuf, DMA_BUF_SYNC_READ, &timeline, 1);
    assert_busy(&dmabuf, [false, true, true]);

    timeline.inc(1);
    assert_busy(&dmabuf, [false, false, false]);

    dmabuf_import_timeline_fence(&dmabuf, DMA_BUF_SYNC_WRITE, &timeline, 2);
    assert_busy(&dmabuf, [true, true, true]);

    timeline.inc(1);
    assert_busy(&dmabuf, [false, false, false]);

    dmabuf_import_timeline_fence(&dmabuf, DMA_BUF_SYNC_RW, &timeline, 3);
    assert_busy(&dmabuf, [true, true, true]);

    timeline.inc(1);
    assert_busy(&dmabuf, [false, false, false]);
}

/// `test_import_multiple(fd, write)`: 32 read timelines (and, with `write`, one write
/// timeline) imported into one buffer, then signalled one by one.
fn import_multiple(write: bool) {
    let dmabuf = vgem_create();

    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_WRITE));

    let read_timelines: Vec<Timeline> = (0..32)
        .map(|i| {
            let timeline = Timeline::new(format!("read{i}"));
            dmabuf_import_timeline_fence(&dmabuf, DMA_BUF_SYNC_READ, &timeline, 1);
            timeline
        })
        .collect();

    let write_timeline = write.then(|| {
        let timeline = Timeline::new("write");
        dmabuf_import_timeline_fence(&dmabuf, DMA_BUF_SYNC_WRITE, &timeline, 1);
        timeline
    });

    let read_sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_READ);
    let write_sync_file = dmabuf_export_sync_file(&dmabuf, DMA_BUF_SYNC_WRITE);

    for timeline in read_timelines.iter().rev() {
        assert_eq!(dmabuf_busy(&dmabuf, DMA_BUF_SYNC_READ), write);
        assert_eq!(sync_file_busy(&read_sync_file), write);
        assert!(dmabuf_busy(&dmabuf, DMA_BUF_SYNC_WRITE));
        assert!(sync_file_busy(&write_sync_file));

        timeline.inc(1);
    }

    assert_eq!(dmabuf_busy(&dmabuf, DMA_BUF_SYNC_READ), write);
    assert_eq!(sync_file_busy(&read_sync_file), write);
    assert_eq!(dmabuf_busy(&dmabuf, DMA_BUF_SYNC_WRITE), write);
    assert_eq!(sync_file_busy(&write_sync_file), write);

    if let Some(timeline) = &write_timeline {
        timeline.inc(1);
    }

    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_READ));
    assert!(!sync_file_busy(&read_sync_file));
    assert!(!dmabuf_busy(&dmabuf, DMA_BUF_SYNC_WRITE));
    assert!(!sync_file_busy(&write_sync_file));
}

// ports igt dmabuf_sync_file: import-multiple-read-only
#[test]
fn import_multiple_read_only() {
    import_multiple(false);
}

// ports igt dmabuf_sync_file: import-multiple-read-write
#[test]
fn import_multiple_read_write() {
    import_multiple(true);
}
