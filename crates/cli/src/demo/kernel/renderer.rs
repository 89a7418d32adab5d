//! The renderer: the compositor of the camera's frames, and the client of both readers.
//!
//! Upstream it waits for each frame's acquire point through a library fence bridged from the
//! kernel point ([`Syncobj::point_to_fence`]), reads the capture inside a CPU-access bracket
//! and releases the camera's buffer with a CPU signal of release point `f + 1`.
//!
//! Downstream it renders into buffers of its own. For each attempt at a frame it opens a
//! write bracket on the next buffer (its START waits for the fences already there), then
//! publishes the job: its pending kernel fence (a vgem fence, taken out of a small vgem
//! buffer as a sync file) imported into the buffer's reservation object as a write fence
//! (`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`; implicit sync: the encoder finds it by exporting a sync
//! file from the buffer, and any reader's own bracket waits for it), and a library fence as
//! the display's acquire point `q` (explicit sync, [`Syncobj::signal_point_when`]). It tells
//! both readers, writes the frame inside the bracket, behind its own fence, closes the
//! bracket and retires the job: the vgem fence signals, then the library fence. A reader
//! that did not wait would find the buffer's previous frame or half of this one. A buffer is
//! used again only after the display has signalled its release point for the buffer's last
//! use and both readers have answered it.
//!
//! The fault: the first attempt at the scripted frame hangs: published, never written nor
//! retired. The readers' waits run out and they answer the attempt failed; the renderer then
//! resets it (signals the vgem fence, and the library fence with `ETIME`, which reaches the
//! display's timeline as a plain signal: a point carries no error) and renders the frame
//! again as the next attempt, in the next buffer and at the next point. An attempt a reader
//! gave up on for another reason (its wait ran out under load) is rendered again the same
//! way once its answer arrives, up to four attempts in all (then the frame is lost and the
//! run fails); the renderer keeps each capture until both readers answered every attempt at
//! it.
//!
//! [`Syncobj::point_to_fence`]: dmabuf_linux::Syncobj::point_to_fence
//! [`Syncobj::signal_point_when`]: dmabuf_linux::Syncobj::signal_point_when

use super::camera::flow_id;
use super::devices::{alloc_all, map_all};
use super::frame::{FRAME_BYTES, check_capture, render};
use super::stage::{STALL, Stage, StageError, Waited};
use super::wire::{Channel, Msg, WireError};
use dmabuf::{Errno, FenceContext};
use dmabuf_linux::{
    Access, DmaBufFd, DrmDevice, MappedDmaBuf, PointEvent, Reactor, Syncobj, SyncobjFd, Vgem,
    VgemBuffer,
};
use rustix::fd::{AsFd, OwnedFd};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

/// Runs the renderer; `neighbours` are the sockets to the camera, the encoder and the display.
///
/// # Errors
/// A device call failed, or a neighbour went away or stalled.
pub fn run(stage: &mut Stage, neighbours: Vec<OwnedFd>) -> Result<(), StageError> {
    let [camera, encoder, display]: [OwnedFd; 3] = neighbours
        .try_into()
        .map_err(|_| StageError::Stalled("the parent sent the wrong number of sockets".into()))?;
    let camera = Channel::new(camera, "camera");
    let encoder = Channel::new(encoder, "encoder");
    let display = Channel::new(display, "display");
    let setup = stage.setup.clone();
    let dev = DrmDevice::find_timeline_syncobj()?;

    let (msg, fds) = stage.recv(&camera, "the camera's buffers")?;
    let (inputs, timelines) = objects(&camera, msg, fds, 2)?;
    let [acquire_in, release_in] = timelines.map(|t| dev.import_syncobj(&t));
    let (acquire_in, release_in) = (acquire_in?, release_in?);
    let in_maps = map_all(&inputs)?;

    let vgem = Vgem::open()?;
    let outputs = alloc_all(setup.allocator, setup.buffers, FRAME_BYTES as u64)?;
    let out_maps = map_all(&outputs)?;
    // Where the jobs' kernel fences come from: vgem fences on a small vgem buffer (one per
    // output buffer, as vgem allows one pending writer per buffer).
    let jobs = outputs
        .iter()
        .map(|_| vgem.create_buffer(4096))
        .collect::<Result<Vec<_>, _>>()?;
    let job_bufs = jobs
        .iter()
        .map(|v| v.export())
        .collect::<Result<Vec<_>, _>>()?;
    let (acquire, release) = (dev.create_syncobj()?, dev.create_syncobj()?);
    let objects_msg = Msg::Objects {
        buffers: outputs.len(),
    };
    {
        let mut fds: Vec<_> = outputs.iter().map(|b| b.as_fd()).collect();
        encoder.send(&objects_msg, &fds)?;
        let (acquire_file, release_file) = (acquire.export()?, release.export()?);
        fds.extend([acquire_file.as_fd(), release_file.as_fd()]);
        display.send(&objects_msg, &fds)?;
    }

    let reactor = Reactor::new()?;
    let mut gpu = Gpu {
        ring: FenceContext::new("renderer", "gfx0"),
        outputs: &outputs,
        out_maps: &out_maps,
        jobs: &jobs,
        job_bufs: &job_bufs,
        acquire: &acquire,
        release: &release,
        reactor: &reactor,
        readers: [&encoder, &display],
        answered: [0; 2],
        last_use: vec![None; outputs.len()],
        attempts: HashMap::new(),
        redo: VecDeque::new(),
        point: 0,
        next: 0,
    };
    let mut camera_done = false;
    loop {
        let job = if let Some(job) = gpu.redo.pop_front() {
            job
        } else if !camera_done {
            match stage.recv(&camera, "a frame")?.0 {
                Msg::Frame {
                    frame,
                    buffer,
                    point,
                    ..
                } if buffer < inputs.len() => {
                    let input = acquire_frame(
                        stage,
                        &camera,
                        &reactor,
                        (&acquire_in, &release_in),
                        (&in_maps[buffer], frame, point),
                    )?;
                    stage.report.frames += 1;
                    Job {
                        frame,
                        attempt: 0,
                        input: Rc::new(input),
                    }
                }
                Msg::End => {
                    camera_done = true;
                    continue;
                }
                other => return Err(garbled(&camera, &other)),
            }
        } else if !gpu.attempts.is_empty() {
            // Every attempt answered; a reader that gave up on one asks for it again.
            let last = gpu.point;
            gpu.answers(stage, last)?;
            continue;
        } else {
            break;
        };
        gpu.render(stage, job, setup.fault)?;
        stage.sample_fds();
    }
    for reader in gpu.readers {
        reader.send(&Msg::End, &[])?;
    }
    Ok(())
}

/// The most attempts at one frame: a frame whose readers gave up on this many is lost
/// (counted, and the run fails), rather than tried for ever.
const MAX_ATTEMPTS: u32 = 4;

/// A frame to render: its capture, and which attempt this is.
struct Job {
    frame: u64,
    attempt: u32,
    input: Rc<Vec<u8>>,
}

/// An attempt the readers have not both answered yet.
struct Attempt {
    frame: u64,
    attempt: u32,
    input: Rc<Vec<u8>>,
    /// Hung on purpose: the renderer resets and redoes it itself.
    hung: bool,
    /// Answered by the encoder, the display.
    answers: [bool; 2],
    /// Asked for again already.
    redone: bool,
}

/// The renderer's side of the renderer → readers edges.
struct Gpu<'a> {
    ring: FenceContext,
    outputs: &'a [DmaBufFd],
    out_maps: &'a [MappedDmaBuf<'a>],
    /// Each output buffer's source of kernel fences, and its dma-buf.
    jobs: &'a [VgemBuffer<'a>],
    job_bufs: &'a [DmaBufFd],
    /// The display's timelines.
    acquire: &'a Syncobj,
    release: &'a Syncobj,
    reactor: &'a Reactor,
    readers: [&'a Channel; 2],
    /// The last point each reader answered.
    answered: [u64; 2],
    /// Each output buffer's last point.
    last_use: Vec<Option<u64>>,
    /// Attempts not answered by both readers, by point.
    attempts: HashMap<u64, Attempt>,
    /// Frames to render again.
    redo: VecDeque<Job>,
    /// The last point used.
    point: u64,
    /// The next output buffer, round robin.
    next: usize,
}

impl Gpu<'_> {
    /// Renders `job` into the next output buffer as the next point, and tells both readers;
    /// the scripted `fault` frame's first attempt hangs until both readers gave up on it,
    /// and is then reset and queued again.
    fn render(
        &mut self,
        stage: &mut Stage,
        job: Job,
        fault: Option<u64>,
    ) -> Result<(), StageError> {
        let (t0, started) = (Instant::now(), stage.trace.now());
        let (f, attempt) = (job.frame, job.attempt);
        let j = self.next % self.outputs.len();
        self.next += 1;
        self.point += 1;
        let point = self.point;
        if let Some(last) = self.last_use[j] {
            // The display's explicit release, then both readers' answers for that use.
            let released = self
                .release
                .point_to_fence(last, PointEvent::Signaled, self.reactor)?;
            let readers = self.readers;
            if stage.wait(&released, &[readers[1]], STALL)? != Waited::Signalled {
                return Err(StageError::Stalled(format!(
                    "the display did not release point {last} in {} s",
                    STALL.as_secs()
                )));
            }
            self.answers(stage, last)?;
        }
        let hangs = fault == Some(f) && attempt == 0;
        // The bracket first: its START waits for the fences already in the buffer (none are
        // pending: readers add none, and this buffer's last write fence has signalled).
        let bracket = self.outputs[j].begin_cpu_access(Access::Write)?;
        // Then the job's pending write fence, in the buffer: readers wait for it (implicit
        // sync), and the bytes are written behind it.
        let written = self.jobs[j].attach_fence(true)?;
        let file = self.job_bufs[j].export_sync_file(Access::Read)?;
        self.outputs[j].import_sync_file(&file, Access::Write)?;
        let attached = Instant::now();
        let fence_gone = |e: dmabuf_linux::Error| {
            StageError::Stalled(format!(
                "frame {f}, attempt {attempt}: signalling its write fence {} ms after \
                 attaching it: {e}",
                attached.elapsed().as_millis()
            ))
        };
        // And the job's library fence as the display's acquire point (explicit sync).
        let (rendered, fence) = self.ring.next_fence();
        stage.report.fences.0 += 1;
        self.acquire.signal_point_when(point, &fence)?;
        let frame_msg = Msg::Frame {
            frame: f,
            attempt,
            buffer: j,
            point,
        };
        for reader in self.readers {
            reader.send(&frame_msg, &[])?;
        }
        self.last_use[j] = Some(point);
        self.attempts.insert(
            point,
            Attempt {
                frame: f,
                attempt,
                input: job.input.clone(),
                hung: hangs,
                answers: [false; 2],
                redone: false,
            },
        );
        if hangs {
            // Never written nor retired: the readers give up, then the job is reset.
            let hung = stage.trace.now();
            self.answers(stage, point)?;
            bracket.end()?;
            written.signal().map_err(fence_gone)?;
            rendered.signal_with_error(Errno::ETIME);
            stage.report.fences.1 += 1;
            stage.report.rerendered += 1;
            stage.trace.complete(
                stage.track,
                "render hung, reset",
                hung,
                json!({ "frame": f, "attempt": attempt, "point": point }),
            );
            self.redo.push_front(Job {
                frame: f,
                attempt: attempt + 1,
                input: job.input,
            });
            return Ok(());
        }
        let mut output = vec![0u8; FRAME_BYTES];
        render(&job.input, f, attempt, &mut output);
        self.out_maps[j].copy_from_slice_in(&bracket, 0, &output)?;
        bracket.end()?;
        // Retired: each reader is told through its own kind of fence.
        for edge in [1, 2] {
            stage
                .trace
                .flow(stage.track, "render", flow_id(point, edge), true);
        }
        stage.signalling(1, point);
        written.signal().map_err(fence_gone)?;
        stage.signalling(2, point);
        rendered.signal();
        stage.report.fences.1 += 1;
        stage
            .report
            .latencies_us
            .push(t0.elapsed().as_micros() as u64);
        stage.trace.complete(
            stage.track,
            "render",
            started,
            json!({ "frame": f, "attempt": attempt, "point": point, "buffer": j }),
        );
        Ok(())
    }

    /// Reads both readers' answers up to the one for `point` (they answer every point, in
    /// order). An attempt a reader gave up on that was not hung on purpose (its wait ran out
    /// under load) is queued to be rendered again.
    fn answers(&mut self, stage: &mut Stage, point: u64) -> Result<(), StageError> {
        for (r, reader) in self.readers.into_iter().enumerate() {
            while self.answered[r] < point {
                let (p, ok) = match stage.recv(reader, "an answer")?.0 {
                    Msg::Answer { point: p, ok } if p == self.answered[r] + 1 => (p, ok),
                    other => return Err(garbled(reader, &other)),
                };
                self.answered[r] = p;
                let Some(a) = self.attempts.get_mut(&p) else {
                    return Err(garbled(reader, &Msg::Answer { point: p, ok }));
                };
                a.answers[r] = true;
                if !ok && !a.hung && !a.redone && a.attempt + 1 < MAX_ATTEMPTS {
                    a.redone = true;
                    stage.report.rerendered += 1;
                    self.redo.push_back(Job {
                        frame: a.frame,
                        attempt: a.attempt + 1,
                        input: a.input.clone(),
                    });
                }
                if a.answers == [true; 2] {
                    self.attempts.remove(&p);
                }
            }
        }
        Ok(())
    }
}

/// Waits for frame `frame`'s acquire point `point` on the camera's timeline, copies the
/// capture out of its buffer, checks it, and releases the buffer to the camera (release
/// point `frame + 1`).
fn acquire_frame(
    stage: &mut Stage,
    camera: &Channel,
    reactor: &Reactor,
    (acquire_in, release_in): (&Syncobj, &Syncobj),
    (map, frame, point): (&MappedDmaBuf<'_>, u64, u64),
) -> Result<Vec<u8>, StageError> {
    let f = frame;
    let acquired = acquire_in.point_to_fence(point, PointEvent::Signaled, reactor)?;
    if stage.wait(&acquired, &[camera], STALL)? != Waited::Signalled {
        return Err(StageError::Stalled(format!(
            "frame {f}: acquire point {point} not signalled in {} s",
            STALL.as_secs()
        )));
    }
    stage.woke(0, f);
    stage
        .trace
        .flow(stage.track, "acquire", flow_id(f, 0), false);
    let mut input = vec![0u8; FRAME_BYTES];
    // The copy is a CPU-access bracket of its own (`DMA_BUF_IOCTL_SYNC`, read).
    map.copy_to_slice(0, &mut input)?;
    match check_capture(&input, f) {
        Ok(_) => stage.report.bytes_checked += FRAME_BYTES as u64,
        Err(e) => stage.report.corrupt.push(format!("renderer: {e}")),
    }
    let release = f.checked_add(1).ok_or_else(|| {
        StageError::Stalled(format!("the camera sent frame {f}, past the last point"))
    })?;
    release_in.timeline_signal(release)?;
    Ok(input)
}

/// The buffers and syncobjs of an [`Msg::Objects`] with `timelines` syncobj files after the
/// buffers.
pub fn objects<const N: usize>(
    from: &Channel,
    msg: Msg,
    fds: Vec<OwnedFd>,
    timelines: usize,
) -> Result<(Vec<DmaBufFd>, [SyncobjFd; N]), StageError> {
    let Msg::Objects { buffers } = msg else {
        return Err(garbled(from, &msg));
    };
    if buffers.checked_add(timelines) != Some(fds.len()) || timelines != N || buffers == 0 {
        return Err(WireError::Garbled {
            peer: from.peer(),
            what: format!("{} descriptors for {buffers} buffers", fds.len()),
        }
        .into());
    }
    let mut fds = fds.into_iter();
    let bufs = fds
        .by_ref()
        .take(buffers)
        .map(|fd| DmaBufFd::from_fd(fd).map_err(|(e, _)| e))
        .collect::<Result<Vec<_>, _>>()?;
    let files = fds
        .map(|fd| SyncobjFd::from_fd(fd).map_err(|(e, _)| e))
        .collect::<Result<Vec<_>, _>>()?;
    let files: [SyncobjFd; N] = files
        .try_into()
        .map_err(|_| StageError::Stalled("syncobj count".into()))?;
    Ok((bufs, files))
}

/// A message that does not belong where it came.
pub fn garbled(from: &Channel, msg: &Msg) -> StageError {
    WireError::Garbled {
        peer: from.peer(),
        what: format!("{msg:?} out of turn"),
    }
    .into()
}
