//! What several benches share: a peer that busy-works, and the fence ping-pong the syncobj
//! round trip is measured against.
#![allow(dead_code)] // each bench uses its own part

use dmabuf::fence::FenceContext;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Busy-works `delay` (zero: nothing), standing in for a peer that takes a while to answer.
pub fn work(delay: Duration) {
    if delay.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < delay {
        std::hint::spin_loop();
    }
}

/// Runs `peer` on another thread and `main` on this one, started together, and answers how
/// long `main` took.
pub fn against_peer(peer: impl FnOnce() + Send + 'static, main: impl FnOnce()) -> Duration {
    let start = Arc::new(Barrier::new(2));
    let s = start.clone();
    let peer = std::thread::spawn(move || {
        s.wait();
        peer();
    });
    start.wait();
    let t = Instant::now();
    main();
    let elapsed = t.elapsed();
    peer.join().unwrap();
    elapsed
}

/// `iters` round trips through fences: one pre-created fence pair per round.
pub fn ping_pong_fence(iters: u64, delay: Duration) -> Duration {
    let ctx = FenceContext::new("bench", "ping");
    let back = FenceContext::new("bench", "pong");
    let (ping_issuers, ping_fences): (Vec<_>, Vec<_>) =
        (0..iters).map(|_| ctx.next_fence()).unzip();
    let (pong_issuers, pong_fences): (Vec<_>, Vec<_>) =
        (0..iters).map(|_| back.next_fence()).unzip();
    against_peer(
        move || {
            for (ping, pong) in ping_fences.iter().zip(pong_issuers) {
                ping.wait_for_signal();
                work(delay);
                pong.signal();
            }
        },
        || {
            for (ping, pong) in ping_issuers.into_iter().zip(&pong_fences) {
                ping.signal();
                pong.wait_for_signal();
            }
        },
    )
}
