//! Helpers shared by the test programs: descriptor counting, serial execution, loud skips.
// Each test program uses a different subset.
#![allow(dead_code)]

use std::sync::Mutex;

/// Tests that count `/proc/self/fd` run one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Descriptors open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Runs `body` alone and asserts it closed every descriptor it opened.
pub fn no_leak(body: impl FnOnce()) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    body();
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// Prints `SKIPPED: why` straight to stderr, past libtest's capture, so a skip is never silent.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// A pending vgem fence (a writer) on a vgem buffer of its own, and a sync file of it, as
/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` gives it: the test's stand-in for a sw_sync point. Keep
/// the buffer while the fence matters.
pub fn vgem_sync_file(
    vgem: &dmabuf_linux::Vgem,
) -> (
    dmabuf_linux::VgemBuffer<'_>,
    dmabuf_linux::VgemFence<'_>,
    dmabuf_linux::SyncFileFd,
) {
    let buf = vgem.create_buffer(4096).expect("vgem buffer");
    let fence = buf.attach_fence(true).expect("vgem fence");
    let file = buf
        .export()
        .expect("dma-buf")
        .export_sync_file(dmabuf_linux::Access::Read)
        .expect("export");
    (buf, fence, file)
}

/// The system heap, or a loud skip when `/dev/dma_heap/system` is missing.
pub fn system_heap() -> Option<dmabuf_linux::DmaHeap> {
    dmabuf_linux::DmaHeap::open("system")
        .map_err(|e| skipped(&format!("/dev/dma_heap/system missing ({e})")))
        .ok()
}

/// The udmabuf device, or a loud skip when `/dev/udmabuf` is missing.
pub fn udmabuf() -> Option<dmabuf_linux::Udmabuf> {
    dmabuf_linux::Udmabuf::open()
        .map_err(|e| skipped(&format!("/dev/udmabuf missing ({e})")))
        .ok()
}

/// The vgem device, or a loud skip when there is none.
pub fn vgem() -> Option<dmabuf_linux::Vgem> {
    dmabuf_linux::Vgem::open()
        .map_err(|e| skipped(&format!("no vgem device ({e})")))
        .ok()
}
