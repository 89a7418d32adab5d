//! Kernel dma-bufs: a shared buffer as a file descriptor (kernel: `struct dma_buf`).
//!
//! A [`DmaBufFd`] owns a descriptor checked to be a dma-buf (its file lives on the dma-buf
//! pseudo file system, magic [`DMA_BUF_MAGIC`]). CPU access goes through a bracket
//! ([`CpuAccessGuard`], `DMA_BUF_IOCTL_SYNC` START then END) and a mapping hands out bytes only
//! inside one ([`MappedDmaBuf`]). Implicit sync bridges to explicit sync with
//! [`DmaBufFd::export_sync_file`] and [`DmaBufFd::import_sync_file`].
//!
//! [`Access`] is a local copy of `dmabuf::resv::Access` (same variants, same flags), so this
//! crate stands alone.
//!
//! Kernel: `drivers/dma-buf/dma-buf.c`, uAPI `include/uapi/linux/dma-buf.h`.

use crate::error::{Error, Result};
use crate::sync_file::SyncFileFd;
use crate::{poll, uapi};
use rustix::event::PollFlags;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, OFlags, SeekFrom};
use rustix::io::Errno;
use std::ffi::CString;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// The dma-buf pseudo file system's magic (`"DMAB"`), as `fstatfs` reports it.
pub const DMA_BUF_MAGIC: u64 = 0x444d_4142;

pub use dmabuf::resv::Access;

/// The uAPI flags of an access: `DMA_BUF_SYNC_READ` 1, `DMA_BUF_SYNC_WRITE` 2, both 3.
fn sync_flags(access: Access) -> u32 {
    access.to_flags()
}

/// The `poll` event that reports `access` ready: `POLLIN` (no pending writer) for reading,
/// `POLLOUT` (nothing pending) otherwise.
fn poll_event(access: Access) -> PollFlags {
    if access.is_write() {
        PollFlags::OUT
    } else {
        PollFlags::IN
    }
}

/// A dma-buf's `/proc/self/fdinfo/<fd>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmaBufFdInfo {
    /// The buffer's size in bytes (`size:`).
    pub size: u64,
    /// References to the buffer's file (`count:`).
    pub count: u64,
    /// The exporter's name, e.g. `system` or `udmabuf` (`exp_name:`).
    pub exp_name: String,
    /// The name set with `DMA_BUF_SET_NAME` (`name:`), `None` if never set.
    pub name: Option<String>,
}

impl DmaBufFdInfo {
    /// Parses the text of a dma-buf's fdinfo file.
    ///
    /// # Errors
    /// [`Error::MalformedFdInfo`] naming the first missing or malformed field.
    pub fn parse(text: &str) -> Result<DmaBufFdInfo> {
        let field = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k == key).then(|| v.trim().to_owned())
            })
        };
        let number = |key: &'static str| {
            field(key)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(Error::MalformedFdInfo { field: key })
        };
        Ok(DmaBufFdInfo {
            size: number("size")?,
            count: number("count")?,
            exp_name: field("exp_name").ok_or(Error::MalformedFdInfo { field: "exp_name" })?,
            name: field("name"),
        })
    }
}

/// An owned kernel dma-buf descriptor.
#[derive(Debug)]
pub struct DmaBufFd(OwnedFd);

impl DmaBufFd {
    /// `fstatfs(fd)`—Takes `fd` if it is a dma-buf.
    ///
    /// The file system tells, not a dma-buf ioctl: one sent to a device file whose driver
    /// reads only the command's number (a dma-heap, a DRM device) would run one of that
    /// driver's own commands. A file that is not a dma-buf and not a device is then asked a
    /// `DMA_BUF_IOCTL_SYNC` with flags no dma-buf accepts, for the errno the dma-buf ioctls
    /// get from it.
    ///
    /// # Errors
    /// The error and `fd`, unchanged: [`Error::PathOnly`] (`EBADF`) for an `O_PATH`
    /// descriptor, [`Error::NotDmaBuf`] with the errno the kernel answers the dma-buf ioctls
    /// on that file (`ENOTTY` from most) for any other file, [`Error::Sys`] if `fcntl`,
    /// `fstatfs` or `fstat` fail.
    ///
    /// # References
    ///  - [Linux `fstatfs`](https://man7.org/linux/man-pages/man2/fstatfs.2.html)
    pub fn from_fd(fd: OwnedFd) -> std::result::Result<DmaBufFd, (Error, OwnedFd)> {
        match check_dma_buf(fd.as_fd()) {
            Ok(()) => Ok(DmaBufFd(fd)),
            Err(e) => Err((e, fd)),
        }
    }

    /// Wraps a descriptor the kernel just returned as a dma-buf.
    pub(crate) fn from_kernel(fd: OwnedFd) -> DmaBufFd {
        DmaBufFd(fd)
    }

    /// `lseek(fd, 0, SEEK_END)`, then `lseek(fd, 0, SEEK_SET)`—The buffer's size in bytes.
    ///
    /// A dma-buf accepts only these two seeks.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn size(&self) -> Result<u64> {
        dma_buf_size(self.0.as_fd())
    }

    /// `ioctl(fd, DMA_BUF_IOCTL_SYNC, {START | access})`—Opens a CPU-access bracket.
    ///
    /// The kernel waits for the device fences `access` conflicts with and makes caches
    /// coherent; the bracket does not exclude other users. Restarts on `EINTR` and `EAGAIN`.
    /// The guard issues the matching END when dropped or [`end`](CpuAccessGuard::end)ed.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "DMA_BUF_IOCTL_SYNC")]
    pub fn begin_cpu_access(&self, access: Access) -> Result<CpuAccessGuard<'_>> {
        self.sync(u64::from(sync_flags(access)))?;
        Ok(CpuAccessGuard {
            buf: self,
            access,
            ended: false,
        })
    }

    /// `ioctl(fd, DMA_BUF_IOCTL_SYNC, {flags})`—One raw sync call, restarted on `EINTR` and
    /// `EAGAIN`.
    ///
    /// Prefer [`begin_cpu_access`](Self::begin_cpu_access), which pairs START with END.
    ///
    /// # Errors
    /// [`Error::InvalidFlags`] before the ioctl for flags outside READ | WRITE | END or with
    /// neither READ nor WRITE; [`Error::Sys`] with the kernel's errno.
    pub fn sync(&self, flags: u64) -> Result<()> {
        check_sync_flags(flags)?;
        loop {
            match uapi::dma_buf_sync(self.0.as_fd(), flags) {
                Ok(()) => return Ok(()),
                Err(Errno::INTR | Errno::AGAIN) => continue,
                Err(e) => return Err(Error::sys("ioctl(DMA_BUF_IOCTL_SYNC)")(e)),
            }
        }
    }

    /// `ioctl(fd, DMA_BUF_SET_NAME_B, name)`—Names the buffer for fdinfo and debugfs.
    ///
    /// Linux before 5.8 lacks the ioctl (`ENOTTY`); before 6.0 it answered `EBUSY` while the
    /// buffer was attached.
    ///
    /// The kernel reads `name` as a C string of at most 32 bytes with its NUL: the name is what
    /// comes before the first NUL, and one of 32 bytes or more before it is refused (`EINVAL`,
    /// from `strndup_user()`).
    ///
    /// # Errors
    /// [`Error::NameTooLong`] (`EINVAL`) for 32 bytes or more before the first NUL, before the
    /// ioctl; [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "DMA_BUF_SET_NAME")]
    pub fn set_name(&self, name: &str) -> Result<()> {
        let name = check_name(name)?;
        uapi::dma_buf_set_name(self.0.as_fd(), &name).map_err(Error::sys("ioctl(DMA_BUF_SET_NAME)"))
    }

    /// `ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, {access})`—A sync_file of the fences that
    /// `access` would wait for now.
    ///
    /// Reading snapshots the writers; writing snapshots everyone. With nothing pending the
    /// kernel returns a signalled stub. The snapshot is not atomic with later submissions.
    /// Linux before 6.0 lacks the ioctl (`ENOTTY`).
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    #[doc(alias = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE")]
    pub fn export_sync_file(&self, access: Access) -> Result<SyncFileFd> {
        uapi::dma_buf_export_sync_file(self.0.as_fd(), sync_flags(access))
            .map(SyncFileFd::from_kernel)
            .map_err(Error::sys("ioctl(DMA_BUF_IOCTL_EXPORT_SYNC_FILE)"))
    }

    /// `ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, {access, sync_file})`—Adds the sync_file's
    /// fences to the buffer's implicit-sync state, as writers for [`Access::Write`] and
    /// [`Access::ReadWrite`], else as readers.
    ///
    /// `sync_file` is any descriptor, usually a [`SyncFileFd`]: the kernel checks it is a
    /// sync_file. Linux before 6.0 lacks the ioctl (`ENOTTY`).
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno: `EINVAL` when `sync_file` is not a sync_file.
    #[doc(alias = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE")]
    pub fn import_sync_file(&self, sync_file: impl AsFd, access: Access) -> Result<()> {
        let sync_file = sync_file.as_fd().as_raw_fd();
        uapi::dma_buf_import_sync_file(self.0.as_fd(), sync_flags(access), sync_file)
            .map_err(Error::sys("ioctl(DMA_BUF_IOCTL_IMPORT_SYNC_FILE)"))
    }

    /// `poll(fd, POLLIN or POLLOUT, 0)`—Whether `access` would start now without waiting on
    /// implicit fences.
    ///
    /// # Errors
    /// [`Error::Sys`] from `poll`.
    pub fn is_ready(&self, access: Access) -> Result<bool> {
        let ev = poll_event(access);
        poll::poll_one(self.0.as_fd(), ev, Some(Duration::ZERO)).map(|r| r.contains(ev))
    }

    /// `poll(fd, POLLIN or POLLOUT, timeout)`—Waits until `access` could start; `None` waits
    /// forever. Restarts on `EINTR` with the time left.
    ///
    /// # Errors
    /// [`Error::TimedOut`] (`ETIME`); [`Error::Sys`] from `poll`.
    pub fn wait_ready(&self, access: Access, timeout: Option<Duration>) -> Result<()> {
        poll::wait_one(self.0.as_fd(), poll_event(access), timeout)
    }

    /// Reads `/proc/self/fdinfo/<fd>`—Size, file references, exporter and name.
    ///
    /// # Errors
    /// [`Error::Sys`] if the file cannot be read (no `/proc`), [`Error::MalformedFdInfo`].
    pub fn fdinfo(&self) -> Result<DmaBufFdInfo> {
        let path = format!("/proc/self/fdinfo/{}", self.0.as_raw_fd());
        let text = std::fs::read_to_string(path).map_err(|e| Error::Sys {
            call: "read(/proc/self/fdinfo)",
            errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
        })?;
        DmaBufFdInfo::parse(&text)
    }

    /// `mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`—Maps the whole buffer.
    ///
    /// The descriptor must be open read-write (`EACCES` otherwise). Not every exporter allows
    /// mapping (`EINVAL`).
    ///
    /// # Errors
    /// [`Error::ZeroLength`] for an empty buffer; [`Error::Sys`] with the kernel's errno.
    pub fn mmap(&self) -> Result<MappedDmaBuf<'_>> {
        let size = self.size()?;
        if size == 0 {
            return Err(Error::ZeroLength);
        }
        let len = usize::try_from(size).map_err(|_| Error::sys("mmap")(Errno::NOMEM))?;
        let map = uapi::Mapping::new(&self.0, len).map_err(Error::sys("mmap"))?;
        Ok(MappedDmaBuf { buf: self, map })
    }
}

crate::owned_fd_newtype!(DmaBufFd);

/// An open CPU-access bracket; dropping it issues the END (kernel:
/// `dma_buf_end_cpu_access()`).
#[derive(Debug)]
#[must_use = "dropping the guard ends the CPU access at once"]
#[clippy::has_significant_drop]
pub struct CpuAccessGuard<'a> {
    buf: &'a DmaBufFd,
    access: Access,
    ended: bool,
}

impl CpuAccessGuard<'_> {
    /// The access this bracket was opened for.
    pub fn access(&self) -> Access {
        self.access
    }

    /// `ioctl(fd, DMA_BUF_IOCTL_SYNC, {END | access})`—Closes the bracket, reporting errors
    /// that a drop would only log.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno.
    pub fn end(mut self) -> Result<()> {
        self.ended = true;
        self.buf
            .sync(uapi::DMA_BUF_SYNC_END | u64::from(sync_flags(self.access)))
    }
}

impl Drop for CpuAccessGuard<'_> {
    fn drop(&mut self) {
        if !self.ended
            && let Err(e) = self
                .buf
                .sync(uapi::DMA_BUF_SYNC_END | u64::from(sync_flags(self.access)))
        {
            tracing::warn!(error = %e, "DMA_BUF_IOCTL_SYNC END failed on drop");
        }
    }
}

/// A mapping of a whole dma-buf; unmapped on drop.
///
/// Bytes are reachable only inside a CPU-access bracket: through a closure
/// ([`read`](Self::read), [`write`](Self::write), [`read_write`](Self::read_write)) or by
/// copying ([`copy_to_slice`](Self::copy_to_slice), [`copy_from_slice`](Self::copy_from_slice)).
/// No view outlives its bracket. The bracket keeps caches coherent but does not stop other
/// mappings, processes or devices from writing the buffer meanwhile, so the closures see the
/// bytes as [`AtomicU8`]s (relaxed loads and stores compile to plain byte moves), never as
/// `&[u8]` / `&mut [u8]`, which would promise that nobody else changes them. A copy racing
/// another writer gets some mix of the old and new bytes.
///
/// ```no_run
/// use dmabuf_linux::DmaHeap;
/// use std::sync::atomic::Ordering::Relaxed;
/// let buf = DmaHeap::open("system")?.alloc(4096)?;
/// let map = buf.mmap()?;
/// map.write(|bytes| bytes.iter().for_each(|b| b.store(0x5a, Relaxed)))?;
/// map.copy_from_slice(0, b"frame")?;
/// let mut head = [0u8; 5];
/// map.copy_to_slice(0, &mut head)?;
/// assert_eq!(&head, b"frame");
/// # Ok::<(), dmabuf_linux::Error>(())
/// ```
#[derive(Debug)]
pub struct MappedDmaBuf<'a> {
    buf: &'a DmaBufFd,
    map: uapi::Mapping,
}

impl std::fmt::Debug for uapi::Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len()).finish()
    }
}

/// Copies shared bytes out (relaxed atomic loads).
pub(crate) fn load_bytes(src: &[AtomicU8], dst: &mut [u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.load(Ordering::Relaxed);
    }
}

/// Copies bytes into shared memory (relaxed atomic stores).
pub(crate) fn store_bytes(dst: &[AtomicU8], src: &[u8]) {
    for (d, s) in dst.iter().zip(src) {
        d.store(*s, Ordering::Relaxed);
    }
}

impl MappedDmaBuf<'_> {
    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never: empty buffers are not mapped).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Runs `f` on the bytes inside a READ bracket.
    ///
    /// # Errors
    /// [`Error::Sys`] from the START or END sync.
    pub fn read<R>(&self, f: impl FnOnce(&[AtomicU8]) -> R) -> Result<R> {
        self.bracketed(Access::Read, f)
    }

    /// Runs `f` on the bytes inside a WRITE bracket.
    ///
    /// # Errors
    /// [`Error::Sys`] from the START or END sync.
    pub fn write<R>(&self, f: impl FnOnce(&[AtomicU8]) -> R) -> Result<R> {
        self.bracketed(Access::Write, f)
    }

    /// Runs `f` on the bytes inside a READ | WRITE bracket.
    ///
    /// # Errors
    /// [`Error::Sys`] from the START or END sync.
    pub fn read_write<R>(&self, f: impl FnOnce(&[AtomicU8]) -> R) -> Result<R> {
        self.bracketed(Access::ReadWrite, f)
    }

    /// Copies `dst.len()` bytes from `offset` inside a READ bracket.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] before any sync; [`Error::Sys`] from the syncs.
    pub fn copy_to_slice(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        let range = self.range(offset, dst.len())?;
        self.read(|b| load_bytes(&b[range], dst))
    }

    /// Copies `src` to `offset` inside a WRITE bracket.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] before any sync; [`Error::Sys`] from the syncs.
    pub fn copy_from_slice(&self, offset: usize, src: &[u8]) -> Result<()> {
        let range = self.range(offset, src.len())?;
        self.write(|b| store_bytes(&b[range], src))
    }

    /// Copies `src` to `offset` inside `bracket`, a write (or read-write) bracket the caller
    /// has open on this buffer, without opening one of its own.
    ///
    /// For a writer that publishes its own write fence in the buffer (a sync file imported
    /// with [`DmaBufFd::import_sync_file`]) between opening the bracket and writing: the
    /// bracket's START waited for the fences before it, and the bytes are written behind the
    /// writer's own fence, which a reader's bracket or sync file then waits for. A copy with
    /// a bracket of its own ([`copy_from_slice`](Self::copy_from_slice)) would wait for that
    /// fence, which signals only after the write.
    ///
    /// # Errors
    /// [`Error::OutOfRange`]; [`Error::WrongBracket`] for another buffer's bracket or a
    /// read-only one.
    pub fn copy_from_slice_in(
        &self,
        bracket: &CpuAccessGuard<'_>,
        offset: usize,
        src: &[u8],
    ) -> Result<()> {
        if !std::ptr::eq(bracket.buf, self.buf) {
            return Err(Error::WrongBracket("another buffer's"));
        }
        if bracket.access == Access::Read {
            return Err(Error::WrongBracket("open for reading only"));
        }
        let range = self.range(offset, src.len())?;
        store_bytes(&self.map.bytes()[range], src);
        Ok(())
    }

    fn bracketed<R>(&self, access: Access, f: impl FnOnce(&[AtomicU8]) -> R) -> Result<R> {
        let guard = self.buf.begin_cpu_access(access)?;
        let r = f(self.map.bytes());
        guard.end()?;
        Ok(r)
    }

    fn range(&self, offset: usize, len: usize) -> Result<std::ops::Range<usize>> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(offset..end),
            _ => Err(Error::OutOfRange {
                offset: offset as u64,
                len: len as u64,
                size: self.len() as u64,
            }),
        }
    }
}

/// `lseek(fd, 0, SEEK_END)`, then back to the start: a dma-buf's size.
pub(crate) fn dma_buf_size(fd: BorrowedFd<'_>) -> Result<u64> {
    let size = rustix::fs::seek(fd, SeekFrom::End(0)).map_err(Error::sys("lseek"))?;
    rustix::fs::seek(fd, SeekFrom::Start(0)).map_err(Error::sys("lseek"))?;
    Ok(size)
}

/// Checks `fd` is a usable dma-buf descriptor.
fn check_dma_buf(fd: BorrowedFd<'_>) -> Result<()> {
    let fl = rustix::fs::fcntl_getfl(fd).map_err(Error::sys("fcntl(F_GETFL)"))?;
    if fl.contains(OFlags::PATH) {
        return Err(Error::PathOnly);
    }
    let st = rustix::fs::fstatfs(fd).map_err(Error::sys("fstatfs"))?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let magic = st.f_type as u64;
    if magic == DMA_BUF_MAGIC {
        return Ok(());
    }
    let mode = rustix::fs::fstat(fd).map_err(Error::sys("fstat"))?.st_mode;
    let errno = match FileType::from_raw_mode(mode) {
        FileType::CharacterDevice | FileType::BlockDevice => Errno::NOTTY,
        // Flags 0 have neither READ nor WRITE: nothing that takes the command syncs anything.
        _ => uapi::dma_buf_sync(fd, 0).err().unwrap_or(Errno::NOTTY),
    };
    Err(Error::NotDmaBuf {
        fs_magic: magic,
        errno,
    })
}

/// The kernel's rule for `DMA_BUF_IOCTL_SYNC` flags.
fn check_sync_flags(flags: u64) -> Result<()> {
    let rw = uapi::DMA_BUF_SYNC_READ | uapi::DMA_BUF_SYNC_WRITE;
    if flags & !uapi::DMA_BUF_SYNC_VALID_FLAGS_MASK != 0 || flags & rw == 0 {
        Err(Error::InvalidFlags { flags })
    } else {
        Ok(())
    }
}

/// A buffer name as the C string `DMA_BUF_SET_NAME` reads.
/// The name as `DMA_BUF_SET_NAME` keeps it: up to the first NUL, refused at 32 bytes or more.
fn check_name(name: &str) -> Result<CString> {
    let name = name.split('\0').next().unwrap_or_default();
    if name.len() >= uapi::DMA_BUF_NAME_LEN {
        return Err(Error::NameTooLong { len: name.len() });
    }
    // No NUL is left in `name`.
    CString::new(name).map_err(|_| Error::InvalidName { name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_flags_follow_the_kernel_rule() {
        for ok in [1, 2, 3, 1 | 4, 2 | 4, 3 | 4] {
            assert_eq!(check_sync_flags(ok), Ok(()), "{ok:#x}");
        }
        for bad in [0, 4, 8, 1 | 8, u64::MAX] {
            assert_eq!(
                check_sync_flags(bad),
                Err(Error::InvalidFlags { flags: bad })
            );
        }
    }

    #[test]
    fn names_are_c_strings_of_at_most_31_bytes() {
        assert!(check_name(&"n".repeat(31)).is_ok());
        assert_eq!(
            check_name(&"n".repeat(32)),
            Err(Error::NameTooLong { len: 32 })
        );
        // A C string: what comes before the first NUL, whatever follows it.
        assert_eq!(check_name("a\0b").unwrap().as_bytes(), b"a");
        assert_eq!(
            check_name(&format!("short\0{}", "n".repeat(40)))
                .unwrap()
                .as_bytes(),
            b"short"
        );
        assert_eq!(check_name("\0").unwrap().as_bytes(), b"");
    }

    #[test]
    fn access_flags_and_poll_events() {
        assert_eq!(sync_flags(Access::Read), uapi::DMA_BUF_SYNC_READ as u32);
        assert_eq!(sync_flags(Access::Write), uapi::DMA_BUF_SYNC_WRITE as u32);
        assert_eq!(sync_flags(Access::ReadWrite), 3);
        assert_eq!(poll_event(Access::Read), PollFlags::IN);
        assert_eq!(poll_event(Access::ReadWrite), PollFlags::OUT);
    }

    #[test]
    fn fdinfo_parses_the_kernel_layout() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1042\nsize:\t1048576\n\
                    count:\t2\nexp_name:\tsystem\nname:\tframe 7\n";
        let info = DmaBufFdInfo::parse(text).unwrap();
        assert_eq!(
            info,
            DmaBufFdInfo {
                size: 1 << 20,
                count: 2,
                exp_name: "system".into(),
                name: Some("frame 7".into()),
            }
        );
        let unnamed = DmaBufFdInfo::parse("size:\t4096\ncount:\t1\nexp_name:\tudmabuf\n").unwrap();
        assert_eq!(unnamed.name, None);
        assert_eq!(
            DmaBufFdInfo::parse("size:\tx\ncount:\t1\nexp_name:\ta\n"),
            Err(Error::MalformedFdInfo { field: "size" })
        );
        assert_eq!(
            DmaBufFdInfo::parse("pos:\t0\n"),
            Err(Error::MalformedFdInfo { field: "size" })
        );
    }
}
