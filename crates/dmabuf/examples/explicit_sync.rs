//! Explicit sync through timeline sync objects: a client and a compositor hand buffers back and
//! forth as Wayland's `linux-drm-syncobj-v1` protocol has them do.
//!
//! The client renders into one of two buffers on its GPU and commits the buffer with two
//! timeline points: an *acquire* point, which the render job's fence signals, and a *release*
//! point, which the compositor must signal once it no longer reads the buffer. The compositor
//! is told when the acquire point has signalled (a real one registers an eventfd,
//! `DRM_IOCTL_SYNCOBJ_EVENTFD`; here [`Syncobj::notify`]), samples the buffer on its own GPU
//! and adds the sampling job's fence as the release point. Before the client renders into a
//! buffer again it waits for that buffer's last release point, with `WAIT_FOR_SUBMIT`: the
//! compositor may not have added the point yet. Nothing else orders the two sides; no lock
//! is shared, no fence is handed over, only timelines and point numbers.
//!
//! As the protocol recommends, each buffer has its own release timeline: the compositor may
//! release buffers in another order than they were committed, and signalling a point signals
//! every point before it. The client commits odd frames before its driver has submitted the
//! render (the acquire point has no fence yet: it is not *materialized*) and even frames
//! after; the compositor waits the same way for both.
//!
//! Each side checks the other: the compositor's sampling job asserts it sees the frame the
//! commit named, unchanged while it reads, and the client's render job asserts no sampling
//! job is reading the buffer it writes. The story is correct by construction, not by timing:
//! whichever order the threads run in, every check holds and the counts are the same.
//!
//! Across processes the same calls exist on real render nodes, in `dmabuf-linux`: the
//! timelines are `Syncobj`s of a `DrmDevice`, exported as `SyncobjFd`s and passed with the
//! buffer's `DmaBufFd` over a Unix socket (`send_fds`, `recv_fds`); a library fence signals a
//! kernel point through `Syncobj::signal_point_when`, and a kernel point becomes a library
//! fence through `Syncobj::point_to_fence`. `dmabuf syncobj info /proc/PID/fd/N` shows how far
//! another process's timeline has got.
//!
//! Run: `cargo run -p dmabuf --example explicit_sync`.

use dmabuf::fence::{Fence, FenceContext, Signaller};
use dmabuf::syncobj::{NotifyWhen, Point, Syncobj, Wait, WaitFlags};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const FRAMES: u64 = 12;
const BUFFERS: usize = 2;

/// A shared buffer: the frame its pixels show, and whether a sampling job is reading it.
#[derive(Default)]
struct Buffer {
    frame: AtomicU64,
    sampling: AtomicBool,
}

/// A surface commit: the buffer, the acquire point to wait for, the release point to signal.
#[derive(Debug, Clone, Copy)]
struct Commit {
    frame: u64,
    buffer: usize,
    acquire: Point,
    release: Point,
}

/// What the compositor's event loop hears.
enum Event {
    /// A client committed.
    Commit(Commit),
    /// An acquire point the compositor asked about has signalled.
    AcquireSignaled,
}

/// A GPU: runs jobs in submission order on its own thread; each job's fence signals when the
/// job is done.
struct Gpu {
    context: FenceContext,
    queue: mpsc::Sender<(Box<dyn FnOnce() + Send>, Signaller)>,
    thread: thread::JoinHandle<()>,
}

impl Gpu {
    fn new(name: &'static str) -> Gpu {
        let (queue, jobs) = mpsc::channel::<(Box<dyn FnOnce() + Send>, Signaller)>();
        let thread = thread::spawn(move || {
            for (job, done) in jobs {
                job();
                done.signal();
            }
        });
        Gpu {
            context: FenceContext::new(name, "ring0"),
            queue,
            thread,
        }
    }

    fn submit(&self, job: impl FnOnce() + Send + 'static) -> Fence {
        let (done, fence) = self.context.next_fence();
        self.queue
            .send((Box::new(job), done))
            .expect("the GPU runs");
        fence
    }

    fn shut_down(self) {
        drop(self.queue);
        self.thread
            .join()
            .expect("the GPU's jobs passed their checks");
    }
}

fn main() {
    let buffers: Arc<[Buffer; BUFFERS]> = Arc::default();
    let acquire = Syncobj::new();
    let release: [Syncobj; BUFFERS] = Default::default();
    let (events, inbox) = mpsc::channel();

    let compositor = {
        let (buffers, acquire, release, events) = (
            buffers.clone(),
            acquire.clone(),
            release.clone(),
            events.clone(),
        );
        thread::spawn(move || compositor(&buffers, &acquire, &release, &events, &inbox))
    };

    let gpu = Gpu::new("client-gpu");
    let mut uses = [0u64; BUFFERS];
    for frame in 1..=FRAMES {
        let b = (frame as usize - 1) % BUFFERS;
        if uses[b] > 0 {
            // The compositor may still be reading the buffer, or not have latched it yet.
            Wait::new([(&release[b], Point(uses[b]))])
                .flags(WaitFlags::FOR_SUBMIT)
                .all(None)
                .expect("a wait without a time limit ends when the point signals");
        }
        uses[b] += 1;
        let commit = Commit {
            frame,
            buffer: b,
            acquire: Point(frame),
            release: Point(uses[b]),
        };
        let render = {
            let buffers = buffers.clone();
            move || {
                let buffer = &buffers[b];
                assert!(
                    !buffer.sampling.load(Ordering::SeqCst),
                    "frame {frame}: the client rendered into a buffer the compositor reads"
                );
                thread::yield_now();
                buffer.frame.store(frame, Ordering::SeqCst);
            }
        };
        if frame % 2 == 1 {
            events.send(Event::Commit(commit)).expect("compositor");
            acquire.add_point(gpu.submit(render), commit.acquire);
        } else {
            acquire.add_point(gpu.submit(render), commit.acquire);
            events.send(Event::Commit(commit)).expect("compositor");
        }
    }
    // The last frame in each buffer is released too before the buffers go.
    let last: Vec<_> = (0..BUFFERS)
        .map(|b| (&release[b], Point(uses[b])))
        .collect();
    Wait::new(last)
        .flags(WaitFlags::FOR_SUBMIT)
        .all(None)
        .expect("released");

    let shown = compositor.join().expect("the compositor's checks held");
    gpu.shut_down();
    assert_eq!(shown, FRAMES);
    assert_eq!(acquire.last_signaled_point(), Point(FRAMES));
    for (b, timeline) in release.iter().enumerate() {
        assert_eq!(timeline.last_signaled_point(), Point(uses[b]));
    }
    println!(
        "{FRAMES} frames in {BUFFERS} buffers: each sampled after its acquire point, each \
         buffer rendered into again only after its release point; acquire timeline at point \
         {}, release timelines at points {:?}",
        acquire.last_signaled_point(),
        release
            .iter()
            .map(|r| r.last_signaled_point().get())
            .collect::<Vec<_>>()
    );
}

/// The compositor: applies commits in order, each once its acquire point has signalled;
/// samples the buffer on its GPU and makes the sampling job's fence the release point.
/// Returns the number of frames shown.
fn compositor(
    buffers: &Arc<[Buffer; BUFFERS]>,
    acquire: &Syncobj,
    release: &[Syncobj; BUFFERS],
    events: &mpsc::Sender<Event>,
    inbox: &mpsc::Receiver<Event>,
) -> u64 {
    let gpu = Gpu::new("compositor-gpu");
    let mut pending = VecDeque::new();
    let mut shown = 0;
    while shown < FRAMES {
        match inbox.recv().expect("the client runs") {
            Event::Commit(commit) => {
                // Told once the point has signalled, also if it has no fence yet. The
                // callback runs in the signalling thread: it only sends an event.
                let events = events.clone();
                acquire.notify(commit.acquire, NotifyWhen::Signaled, move |_| {
                    // The loop may have ended after the last frame.
                    let _ = events.send(Event::AcquireSignaled);
                });
                pending.push_back(commit);
            }
            Event::AcquireSignaled => {}
        }
        // Commits apply in order: the oldest first, once its acquire point has signalled.
        while let Some(&commit) = pending.front() {
            // A look, not a wait: WAIT_FOR_SUBMIT so a point without a fence yet is only
            // not done (ETIME), not an error (EINVAL).
            let signalled = Wait::new([(acquire, commit.acquire)])
                .flags(WaitFlags::FOR_SUBMIT)
                .all(Some(Duration::ZERO))
                .is_ok();
            if !signalled {
                break;
            }
            pending.pop_front();
            let buffers = buffers.clone();
            let sample = gpu.submit(move || {
                let buffer = &buffers[commit.buffer];
                buffer.sampling.store(true, Ordering::SeqCst);
                let seen = buffer.frame.load(Ordering::SeqCst);
                assert_eq!(seen, commit.frame, "sampled before the acquire point");
                thread::yield_now();
                assert_eq!(
                    buffer.frame.load(Ordering::SeqCst),
                    seen,
                    "written while sampled"
                );
                buffer.sampling.store(false, Ordering::SeqCst);
            });
            release[commit.buffer].add_point(sample, commit.release);
            shown += 1;
            println!(
                "compositor: frame {} from buffer {}, release point {}",
                commit.frame, commit.buffer, commit.release
            );
        }
    }
    gpu.shut_down();
    shown
}
