//! `info`'s output: a syncobj's points and its fence's status, as text or JSON.

use super::SyncobjError;
use crate::sync_file::status_text;
use dmabuf_linux::Syncobj;
use serde::Serialize;

/// What `info` reports of a syncobj.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Info {
    /// The last signalled point (`DRM_IOCTL_SYNCOBJ_QUERY`).
    last_signaled: u64,
    /// The last submitted point (`DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED`).
    last_submitted: u64,
    /// The status of the syncobj's fence (a timeline's newest point), `None` without one.
    status: Option<dmabuf::FenceStatus>,
}

/// Asks the kernel for `syncobj`'s points and its fence's status.
pub(super) fn read(syncobj: &Syncobj) -> Result<Info, dmabuf_linux::Error> {
    let status = match syncobj.export_sync_file().and_then(|f| f.info()) {
        Ok(info) => Some(info.status),
        Err(dmabuf_linux::Error::Unsubmitted { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(Info {
        last_signaled: syncobj.query()?,
        last_submitted: syncobj.last_submitted()?,
        status,
    })
}

/// `info`'s JSON.
#[derive(Serialize)]
struct InfoJson<'a> {
    file: &'a str,
    device: String,
    driver: &'a str,
    last_signaled: u64,
    last_submitted: u64,
    status: &'static str,
    error: Option<String>,
}

/// Prints `info` of the syncobj `file` names: a line of its points and its fence's status,
/// then the device it was imported into; or, with `json`, the same as one JSON object.
pub(super) fn print(
    file: &str,
    syncobj: &Syncobj,
    info: &Info,
    json: bool,
) -> Result<(), SyncobjError> {
    let (status, error) = info.status.map_or(("none", None), status_text);
    let device = syncobj.device();
    if json {
        let out = InfoJson {
            file,
            device: device.path().display().to_string(),
            driver: &device.driver().name,
            last_signaled: info.last_signaled,
            last_submitted: info.last_submitted,
            status,
            error,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let fence = match info.status {
        None => "no fence".to_owned(),
        Some(_) => format!(
            "fence {status}{}",
            error.map(|e| format!(" ({e})")).unwrap_or_default()
        ),
    };
    println!(
        "{file}: last signalled point {}, last submitted point {}, {fence}",
        info.last_signaled, info.last_submitted
    );
    println!(
        "  imported into {} ({})",
        device.path().display(),
        device.driver().name
    );
    Ok(())
}
