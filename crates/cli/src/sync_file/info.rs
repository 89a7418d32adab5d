//! `info`'s output: a sync_file's name, status and fences, as text or JSON.

use super::SyncFileError;
use dmabuf::FenceStatus;
use dmabuf_linux::SyncFileInfo;
use serde::Serialize;

/// A status as text: `pending`, `signaled` or `error`, and the error's name.
pub(crate) fn status_text(status: FenceStatus) -> (&'static str, Option<String>) {
    match status {
        FenceStatus::Pending => ("pending", None),
        FenceStatus::Signaled => ("signaled", None),
        FenceStatus::Failed(errno) => ("error", Some(errno.to_string())),
    }
}

/// `info`'s JSON.
#[derive(Serialize)]
struct InfoJson<'a> {
    file: &'a str,
    name: &'a str,
    status: &'static str,
    error: Option<String>,
    fences: Vec<FenceJson<'a>>,
}

/// One fence in `info`'s JSON.
#[derive(Serialize)]
struct FenceJson<'a> {
    driver: &'a str,
    timeline: &'a str,
    status: &'static str,
    error: Option<String>,
    timestamp_ns: Option<u64>,
}

/// Prints `info` of the sync_file `file` names: a line of its name, status and fence count,
/// then a line per fence; or, with `json`, the same as one JSON object.
pub(super) fn print(file: &str, info: &SyncFileInfo, json: bool) -> Result<(), SyncFileError> {
    let (status, error) = status_text(info.status);
    if json {
        let fences = info
            .fences
            .iter()
            .map(|f| {
                let (status, error) = status_text(f.status);
                FenceJson {
                    driver: &f.driver,
                    timeline: &f.timeline,
                    status,
                    error,
                    timestamp_ns: f.timestamp.map(|t| t.as_nanos()),
                }
            })
            .collect();
        let out = InfoJson {
            file,
            name: &info.name,
            status,
            error,
            fences,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let n = info.fences.len();
    println!(
        "{file}: {:?} {status}{}, {n} fence{}",
        info.name,
        error.map(|e| format!(" ({e})")).unwrap_or_default(),
        if n == 1 { "" } else { "s" }
    );
    for f in &info.fences {
        let (status, error) = status_text(f.status);
        println!(
            "  {:<16} {:<24} {status}{}{}",
            f.driver,
            f.timeline,
            error.map(|e| format!(" ({e})")).unwrap_or_default(),
            f.timestamp
                .map(|t| format!(" at {t} s"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
