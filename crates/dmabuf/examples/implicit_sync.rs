//! Implicit synchronisation through reservation objects: three engines submit jobs that read
//! and write overlapping buffers, each locking its buffers in its own order.
//!
//! Every submission does what a kernel driver's submit ioctl does:
//! 1. lock all the job's buffers through one acquire context (`Resv::lock_all` backs off and
//!    retries when two engines collide — no global lock order needed);
//! 2. collect what the job must wait for: a writer waits for readers and writers
//!    (`Usage::rw(true)`), a reader only for writers;
//! 3. reserve a slot and publish the job's fence — WRITE on buffers it writes, READ on
//!    buffers it reads;
//! 4. unlock, then (on the "hardware") wait for the dependencies, run, signal.
//!
//! Each buffer carries a version number. A job bumps its written buffer's version in two
//! steps (load, yield, store) and checks that the buffers it reads do not change meanwhile:
//! a missing dependency would show as a lost version or a torn read.
//!
//! Run: `cargo run -p dmabuf --example implicit_sync`.

use dmabuf::fence::{Fence, FenceContext};
use dmabuf::resv::{Resv, Usage};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

/// A shared buffer: its reservation object and its contents' version.
struct Buffer {
    resv: Resv,
    version: AtomicU64,
}

const BUFFERS: usize = 6;
const JOBS_PER_ENGINE: u64 = 2000;

fn main() {
    let buffers: Arc<Vec<Buffer>> = Arc::new(
        (0..BUFFERS)
            .map(|_| Buffer {
                resv: Resv::new(),
                version: AtomicU64::new(0),
            })
            .collect(),
    );
    let engines: Vec<_> = (0..3)
        .map(|e| {
            let buffers = buffers.clone();
            thread::spawn(move || engine(e, &buffers))
        })
        .collect();
    let mut writes = 0;
    let mut backoffs = 0;
    for e in engines {
        let (w, b) = e.join().expect("engine panicked");
        writes += w;
        backoffs += b;
    }
    for b in buffers.iter() {
        b.resv.wait_for_signal(Usage::Bookkeep);
    }
    let versions: u64 = buffers
        .iter()
        .map(|b| b.version.load(Ordering::SeqCst))
        .sum();
    println!(
        "{} jobs on 3 engines: {writes} buffer writes, {versions} versions, {backoffs} back-offs",
        3 * JOBS_PER_ENGINE
    );
    assert_eq!(writes, versions, "a write was lost: implicit sync failed");
}

/// One engine: submits jobs, runs them on a "hardware" thread in submission order.
fn engine(id: usize, buffers: &Arc<Vec<Buffer>>) -> (u64, u64) {
    let ring = FenceContext::new("example", format!("engine{id}"));
    let (to_hw, hw_queue) = std::sync::mpsc::channel::<Job>();
    let hw = {
        let buffers = buffers.clone();
        thread::spawn(move || {
            for job in hw_queue {
                for dep in &job.deps {
                    dep.wait_for_signal();
                }
                // Read-modify-write in two steps with a yield between: only the dependencies
                // keep another engine's job off this buffer meanwhile.
                let v = buffers[job.write].version.load(Ordering::SeqCst);
                let seen: Vec<u64> = job
                    .reads
                    .iter()
                    .map(|&b| buffers[b].version.load(Ordering::SeqCst))
                    .collect();
                thread::yield_now();
                buffers[job.write].version.store(v + 1, Ordering::SeqCst);
                for (&b, &before) in job.reads.iter().zip(&seen) {
                    let now = buffers[b].version.load(Ordering::SeqCst);
                    assert_eq!(now, before, "buffer {b} written while being read");
                }
                job.done.signal();
            }
        })
    };
    let mut writes = 0;
    let mut backoffs = 0;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ id as u64;
    for _ in 0..JOBS_PER_ENGINE {
        // Two to three buffers, in a random order; the first is written.
        let mut pick = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % BUFFERS as u64) as usize
        };
        let touched = [pick(), pick(), pick()];
        let objs: Vec<&Resv> = touched.iter().map(|&b| &buffers[b].resv).collect();

        let ctx = Resv::acquire_ctx();
        let mut guards = Resv::lock_all(&ctx, &objs).expect("reservation context");
        ctx.done();
        backoffs += ctx.backoffs();

        let (done, fence) = ring.next_fence();
        let mut deps: Vec<Fence> = Vec::new();
        for mut g in guards.iter_mut() {
            let write = std::ptr::eq(g.resv(), objs[0]);
            deps.extend(g.resv().get_fences(Usage::rw(write)));
            g.reserve_fences(1).expect("one slot");
        }
        for mut g in guards.iter_mut() {
            let write = std::ptr::eq(g.resv(), objs[0]);
            g.add_fence(&fence, if write { Usage::Write } else { Usage::Read });
        }
        drop(guards);
        drop(ctx);
        writes += 1;
        to_hw
            .send(Job {
                deps,
                write: touched[0],
                reads: touched[1..]
                    .iter()
                    .copied()
                    .filter(|&b| b != touched[0])
                    .collect(),
                done,
            })
            .expect("hardware thread alive");
    }
    drop(to_hw);
    hw.join().expect("hardware thread panicked");
    (writes, backoffs)
}

struct Job {
    deps: Vec<Fence>,
    write: usize,
    reads: Vec<usize>,
    done: dmabuf::Signaller,
}
