//! The epoll reactor and the fd → fence bridge, natively, with eventfds standing in for
//! kernel sync_files (real sync_files are bridged in the guest tests).

mod common;
use common::{SERIAL, open_fds};
use dmabuf::{Errno, FenceStatus, MonotonicTime};
use dmabuf_linux::Reactor;
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::OwnedFd;
use std::collections::HashSet;
use std::time::Duration;

/// `reactor.pending()` once it reads 0, or after 5 s: a fence signals inside its fd's
/// callback, which still counts until it has returned and closed the fd.
fn settled(reactor: &Reactor) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while reactor.pending() != 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    reactor.pending()
}

/// The ids of this process's threads named like a reactor's.
fn reactor_threads() -> HashSet<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc")
        .filter_map(|t| {
            let t = t.ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (comm.trim_end() == "dmabuf-reactor").then(|| t.file_name().to_string_lossy().into())
        })
        .collect()
}

/// The reactor threads started since `before` was read, waiting (up to 5 s) for at least
/// one: a new thread names itself, so right after `Reactor::new` it may not be named yet.
fn new_reactor_threads(before: &HashSet<String>) -> HashSet<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let new: HashSet<String> = reactor_threads().difference(before).cloned().collect();
        if !new.is_empty() || std::time::Instant::now() >= deadline {
            return new;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Raises this process's soft fd limit to its hard one (the default soft limit, 1024, is what
/// a guest starts with) and returns how many pending fds the test can bridge: 1000, or fewer
/// when even the hard limit is low. Each costs two descriptors (the fd and the test's dup).
fn pending_fd_budget() -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if let Some(hard) = lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        );
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    usize::try_from(soft.saturating_sub(64) / 2).map_or(1000, |n| n.min(1000))
}

fn efd() -> OwnedFd {
    eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).expect("eventfd")
}

fn poke(fd: &OwnedFd) {
    rustix::io::write(fd, &1u64.to_ne_bytes()).expect("write eventfd");
}

#[test]
fn a_bridged_fd_signals_its_fence_when_readable_with_the_status_read_then() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    {
        let reactor = Reactor::new().expect("reactor");
        let (a, b) = (efd(), efd());
        let (poke_a, poke_b) = (
            rustix::io::dup(&a).expect("dup"),
            rustix::io::dup(&b).expect("dup"),
        );
        let at = MonotonicTime::from_nanos(123_456_789);
        let ok = reactor
            .bridge(a, "test", "ok", move |_| (FenceStatus::Signaled, Some(at)))
            .map_err(|(e, _)| e)
            .expect("bridge");
        let failed = reactor
            .bridge(b, "test", "failed", |_| {
                (FenceStatus::Failed(Errno::ETIME), None)
            })
            .map_err(|(e, _)| e)
            .expect("bridge");
        assert_eq!(reactor.pending(), 2);
        assert_eq!(
            ok.wait_for_signal_timeout(Duration::from_millis(20)),
            Err(dmabuf::TimedOut)
        );
        poke(&poke_a);
        ok.wait_for_signal_timeout(Duration::from_secs(5))
            .expect("signalled");
        assert_eq!(ok.status(), FenceStatus::Signaled);
        assert_eq!(
            ok.timestamp(),
            Some(at),
            "the fd's signal time carried over"
        );
        assert_eq!((ok.driver_name(), ok.timeline_name()), ("test", "ok"));
        poke(&poke_b);
        failed
            .wait_for_signal_timeout(Duration::from_secs(5))
            .expect("signalled");
        assert_eq!(failed.status(), FenceStatus::Failed(Errno::ETIME));
        assert_eq!(settled(&reactor), 0);
    }
    assert_eq!(open_fds(), before, "no fd leaked");
}

#[test]
fn a_thousand_pending_fds_share_one_thread_and_all_signal() {
    // (or as many as the fd limit allows)
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    let threads_before = reactor_threads();
    {
        let reactor = Reactor::new().expect("reactor");
        let n = pending_fd_budget();
        assert!(n >= 400, "fd limit too low to test: {n}");
        let mut pokes = Vec::new();
        let mut fences = Vec::new();
        for _ in 0..n {
            let fd = efd();
            pokes.push(rustix::io::dup(&fd).expect("dup"));
            fences.push(
                reactor
                    .bridge(fd, "test", "many", |_| (FenceStatus::Signaled, None))
                    .map_err(|(e, _)| e)
                    .expect("bridge"),
            );
        }
        assert_eq!(reactor.pending(), n);
        // Counted by thread id, new ones only: a reactor thread an earlier test joined can
        // still be listed for a moment after its join, and the new one names itself late.
        assert_eq!(
            new_reactor_threads(&threads_before).len(),
            1,
            "one reactor thread for all"
        );
        assert!(fences.iter().all(|f| !f.is_signaled()));
        for p in pokes.iter().rev() {
            poke(p);
        }
        for f in &fences {
            f.wait_for_signal_timeout(Duration::from_secs(10))
                .expect("signalled");
        }
        assert_eq!(settled(&reactor), 0);
    }
    assert_eq!(open_fds(), before, "no fd leaked");
}

#[test]
fn dropping_the_reactor_cancels_what_it_still_watches() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    let fence = {
        let reactor = Reactor::new().expect("reactor");
        reactor
            .bridge(efd(), "test", "orphan", |_| (FenceStatus::Signaled, None))
            .map_err(|(e, _)| e)
            .expect("bridge")
    };
    assert_eq!(fence.status(), FenceStatus::Failed(Errno::ECANCELED));
    assert_eq!(open_fds(), before, "the watched fd was closed");
}

#[test]
fn an_fd_epoll_cannot_watch_is_handed_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reactor = Reactor::global().expect("reactor");
    let file = std::fs::File::open("/proc/self/status").expect("a regular file");
    let (err, file) = reactor
        .watch(OwnedFd::from(file), |_| {})
        .expect_err("epoll refuses regular files");
    assert_eq!(err.errno(), rustix::io::Errno::PERM);
    drop(file);
    assert_eq!(reactor.pending(), 0);
}

#[test]
fn a_reactor_whose_last_owner_is_its_own_callback_stops_without_joining_itself() {
    // The callback holds the last `Arc<Reactor>` and drops it on the reactor thread: the
    // drop must not join that thread (a self-join fails, and panicked the thread before the
    // callback could finish); the thread then ends by itself.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = reactor_threads();
    let reactor = std::sync::Arc::new(Reactor::new().expect("reactor"));
    let mine = new_reactor_threads(&before);
    assert_eq!(mine.len(), 1);
    let fd = efd();
    let poke_fd = rustix::io::dup(&fd).expect("dup");
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (owner, done) = (reactor.clone(), finished.clone());
    reactor
        .watch(fd, move |fd| {
            drop(fd);
            drop(owner); // the last owner, on the reactor thread
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .map_err(|(e, _)| e)
        .expect("watch");
    drop(reactor);
    poke(&poke_fd);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !reactor_threads().is_disjoint(&mine) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        "the callback ran to its end"
    );
    assert!(
        reactor_threads().is_disjoint(&mine),
        "the reactor thread ended"
    );
}

#[test]
fn a_panicking_callback_is_caught_and_the_reactor_keeps_serving_every_other_fd() {
    // One reactor thread serves every fd, and `Reactor::global` never starts another: a panic
    // that unwound out of it would leave every bridged fence pending for good.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    let threads_before = reactor_threads();
    {
        let reactor = Reactor::new().expect("reactor");
        let mine = new_reactor_threads(&threads_before);
        assert_eq!(mine.len(), 1);

        // A watch callback that panics itself.
        let fd = efd();
        let poke_panicking = rustix::io::dup(&fd).expect("dup");
        reactor
            .watch(fd, |_fd| panic!("a watch callback panics"))
            .map_err(|(e, _)| e)
            .expect("watch");
        // A bridged fence whose own callback panics: the panic comes out of the signal, on
        // the reactor thread.
        let fd = efd();
        let poke_signal = rustix::io::dup(&fd).expect("dup");
        let bridged = reactor
            .bridge(fd, "test", "panicking-callback", |_| {
                (FenceStatus::Signaled, None)
            })
            .map_err(|(e, _)| e)
            .expect("bridge");
        bridged
            .add_callback(|_| panic!("a fence callback panics"))
            .map_err(|_| "already signalled")
            .expect("add_callback");
        // A bridge whose status closure panics before it signals: the fence's issuer drops
        // in the unwinding, which cancels it.
        let fd = efd();
        let poke_status = rustix::io::dup(&fd).expect("dup");
        let cancelled = reactor
            .bridge(fd, "test", "panicking-status", |_| {
                panic!("a status closure panics")
            })
            .map_err(|(e, _)| e)
            .expect("bridge");

        poke(&poke_panicking);
        poke(&poke_signal);
        poke(&poke_status);
        bridged
            .wait_for_signal_timeout(Duration::from_secs(5))
            .expect("signalled before its callback panicked");
        assert_eq!(bridged.status(), FenceStatus::Signaled);
        cancelled
            .wait_for_signal_timeout(Duration::from_secs(5))
            .expect("cancelled");
        assert_eq!(cancelled.status(), FenceStatus::Failed(Errno::ECANCELED));

        // The same thread still serves fds watched before and after the panics.
        for round in 0..3 {
            let fd = efd();
            let p = rustix::io::dup(&fd).expect("dup");
            let fence = reactor
                .bridge(fd, "test", "after", |_| (FenceStatus::Signaled, None))
                .map_err(|(e, _)| e)
                .expect("bridge");
            poke(&p);
            fence
                .wait_for_signal_timeout(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("round {round}: the reactor stopped serving ({e})"));
        }
        assert_eq!(settled(&reactor), 0, "the panicking entries are gone");
        assert!(
            !reactor_threads().is_disjoint(&mine),
            "the reactor thread is still running"
        );
    }
    assert_eq!(
        open_fds(),
        before,
        "the panicking callbacks' fds were closed"
    );
}

#[test]
fn pending_counts_a_fired_fd_until_its_callback_is_done_and_its_fd_closed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Sets its flag when dropped: the callback (and the fd it owns) is gone.
    struct Gone(Arc<AtomicBool>);
    impl Drop for Gone {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reactor = Reactor::new().unwrap();
    let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap();
    let poke: OwnedFd = rustix::io::dup(&efd).unwrap();
    let gone = Arc::new(AtomicBool::new(false));
    let guard = Gone(gone.clone());
    reactor
        .watch(efd, move |_fd| {
            // A slow callback: the entry has left the table, the fd is still open.
            std::thread::sleep(Duration::from_millis(50));
            drop(guard);
        })
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(reactor.pending(), 1);
    rustix::io::write(&poke, &1u64.to_ne_bytes()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while reactor.pending() != 0 {
        assert!(std::time::Instant::now() < deadline, "never fired");
        std::thread::yield_now();
    }
    assert!(
        gone.load(Ordering::SeqCst),
        "pending read 0 before the callback was done"
    );
}
