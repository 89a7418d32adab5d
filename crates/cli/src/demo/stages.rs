//! The devices' worker threads: each takes jobs in order, waits for the job's fences, does its
//! DMA through a mapping made at submission and signals. None of them takes a reservation
//! lock: only the submitting thread does (as a kernel driver's submit ioctl), so the camera's
//! evictions never find a buffer locked by someone else.

use super::fault::Watchdog;
use crate::trace::{Trace, Track};
use dmabuf::buf::Mapping;
use dmabuf::fence::Fence;
use dmabuf::lockdep::signalling;
use dmabuf::{Signaller, SyncFile, WaitError};
use serde_json::json;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

/// Bytes of a frame.
pub const FRAME_SIZE: usize = 64 * 1024;

/// Trace process ids of the devices.
pub mod pid {
    /// The camera.
    pub const CAMERA: u32 = 1;
    /// The GPU (one thread per worker).
    pub const GPU: u32 = 2;
    /// The encoder.
    pub const ENCODER: u32 = 3;
    /// The USB gadget.
    pub const USB: u32 = 4;
    /// The submitting thread.
    pub const PIPELINE: u32 = 5;
}

/// A camera frame's bytes: the frame number, then a pattern of it.
pub fn camera_pattern(frame: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..FRAME_SIZE)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(frame) as u8)
        .collect();
    v[..8].copy_from_slice(&frame.to_le_bytes());
    v
}

/// The render of a camera frame: every byte inverted, the frame number kept in front.
pub fn render(input: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = input.iter().map(|b| !b).collect();
    out[..8].copy_from_slice(&input[..8]);
    out
}

/// Checks that `bytes` are `frame`'s render.
fn check_render(bytes: &[u8], frame: u64) -> Result<(), String> {
    if render(&camera_pattern(frame)) == bytes {
        Ok(())
    } else {
        let found = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
        Err(format!(
            "frame {frame}: found frame {found}'s bytes or a torn render"
        ))
    }
}

/// A camera exposure: write the frame into its buffer.
pub struct CameraJob {
    /// The frame.
    pub frame: u64,
    /// What must finish first (earlier readers of the buffer).
    pub deps: Vec<Fence>,
    /// The camera's mapping of its buffer.
    pub mapping: Arc<Mapping>,
    /// The job's fence.
    pub done: Signaller,
    /// Simulated exposure time.
    pub work: Duration,
}

/// A render: read a camera buffer, write a render target.
pub struct GpuJob {
    /// The frame.
    pub frame: u64,
    /// 0, or the re-render's number.
    pub attempt: u32,
    /// The camera's write and the target's earlier readers.
    pub deps: Vec<Fence>,
    /// The GPU's mapping of the camera buffer (dynamic).
    pub input: Arc<Mapping>,
    /// The GPU's mapping of the render target.
    pub output: Arc<Mapping>,
    /// The job's fence.
    pub done: Signaller,
    /// Simulated shading time.
    pub work: Duration,
    /// The scripted fault: this job hangs.
    pub hang: bool,
}

/// A consumer's job (encoder or USB transfer): read a render target.
pub struct ReadJob {
    /// The frame.
    pub frame: u64,
    /// Which attempt of the frame this reads.
    pub attempt: u32,
    /// Explicit sync (encoder): the render target's writers as a sync file.
    pub sync_file: Option<SyncFile>,
    /// Implicit sync (USB): the render target's writers from its reservation object.
    pub deps: Vec<Fence>,
    /// The consumer's mapping of the target (made at attach, kept for the attachment's life).
    pub mapping: Arc<Mapping>,
    /// The job's fence (a read fence on the target).
    pub done: Signaller,
}

/// A stage that reads the rendered frames (`--stages`), and whom a result is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consumer {
    /// The encoder: explicit sync, a sync file exported from the render target.
    Encoder,
    /// The USB gadget: implicit sync through the render target's reservation object.
    Usb,
}

/// A consumer's verdict on one attempt of a frame.
#[derive(Debug)]
pub struct Delivery {
    /// Who.
    pub consumer: Consumer,
    /// The frame.
    pub frame: u64,
    /// The attempt.
    pub attempt: u32,
    /// Intact, or why not.
    pub result: Result<(), String>,
    /// When it finished.
    pub at: Instant,
}

/// How a stage that may wait on a hung render gives up: after `timeout` it calls the
/// watchdog, which resets the hung jobs.
#[derive(Clone)]
pub struct Patience {
    /// Resets hung jobs.
    pub watchdog: Arc<Watchdog>,
    /// How long one wait lasts before the watchdog is called.
    pub timeout: Duration,
}

/// Waits for every fence of `deps`, traced as one "wait" slice; the first error found.
/// With `patience`, a wait that runs out calls the watchdog (traced as "timeout") and
/// waits again.
fn wait_all(
    trace: &Trace,
    track: Track,
    frame: u64,
    deps: &[Fence],
    patience: Option<&Patience>,
) -> Option<String> {
    let t0 = trace.now();
    let mut error = None;
    for d in deps {
        let outcome = match patience {
            Some(p) => loop {
                match d.wait_timeout(p.timeout) {
                    Err(WaitError::TimedOut) => {
                        let reset = p.watchdog.timed_out();
                        trace.instant(track, "timeout", json!({"frame": frame, "reset": reset}));
                    }
                    Err(WaitError::Failed(e)) => break Err(e),
                    Ok(()) => break Ok(()),
                }
            },
            None => d.wait().map_err(|failed| failed.0),
        };
        if error.is_none()
            && let Err(e) = outcome
        {
            error = Some(format!("input {d} failed with {e}"));
        }
    }
    if !deps.is_empty() {
        trace.complete(
            track,
            "wait",
            t0,
            json!({"frame": frame, "fences": deps.len()}),
        );
    }
    error
}

/// The camera's hardware thread.
pub fn camera(jobs: Receiver<CameraJob>, trace: Arc<Trace>) {
    let track = Track {
        pid: pid::CAMERA,
        tid: 1,
    };
    for job in jobs {
        wait_all(&trace, track, job.frame, &job.deps, None);
        let t0 = trace.now();
        std::thread::sleep(job.work);
        let ok = job.mapping.dma_write(0, &camera_pattern(job.frame));
        trace.complete(track, "expose", t0, json!({"frame": job.frame}));
        drop(job.mapping); // before signalling: eviction may then unmap it
        match ok {
            Ok(()) => job.done.signal(),
            Err(_) => job.done.signal_with_error(dmabuf::Errno::EIO),
        };
    }
}

/// A GPU worker thread.
pub fn gpu(worker: u32, jobs: Receiver<GpuJob>, trace: Arc<Trace>, watchdog: Arc<Watchdog>) {
    let track = Track {
        pid: pid::GPU,
        tid: worker + 1,
    };
    for job in jobs {
        let failed = wait_all(&trace, track, job.frame, &job.deps, None);
        if job.hang {
            trace.instant(track, "hang", json!({"frame": job.frame}));
            drop((job.input, job.output));
            watchdog.hang(job.frame, job.done);
            continue;
        }
        let t0 = trace.now();
        std::thread::sleep(job.work);
        let mut bytes = vec![0u8; FRAME_SIZE];
        let ok = failed.is_none()
            && job.input.dma_read(0, &mut bytes).is_ok()
            && job.output.dma_write(0, &render(&bytes)).is_ok();
        trace.complete(
            track,
            "render",
            t0,
            json!({"frame": job.frame, "attempt": job.attempt}),
        );
        drop((job.input, job.output));
        if ok {
            job.done.signal();
        } else {
            job.done.signal_with_error(dmabuf::Errno::EIO);
        }
    }
}

/// The encoder: explicit sync, a timed wait on the sync file; a wait that runs out calls
/// the watchdog.
pub fn encoder(
    jobs: Receiver<ReadJob>,
    results: Sender<Delivery>,
    trace: Arc<Trace>,
    patience: Patience,
) {
    let Patience { watchdog, timeout } = patience;
    let track = Track {
        pid: pid::ENCODER,
        tid: 1,
    };
    for job in jobs {
        let t0 = trace.now();
        let mut result = Ok(());
        if let Some(sync) = &job.sync_file {
            let outcome = loop {
                match sync.wait_timeout(timeout) {
                    Err(WaitError::TimedOut) => {
                        let reset = watchdog.timed_out();
                        trace.instant(
                            track,
                            "timeout",
                            json!({"frame": job.frame, "reset": reset}),
                        );
                    }
                    Err(WaitError::Failed(e)) => break Err(e),
                    Ok(()) => break Ok(()),
                }
            };
            trace.complete(
                track,
                "wait",
                t0,
                json!({"frame": job.frame, "sync_file": sync.to_string()}),
            );
            if let Err(e) = outcome {
                result = Err(format!("frame {}: render failed with {e}", job.frame));
            }
        }
        if result.is_ok() {
            let t1 = trace.now();
            let mut bytes = vec![0u8; FRAME_SIZE];
            result = job
                .mapping
                .dma_read(0, &mut bytes)
                .map_err(|e| e.to_string())
                .and_then(|()| check_render(&bytes, job.frame));
            trace.complete(track, "encode", t1, json!({"frame": job.frame}));
        }
        job.done.signal();
        let _ = results.send(Delivery {
            consumer: Consumer::Encoder,
            frame: job.frame,
            attempt: job.attempt,
            result,
            at: Instant::now(),
        });
    }
}

/// The USB gadget (seed 000's functionfs, fixed): implicit sync with timed waits, the
/// mapping made at attach; the completion handler only signals, inside a signalling section.
pub fn usb(
    jobs: Receiver<ReadJob>,
    results: Sender<Delivery>,
    trace: Arc<Trace>,
    patience: Patience,
) {
    let track = Track {
        pid: pid::USB,
        tid: 1,
    };
    for job in jobs {
        let failed = wait_all(&trace, track, job.frame, &job.deps, Some(&patience));
        let result = match failed {
            Some(e) => Err(format!("frame {}: {e}", job.frame)),
            None => {
                let t0 = trace.now();
                let mut bytes = vec![0u8; FRAME_SIZE];
                let r = job
                    .mapping
                    .dma_read(0, &mut bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|()| check_render(&bytes, job.frame));
                trace.complete(track, "bulk-in transfer", t0, json!({"frame": job.frame}));
                r
            }
        };
        {
            // The completion handler: a fence signalling section; no locks, no final drops.
            let _section = signalling::begin_signalling();
            job.done.signal();
        }
        let _ = results.send(Delivery {
            consumer: Consumer::Usb,
            frame: job.frame,
            attempt: job.attempt,
            result,
            at: Instant::now(),
        });
    }
}
