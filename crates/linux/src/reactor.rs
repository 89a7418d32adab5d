//! One epoll thread for every kernel fd the library waits on, and the bridge that turns a
//! kernel sync_file into a library [`Fence`].
//!
//! [`Reactor::watch`] hands an fd to the reactor thread, which calls back once it polls
//! readable (`EPOLLIN`, one-shot) and gives the fd back. [`Reactor::bridge`] builds on it: a
//! library fence that signals when the fd is readable, with the status (and timestamp) read
//! from the fd at that moment. [`SyncFileFd::to_fence`] bridges a real sync_file, carrying
//! over its error and signal time. No thread per fd: a thousand pending fds cost one thread
//! and one epoll set.
//!
//! # Rules
//! * Callbacks run on the reactor thread, one at a time: keep them short (signalling a fence
//!   is). A bridged fence's callbacks run there too.
//! * A callback that panics (or a bridged fence's callback, whose panic comes out of the
//!   signal) is caught and logged as an error; its fd is closed and the reactor goes on
//!   serving every other fd. A bridged fence whose status closure panicked before it could
//!   signal is signalled `ECANCELED` when its issuer drops during the unwinding.
//! * Dropping a [`Reactor`] stops its thread; fds still watched are closed and their bridged
//!   fences signal `ECANCELED` (their issuers were dropped). [`Reactor::global`] never stops.

use crate::error::{Error, Result};
use crate::sync_file::SyncFileFd;
use dmabuf::fence::{Fence, FenceContext, FenceFuture};
use dmabuf::{FenceStatus, MonotonicTime};
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

/// The token of the reactor's own wake-up eventfd.
const WAKE: u64 = 0;

/// Events fetched per `epoll_wait`.
const BATCH: usize = 64;

/// A watched fd's callback: removes the fd from the epoll set, then runs the user's callback.
type Fire = Box<dyn FnOnce(BorrowedFd<'_>) + Send>;

/// An epoll reactor thread.
///
/// ```
/// use dmabuf::FenceStatus;
/// use dmabuf_linux::Reactor;
/// use rustix::event::{EventfdFlags, eventfd};
///
/// let reactor = Reactor::new()?;
/// let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap();
/// let poke = rustix::io::dup(&efd).unwrap();
/// let fence = reactor
///     .bridge(efd, "doc", "eventfd", |_| (FenceStatus::Signaled, None))
///     .map_err(|(e, _fd)| e)?;
/// assert!(!fence.is_signaled());
/// rustix::io::write(&poke, &1u64.to_ne_bytes()).unwrap(); // the fd becomes readable
/// fence.wait().expect("the bridged status says signalled, without error");
/// # Ok::<(), dmabuf_linux::Error>(())
/// ```
pub struct Reactor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    epoll: OwnedFd,
    wake: OwnedFd,
    stop: AtomicBool,
    next: AtomicU64,
    /// Watched fds by token; an entry is inserted before its fd joins the epoll set.
    entries: Mutex<HashMap<u64, Fire>>,
    /// Fds watched, and fired whose callbacks have not returned yet (an entry leaves
    /// `entries` before its callback runs, and its fd closes when the callback is done).
    live: AtomicUsize,
}

impl Reactor {
    /// A reactor with its own thread.
    ///
    /// # Errors
    /// [`Error::Sys`] if the epoll set, the wake-up eventfd or the thread cannot be made.
    pub fn new() -> Result<Reactor> {
        let epoll = epoll::create(CreateFlags::CLOEXEC).map_err(Error::sys("epoll_create1"))?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(Error::sys("eventfd"))?;
        epoll::add(&epoll, &wake, EventData::new_u64(WAKE), EventFlags::IN)
            .map_err(Error::sys("epoll_ctl(ADD)"))?;
        let shared = Arc::new(Shared {
            epoll,
            wake,
            stop: AtomicBool::new(false),
            next: AtomicU64::new(WAKE + 1),
            entries: Mutex::new(HashMap::new()),
            live: AtomicUsize::new(0),
        });
        let run = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dmabuf-reactor".into())
            .spawn(move || run.run())
            .map_err(|e| Error::Sys {
                call: "pthread_create",
                errno: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::AGAIN),
            })?;
        Ok(Reactor {
            shared,
            thread: Some(thread),
        })
    }

    /// The process's shared reactor, started on first use.
    ///
    /// # Errors
    /// As [`new`](Self::new), on first use.
    pub fn global() -> Result<&'static Reactor> {
        static GLOBAL: OnceLock<Reactor> = OnceLock::new();
        if let Some(r) = GLOBAL.get() {
            return Ok(r);
        }
        let r = Reactor::new()?;
        Ok(GLOBAL.get_or_init(|| r))
    }

    /// Fds watched now, counting those whose callback is still running: once this reads 0,
    /// every watched fd has been closed (and every bridged fence signalled).
    pub fn pending(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Calls `on_ready(fd)` on the reactor thread once `fd` polls readable, and stops
    /// watching it.
    ///
    /// # Errors
    /// [`Error::Sys`] from `epoll_ctl` (e.g. `EPERM` for a regular file, which epoll cannot
    /// watch), handing `fd` back.
    pub fn watch<F, C>(&self, fd: F, on_ready: C) -> std::result::Result<(), (Error, F)>
    where
        F: AsFd + Send + 'static,
        C: FnOnce(F) + Send + 'static,
    {
        let token = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.shared.lock();
        // Added under the entries lock: the reactor thread looks the token up under it, so
        // it cannot see the event before the entry exists.
        if let Err(e) = epoll::add(
            &self.shared.epoll,
            &fd,
            EventData::new_u64(token),
            EventFlags::IN | EventFlags::ONESHOT,
        ) {
            return Err((Error::sys("epoll_ctl(ADD)")(e), fd));
        }
        self.shared.live.fetch_add(1, Ordering::AcqRel);
        entries.insert(
            token,
            Box::new(move |epoll: BorrowedFd<'_>| {
                // Removed before the fd can be closed or reused by the callback.
                let _ = epoll::delete(epoll, &fd);
                on_ready(fd);
            }),
        );
        Ok(())
    }

    /// A library fence that signals once `fd` polls readable, with the status and
    /// timestamp `status(&fd)` reads then (a `Failed` status signals with that error; no
    /// timestamp: the time it was seen). The fence has a context of its own, named
    /// `driver`/`timeline`.
    ///
    /// # Errors
    /// As [`watch`](Self::watch), handing `fd` back.
    pub fn bridge<F, S>(
        &self,
        fd: F,
        driver: &str,
        timeline: &str,
        status: S,
    ) -> std::result::Result<Fence, (Error, F)>
    where
        F: AsFd + Send + 'static,
        S: FnOnce(&F) -> (FenceStatus, Option<MonotonicTime>) + Send + 'static,
    {
        let ctx = FenceContext::new(driver.to_owned(), timeline.to_owned());
        let (signaller, fence) = ctx.next_fence();
        self.watch(fd, move |fd| match status(&fd) {
            (FenceStatus::Failed(e), _) => {
                signaller.signal_with_error(e);
            }
            (_, Some(at)) => {
                signaller.signal_timestamp(at);
            }
            (_, None) => {
                signaller.signal();
            }
        })?;
        Ok(fence)
    }
}

impl SyncFileFd {
    /// A library fence for this kernel sync_file, through `reactor` (kernel fence → library
    /// fence): it signals when the file polls readable, with the file's error if it failed
    /// and the latest signal time of its fences. Named after the file's first fence.
    ///
    /// # Errors
    /// [`Error::Sys`] from the info query or from `epoll_ctl`, handing the file back.
    pub fn to_fence(self, reactor: &Reactor) -> std::result::Result<Fence, (Error, SyncFileFd)> {
        let info = match self.info() {
            Ok(i) => i,
            Err(e) => return Err((e, self)),
        };
        let (driver, timeline) = info
            .fences
            .first()
            .map_or(("sync_file".to_owned(), info.name.clone()), |f| {
                (f.driver.clone(), f.timeline.clone())
            });
        reactor.bridge(self, &driver, &timeline, |file| match file.info() {
            Ok(info) => {
                let latest = info.fences.iter().filter_map(|f| f.timestamp).max();
                let at = latest;
                // Readable means signalled: a file still reading as pending (it cannot) counts
                // as signalled rather than never.
                let status = match info.status {
                    FenceStatus::Pending => FenceStatus::Signaled,
                    other => other,
                };
                (status, at)
            }
            Err(e) => (FenceStatus::Failed(e.errno().into()), None),
        })
    }

    /// Async readiness: a future that completes when the file signals, to how the work ended
    /// (`Err` for a fence that signalled with an error), with no thread of its own (the file
    /// is bridged through `reactor`, see [`to_fence`](Self::to_fence)).
    ///
    /// ```no_run
    /// # async fn f(file: dmabuf_linux::SyncFileFd) -> Result<(), Box<dyn std::error::Error>> {
    /// let reactor = dmabuf_linux::Reactor::global()?;
    /// file.wait_async(reactor).map_err(|(e, _file)| e)?.await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`to_fence`](Self::to_fence), handing the file back.
    pub fn wait_async(
        self,
        reactor: &Reactor,
    ) -> std::result::Result<FenceFuture, (Error, SyncFileFd)> {
        self.to_fence(reactor).map(|fence| fence.wait_async())
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Fire>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one ready fd's callback. A panic in it (the user's callback, or a bridged fence's
    /// callbacks through `Signaller::signal`) is caught and logged here: the entry was already
    /// taken out of the table and the fd out of the epoll set, and the fd and anything else the
    /// callback owned were dropped by the unwinding, so nothing of the reactor's is left half
    /// done and the thread goes on serving every other fd.
    fn fire(&self, token: u64, fire: Fire) {
        let epoll = self.epoll.as_fd();
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(move || fire(epoll))) {
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            tracing::error!(
                token,
                panic = message,
                "dmabuf reactor: a callback panicked; the reactor carries on"
            );
        }
    }

    fn run(&self) {
        let mut events = Vec::with_capacity(BATCH);
        loop {
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                None,
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::error!(errno = %e, "dmabuf reactor: epoll_wait failed; stopping");
                    return;
                }
            }
            for ev in &events {
                let token = ev.data.u64();
                if token == WAKE {
                    let mut buf = [0u8; 8];
                    let _ = rustix::io::read(&self.wake, &mut buf);
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                let fire = self.lock().remove(&token);
                if let Some(fire) = fire {
                    self.fire(token, fire);
                    // The callback and its fd are gone.
                    self.live.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = rustix::io::write(&self.shared.wake, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take() {
            // The last owner can be a callback running on the reactor thread itself (a
            // reactor shared through an `Arc` that the callback held): that thread cannot
            // join itself, and it stops by itself once the callback returns (the stop flag
            // is set and the wake-up queued).
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        // Watched fds close here; their bridged fences' issuers drop, which signals them
        // ECANCELED.
        let dropped = std::mem::take(&mut *self.shared.lock());
        let n = dropped.len();
        drop(dropped);
        self.shared.live.fetch_sub(n, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("pending", &self.pending())
            .finish()
    }
}
