//! Producers and consumers synchronising through fences.
//!
//! A small media pipeline in one process: a camera and a GPU produce frames, each finished
//! frame announced by a fence; an encoder waits for both inputs of a frame through one fence
//! array; a display thread follows the GPU's work on a chain (a timeline of points) and waits
//! on the latest point; a software timeline paces a "vsync". One frame fails on the GPU, and
//! the error reaches the encoder through the array. One job is abandoned: its issuer is
//! dropped, and the fence signals with ECANCELED instead of hanging its waiters.
//!
//! Why an array and not [`merge`](dmabuf::fence::unwrap::merge): a merge is for waiting. It
//! leaves out inputs that have already signalled, errors and all, as the kernel's does, so a
//! consumer that merges after the GPU finished a failed frame would never see the failure. An
//! array keeps every member, and signals with the first member error, whichever order the
//! producers finish in. The story is correct by construction, not by timing: the counts are
//! the same on every run.
//!
//! Run: `cargo run -p dmabuf --example producers_consumers`.

use dmabuf::fence::{Fence, FenceContext, set_leak_hook};
use dmabuf::{Errno, FenceStatus, Timeline};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const FRAMES: u64 = 8;
const FAILING_FRAME: u64 = 5;

fn main() {
    set_leak_hook(Some(std::sync::Arc::new(|f: &Fence| {
        println!("  [leak hook] issuer of {f} was dropped unsignalled");
    })));

    let camera = FenceContext::new("camera", "capture0");
    let gpu = FenceContext::new("gpu", "ring0");
    let vsync = Timeline::new("vsync");

    let (cam_tx, cam_rx) = mpsc::channel();
    let (gpu_tx, gpu_rx) = mpsc::channel();
    let (enc_tx, enc_rx) = mpsc::channel::<(u64, Fence)>();

    // Producers: each hands its consumer the fence at once, and signals it when done.
    let camera_thread = thread::spawn(move || {
        for frame in 1..=FRAMES {
            let (done, fence) = camera.next_fence();
            cam_tx.send((frame, fence)).unwrap();
            thread::sleep(Duration::from_millis(3)); // exposure
            done.signal();
        }
    });
    let gpu_thread = thread::spawn(move || {
        let mut timeline: Option<Fence> = None;
        for frame in 1..=FRAMES {
            let (mut done, fence) = gpu.next_fence();
            // The display follows the GPU as a chain: point `frame` contains this job's fence.
            let point = Fence::new_chain(timeline.take(), fence.clone(), frame).unwrap();
            timeline = Some(point.clone());
            gpu_tx.send((frame, fence, point)).unwrap();
            thread::sleep(Duration::from_millis(2)); // shading
            if frame == FAILING_FRAME {
                done.set_error(Errno::EIO); // a GPU hang, reset by the driver
            }
            done.signal();
        }
        // A job queued and then abandoned: dropping its issuer cancels it.
        let (abandoned, fence) = gpu.next_fence();
        gpu_tx.send((FRAMES + 1, fence, timeline.unwrap())).unwrap();
        drop(abandoned);
    });

    // The encoder: one array fence per frame, waited on; its status is the frame's.
    let encoder = thread::spawn(move || {
        let mut encoded = 0;
        for (frame, fence) in enc_rx {
            let t = Instant::now();
            fence.wait_for_signal();
            match fence.status() {
                FenceStatus::Signaled => {
                    encoded += 1;
                    println!("encoder: frame {frame} ready after {:?}", t.elapsed());
                }
                status => println!("encoder: frame {frame} dropped, inputs failed: {status:?}"),
            }
        }
        encoded
    });

    // The compositor: pairs camera and GPU fences into one array per frame for the encoder,
    // and shows the GPU timeline's latest point on every vsync.
    let frames = FenceContext::new("compositor", "frames");
    let mut last_point = None;
    for _ in 1..=FRAMES {
        let (frame, cam) = cam_rx.recv().unwrap();
        let (gpu_frame, gpu_fence, point) = gpu_rx.recv().unwrap();
        assert_eq!(frame, gpu_frame);
        // Neither input is a container, so the array cannot be refused.
        let both = Fence::new_array(vec![cam, gpu_fence], frames.id(), frame).unwrap();
        enc_tx.send((frame, both)).unwrap();
        last_point = Some(point);
        let tick = vsync.create_fence(vsync.value() + 1).unwrap();
        vsync.inc(1);
        tick.wait_for_signal();
    }
    drop(enc_tx);

    let (_, cancelled, _) = gpu_rx.recv().unwrap();
    cancelled.wait_for_signal();
    println!("display: abandoned job ended as {:?}", cancelled.status());
    assert_eq!(cancelled.status(), FenceStatus::Failed(Errno::ECANCELED));

    let point = last_point.unwrap();
    point.wait_for_signal();
    println!("display: timeline point {} is {}", point.seqno(), point);
    // The chain's point for frame 3 is complete too (every point before the last signalled).
    match point.find_seqno(3).unwrap() {
        Some(p) => println!("display: point 3 found in the chain: {p}"),
        None => println!("display: point 3 already signalled and collected"),
    }

    camera_thread.join().unwrap();
    gpu_thread.join().unwrap();
    let encoded = encoder.join().unwrap();
    println!(
        "encoded {encoded} of {FRAMES} frames; vsync at {}",
        vsync.value()
    );
    assert_eq!(encoded, FRAMES - 1);
}
