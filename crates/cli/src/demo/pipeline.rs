//! The pipeline: devices, buffers, attachments, and the submitting thread. Every reservation
//! lock is taken here, in an order the seeded generator decides (camera maps may restore a
//! buffer and evict another); the stages' threads only wait, DMA and signal.

use super::fault::Watchdog;
use super::frames::Frames;
use super::imports::{DynImport, StaticImport};
use super::progress::Progress;
use super::rings::{FenceStats, Ring, TIMELINES_PID};
use super::rng::Rng;
use super::stages::{
    self, CameraJob, Consumer, Delivery, FRAME_SIZE, GpuJob, Patience, ReadJob, pid,
};
use super::summary::{Counts, FaultReport, Summary};
use super::{Args, DemoError};
use crate::trace::{Trace, Track};
use dmabuf::SyncFile;
use dmabuf::buf::exporters::{DeviceMemory, SystemHeap};
use dmabuf::buf::{Device, DeviceCaps, DmaBuf};
use dmabuf::lockdep::{ReportMode, set_report_mode, take_reports};
use dmabuf::resv::{Access, Resv, Usage};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// A reading stage as the submitter sees it: its timeline, its static imports of the
/// render targets and its job queue.
struct Reader {
    ring: Ring,
    inputs: Vec<StaticImport>,
    to: Sender<ReadJob>,
}

/// The submitting side: everything a submission touches.
struct Submitter {
    trace: Arc<Trace>,
    track: Track,
    pool: Vec<DmaBuf>,
    targets: Vec<DmaBuf>,
    camera_imports: Vec<DynImport>,
    gpu_imports: Vec<DynImport>,
    gpu_outputs: Vec<StaticImport>,
    camera_ring: Ring,
    gpu_rings: Vec<Ring>,
    to_camera: Sender<CameraJob>,
    to_gpu: Vec<Sender<GpuJob>>,
    encoder: Option<Reader>,
    usb: Option<Reader>,
}

impl Submitter {
    /// Submits the camera's exposure of `frame` into camera buffer `c`.
    fn camera(&mut self, frame: u64, c: usize, work: Duration) -> Result<(), DemoError> {
        let buf = &self.pool[c];
        let mut guard = buf.resv().lock_single();
        let mapping = self.camera_imports[c].mapping(&guard)?;
        // A writer waits for every earlier reader and writer.
        let deps = buf.resv().get_fences(Usage::Read);
        let (done, fence) = self.camera_ring.next(frame);
        guard.reserve_fences(1)?;
        guard.add_fence(&fence, Usage::Write);
        drop(guard);
        let _ = self.to_camera.send(CameraJob {
            frame,
            deps,
            mapping,
            done,
            work,
        });
        Ok(())
    }

    /// Submits the render of `frame` from camera buffer `c` into target `o` on worker `w`,
    /// and the reading stages' reads of it. Returns the render fence's name.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &mut self,
        frame: u64,
        attempt: u32,
        c: usize,
        o: usize,
        w: usize,
        work: Duration,
        hang: bool,
    ) -> Result<String, DemoError> {
        let t0 = self.trace.now();
        let (input, target) = (&self.pool[c], &self.targets[o]);
        let ctx = Resv::acquire_ctx();
        let mut guards = Resv::lock_all(&ctx, &[input.resv(), target.resv()])?;
        ctx.done();
        // The guards come in lock order; the input is source 0 of the list.
        let gi = usize::from(guards.source(0) != 0);
        let in_map = self.gpu_imports[c].mapping(&guards[gi])?;
        let mut deps = input.resv().get_fences(Usage::Write);
        deps.extend(target.resv().get_fences(Usage::Read));
        let (done, fence) = self.gpu_rings[w].next(frame);
        // Every slot before the first fence is published: reserving allocates, a reclaim
        // point the validator reports once this thread must signal.
        for mut g in guards.iter_mut() {
            g.reserve_fences(1)?;
        }
        for (i, mut g) in guards.iter_sources_mut() {
            g.add_fence(&fence, if i == 0 { Usage::Read } else { Usage::Write });
        }
        drop(guards);
        drop(ctx);
        let name = format!("{}#{}", self.gpu_rings[w].label(), fence.seqno());
        let _ = self.to_gpu[w].send(GpuJob {
            frame,
            attempt,
            deps,
            input: in_map,
            output: self.gpu_outputs[o].mapping(),
            done,
            work,
            hang,
        });

        // The encoder: explicit sync — the target's writers exported as a sync file.
        if let Some(enc) = &self.encoder {
            let sync_file = SyncFile::export(target.resv(), Access::Read);
            let (done, fence) = enc.ring.next(frame);
            {
                let mut g = target.resv().lock_single();
                g.reserve_fences(1)?;
                g.add_fence(&fence, Usage::Read);
            }
            let _ = enc.to.send(ReadJob {
                frame,
                attempt,
                sync_file: Some(sync_file),
                deps: Vec::new(),
                mapping: enc.inputs[o].mapping(),
                done,
            });
        }

        // The USB gadget: implicit sync — the target's writers from its reservation object.
        if let Some(usb) = &self.usb {
            let (done, fence) = usb.ring.next(frame);
            let deps = {
                let mut g = target.resv().lock_single();
                let deps = target.resv().get_fences(Usage::Write);
                g.reserve_fences(1)?;
                g.add_fence(&fence, Usage::Read);
                deps
            };
            let _ = usb.to.send(ReadJob {
                frame,
                attempt,
                sync_file: None,
                deps,
                mapping: usb.inputs[o].mapping(),
                done,
            });
        }
        self.trace.complete(
            self.track,
            "submit",
            t0,
            json!({"frame": frame, "attempt": attempt, "camera_buffer": c, "target": o, "gpu_worker": w}),
        );
        Ok(name)
    }

    /// Waits for every fence, unmaps and detaches everything (after the workers are gone).
    fn teardown(self) {
        for buf in self.pool.iter().chain(&self.targets) {
            buf.resv().wait_for_signal(Usage::Bookkeep);
        }
        for imp in self.camera_imports.into_iter().chain(self.gpu_imports) {
            imp.teardown();
        }
        let readers = self.encoder.into_iter().chain(self.usb);
        for imp in self
            .gpu_outputs
            .into_iter()
            .chain(readers.flat_map(|r| r.inputs))
        {
            imp.teardown();
        }
    }
}

/// Runs the pipeline for `args`, tracing into `trace`.
///
/// # Errors
/// The options cannot run together ([`Args::check`]), or setting up failed (the library
/// refused an allocation, attachment or mapping).
pub fn run(args: &Args, trace: &Arc<Trace>) -> Result<Summary, DemoError> {
    args.check().map_err(DemoError::Options)?;
    set_report_mode(ReportMode::Collect);
    let _ = take_reports();
    let b = args.buffers as usize;
    let threads = args.gpu_threads as usize;
    let fault = args.fault();
    let mut rng = Rng::new(args.seed);

    for (p, name) in [
        (pid::CAMERA, "camera (device memory)"),
        (pid::GPU, "gpu"),
        (pid::PIPELINE, "pipeline"),
        (TIMELINES_PID, "fence timelines"),
    ] {
        trace.name_process(p, name);
    }
    for (c, p, process, thread) in [
        (Consumer::Encoder, pid::ENCODER, "encoder", "encoder/hw"),
        (Consumer::Usb, pid::USB, "usb-gadget", "usb-gadget/ep1in"),
    ] {
        if args.runs(c) {
            trace.name_process(p, process);
            trace.name_thread(Track { pid: p, tid: 1 }, thread);
        }
    }
    trace.name_thread(
        Track {
            pid: pid::CAMERA,
            tid: 1,
        },
        "camera/hw",
    );
    for w in 0..threads {
        trace.name_thread(
            Track {
                pid: pid::GPU,
                tid: w as u32 + 1,
            },
            &format!("gpu/worker{w}"),
        );
    }
    let track = Track {
        pid: pid::PIPELINE,
        tid: 1,
    };
    trace.name_thread(track, "submit");

    let camera_dev = Device::new("camera", DeviceCaps::NONE);
    let gpu_dev = Device::new("gpu", DeviceCaps::PEER_TO_PEER);
    let vram = DeviceMemory::new(&camera_dev, args.capacity * 1024);
    let heap = SystemHeap::new();
    let notified = Arc::new(AtomicU64::new(0));
    let mut pool = Vec::with_capacity(b);
    let mut targets = Vec::with_capacity(b);
    for _ in 0..b {
        pool.push(vram.alloc(FRAME_SIZE as u64)?);
        targets.push(heap.alloc(FRAME_SIZE as u64)?);
    }
    let stats = Arc::new(FenceStats::default());
    let watchdog = Arc::new(Watchdog::default());
    let (delivered_tx, delivered_rx): (Sender<Delivery>, Receiver<Delivery>) = mpsc::channel();
    let (to_camera, camera_rx) = mpsc::channel();
    let mut handles = Vec::new();
    {
        let t = trace.clone();
        handles.push(std::thread::spawn(move || stages::camera(camera_rx, t)));
    }
    let patience = Patience {
        watchdog: watchdog.clone(),
        timeout: args.timeout(),
    };
    // A reading stage: its device, static imports of every target, timeline and thread.
    let mut reader = |c: Consumer| -> Result<Option<Reader>, DemoError> {
        if !args.runs(c) {
            return Ok(None);
        }
        let (to, rx) = mpsc::channel();
        let (t, tx, p) = (trace.clone(), delivered_tx.clone(), patience.clone());
        let (device, ring) = match c {
            Consumer::Encoder => {
                handles.push(std::thread::spawn(move || stages::encoder(rx, tx, t, p)));
                (
                    Device::new("encoder", DeviceCaps::NONE),
                    Ring::new("encoder", "enc0", 2, trace, &stats),
                )
            }
            Consumer::Usb => {
                handles.push(std::thread::spawn(move || stages::usb(rx, tx, t, p)));
                (
                    Device::new("usb-gadget", DeviceCaps::NONE),
                    Ring::new("functionfs", "ep1in", 3, trace, &stats),
                )
            }
        };
        let inputs = targets
            .iter()
            .map(|t| StaticImport::new(t, &device))
            .collect::<Result<_, _>>()?;
        Ok(Some(Reader { ring, inputs, to }))
    };
    let encoder = reader(Consumer::Encoder)?;
    let usb = reader(Consumer::Usb)?;
    drop(delivered_tx);
    let mut to_gpu = Vec::new();
    let mut gpu_rings = Vec::new();
    for w in 0..threads {
        let (tx, rx) = mpsc::channel();
        let (t, wd) = (trace.clone(), watchdog.clone());
        handles.push(std::thread::spawn(move || stages::gpu(w as u32, rx, t, wd)));
        to_gpu.push(tx);
        gpu_rings.push(Ring::new(
            "gpu",
            &format!("ring{w}"),
            10 + w as u32,
            trace,
            &stats,
        ));
    }

    let mut sub = Submitter {
        trace: trace.clone(),
        track,
        camera_imports: pool
            .iter()
            .map(|p| DynImport::new(p, &camera_dev, &notified))
            .collect::<Result<_, _>>()?,
        gpu_imports: pool
            .iter()
            .map(|p| DynImport::new(p, &gpu_dev, &notified))
            .collect::<Result<_, _>>()?,
        gpu_outputs: targets
            .iter()
            .map(|t| StaticImport::new(t, &gpu_dev))
            .collect::<Result<_, _>>()?,
        pool,
        targets,
        camera_ring: Ring::new("camera", "capture0", 1, trace, &stats),
        gpu_rings,
        to_camera,
        to_gpu,
        encoder,
        usb,
    };

    let started = Instant::now();
    let deadline = args.duration.map(|s| started + Duration::from_secs(s));
    let total = if deadline.is_some() {
        u64::MAX
    } else {
        args.frames
    };
    let in_flight = b as u64;
    let progress = Progress::new(
        crate::progress::shown(args.quiet),
        deadline.is_none().then_some(total),
    );
    let mut book = Frames::new(args);
    let mut fault_report = None;
    let mut rerendered = 0;
    let mut frames = 0;
    let result = (|| -> Result<(), DemoError> {
        for frame in 0..total {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            // At most `in_flight` frames in the pipeline.
            while book.pending() >= in_flight {
                let Ok(d) = delivered_rx.recv() else { break };
                book.record(d);
            }
            let c = rng.below(b as u64) as usize;
            let w = rng.below(threads as u64) as usize;
            let cam_work = Duration::from_micros(rng.below(300));
            let gpu_work = Duration::from_micros(100 + rng.below(600));
            let o = (frame % b as u64) as usize;
            let hang = fault == Some(frame);
            book.start(frame);
            let evictions = vram.evictions();
            sub.camera(frame, c, cam_work)?;
            if vram.evictions() > evictions {
                trace.instant(
                    track,
                    "eviction",
                    json!({"frame": frame, "count": vram.evictions() - evictions}),
                );
            }
            let fence = sub.render(frame, 0, c, o, w, gpu_work, hang)?;
            frames += 1;
            if hang {
                // Stall until the consumers give up on the hung render, then render again.
                while !book.is_finished(frame) {
                    let Ok(d) = delivered_rx.recv() else { break };
                    book.record(d);
                }
                let failed = book.failed(frame);
                let mut report = FaultReport {
                    frame,
                    fence,
                    error: "ETIME".into(),
                    recovered: false,
                };
                if failed {
                    trace.instant(track, "re-render", json!({"frame": frame}));
                    book.retry(frame);
                    let w = rng.below(threads as u64) as usize;
                    sub.render(frame, 1, c, o, w, gpu_work, false)?;
                    rerendered += 1;
                    report.recovered = true; // confirmed below once delivered
                }
                fault_report = Some(report);
            }
            progress.update(book.finished(), vram.evictions());
        }
        Ok(())
    })();
    // Drain: every submitted frame's attempt reports back.
    while book.pending() > 0 {
        match delivered_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(d) => book.record(d),
            Err(_) => break,
        }
    }
    progress.finish(book.finished(), vram.evictions());
    let elapsed = started.elapsed();
    watchdog.release_all();
    let (evictions, restores) = (vram.evictions(), vram.restores());
    // Closing the channels ends the workers.
    let sub = close_channels(sub);
    for h in handles {
        let _ = h.join();
    }
    sub.teardown();
    result?;

    let (lost, latencies) = book.outcome();
    if let Some(f) = &mut fault_report {
        f.recovered = f.recovered && book.delivered(f.frame);
    }
    let reports: Vec<String> = take_reports().iter().map(|r| r.to_string()).collect();
    let (created, signalled, errored) = stats.get();
    Ok(Summary {
        counts: Counts {
            frames,
            delivered: frames - lost,
            lost,
            rerendered,
            evictions,
            restores,
            move_notifies: notified.load(Ordering::Relaxed),
            fences_created: created,
            fences_signalled: signalled,
            fences_errored: errored,
            validator_reports: reports.len() as u64,
        },
        fault: fault_report,
        fault_frame: fault,
        elapsed,
        latencies,
        timeouts: watchdog.timeouts(),
        reports,
        seed: args.seed,
        stages: describe_stages(args),
    })
}

/// The pipeline's shape for the summary: `camera -> gpu x2 -> encoder + usb-gadget`.
fn describe_stages(args: &Args) -> String {
    let readers: Vec<&str> = [
        (Consumer::Encoder, "encoder"),
        (Consumer::Usb, "usb-gadget"),
    ]
    .into_iter()
    .filter(|&(c, _)| args.runs(c))
    .map(|(_, name)| name)
    .collect();
    format!(
        "camera -> gpu x{} -> {}",
        args.gpu_threads,
        readers.join(" + ")
    )
}

/// Replaces the submitter's senders with closed ones, so the workers' loops end.
fn close_channels(mut sub: Submitter) -> Submitter {
    sub.to_camera = mpsc::channel().0;
    for r in sub.encoder.iter_mut().chain(sub.usb.iter_mut()) {
        r.to = mpsc::channel().0;
    }
    sub.to_gpu.clear();
    sub
}
