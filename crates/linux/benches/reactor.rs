//! The reactor's overhead, natively, with eventfds standing in for kernel sync_files (a
//! guest under software emulation would measure the emulator).
//!
//! * `bridge_1000/reactor` — 1000 eventfds bridged to library fences through one
//!   [`Reactor`], then made readable; done when every fence has signalled.
//! * `bridge_1000/raw_epoll` — the baseline: the same 1000 eventfds added to a bare epoll
//!   set, made readable, and all 1000 events collected by one thread; no fences, no
//!   callbacks, no second thread.
//!
//! Both create and close their eventfds inside the iteration.
//!
//! * `reactor per event vs pending fds/<N>` — one event's cost (bridge an eventfd, make it
//!   readable, wait for its fence) while N other eventfds stay watched and never fire: the
//!   epoll set and the entries table hold N + 1, and the cost should not grow with N.
//!
//! Run: `cargo bench -p dmabuf-linux --bench reactor`.

use criterion::{Criterion, criterion_group};
use dmabuf::FenceStatus;
use dmabuf_linux::Reactor;
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::OwnedFd;
use std::time::Duration;

const FDS: usize = 1000;

fn fresh() -> Vec<OwnedFd> {
    (0..FDS)
        .map(|_| eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).expect("eventfd"))
        .collect()
}

fn bridge(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge_1000");
    let reactor = Reactor::new().expect("reactor");
    g.bench_function("reactor", |b| {
        b.iter(|| {
            let fds = fresh();
            // Keep a duplicate of each fd to make it readable after the reactor owns it.
            let mut pokes = Vec::with_capacity(FDS);
            let mut fences = Vec::with_capacity(FDS);
            for fd in fds {
                pokes.push(rustix::io::dup(&fd).expect("dup"));
                let fence = reactor
                    .bridge(fd, "bench", "eventfd", |_| (FenceStatus::Signaled, None))
                    .map_err(|(e, _)| e)
                    .expect("bridge");
                fences.push(fence);
            }
            for p in &pokes {
                rustix::io::write(p, &1u64.to_ne_bytes()).expect("poke");
            }
            for f in &fences {
                f.wait_for_signal();
            }
        });
    });
    g.bench_function("raw_epoll", |b| {
        b.iter(|| {
            let fds = fresh();
            let ep = epoll::create(CreateFlags::CLOEXEC).expect("epoll");
            for (i, fd) in fds.iter().enumerate() {
                epoll::add(
                    &ep,
                    fd,
                    EventData::new_u64(i as u64),
                    EventFlags::IN | EventFlags::ONESHOT,
                )
                .expect("add");
            }
            for fd in &fds {
                rustix::io::write(fd, &1u64.to_ne_bytes()).expect("poke");
            }
            let mut seen = 0;
            let mut events = Vec::with_capacity(64);
            while seen < FDS {
                events.clear();
                epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None).expect("wait");
                seen += events.len();
            }
        });
    });
    g.finish();
}

fn per_event_vs_pending(c: &mut Criterion) {
    let mut g = c.benchmark_group("reactor per event vs pending fds");
    for pending in [1usize, 100, 1_000, 10_000] {
        let reactor = Reactor::new().expect("reactor");
        // The idle fds: watched until the reactor drops, never readable.
        for _ in 0..pending {
            let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).expect("eventfd");
            reactor
                .watch(fd, |_| unreachable!("an idle fd never fires"))
                .map_err(|(e, _)| e)
                .expect("watch");
        }
        g.bench_with_input(
            criterion::BenchmarkId::new("reactor", pending),
            &pending,
            |b, _| {
                b.iter(|| {
                    let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                        .expect("eventfd");
                    let poke = rustix::io::dup(&fd).expect("dup");
                    let fence = reactor
                        .bridge(fd, "bench", "eventfd", |_| (FenceStatus::Signaled, None))
                        .map_err(|(e, _)| e)
                        .expect("bridge");
                    rustix::io::write(&poke, &1u64.to_ne_bytes()).expect("poke");
                    fence.wait_for_signal();
                });
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bridge, per_event_vs_pending
}
fn main() {
    // A bench of the reactor, not of the validator: `cargo bench --workspace` builds the
    // library with the `lockdep` feature, where the validator starts on.
    dmabuf::lockdep::set_enabled(false);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
