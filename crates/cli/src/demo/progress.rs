//! The demo's progress bar on stderr (a terminal only, see [`crate::progress`]): frames
//! finished of the run, frames per second, evictions so far.

use indicatif::ProgressBar;
use std::time::Instant;

/// The bar of a run of a known number of frames.
pub const FRAMES_TEMPLATE: &str = "  [{bar:30}] frame {pos}/{len}  {msg}";
/// The count of a run of a set duration (`--duration`).
pub const DURATION_TEMPLATE: &str = "  {spinner} frame {pos}  {elapsed}  {msg}";

/// The progress bar.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    /// A bar for a run of `total` frames (`None`: run by duration), drawn only if `shown`.
    pub fn new(shown: bool, total: Option<u64>) -> Self {
        let template = if total.is_some() {
            FRAMES_TEMPLATE
        } else {
            DURATION_TEMPLATE
        };
        Progress {
            bar: crate::progress::bar(shown, total, template),
            started: Instant::now(),
        }
    }

    /// `done` frames are finished and `evictions` buffers were evicted so far.
    pub fn update(&self, done: u64, evictions: u64) {
        if self.bar.is_hidden() {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_position(done);
        self.bar.set_message(format!(
            "{:.0} frames/s  {}",
            done as f64 / secs,
            crate::plural(evictions, "eviction", "evictions")
        ));
    }

    /// `done` frames are finished (a run without evictions to count).
    pub fn update_frames(&self, done: u64) {
        if self.bar.is_hidden() {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_position(done);
        self.bar
            .set_message(format!("{:.0} frames/s", done as f64 / secs));
    }

    /// Draws the final count of [`update_frames`](Self::update_frames) and leaves it on its
    /// line.
    pub fn finish_frames(&self, done: u64) {
        self.update_frames(done);
        self.bar.finish();
    }

    /// Draws the final count and leaves it on its line.
    pub fn finish(&self, done: u64, evictions: u64) {
        self.update(done, evictions);
        self.bar.finish();
    }
}
