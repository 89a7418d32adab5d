//! The DRM device a syncobj file is imported into.

use super::SyncobjError;
use dmabuf_linux::DrmDevice;
use std::path::{Path, PathBuf};

/// The device to import a syncobj into: `given` (`--device`), checked to have timeline
/// syncobjs; else the first render node (by descriptor number) that process `holder` has
/// open whose driver has them; else the first under `dri_dir` (normally
/// [`DRM_DIR`](dmabuf_linux::DRM_DIR)) by node number.
///
/// # Errors
/// [`SyncobjError::BadDevice`] when `given` cannot be opened, is no DRM device or its driver
/// has no timeline syncobjs; [`SyncobjError::NoDevice`] when no render node has them.
pub fn find_device(
    given: Option<&Path>,
    holder: Option<i32>,
    dri_dir: &Path,
) -> Result<DrmDevice, SyncobjError> {
    if let Some(path) = given {
        let bad = |problem: String| SyncobjError::BadDevice {
            path: path.to_owned(),
            problem,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| bad(format!("cannot open the file: {e}")))?;
        let device = DrmDevice::from_fd(file.into(), path.to_owned())
            .map_err(|(e, _fd)| bad(e.to_string()))?;
        if !device.capabilities().syncobj_timeline {
            return Err(bad(format!(
                "its driver ({}) has no timeline syncobjs",
                device.driver().name
            )));
        }
        return Ok(device);
    }
    let held = holder.map(held_render_nodes).unwrap_or_default();
    for path in held {
        if let Ok(device) = DrmDevice::open(&path)
            && device.capabilities().syncobj_timeline
        {
            return Ok(device);
        }
    }
    DrmDevice::find_timeline_syncobj_in(dri_dir).map_err(|source| SyncobjError::NoDevice { source })
}

/// The render nodes process `pid` has open, in the order of its descriptors; none when its
/// descriptors cannot be read.
fn held_render_nodes(pid: i32) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u32, PathBuf)> = dir
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            is_render_node(&target).then_some((fd, target))
        })
        .collect();
    nodes.sort();
    nodes.dedup_by(|a, b| a.1 == b.1);
    nodes.into_iter().map(|(_, path)| path).collect()
}

/// Whether `path` names a render node: `/dev/dri/renderD<N>`.
fn is_render_node(path: &Path) -> bool {
    path.parent() == Some(Path::new(dmabuf_linux::DRM_DIR))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("renderD"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::{held_render_nodes, is_render_node};
    use std::path::Path;

    #[test]
    fn render_nodes_are_dev_dri_render_d_n() {
        assert!(is_render_node(Path::new("/dev/dri/renderD128")));
        for path in [
            "/dev/dri/card0",
            "/dev/dri/renderD",
            "/dev/dri/renderD12x",
            "/tmp/dev/dri/renderD128",
            "/dev/dri/by-path/renderD128",
            "renderD128",
        ] {
            assert!(!is_render_node(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn a_process_without_render_nodes_or_descriptors_to_read_holds_none() {
        assert!(held_render_nodes(std::process::id() as i32).is_empty());
        assert!(held_render_nodes(i32::MAX).is_empty());
    }
}
