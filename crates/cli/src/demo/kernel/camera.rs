//! The camera: fills its buffers with frames and hands them to the renderer through timeline
//! points, as a Wayland client hands buffers to a compositor with `linux-drm-syncobj-v1`.
//!
//! It allocates the buffers and two timelines on the render node, and sends the renderer the
//! buffers and both timelines once. For frame `f` in buffer `f % buffers` it waits until the
//! renderer has released the buffer's previous frame (release point `f - buffers + 1`),
//! tells the renderer the frame and its acquire point `f + 1` *before* capturing (the
//! renderer waits for the point to be submitted), then captures: a library fence whose
//! signal CPU-signals the acquire point ([`Syncobj::signal_point_when`]), signalled once the
//! frame is written inside a CPU-access bracket.
//!
//! [`Syncobj::signal_point_when`]: dmabuf_linux::Syncobj::signal_point_when

use super::devices::{alloc_all, map_all};
use super::frame::{FRAME_BYTES, capture};
use super::stage::{STALL, Stage, StageError, Waited};
use super::wire::{Channel, Msg};
use dmabuf::FenceContext;
use dmabuf_linux::{DrmDevice, PointEvent, Reactor};
use rustix::fd::{AsFd, OwnedFd};

/// Runs the camera; `neighbours` is the socket to the renderer.
///
/// # Errors
/// A device call failed, or the renderer went away or stalled.
pub fn run(stage: &mut Stage, neighbours: Vec<OwnedFd>) -> Result<(), StageError> {
    let renderer = Channel::new(one(neighbours)?, "renderer");
    let setup = stage.setup.clone();
    let dev = DrmDevice::find_timeline_syncobj()?;
    let (acquire, release) = (dev.create_syncobj()?, dev.create_syncobj()?);
    let buffers = alloc_all(setup.allocator, setup.buffers, FRAME_BYTES as u64)?;
    let maps = map_all(&buffers)?;
    {
        let (acquire_file, release_file) = (acquire.export()?, release.export()?);
        let mut fds: Vec<_> = buffers.iter().map(|b| b.as_fd()).collect();
        fds.extend([acquire_file.as_fd(), release_file.as_fd()]);
        let objects = Msg::Objects {
            buffers: buffers.len(),
        };
        renderer.send(&objects, &fds)?;
    }

    let reactor = Reactor::new()?;
    let ring = FenceContext::new("camera", "capture0");
    let n = setup.buffers as u64;
    for f in 0..setup.frames {
        let b = (f % n) as usize;
        let started = stage.trace.now();
        if f >= n {
            // The renderer releases frame g at point g + 1.
            let released = release.point_to_fence(f - n + 1, PointEvent::Signaled, &reactor)?;
            if stage.wait(&released, &[&renderer], STALL)? != Waited::Signalled {
                return Err(StageError::Stalled(format!(
                    "frame {f}: the renderer released no buffer in {} s",
                    STALL.as_secs()
                )));
            }
        }
        let (captured, fence) = ring.next_fence();
        stage.report.fences.0 += 1;
        acquire.signal_point_when(f + 1, &fence)?;
        renderer.send(
            &Msg::Frame {
                frame: f,
                attempt: 0,
                buffer: b,
                point: f + 1,
            },
            &[],
        )?;
        let t0 = std::time::Instant::now();
        let bytes = capture(setup.seed, f, dmabuf::MonotonicTime::now().as_nanos());
        // The copy is a CPU-access bracket of its own (`DMA_BUF_IOCTL_SYNC`, write).
        maps[b].copy_from_slice(0, &bytes)?;
        stage
            .trace
            .flow(stage.track, "acquire", flow_id(f, 0), true);
        stage.signalling(0, f);
        captured.signal();
        stage.report.fences.1 += 1;
        stage.report.frames += 1;
        stage.sample_fds();
        stage
            .report
            .latencies_us
            .push(t0.elapsed().as_micros() as u64);
        stage.trace.complete(
            stage.track,
            "capture",
            started,
            serde_json::json!({ "frame": f, "buffer": b, "acquire point": f + 1 }),
        );
    }
    renderer.send(&Msg::End, &[])?;
    // The renderer is done with every buffer once it releases the last frame.
    if setup.frames > 0 {
        let last = release.point_to_fence(setup.frames, PointEvent::Signaled, &reactor)?;
        if stage.wait(&last, &[&renderer], STALL)? != Waited::Signalled {
            return Err(StageError::Stalled(format!(
                "the renderer did not release the last frame in {} s",
                STALL.as_secs()
            )));
        }
    }
    Ok(())
}

/// The single socket a stage with one neighbour gets.
pub fn one(mut neighbours: Vec<OwnedFd>) -> Result<OwnedFd, StageError> {
    match (neighbours.pop(), neighbours.is_empty()) {
        (Some(fd), true) => Ok(fd),
        _ => Err(StageError::Stalled(
            "the parent sent the wrong number of sockets".into(),
        )),
    }
}

/// The id of a flow arrow in the trace: edge `edge` (0 camera → renderer, 1 renderer →
/// encoder, 2 renderer → display) of frame or point `n`.
pub fn flow_id(n: u64, edge: u64) -> u64 {
    n.wrapping_mul(4).wrapping_add(edge)
}
