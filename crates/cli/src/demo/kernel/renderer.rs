//! The renderer: the compositor of the camera's frames, and the client of both readers.
//!
//! Upstream it waits for each frame's acquire point through a library fence bridged from the
//! kernel point ([`Syncobj::point_to_fence`]), reads the capture inside a CPU-access bracket
//! and releases the camera's buffer with a CPU signal of release point `f + 1`.
//!
//! Downstream it renders into buffers of its own, standing in for a GPU whose job has
//! written the frame by the time the job is published: it writes the frame (a CPU-access
//! bracket, which waits for every fence in the buffer, so the renderer cannot write behind a
//! pending fence of its own), then publishes the job: its pending kernel fence (a vgem fence,
//! taken out of a small vgem buffer as a sync file) imported into the buffer's reservation
//! object as a write fence (`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`; implicit sync: the encoder
//! finds it by exporting a sync file from the buffer) and a library fence as the display's
//! acquire point
//! `q` (explicit sync, [`Syncobj::signal_point_when`]). It tells both readers, then retires
//! the job: the vgem fence signals, then the library fence. A buffer is used again only after
//! the display has signalled its release point for the buffer's last use and both readers
//! have answered it.
//!
//! The fault: the first render of the scripted frame hangs: it is published but never
//! written nor retired. The readers' waits run out (a reader that read anyway would find the
//! buffer's previous frame and fail the check) and they answer the attempt failed; the
//! renderer then resets it (signals the vgem fence, and the library fence with `ETIME`,
//! which reaches the display's timeline as a plain signal: a point carries no error) and
//! renders the frame again as the next attempt, in the next buffer and at the next point.
//!
//! [`Syncobj::point_to_fence`]: dmabuf_linux::Syncobj::point_to_fence
//! [`Syncobj::signal_point_when`]: dmabuf_linux::Syncobj::signal_point_when

use super::camera::flow_id;
use super::frame::{FRAME_BYTES, check_capture, render};
use super::stage::{STALL, Stage, StageError, Waited};
use super::wire::{Channel, Msg, WireError};
use dmabuf::{Errno, FenceContext};
use dmabuf_linux::{Access, DmaBufFd, DrmDevice, PointEvent, Reactor, SyncobjFd, Vgem};
use rustix::fd::{AsFd, OwnedFd};
use serde_json::json;
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
    let in_maps = inputs
        .iter()
        .map(|b| b.mmap())
        .collect::<Result<Vec<_>, _>>()?;

    let vgem = Vgem::open()?;
    let outputs = (0..setup.buffers)
        .map(|_| setup.allocator.alloc(FRAME_BYTES as u64))
        .collect::<Result<Vec<_>, _>>()?;
    let out_maps = outputs
        .iter()
        .map(|b| b.mmap())
        .collect::<Result<Vec<_>, _>>()?;
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
    let ring = FenceContext::new("renderer", "gfx0");
    let readers = [&encoder, &display];
    let mut answered = [0u64; 2];
    let mut last_use: Vec<Option<u64>> = vec![None; outputs.len()];
    let (mut point, mut next) = (0u64, 0usize);
    loop {
        let (f, i, p) = match stage.recv(&camera, "a frame")?.0 {
            Msg::Frame {
                frame,
                buffer,
                point,
                ..
            } if buffer < inputs.len() => (frame, buffer, point),
            Msg::End => break,
            other => return Err(garbled(&camera, &other)),
        };
        let (t0, started) = (Instant::now(), stage.trace.now());
        let acquired = acquire_in.point_to_fence(p, PointEvent::Signaled, &reactor)?;
        match stage.wait(&acquired, &[&camera], STALL)? {
            Waited::Signalled => stage.woke(0, f),
            Waited::TimedOut => {
                return Err(StageError::Stalled(format!(
                    "frame {f}: acquire point {p} not signalled in {} s",
                    STALL.as_secs()
                )));
            }
        }
        stage
            .trace
            .flow(stage.track, "acquire", flow_id(f, 0), false);
        let mut input = vec![0u8; FRAME_BYTES];
        // The copy is a CPU-access bracket of its own (`DMA_BUF_IOCTL_SYNC`, read).
        in_maps[i].copy_to_slice(0, &mut input)?;
        match check_capture(&input, f) {
            Ok(_) => stage.report.bytes_checked += FRAME_BYTES as u64,
            Err(e) => stage.report.corrupt.push(format!("renderer: {e}")),
        }

        let mut attempt = 0;
        loop {
            let j = next % outputs.len();
            next += 1;
            point += 1;
            if let Some(last) = last_use[j] {
                let released = release.point_to_fence(last, PointEvent::Signaled, &reactor)?;
                if stage.wait(&released, &[&display], STALL)? == Waited::TimedOut {
                    return Err(StageError::Stalled(format!(
                        "the display did not release point {last} in {} s",
                        STALL.as_secs()
                    )));
                }
                answers(stage, readers, &mut answered, last)?;
            }
            let hangs = setup.fault == Some(f) && attempt == 0;
            if !hangs {
                // The frame first: the write is a CPU-access bracket, which waits for every
                // fence in the buffer, so it cannot wait behind a pending fence of its own.
                let mut output = vec![0u8; FRAME_BYTES];
                render(&input, f, attempt, &mut output);
                out_maps[j].copy_from_slice(0, &output)?;
            }
            // The job is published: its pending write fence in the buffer (implicit sync) and
            // its library fence as the display's acquire point (explicit sync).
            let written = jobs[j].attach_fence(true)?;
            outputs[j]
                .import_sync_file(job_bufs[j].export_sync_file(Access::Read)?, Access::Write)?;
            let attached = Instant::now();
            let fence_gone = |e: dmabuf_linux::Error| {
                StageError::Stalled(format!(
                    "frame {f}, attempt {attempt}: signalling its write fence {} ms after \
                     attaching it: {e}",
                    attached.elapsed().as_millis()
                ))
            };
            let (rendered, fence) = ring.next_fence();
            stage.report.fences.0 += 1;
            acquire.signal_point_when(point, &fence)?;
            let frame_msg = Msg::Frame {
                frame: f,
                attempt,
                buffer: j,
                point,
            };
            encoder.send(&frame_msg, &[])?;
            display.send(&frame_msg, &[])?;
            last_use[j] = Some(point);
            if hangs {
                // Never retired: the readers give up, then the job is reset.
                let hung = stage.trace.now();
                answers(stage, readers, &mut answered, point)?;
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
                attempt += 1;
                continue;
            }
            // Retired: both readers are told through their own kind of fence.
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
            break;
        }
        release_in.timeline_signal(f + 1)?;
        stage.report.frames += 1;
        stage
            .report
            .latencies_us
            .push(t0.elapsed().as_micros() as u64);
        stage.trace.complete(
            stage.track,
            "render",
            started,
            json!({ "frame": f, "attempts": attempt + 1, "point": point }),
        );
    }
    for reader in readers {
        reader.send(&Msg::End, &[])?;
    }
    answers(stage, readers, &mut answered, point)?;
    Ok(())
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
    if fds.len() != buffers + timelines || timelines != N || buffers == 0 {
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

/// Reads both readers' answers up to the one for `point` (they answer every point, in
/// order).
fn answers(
    stage: &Stage,
    readers: [&Channel; 2],
    answered: &mut [u64; 2],
    point: u64,
) -> Result<(), StageError> {
    for (r, reader) in readers.into_iter().enumerate() {
        while answered[r] < point {
            match stage.recv(reader, "an answer")?.0 {
                Msg::Answer { point: p, .. } if p == answered[r] + 1 => answered[r] = p,
                other => return Err(garbled(reader, &other)),
            }
        }
    }
    Ok(())
}

/// A message that does not belong where it came.
pub fn garbled(from: &Channel, msg: &Msg) -> StageError {
    WireError::Garbled {
        peer: from.peer(),
        what: format!("{msg:?} out of turn"),
    }
    .into()
}
