//! Seed 000: a USB gadget that unmaps a dma-buf from its transfer completion.
//!
//! # The problem
//! A USB gadget function (the kernel's functionfs) lets user space hand it dma-bufs and queue
//! transfers straight into them. For each transfer the driver maps the attachment, publishes
//! a fence in the buffer's reservation object (so other users wait for the transfer), and
//! queues a request with the USB controller. When the controller finishes, it calls the
//! driver's completion handler, which signals the fence, unmaps the attachment and drops the
//! transfer's reference to the import.
//!
//! Unmapping needs the buffer's reservation lock, and so does the last drop (detaching takes
//! it). But the completion handler is where fences get signalled: if it stalls, this fence
//! and every later transfer's fence stall with it, so the whole handler is a fence signalling
//! section. Waiting for fences while holding a reservation lock is allowed everywhere (a
//! static importer's map does it), so a reservation lock inside a signalling section can
//! deadlock: someone holds the buffer's lock and waits for the transfer's fence, while the
//! completion waits for that lock before it lets the controller move on. The validator knows
//! the "reservation lock, then fence wait" half from the start (it is primed with it), so the
//! first completion that takes the lock is reported. (Unmapping from a fence callback is the
//! same mistake: callbacks run inside the signaller's section.)
//!
//! # The fix
//! The one the seed settles on, as GPU drivers do: keep the mapping for as long as the
//! attachment exists. Map once when user space attaches the buffer, unmap when it detaches —
//! both ioctl paths, far from any signalling section. The completion only signals. Its
//! reference to the import may still be the last one (user space may detach while a transfer
//! is in flight), so the completion never drops it in place: it hands it to a cleanup worker,
//! which drops it — unmapping and detaching — outside the signalling path. What the unmap
//! after each transfer also did, making the device's writes visible to the CPU, is left to the
//! CPU access bracket user space opens before reading (`DmaBuf::begin_cpu_access`).
//!
//! # What runs
//! Both drivers import a buffer from the system heap and receive one transfer from the host
//! into it; user space then waits for the fence and reads the bytes. The broken driver maps
//! per transfer and unmaps in the completion: the validator reports it on the controller's
//! thread (nothing blocks, since nobody else holds the lock at that moment). The fixed driver
//! maps at import; user space detaches while the transfer is in flight, so the completion
//! holds the last reference and the cleanup worker tears the import down — silently.
//!
//! Run: `cargo run -p dmabuf --features lockdep --example seed_000_unmap_in_completion`.
//! The same code is checked by `tests/seed_000_unmap_in_completion.rs`.

use dmabuf::buf::exporters::SystemHeap;
use dmabuf::buf::{Attachment, Device, DeviceCaps, Direction, DmaBuf, Mapping};
use dmabuf::fence::{Fence, FenceContext, Signaller};
use dmabuf::lockdep::{Report, capture, signalling};
use dmabuf::resv::Usage;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};

/// What the host sends in the story's transfer.
pub const PAYLOAD: &[u8] = b"bulk OUT packet from the USB host";

/// When the driver maps and unmaps an imported buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// Map for each transfer, unmap in its completion (broken).
    PerTransfer,
    /// Map at import, unmap at detach; the completion only signals (fixed).
    ForTheAttachmentsLife,
}

/// A dma-buf user space attached to the function (kernel: `struct ffs_dmabuf_priv`).
pub struct Import {
    att: Attachment,
    /// The mapping made at import ([`Design::ForTheAttachmentsLife`]), given back when the
    /// import is dropped.
    mapping: Mutex<Option<Mapping>>,
}

impl Drop for Import {
    fn drop(&mut self) {
        // Detach-time teardown: unmap under the reservation lock, then the attachment's own
        // drop detaches (which takes the lock again). Never run this in a signalling section.
        let mapping = self.mapping.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mapping) = mapping.take() {
            let buf = self.att.buf().clone();
            let guard = buf.resv().lock_single();
            mapping.unmap(&guard).expect("the buffer's own lock");
        }
    }
}

/// A transfer queued with the controller: what its completion gets (kernel: the fence and
/// request of `ffs_dmabuf_transfer()`).
pub struct Transfer {
    import: Arc<Import>,
    done: Signaller,
    /// The mapping made for this transfer ([`Design::PerTransfer`]).
    mapping: Option<Mapping>,
}

impl Transfer {
    /// The controller writes what the host sent into the buffer, through the mapping.
    fn receive(&self, data: &[u8]) -> dmabuf::Result<()> {
        if let Some(m) = &self.mapping {
            return m.dma_write(0, data);
        }
        let mapping = self.import.mapping.lock().expect("poisoned");
        mapping
            .as_ref()
            .expect("mapped at import")
            .dma_write(0, data)
    }
}

/// The gadget function (kernel: functionfs with its DMABUF ioctls).
pub struct FunctionFs {
    design: Design,
    gadget: Device,
    ring: FenceContext,
    /// Attached buffers by id (kernel: `ffs->dmabufs`).
    imports: Mutex<Vec<(u64, Arc<Import>)>>,
    /// Where the fixed completion sends the references it must not drop itself.
    cleanup: mpsc::Sender<Arc<Import>>,
}

impl FunctionFs {
    /// A function following `design`; `cleanup` receives the references completions hand
    /// off.
    pub fn new(design: Design, cleanup: mpsc::Sender<Arc<Import>>) -> Self {
        FunctionFs {
            design,
            gadget: Device::new("usb-gadget", DeviceCaps::NONE),
            ring: FenceContext::new("functionfs", "ep1out"),
            imports: Mutex::new(Vec::new()),
            cleanup,
        }
    }

    /// `FUNCTIONFS_DMABUF_ATTACH`: attaches the gadget to `buf` and, in the fixed design, maps
    /// it for good. Holds no lock but the buffer's own, briefly.
    ///
    /// # Errors
    /// Attaching or mapping can fail.
    pub fn attach(&self, buf: &DmaBuf) -> dmabuf::Result<()> {
        let att = buf.attach(&self.gadget)?;
        let mapping = match self.design {
            Design::PerTransfer => None,
            Design::ForTheAttachmentsLife => {
                let guard = buf.resv().lock_single();
                Some(att.map(&guard, Direction::Bidirectional)?)
            }
        };
        let import = Arc::new(Import {
            att,
            mapping: Mutex::new(mapping),
        });
        self.imports
            .lock()
            .expect("poisoned")
            .push((buf.id(), import));
        Ok(())
    }

    /// `FUNCTIONFS_DMABUF_DETACH`: forgets `buf`. A transfer in flight keeps the import alive.
    pub fn detach(&self, buf: &DmaBuf) {
        self.imports
            .lock()
            .expect("poisoned")
            .retain(|(id, _)| *id != buf.id());
    }

    /// `FUNCTIONFS_DMABUF_TRANSFER`: a transfer from the host into `buf`. Publishes its fence
    /// as the buffer's writer and returns the request for the controller, and the fence.
    ///
    /// # Errors
    /// Mapping can fail.
    ///
    /// # Panics
    /// If `buf` is not attached (the kernel answers `ENOENT`; the story never does this).
    pub fn transfer(&self, buf: &DmaBuf) -> dmabuf::Result<(Transfer, Fence)> {
        let import = self
            .imports
            .lock()
            .expect("poisoned")
            .iter()
            .find(|(id, _)| *id == buf.id())
            .map(|(_, i)| i.clone())
            .expect("the buffer is attached");
        let (done, fence) = self.ring.next_fence();
        let mut guard = buf.resv().lock_single();
        let mapping = match self.design {
            Design::PerTransfer => Some(import.att.map(&guard, Direction::FromDevice)?),
            Design::ForTheAttachmentsLife => None,
        };
        guard.reserve_fences(1)?;
        guard.add_fence(&fence, Usage::Write);
        drop(guard);
        Ok((
            Transfer {
                import,
                done,
                mapping,
            },
            fence,
        ))
    }

    /// The completion handler the controller calls (kernel: `ffs_dmabuf_signal_done()`).
    /// The whole handler is a signalling section: while it runs, this transfer's fence and
    /// every later one wait.
    pub fn complete(&self, transfer: Transfer) {
        let _section = signalling::begin_signalling();
        let Transfer {
            import,
            done,
            mapping,
        } = transfer;
        done.signal();
        match self.design {
            Design::PerTransfer => {
                if let Some(mapping) = mapping {
                    // Unmapping needs the reservation lock: inside the section.
                    let buf = import.att.buf().clone();
                    let guard = buf.resv().lock_single();
                    mapping.unmap(&guard).expect("the buffer's own lock");
                }
                // Possibly the last reference: detaching would lock again, here.
                drop(import);
            }
            Design::ForTheAttachmentsLife => {
                // Never the final drop here: the cleanup worker does it.
                if let Err(mpsc::SendError(import)) = self.cleanup.send(import) {
                    std::mem::forget(import); // no worker left: leak rather than detach here
                }
            }
        }
    }
}

/// The USB device controller: finishes the queued requests on its own thread and calls each
/// one's completion handler there. Returns the validator's reports from that thread.
pub fn run_controller(ffs: Arc<FunctionFs>, queued: Vec<Transfer>) -> JoinHandle<Vec<Report>> {
    thread::spawn(move || {
        let ((), reports) = capture(|| {
            for transfer in queued {
                transfer.receive(PAYLOAD).expect("DMA through the mapping");
                ffs.complete(transfer);
            }
        });
        reports
    })
}

/// The cleanup worker: drops the references completions hand it, outside any signalling
/// section. Ends when every sender is gone; returns its thread's reports and how many
/// imports it tore down (dropped the last reference of).
pub fn run_cleanup(handed_off: mpsc::Receiver<Arc<Import>>) -> JoinHandle<(Vec<Report>, usize)> {
    thread::spawn(move || {
        let (torn_down, reports) = capture(|| {
            let mut torn_down = 0;
            for import in handed_off {
                if Arc::strong_count(&import) == 1 {
                    torn_down += 1;
                }
                drop(import); // may unmap and detach
            }
            torn_down
        });
        (reports, torn_down)
    })
}

/// What a run of the story ended with.
pub struct Outcome {
    /// Every report, from every thread.
    pub reports: Vec<Report>,
    /// What user space read from the buffer after the transfer's fence.
    pub received: Vec<u8>,
    /// Imports the cleanup worker tore down.
    pub torn_down_by_worker: usize,
    /// Attachments left on the buffer once everything is shut down.
    pub attachments_left: usize,
}

/// User space waits for the transfer and reads the buffer.
fn read_back(buf: &DmaBuf, fence: &Fence) -> Vec<u8> {
    fence.wait_for_signal();
    let cpu = buf.begin_cpu_access(Direction::FromDevice).expect("begin");
    let mut bytes = vec![0u8; PAYLOAD.len()];
    buf.mmap()
        .expect("system heap maps")
        .read_at(0, &mut bytes)
        .expect("read");
    cpu.end().expect("end");
    bytes
}

/// One transfer through a function of `design`; in the fixed design user space detaches
/// while the transfer is in flight.
pub fn run(design: Design) -> Outcome {
    let buf = SystemHeap::new().alloc(4096).expect("alloc");
    let (cleanup_tx, cleanup_rx) = mpsc::channel();
    let cleanup = run_cleanup(cleanup_rx);
    let ffs = Arc::new(FunctionFs::new(design, cleanup_tx));
    let ((transfer, fence), mut reports) = capture(|| {
        ffs.attach(&buf).expect("attach");
        ffs.transfer(&buf).expect("transfer")
    });
    if design == Design::ForTheAttachmentsLife {
        ffs.detach(&buf); // the transfer now holds the last reference
    }
    reports.extend(
        run_controller(ffs.clone(), vec![transfer])
            .join()
            .expect("controller"),
    );
    let (received, found) = capture(|| {
        let received = read_back(&buf, &fence);
        ffs.detach(&buf); // the broken design's import goes here (already gone in the fixed)
        received
    });
    reports.extend(found);
    drop(ffs); // the last sender: the cleanup worker finishes
    let (found, torn_down_by_worker) = cleanup.join().expect("cleanup worker");
    reports.extend(found);
    Outcome {
        reports,
        received,
        torn_down_by_worker,
        attachments_left: buf.attachment_count(),
    }
}

fn main() {
    println!("== seed 000, broken: map per transfer, unmap in the completion handler");
    let out = run(Design::PerTransfer);
    println!(
        "user space read {:?}; the validator reports {} from the controller's completion:\n",
        String::from_utf8_lossy(&out.received),
        out.reports.len()
    );
    for r in &out.reports {
        println!("{r}");
    }

    println!("== seed 000, fixed: map at attach, unmap at detach, final drop on a worker");
    let out = run(Design::ForTheAttachmentsLife);
    println!(
        "user space read {:?}; it detached mid-transfer and the cleanup worker tore down {} \
         import(s) (attachments left: {}); reports: {}",
        String::from_utf8_lossy(&out.received),
        out.torn_down_by_worker,
        out.attachments_left,
        out.reports.len()
    );
    for r in &out.reports {
        println!("{r}");
    }
}
