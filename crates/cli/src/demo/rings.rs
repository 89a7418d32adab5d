//! Fence timelines that count and trace: each stage's [`FenceContext`] wrapped so every fence
//! emitted is counted and traced ("emit"), and its signal too ("signal", with the error if
//! any), through a fence callback — whoever signals it.

use crate::trace::{Trace, Track};
use dmabuf::Signaller;
use dmabuf::fence::{Fence, FenceContext};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The trace process holding one track per fence timeline.
pub const TIMELINES_PID: u32 = 100;

/// Fences created, signalled and signalled with an error, across all rings.
#[derive(Debug, Default)]
pub struct FenceStats {
    created: AtomicU64,
    signalled: AtomicU64,
    errored: AtomicU64,
}

impl FenceStats {
    /// `(created, signalled, errored)` so far.
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.created.load(Ordering::SeqCst),
            self.signalled.load(Ordering::SeqCst),
            self.errored.load(Ordering::SeqCst),
        )
    }
}

/// One stage's fence timeline.
#[derive(Debug)]
pub struct Ring {
    ctx: FenceContext,
    label: String,
    track: Track,
    trace: Arc<Trace>,
    stats: Arc<FenceStats>,
}

impl Ring {
    /// A timeline `driver/timeline` traced on track `tid` of the timelines process.
    pub fn new(
        driver: &str,
        timeline: &str,
        tid: u32,
        trace: &Arc<Trace>,
        stats: &Arc<FenceStats>,
    ) -> Self {
        let label = format!("{driver}/{timeline}");
        let track = Track {
            pid: TIMELINES_PID,
            tid,
        };
        trace.name_thread(track, &label);
        Ring {
            ctx: FenceContext::new(driver.to_owned(), timeline.to_owned()),
            label,
            track,
            trace: trace.clone(),
            stats: stats.clone(),
        }
    }

    /// The timeline's name, `driver/timeline`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next fence for `frame`, counted and traced.
    pub fn next(&self, frame: u64) -> (Signaller, Fence) {
        let (done, fence) = self.ctx.next_fence();
        self.stats.created.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}#{}", self.label, fence.seqno());
        self.trace.instant(
            self.track,
            "emit",
            json!({"fence": id, "seqno": fence.seqno(), "frame": frame}),
        );
        let (trace, stats, track) = (self.trace.clone(), self.stats.clone(), self.track);
        // Runs in the signaller's signalling section: counters and a plain mutex only.
        let hook = move |f: &Fence| {
            stats.signalled.fetch_add(1, Ordering::SeqCst);
            let error = f.error();
            if error.is_some() {
                stats.errored.fetch_add(1, Ordering::SeqCst);
            }
            trace.instant(
                track,
                "signal",
                json!({"fence": id, "seqno": f.seqno(), "frame": frame,
                    "error": error.map(|e| e.to_string())}),
            );
        };
        if let Err(already) = fence.add_callback(hook) {
            (already.0)(&fence);
        }
        (done, fence)
    }
}
