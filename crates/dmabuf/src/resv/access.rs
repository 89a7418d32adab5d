//! Implicit-sync access modes and buffer readiness (kernel: the `DMA_BUF_SYNC_READ` /
//! `DMA_BUF_SYNC_WRITE` flags of the sync-file ioctls, and `dma_buf_poll()`).
//!
//! An [`Access`] says what a CPU or device is about to do with a buffer. It decides which of
//! the buffer's fences it must wait for ([`Access::wait_usage`]) and, when a fence is handed
//! to the buffer, how that fence is classified ([`Access::add_usage`]). Readiness is the
//! dma-buf fd's `poll()`: [`Resv::is_ready`] answers at once, [`Resv::wait_ready`] blocks and
//! [`Resv::ready`] is the async form.
//!
//! ```
//! use dmabuf::fence::FenceContext;
//! use dmabuf::resv::{Access, Resv, Usage};
//!
//! let buffer = Resv::new();
//! let (reader, fence) = FenceContext::new("gpu", "ring0").next_fence();
//! let mut locked = buffer.lock_single();
//! locked.reserve_fences(1)?;
//! locked.add_fence(&fence, Usage::Read);
//! drop(locked);
//!
//! assert!(buffer.is_ready(Access::Read)); // readers share
//! assert!(!buffer.is_ready(Access::Write)); // a writer waits for the reader
//! reader.signal();
//! assert!(buffer.is_ready(Access::ReadWrite));
//! # Ok::<(), dmabuf::Error>(())
//! ```
//!
//! # Rules
//! * Flags are a non-empty subset of READ (1) | WRITE (2); anything else is
//!   [`Error::InvalidSyncFlags`] (`EINVAL`).
//! * A reader waits for the writers ([`Usage::Write`] and [`Usage::Kernel`] fences: poll's
//!   `EPOLLIN`); a writer, or a reader-writer, waits for every implicit fence
//!   ([`Usage::Read`] and below: `EPOLLOUT`). [`Usage::Bookkeep`] fences never count.
//! * A fence handed in with the WRITE flag is added as [`Usage::Write`], otherwise as
//!   [`Usage::Read`].
//!
//! # Differences from the kernel
//! * No fd and no wait queue: readiness is a query, a blocking wait or a future. The kernel
//!   arms at most one callback per direction per buffer (`cb_in`, `cb_out`); here every
//!   future arms its own.
//! * Readiness is read without the reservation lock (the kernel takes it to arm its callback).
//!
//! Kernel: `drivers/dma-buf/dma-buf.c` (`dma_buf_poll`, `dma_buf_export_sync_file`,
//! `dma_buf_import_sync_file`), `include/uapi/linux/dma-buf.h`; suite:
//! `tests/igt_dmabuf_sync_file.rs`.

use super::{Resv, Usage};
use crate::error::{Error, Result, TimedOut};
use crate::fence::FenceFuture;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What an implicitly synced user is about to do with a buffer (kernel: the
/// `DMA_BUF_SYNC_READ` / `DMA_BUF_SYNC_WRITE` flags of `struct dma_buf_export_sync_file` and
/// `struct dma_buf_import_sync_file`).
///
/// ```
/// use dmabuf::resv::{Access, Usage};
/// let rw = Access::from_flags(Access::SYNC_READ | Access::SYNC_WRITE)?;
/// assert_eq!(rw, Access::ReadWrite);
/// assert_eq!(rw.wait_usage(), Usage::Read); // waits for readers and writers
/// assert_eq!(rw.add_usage(), Usage::Write); // a fence imported with WRITE is a writer
/// assert_eq!(Access::from_flags(0).unwrap_err().errno(), dmabuf::Errno::EINVAL);
/// # Ok::<(), dmabuf::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reading (kernel: `DMA_BUF_SYNC_READ`): waits for writers only.
    Read,
    /// Writing (kernel: `DMA_BUF_SYNC_WRITE`): waits for readers and writers.
    Write,
    /// Both (kernel: `DMA_BUF_SYNC_RW`): waits as a writer.
    ReadWrite,
}

impl Access {
    /// The read flag (kernel: `DMA_BUF_SYNC_READ`).
    #[doc(alias = "DMA_BUF_SYNC_READ")]
    pub const SYNC_READ: u32 = 1;
    /// The write flag (kernel: `DMA_BUF_SYNC_WRITE`).
    #[doc(alias = "DMA_BUF_SYNC_WRITE")]
    pub const SYNC_WRITE: u32 = 2;
    /// Both flags (kernel: `DMA_BUF_SYNC_RW`).
    #[doc(alias = "DMA_BUF_SYNC_RW")]
    pub const SYNC_RW: u32 = Self::SYNC_READ | Self::SYNC_WRITE;

    /// Every access, in flag order.
    pub const ALL: [Access; 3] = [Access::Read, Access::Write, Access::ReadWrite];

    /// The access the ioctl flags ask for (kernel: the flag checks of
    /// `dma_buf_export_sync_file()` and `dma_buf_import_sync_file()`).
    ///
    /// # Errors
    /// [`Error::InvalidSyncFlags`] (`EINVAL`) if `flags` is zero or has a bit other than
    /// [`SYNC_READ`](Self::SYNC_READ) and [`SYNC_WRITE`](Self::SYNC_WRITE).
    pub fn from_flags(flags: u32) -> Result<Access> {
        match flags {
            Self::SYNC_READ => Ok(Access::Read),
            Self::SYNC_WRITE => Ok(Access::Write),
            Self::SYNC_RW => Ok(Access::ReadWrite),
            _ => Err(Error::InvalidSyncFlags(flags)),
        }
    }

    /// The ioctl flags for this access.
    pub fn to_flags(self) -> u32 {
        match self {
            Access::Read => Self::SYNC_READ,
            Access::Write => Self::SYNC_WRITE,
            Access::ReadWrite => Self::SYNC_RW,
        }
    }

    /// Whether the WRITE flag is set.
    pub fn is_write(self) -> bool {
        !matches!(self, Access::Read)
    }

    /// What this access must wait for (kernel: `dma_resv_usage_rw(flags & WRITE)`): every
    /// fence with usage ≤ the result.
    pub fn wait_usage(self) -> Usage {
        Usage::rw(self.is_write())
    }

    /// How a fence handed in for this access is added to the buffer (kernel:
    /// `dma_buf_import_sync_file()`): [`Usage::Write`] with the WRITE flag, else
    /// [`Usage::Read`].
    pub fn add_usage(self) -> Usage {
        if self.is_write() {
            Usage::Write
        } else {
            Usage::Read
        }
    }

    /// The uapi's name: `"read"`, `"write"` or `"rw"`.
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "rw",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Resv {
    /// Whether `access` could start now (kernel: `dma_buf_poll()`): for
    /// [`Access::Read`], `EPOLLIN` — every writer has signalled; for [`Access::Write`] and
    /// [`Access::ReadWrite`], `EPOLLOUT` — every reader and writer has. Kernel-usage fences
    /// always count, bookkeeping ones never. Lock-free.
    #[doc(alias = "dma_buf_poll")]
    #[doc(alias = "EPOLLIN")]
    #[doc(alias = "EPOLLOUT")]
    pub fn is_ready(&self, access: Access) -> bool {
        self.test_signaled(access.wait_usage())
    }

    /// Blocks until [`is_ready`](Self::is_ready) holds, or until `timeout` passes (`None`:
    /// no limit; a zero timeout polls). Fences added while waiting are waited for too.
    /// Lock-free; a blocking fence wait for the validator.
    ///
    /// Readiness is the kernel's: a fence that signalled with an error no longer blocks the
    /// access ([`Resv::wait`] says whether the work succeeded).
    ///
    /// # Errors
    /// [`TimedOut`] (`ETIME`) if a fence is still pending when the time is up.
    pub fn wait_ready(
        &self,
        access: Access,
        timeout: Option<Duration>,
    ) -> std::result::Result<(), TimedOut> {
        match timeout {
            None => {
                self.wait_for_signal(access.wait_usage());
                Ok(())
            }
            Some(t) => self.wait_for_signal_timeout(access.wait_usage(), t),
        }
    }

    /// A future that resolves once [`is_ready`](Self::is_ready) holds; runtime-agnostic.
    ///
    /// It awaits one pending fence at a time and looks at the object again after each, so a
    /// fence added meanwhile is awaited too; it never spins.
    ///
    /// ```
    /// use dmabuf::fence::FenceContext;
    /// use dmabuf::resv::{Access, Resv, Usage};
    /// use std::future::Future;
    /// use std::task::{Context, Waker};
    ///
    /// let buffer = Resv::new();
    /// let (writer, fence) = FenceContext::new("gpu", "ring0").next_fence();
    /// let mut locked = buffer.lock_single();
    /// locked.reserve_fences(1)?;
    /// locked.add_fence(&fence, Usage::Write);
    /// drop(locked);
    ///
    /// let mut ready = Box::pin(buffer.ready(Access::Read));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(ready.as_mut().poll(&mut cx).is_pending());
    /// writer.signal();
    /// assert!(ready.as_mut().poll(&mut cx).is_ready());
    /// # Ok::<(), dmabuf::Error>(())
    /// ```
    pub fn ready(&self, access: Access) -> ReadyFuture<'_> {
        ReadyFuture {
            resv: self,
            usage: access.wait_usage(),
            current: None,
        }
    }
}

/// Future returned by [`Resv::ready`].
#[must_use = "futures do nothing unless polled"]
pub struct ReadyFuture<'a> {
    resv: &'a Resv,
    /// What the access waits for.
    usage: Usage,
    /// The fence awaited now, from the latest look at the object.
    current: Option<FenceFuture>,
}

impl Future for ReadyFuture<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if let Some(fence) = this.current.as_mut() {
                if Pin::new(fence).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.current = None;
            }
            // Look again: the awaited fence has signalled, others may have been added.
            match this.resv.iter_unlocked(this.usage).next() {
                None => return Poll::Ready(()),
                Some(next) => this.current = Some(next.wait_async()),
            }
        }
    }
}

impl fmt::Debug for ReadyFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyFuture")
            .field("usage", &self.usage)
            .field("waiting", &self.current.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Errno;
    use crate::fence::{Fence, FenceContext};
    use crate::resv::ResvGuard;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    fn add(resv: &Resv, fence: &Fence, usage: Usage) {
        let mut g: ResvGuard<'_> = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(fence, usage);
    }

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn flags_round_trip() {
        for access in Access::ALL {
            assert_eq!(Access::from_flags(access.to_flags()).unwrap(), access);
        }
        assert_eq!(Access::from_flags(1).unwrap(), Access::Read);
        assert_eq!(Access::from_flags(2).unwrap(), Access::Write);
        assert_eq!(Access::from_flags(3).unwrap(), Access::ReadWrite);
        assert_eq!(Access::ReadWrite.to_string(), "rw");
    }

    #[test]
    fn from_flags_rejects_empty_and_unknown_bits() {
        for bad in [0, 4, 5, 7, 0x8000_0001, u32::MAX] {
            let err = Access::from_flags(bad).unwrap_err();
            assert_eq!(err, Error::InvalidSyncFlags(bad));
            assert_eq!(err.errno(), Errno::EINVAL);
        }
    }

    #[test]
    fn usages_follow_the_write_flag() {
        assert!(!Access::Read.is_write());
        assert!(Access::Write.is_write() && Access::ReadWrite.is_write());
        assert_eq!(Access::Read.wait_usage(), Usage::Write);
        assert_eq!(Access::Write.wait_usage(), Usage::Read);
        assert_eq!(Access::ReadWrite.wait_usage(), Usage::Read);
        assert_eq!(Access::Read.add_usage(), Usage::Read);
        assert_eq!(Access::Write.add_usage(), Usage::Write);
        assert_eq!(Access::ReadWrite.add_usage(), Usage::Write);
    }

    #[test]
    fn readiness_per_usage() {
        // (usage of the one pending fence, ready for Read, ready for Write/ReadWrite)
        let table = [
            (Usage::Kernel, false, false),
            (Usage::Write, false, false),
            (Usage::Read, true, false),
            (Usage::Bookkeep, true, true),
        ];
        for (usage, read, write) in table {
            let resv = Resv::new();
            assert!(Access::ALL.into_iter().all(|a| resv.is_ready(a)));
            let (s, f) = FenceContext::new("t", usage.name()).next_fence();
            add(&resv, &f, usage);
            assert_eq!(resv.is_ready(Access::Read), read, "{usage}");
            assert_eq!(resv.is_ready(Access::Write), write, "{usage}");
            assert_eq!(resv.is_ready(Access::ReadWrite), write, "{usage}");
            s.signal();
            assert!(Access::ALL.into_iter().all(|a| resv.is_ready(a)), "{usage}");
        }
    }

    #[test]
    fn readiness_ignores_bookkeep() {
        let resv = Resv::new();
        let (_s, f) = FenceContext::new("t", "bookkeep").next_fence();
        add(&resv, &f, Usage::Bookkeep);
        for access in Access::ALL {
            assert!(resv.is_ready(access), "{access}");
            assert_eq!(resv.wait_ready(access, Some(Duration::ZERO)), Ok(()));
            let mut fut = Box::pin(resv.ready(access));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_ready());
        }
        // Memory management still waits for it.
        assert!(!resv.test_signaled(Usage::Bookkeep));
    }

    #[test]
    fn wait_ready_times_out_then_succeeds() {
        let resv = Resv::new();
        let (s, f) = FenceContext::new("t", "wait").next_fence();
        add(&resv, &f, Usage::Write);
        assert_eq!(
            resv.wait_ready(Access::Read, Some(Duration::ZERO)),
            Err(TimedOut)
        );
        assert_eq!(
            resv.wait_ready(Access::Write, Some(Duration::from_millis(5))),
            Err(TimedOut)
        );
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            s.signal();
        });
        assert_eq!(resv.wait_ready(Access::ReadWrite, None), Ok(()));
        assert!(f.is_signaled());
        t.join().unwrap();
        assert_eq!(
            resv.wait_ready(Access::Read, Some(Duration::from_secs(1))),
            Ok(())
        );
    }

    #[test]
    fn ready_future_wakes_after_a_later_added_fence() {
        let resv = Resv::new();
        let a = FenceContext::new("t", "a");
        let b = FenceContext::new("t", "b");
        let (sa, fa) = a.next_fence();
        add(&resv, &fa, Usage::Write);

        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(resv.ready(Access::Read));
        assert!(fut.as_mut().poll(&mut cx).is_pending());

        // A second writer arrives before the first finishes.
        let (sb, fb) = b.next_fence();
        add(&resv, &fb, Usage::Write);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);

        sa.signal();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "woken by the first fence"
        );
        assert!(
            fut.as_mut().poll(&mut cx).is_pending(),
            "the later fence is still pending"
        );
        sb.signal();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            2,
            "woken by the later fence"
        );
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn ready_future_on_another_thread() {
        let resv = Arc::new(Resv::new());
        let (s, f) = FenceContext::new("t", "thread").next_fence();
        add(&resv, &f, Usage::Read);
        let r = resv.clone();
        let waiter = std::thread::spawn(move || block_on(r.ready(Access::Write)));
        std::thread::sleep(Duration::from_millis(5));
        s.signal();
        waiter.join().unwrap();
        assert!(resv.is_ready(Access::Write));
    }

    /// Runs a future to completion on this thread, parking between polls.
    fn block_on<F: Future>(fut: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}
