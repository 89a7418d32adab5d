//! The readers of the renders: the encoder (implicit sync) and the display (explicit sync).
//!
//! For each attempt the renderer announces, a reader waits at most `--timeout-ms` for the
//! render, on a library fence bridged from a kernel object through the [`Reactor`]:
//! * the encoder exports a sync file from the buffer (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`,
//!   read access: the buffer's write fences, the renderer's pending vgem fence among them);
//! * the display waits for the attempt's acquire point on the renderer's timeline, and
//!   afterwards signals the attempt's release point through a library fence of its own
//!   ([`Syncobj::signal_point_when`](dmabuf_linux::Syncobj::signal_point_when)), also when
//!   it gave up on the attempt: the buffer is free either way.
//!
//! Then it reads the buffer inside a CPU-access bracket, checks the frame end to end, tells
//! the parent it arrived and answers the renderer. A wait that runs out (or a fence that
//! signals with an error) answers the attempt failed, and the renderer renders the frame
//! again; a reader that already had the frame intact then reads it once more.

use super::camera::{flow_id, one};
use super::devices::map_all;
use super::frame::{FRAME_BYTES, check_render};
use super::renderer::{garbled, objects};
use super::stage::{Role, Stage, StageError, Waited};
use super::wire::{Channel, Msg};
use dmabuf::{FenceContext, MonotonicTime};
use dmabuf_linux::{Access, DrmDevice, PointEvent, Reactor, Syncobj};
use rustix::fd::OwnedFd;
use serde_json::json;
use std::time::{Duration, Instant};

/// Runs the encoder or the display; `neighbours` is the socket to the renderer.
///
/// # Errors
/// A device call failed, or the renderer went away or stalled.
pub fn run(stage: &mut Stage, neighbours: Vec<OwnedFd>) -> Result<(), StageError> {
    let renderer = Channel::new(one(neighbours)?, "renderer");
    let setup = stage.setup.clone();
    let display = setup.role == Role::Display;
    let (msg, fds) = stage.recv(&renderer, "the renderer's buffers")?;
    // The display's timelines: acquire, release.
    let (buffers, timelines): (_, Option<[Syncobj; 2]>) = if display {
        let dev = DrmDevice::find_timeline_syncobj()?;
        let (buffers, [a, r]) = objects::<2>(&renderer, msg, fds, 2)?;
        (
            buffers,
            Some([dev.import_syncobj(&a)?, dev.import_syncobj(&r)?]),
        )
    } else {
        let (buffers, []) = objects::<0>(&renderer, msg, fds, 0)?;
        (buffers, None)
    };
    let maps = map_all(&buffers)?;

    let reactor = Reactor::new()?;
    let ring = FenceContext::new("display", "scanout0");
    let timeout = Duration::from_millis(setup.timeout_ms);
    let edge: u8 = if display { 2 } else { 1 };
    loop {
        let (f, attempt, j, q) = match stage.recv(&renderer, "a frame")?.0 {
            Msg::Frame {
                frame,
                attempt,
                buffer,
                point,
            } if buffer < buffers.len() => (frame, attempt, buffer, point),
            Msg::End => break,
            other => return Err(garbled(&renderer, &other)),
        };
        let (t0, started) = (Instant::now(), stage.trace.now());
        let ready = match &timelines {
            Some([acquire, _]) => acquire.point_to_fence(q, PointEvent::Signaled, &reactor)?,
            None => buffers[j]
                .export_sync_file(Access::Read)?
                .to_fence(&reactor)
                .map_err(|(e, _)| e)?,
        };
        let ok = match stage.wait(&ready, &[&renderer], timeout)? {
            Waited::TimedOut => {
                stage.trace.instant(
                    stage.track,
                    "timed out",
                    json!({ "frame": f, "attempt": attempt, "point": q }),
                );
                false
            }
            // The render's fence signalled with an error: nothing to read.
            Waited::Failed(errno) => {
                stage.trace.instant(
                    stage.track,
                    "render failed",
                    json!({ "frame": f, "attempt": attempt, "point": q, "error": errno.to_string() }),
                );
                false
            }
            Waited::Signalled => {
                stage.woke(edge, q);
                stage
                    .trace
                    .flow(stage.track, "render", flow_id(q, u64::from(edge)), false);
                let mut bytes = vec![0u8; FRAME_BYTES];
                // A read bracket of its own, which waits for the buffer's write fences too.
                maps[j].copy_to_slice(0, &mut bytes)?;
                match check_render(&bytes, f, attempt) {
                    Ok(checked) => {
                        stage.report.bytes_checked += FRAME_BYTES as u64;
                        let captured = MonotonicTime::from_nanos(checked.captured_ns);
                        let latency = MonotonicTime::now()
                            .checked_duration_since(captured)
                            .unwrap_or_default();
                        stage.delivered(f, latency)?;
                        true
                    }
                    Err(e) => {
                        stage
                            .report
                            .corrupt
                            .push(format!("{}: {e}", setup.role.name()));
                        false
                    }
                }
            }
        };
        if let Some([_, release]) = &timelines {
            let (done, fence) = ring.next_fence();
            stage.report.fences.0 += 1;
            release.signal_point_when(q, &fence)?;
            done.signal();
            stage.report.fences.1 += 1;
        }
        renderer.send(&Msg::Answer { point: q, ok }, &[])?;
        stage.report.frames += u64::from(ok);
        stage.sample_fds();
        stage
            .report
            .latencies_us
            .push(t0.elapsed().as_micros() as u64);
        let name = if display { "display" } else { "encode" };
        stage.trace.complete(
            stage.track,
            name,
            started,
            json!({ "frame": f, "attempt": attempt, "buffer": j, "point": q, "ok": ok }),
        );
    }
    Ok(())
}
