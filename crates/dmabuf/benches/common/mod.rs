//! What several benches share: the main of a bench that measures the library with the
//! validator off, a peer that busy-works, and the fence ping-pong the syncobj round trip is
//! measured against.
#![allow(dead_code)] // each bench uses its own part

use dmabuf::fence::FenceContext;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// `criterion_main!` for a bench of the library rather than of the validator: the validator
/// is switched off first. `cargo bench --workspace` builds the library with the `lockdep`
/// feature (the `dmabuf` command asks for it), and the validator starts on; without the
/// feature the call does nothing. Either way the numbers are those of a build without it.
#[macro_export]
macro_rules! main_validator_off {
    ($($group:path),+ $(,)?) => {
        fn main() {
            dmabuf::lockdep::set_enabled(false);
            $($group();)+
            criterion::Criterion::default()
                .configure_from_args()
                .final_summary();
        }
    };
}

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
