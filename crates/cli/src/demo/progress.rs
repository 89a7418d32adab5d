//! A one-line progress report on stderr, redrawn in place at most ten times a second.

use std::io::Write;
use std::time::{Duration, Instant};

/// The progress line.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A progress line, drawn only if `enabled`.
    pub fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            last: None,
            drawn: false,
        }
    }

    /// Redraws with `done` of `total` frames (`None`: run by duration) and `evictions`.
    pub fn update(&mut self, done: u64, total: Option<u64>, started: Instant, evictions: u64) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let of = total.map(|t| format!("/{t}")).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r  frame {done}{of}  {:.0} frames/s  {evictions} evictions   ",
            done as f64 / secs
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Makes the next [`update`](Self::update) draw (the final count).
    pub fn force_next(&mut self) {
        self.last = None;
    }

    /// Ends the line.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}
