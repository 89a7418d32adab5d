//! DRM devices: the render nodes under `/dev/dri` that sync objects live in (kernel:
//! `drivers/gpu/drm/drm_ioctl.c`, uAPI `include/uapi/drm/drm.h`).
//!
//! A [`DrmDevice`] is an open DRM device file, checked to be one (a character device of the
//! DRM major), with its driver's name and version (`DRM_IOCTL_VERSION`) and the capabilities
//! syncobj users ask for (`DRM_IOCTL_GET_CAP`). It is cheap to clone: the clones share the
//! file, and every [`Syncobj`](crate::Syncobj) of it keeps the file open, since a syncobj
//! handle means something only in the file that holds it.

use crate::error::{Error, Result};
use crate::sync_file::c_name;
use crate::uapi;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the kernel puts DRM device nodes.
pub const DRM_DIR: &str = "/dev/dri";

/// The DRM character devices' major number.
const DRM_MAJOR: u32 = 226;

/// `DRM_CAP_PRIME`, whose value has `DRM_PRIME_CAP_IMPORT` (1) and `DRM_PRIME_CAP_EXPORT` (2).
pub const DRM_CAP_PRIME: u64 = 0x5;
/// `DRM_CAP_SYNCOBJ`: the driver has sync objects.
pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
/// `DRM_CAP_SYNCOBJ_TIMELINE`: the driver has timeline operations on sync objects.
pub const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;

/// A DRM driver's identity, as `DRM_IOCTL_VERSION` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion {
    /// The driver's name, e.g. `virtio_gpu`, `i915`, `amdgpu`, `vgem`.
    pub name: String,
    /// Major version.
    pub major: i32,
    /// Minor version.
    pub minor: i32,
    /// Patch level.
    pub patchlevel: i32,
    /// The driver's date string (empty on kernels that no longer report one).
    pub date: String,
    /// The driver's description.
    pub description: String,
}

/// The capabilities a syncobj user needs, as `DRM_IOCTL_GET_CAP` answers them when the
/// device is opened (a capability the driver does not answer counts as absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrmCapabilities {
    /// `DRM_CAP_SYNCOBJ`: binary sync objects.
    pub syncobj: bool,
    /// `DRM_CAP_SYNCOBJ_TIMELINE`: timeline sync objects (query, transfer, timeline waits and
    /// signals, eventfd).
    pub syncobj_timeline: bool,
    /// `DRM_CAP_PRIME` & `DRM_PRIME_CAP_IMPORT`: dma-bufs import as buffer objects.
    pub prime_import: bool,
    /// `DRM_CAP_PRIME` & `DRM_PRIME_CAP_EXPORT`: buffer objects export as dma-bufs.
    pub prime_export: bool,
}

/// An open DRM device file (usually a render node, `/dev/dri/renderD*`).
///
/// Clones share the file. Sync objects made or imported through it hold a clone, so the
/// file stays open while any of them exists.
#[derive(Clone)]
pub struct DrmDevice(Arc<Inner>);

struct Inner {
    fd: OwnedFd,
    path: PathBuf,
    driver: DriverVersion,
    caps: DrmCapabilities,
}

impl DrmDevice {
    /// `open(path, O_RDWR | O_CLOEXEC)`—Opens a DRM device node, checks it is one, and reads
    /// its driver's version and capabilities.
    ///
    /// # Errors
    /// [`Error::Sys`] from `open`, `fstat` or the DRM ioctls; [`Error::NotDrmDevice`]
    /// (`ENOTTY`) for a file that is not a character device of the DRM major.
    pub fn open(path: impl AsRef<Path>) -> Result<DrmDevice> {
        let path = path.as_ref();
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(Error::sys("open(/dev/dri/<node>)"))?;
        DrmDevice::from_fd(fd, path.to_owned()).map_err(|(e, _fd)| e)
    }

    /// Takes an open descriptor of a DRM device (`path` is only for [`path`](Self::path) and
    /// messages).
    ///
    /// # Errors
    /// As [`open`](Self::open), handing `fd` back.
    pub fn from_fd(fd: OwnedFd, path: PathBuf) -> std::result::Result<DrmDevice, (Error, OwnedFd)> {
        match describe(fd.as_fd()) {
            Ok((driver, caps)) => Ok(DrmDevice(Arc::new(Inner {
                fd,
                path,
                driver,
                caps,
            }))),
            Err(e) => Err((e, fd)),
        }
    }

    /// The first render node under `/dev/dri` (by number) whose driver supports timeline
    /// syncobjs.
    ///
    /// # Errors
    /// [`Error::NoTimelineSyncobj`] (`ENODEV`) when there is none, naming the nodes tried.
    pub fn find_timeline_syncobj() -> Result<DrmDevice> {
        DrmDevice::find_timeline_syncobj_in(DRM_DIR)
    }

    /// [`find_timeline_syncobj`](Self::find_timeline_syncobj) among the `renderD*` nodes of
    /// `dir` (a directory laid out as `/dev/dri`, e.g. inside a container's root).
    ///
    /// # Errors
    /// [`Error::NoTimelineSyncobj`] (`ENODEV`) when there is none (or `dir` cannot be read),
    /// naming the nodes tried.
    pub fn find_timeline_syncobj_in(dir: impl AsRef<Path>) -> Result<DrmDevice> {
        let dir = dir.as_ref();
        let mut nodes: Vec<(u32, PathBuf)> = match std::fs::read_dir(dir) {
            Ok(dir) => dir
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name();
                    let n = name.to_str()?.strip_prefix("renderD")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        nodes.sort();
        let mut checked = Vec::new();
        for (_, path) in nodes {
            match DrmDevice::open(&path) {
                Ok(dev) if dev.capabilities().syncobj_timeline => return Ok(dev),
                Ok(dev) => checked.push(format!(
                    "{} ({}: no timeline syncobjs)",
                    path.display(),
                    dev.driver().name
                )),
                Err(e) => checked.push(format!("{} ({e})", path.display())),
            }
        }
        let checked = if checked.is_empty() {
            format!("no render node under {}", dir.display())
        } else {
            checked.join(", ")
        };
        Err(Error::NoTimelineSyncobj { checked })
    }

    /// The path the device was opened at.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The driver's name and version, read when the device was opened.
    pub fn driver(&self) -> &DriverVersion {
        &self.0.driver
    }

    /// The syncobj and PRIME capabilities, read when the device was opened.
    pub fn capabilities(&self) -> DrmCapabilities {
        self.0.caps
    }

    /// `ioctl(DRM_IOCTL_GET_CAP, {capability})`—Any capability's value, asked now.
    ///
    /// # Errors
    /// [`Error::Sys`] with the kernel's errno: `EINVAL` for a capability it does not know,
    /// `EOPNOTSUPP` for a display capability of a driver without modesetting.
    #[doc(alias = "DRM_IOCTL_GET_CAP")]
    pub fn cap(&self, capability: u64) -> Result<u64> {
        uapi::drm_get_cap(self.0.fd.as_fd(), capability)
            .map_err(Error::sys("ioctl(DRM_IOCTL_GET_CAP)"))
    }

    /// Whether `other` is this same open file (a clone of this device), whose syncobj
    /// handles this device's calls understand.
    pub fn same_file(&self, other: &DrmDevice) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl AsFd for DrmDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl std::fmt::Debug for DrmDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrmDevice")
            .field("path", &self.0.path)
            .field("driver", &self.0.driver.name)
            .field("caps", &self.0.caps)
            .finish()
    }
}

/// Checks `fd` is a DRM character device, then reads its driver's version and capabilities.
fn describe(fd: BorrowedFd<'_>) -> Result<(DriverVersion, DrmCapabilities)> {
    let stat = rustix::fs::fstat(fd).map_err(Error::sys("fstat"))?;
    let is_char = FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice;
    if !is_char || rustix::fs::major(stat.st_rdev) != DRM_MAJOR {
        return Err(Error::NotDrmDevice);
    }
    let driver = version(fd)?;
    let cap = |c| uapi::drm_get_cap(fd, c).unwrap_or(0);
    let prime = cap(DRM_CAP_PRIME);
    let caps = DrmCapabilities {
        syncobj: cap(DRM_CAP_SYNCOBJ) != 0,
        syncobj_timeline: cap(DRM_CAP_SYNCOBJ_TIMELINE) != 0,
        prime_import: prime & 1 != 0,
        prime_export: prime & 2 != 0,
    };
    Ok((driver, caps))
}

/// `DRM_IOCTL_VERSION`, twice: once for the strings' lengths, once to fill them.
fn version(fd: BorrowedFd<'_>) -> Result<DriverVersion> {
    let call = "ioctl(DRM_IOCTL_VERSION)";
    let lens = uapi::drm_version(fd, &mut [], &mut [], &mut []).map_err(Error::sys(call))?;
    let mut name = vec![0u8; lens.name_len];
    let mut date = vec![0u8; lens.date_len];
    let mut desc = vec![0u8; lens.desc_len];
    let full = uapi::drm_version(fd, &mut name, &mut date, &mut desc).map_err(Error::sys(call))?;
    // A string that grew between the calls is cut to the first call's length.
    let text = |v: Vec<u8>, len: usize| c_name(&v[..len.min(v.len())]);
    Ok(DriverVersion {
        name: text(name, full.name_len),
        major: full.version_major,
        minor: full.version_minor,
        patchlevel: full.version_patchlevel,
        date: text(date, full.date_len),
        description: text(desc, full.desc_len),
    })
}
