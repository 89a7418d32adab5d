//! The crate's error: a kernel answer with its errno, or a check made before asking.

use rustix::io::Errno;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, always with an errno ([`Error::errno`]).
///
/// [`Error::Sys`] is the kernel's own answer. The other variants are checks made before any
/// system call, where the kernel would have answered with the errno [`Error::errno`] gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{call}: {errno}")]
    Sys {
        /// The call, e.g. `"ioctl(DMA_BUF_IOCTL_SYNC)"`.
        call: &'static str,
        /// What the kernel answered.
        errno: Errno,
    },
    /// The descriptor is not a dma-buf (its file system is not the dma-buf pseudo file system).
    ///
    /// `errno` is what the kernel answers the dma-buf ioctls (sync, sync_file export and
    /// import, set name) issued on that file: `ENOTTY` from most (a sync_file, a pipe, a
    /// socket, a regular file), whose handlers do not know them, `EINVAL` from an epoll file
    /// (Linux 6.9 and later). [`DmaBufFd::from_fd`](crate::DmaBufFd::from_fd) asks the file
    /// with a sync whose flags no dma-buf accepts; a device file is not asked (a driver that
    /// reads only a command's number, as dma-heaps and DRM do, would run one of its own) and
    /// gets `ENOTTY`, what a device without those ioctls answers. Other calls on such a file
    /// answer for themselves (`lseek` on a sync_file `ESPIPE`, `mmap` `ENODEV`), and a driver
    /// importing it as a dma-buf (`dma_buf_get()`) `EINVAL`.
    #[error("not a dma-buf (file system magic {fs_magic:#x})")]
    NotDmaBuf {
        /// The file system magic `fstatfs` reported.
        fs_magic: u64,
        /// What the kernel answers the dma-buf ioctls on this file.
        errno: Errno,
    },
    /// The descriptor is not a sync_file: `SYNC_IOC_FILE_INFO` was refused with `errno`
    /// (`ENOTTY` from files without that ioctl, `EINVAL` from some drivers), as every
    /// sync_file ioctl issued on it would be.
    #[error("not a sync_file ({errno})")]
    NotSyncFile {
        /// The errno the probe got.
        errno: Errno,
    },
    /// An `O_PATH` descriptor: it names a file but cannot be used for I/O; the kernel's
    /// `fget()` refuses it with `EBADF`.
    #[error("O_PATH descriptor: not usable for I/O")]
    PathOnly,
    /// A buffer name longer than `DMA_BUF_SET_NAME` takes (31 bytes and the NUL); the kernel
    /// answers `EINVAL`. (Sync file merge names are cut to fit instead, as the kernel cuts
    /// them.)
    #[error("name of {len} bytes, at most 31 fit")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// A name with an interior NUL byte, or otherwise unusable (e.g. a heap name holding
    /// `/`); `EINVAL`.
    #[error("invalid name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// Flags outside the set the call accepts; `EINVAL`.
    #[error("invalid flags {flags:#x}")]
    InvalidFlags {
        /// The flags as given.
        flags: u64,
    },
    /// An offset or size that must be a multiple of the page size is not; `EINVAL`.
    #[error("{what} {value:#x} is not page-aligned")]
    Unaligned {
        /// Which argument.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A zero length where the kernel needs at least one page, or an empty payload to carry
    /// descriptors over a socket ([`send_fds`](crate::send_fds)); `EINVAL`.
    #[error("zero length")]
    ZeroLength,
    /// A range outside the file or mapping; `EINVAL`.
    #[error("range {offset:#x}+{len:#x} exceeds {size:#x}")]
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// Size of the object.
        size: u64,
    },
    /// A copy into a CPU-access bracket that is another buffer's, or not open for writing;
    /// `EINVAL`.
    #[error("the CPU-access bracket given is {0}")]
    WrongBracket(&'static str),
    /// A memfd given to udmabuf without the `F_SEAL_SHRINK` seal; the kernel answers `EINVAL`.
    #[error("memfd lacks the F_SEAL_SHRINK seal")]
    MissingShrinkSeal,
    /// A memfd given to udmabuf with the `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE` seal; the
    /// kernel answers `EINVAL` (for `F_SEAL_FUTURE_WRITE` since the December 2024 fix, in
    /// stable kernels too: a udmabuf mapping would bypass the seal).
    #[error("memfd has a write seal (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE)")]
    WriteSealed,
    /// A descriptor that should be a memfd does not support seals (`F_GET_SEALS` answered
    /// `errno`); udmabuf refuses any file that is not shmem (or hugetlbfs) with `EBADFD`,
    /// which is what [`Error::errno`] gives.
    #[error("not a sealable memfd ({errno})")]
    NotMemfd {
        /// What `F_GET_SEALS` answered (`EINVAL` for a file without seals, `EBADF` for an
        /// `O_PATH` descriptor).
        errno: Errno,
    },
    /// `/proc/self/fdinfo/<fd>` lacked a field or held one that does not parse; `EINVAL`.
    #[error("malformed fdinfo: field {field}")]
    MalformedFdInfo {
        /// The field that was missing or malformed.
        field: &'static str,
    },
    /// A wait ran out of time (`ETIME`, as libsync's `sync_wait` and the syncobj waits).
    #[error("timed out")]
    TimedOut,
    /// A library buffer was given where a buffer of a particular exporter was needed (a
    /// memfd buffer for udmabuf, a [`KernelBuffer`](crate::KernelBuffer)'s for its fences).
    #[error("a buffer of exporter {exporter:?} cannot be used here")]
    WrongExporter {
        /// The buffer's exporter.
        exporter: String,
    },
    /// The file is not a DRM device: not a character device of the DRM major (226). Its errno
    /// is `ENOTTY`, what most such files answer a DRM ioctl.
    #[error("not a DRM device")]
    NotDrmDevice,
    /// No DRM render node under `/dev/dri` has a driver with timeline syncobjs
    /// (`DRM_CAP_SYNCOBJ_TIMELINE`); `ENODEV`. `checked` names each node tried and why it was
    /// passed over, empty when there is none.
    #[error("no DRM render node supports timeline syncobjs (checked: {checked})")]
    NoTimelineSyncobj {
        /// The nodes tried, each with its driver or the error that opening it gave.
        checked: String,
    },
    /// The descriptor is not a syncobj file (its anonymous inode is not `syncobj_file`); the
    /// kernel's `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` answers `EINVAL` for it.
    #[error("not a syncobj file")]
    NotSyncobjFile,
    /// A syncobj of another open DRM device file was given: handles are per file, so the
    /// kernel would look the number up in the wrong table and answer `ENOENT` (or act on
    /// another object).
    #[error("a syncobj of another DRM device file")]
    ForeignSyncobj,
    /// A call that takes syncobjs was given none; the kernel answers `EINVAL`.
    #[error("{call} with no syncobj")]
    NoSyncobjs {
        /// The call.
        call: &'static str,
    },
    /// A syncobj (or timeline point) has no fence yet, and the call needs one: a wait without
    /// `WAIT_FOR_SUBMIT` (or `WAIT_AVAILABLE`), an export, or a transfer from it. The kernel
    /// answers `EINVAL`.
    #[error("{call}: no fence submitted for the syncobj or point")]
    Unsubmitted {
        /// The call.
        call: &'static str,
    },
    /// The kernel does not have the call (`DRM_IOCTL_SYNCOBJ_EVENTFD` before Linux 6.6, which
    /// the DRM core refuses as an unknown ioctl with `EINVAL`), or the driver does not support
    /// it (`EOPNOTSUPP` from a driver without timeline syncobjs).
    #[error("{call} is not supported by this kernel or driver ({errno})")]
    Unsupported {
        /// The call.
        call: &'static str,
        /// What the kernel answered.
        errno: Errno,
    },
    /// A message received over a Unix socket did not fit: its payload was cut
    /// (`MSG_TRUNC`), or it carried more descriptors than were asked for (`MSG_CTRUNC`, or
    /// more than the limit in the control buffer). Every descriptor that arrived has been
    /// closed; `EMSGSIZE`.
    #[error("message truncated ({bytes} bytes, {fds} descriptors received and closed)")]
    MessageTruncated {
        /// Payload bytes received.
        bytes: usize,
        /// Descriptors received (and closed).
        fds: usize,
    },
    /// The in-process library refused (exporting a buffer, adding fences, …).
    #[error(transparent)]
    Library(#[from] dmabuf::Error),
}

impl Error {
    /// The errno of this error: the kernel's answer for [`Error::Sys`], and for the checks the
    /// errno the kernel would have given.
    pub fn errno(&self) -> Errno {
        match self {
            Error::Sys { errno, .. }
            | Error::NotSyncFile { errno }
            | Error::NotDmaBuf { errno, .. } => *errno,
            Error::NotMemfd { .. } => Errno::BADFD,
            Error::PathOnly => Errno::BADF,
            Error::Library(e) => e.errno().into(),
            Error::TimedOut => Errno::TIME,
            Error::Unsupported { errno, .. } => *errno,
            Error::NotDrmDevice => Errno::NOTTY,
            Error::NoTimelineSyncobj { .. } => Errno::NODEV,
            Error::ForeignSyncobj => Errno::NOENT,
            Error::MessageTruncated { .. } => Errno::MSGSIZE,
            Error::NotSyncobjFile | Error::NoSyncobjs { .. } | Error::Unsubmitted { .. } => {
                Errno::INVAL
            }
            Error::NameTooLong { .. }
            | Error::InvalidName { .. }
            | Error::InvalidFlags { .. }
            | Error::Unaligned { .. }
            | Error::ZeroLength
            | Error::OutOfRange { .. }
            | Error::WrongBracket(_)
            | Error::MissingShrinkSeal
            | Error::WriteSealed
            | Error::MalformedFdInfo { .. }
            | Error::WrongExporter { .. } => Errno::INVAL,
        }
    }

    /// A closure turning an errno into [`Error::Sys`] for `call`.
    pub(crate) fn sys(call: &'static str) -> impl FnOnce(Errno) -> Error {
        move |errno| Error::Sys { call, errno }
    }
}

impl From<Error> for dmabuf::Error {
    /// A library error passes through; any other becomes [`dmabuf::Error::Os`] with the
    /// errno.
    fn from(e: Error) -> Self {
        match e {
            Error::Library(e) => e,
            Error::Sys { call, .. } => dmabuf::Error::Os {
                call,
                errno: e.errno().into(),
            },
            other => dmabuf::Error::Os {
                call: "dmabuf-linux",
                errno: other.errno().into(),
            },
        }
    }
}

impl From<Error> for std::io::Error {
    /// The OS error of [`Error::errno`]: `raw_os_error()` gives the errno back and `kind()` is
    /// the one std gives that errno, as for an error of a plain system call. The call's name
    /// and the variant's details are not kept (an `io::Error` cannot carry both an errno and
    /// a payload); log the [`Error`] first where they matter.
    fn from(e: Error) -> Self {
        std::io::Error::from_raw_os_error(e.errno().raw_os_error())
    }
}
