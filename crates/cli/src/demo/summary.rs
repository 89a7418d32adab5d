//! What a demo run ends with: the counts (identical for one seed, whatever the timing), the
//! timings (which vary), and how the summary reads.
//!
//! A frame's latency runs from the submission of its camera capture to its delivery (the
//! last reading stage's answer on it); the validator is `dmabuf-lockdep`, the lockdep-style
//! checker of lock order and fence signalling rules.

use crate::plural;
use std::fmt;
use std::time::Duration;

/// The `p`-th percentile (`0.0..=100.0`) of sorted `values`, zero without values.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// `p50 …, p90 …, p99 …, max …` of sorted `values`, in milliseconds.
pub fn percentiles(values: &[Duration]) -> String {
    let ms = |p| percentile(values, p).as_secs_f64() * 1e3;
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(50.0),
        ms(90.0),
        ms(99.0),
        ms(100.0)
    )
}

/// The counts of a run: for a given seed and options, the same on every run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    /// Frames the camera produced.
    pub frames: u64,
    /// Frames every reading stage received intact.
    pub delivered: u64,
    /// Frames never delivered intact.
    pub lost: u64,
    /// Render attempts redone after a fault.
    pub rerendered: u64,
    /// Buffers moved out of device memory.
    pub evictions: u64,
    /// Buffers moved back into device memory.
    pub restores: u64,
    /// `move_notify` calls the dynamic importers received.
    pub move_notifies: u64,
    /// Fences created.
    pub fences_created: u64,
    /// Fences signalled.
    pub fences_signalled: u64,
    /// Fences signalled with an error.
    pub fences_errored: u64,
    /// The validator's reports.
    pub validator_reports: u64,
}

/// The injected fault and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport {
    /// The frame whose render hung.
    pub frame: u64,
    /// The hung fence (`driver/timeline#seqno`).
    pub fence: String,
    /// The error it was signalled with.
    pub error: String,
    /// Whether the frame was rendered again and delivered.
    pub recovered: bool,
}

/// A run's summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The counts (deterministic for a seed).
    pub counts: Counts,
    /// The injected fault, if one was scripted and reached.
    pub fault: Option<FaultReport>,
    /// The frame scripted to hang, if any (a run by duration may end before it).
    pub fault_frame: Option<u64>,
    /// Wall time of the pipeline.
    pub elapsed: Duration,
    /// Frame latencies, sorted: from the submission of the frame's camera job to the last
    /// reading stage's answer on it (its read done), re-renders included.
    pub latencies: Vec<Duration>,
    /// Timed waits that ran out (timing-dependent).
    pub timeouts: u64,
    /// The validator's reports, printed.
    pub reports: Vec<String>,
    /// The seed the run used.
    pub seed: u64,
    /// The stages that ran (`camera -> gpu x2 -> encoder + usb-gadget`).
    pub stages: String,
}

impl Summary {
    /// Frames delivered per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.counts.delivered as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th latency percentile (`0.0..=100.0`), zero without frames.
    pub fn latency_percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// Why the run failed, if it did: validator reports or lost frames.
    pub fn failure(&self) -> Option<String> {
        let c = &self.counts;
        if c.validator_reports > 0 {
            Some(format!(
                "the validator reported {}",
                plural(c.validator_reports, "problem", "problems")
            ))
        } else if c.lost > 0 {
            Some(format!("{} lost", plural(c.lost, "frame", "frames")))
        } else if c.fences_signalled != c.fences_created {
            Some(format!(
                "{} never signalled",
                plural(
                    c.fences_created.saturating_sub(c.fences_signalled),
                    "fence",
                    "fences"
                )
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(f, "dmabuf demo summary (seed {})", self.seed)?;
        writeln!(f, "  stages      {}", self.stages)?;
        writeln!(
            f,
            "  frames      {} produced, {} delivered, {} lost, {} re-rendered",
            c.frames, c.delivered, c.lost, c.rerendered
        )?;
        writeln!(
            f,
            "  throughput  {:.1} frames/s over {:.2} s",
            self.throughput(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  latency     capture submitted -> delivered: {}",
            percentiles(&self.latencies)
        )?;
        writeln!(
            f,
            "  memory      {}, {}, {}",
            plural(c.evictions, "eviction", "evictions"),
            plural(c.restores, "restore", "restores"),
            plural(c.move_notifies, "move_notify call", "move_notify calls")
        )?;
        writeln!(
            f,
            "  fences      {} created, {} signalled, {} errored",
            c.fences_created, c.fences_signalled, c.fences_errored
        )?;
        match (&self.fault, self.fault_frame) {
            (Some(fault), _) => writeln!(
                f,
                "  fault       frame {}: render hung, fence {} signalled with {}, {} ({})",
                fault.frame,
                fault.fence,
                fault.error,
                if fault.recovered {
                    "recovered (re-rendered)"
                } else {
                    "NOT recovered"
                },
                plural(self.timeouts, "watchdog timeout", "watchdog timeouts")
            )?,
            (None, Some(frame)) => writeln!(
                f,
                "  fault       none injected: the run ended before frame {frame}"
            )?,
            (None, None) => writeln!(f, "  fault       none injected (--no-fault)")?,
        }
        write!(
            f,
            "  validator   {} (lockdep-style lock and fence checker)",
            plural(c.validator_reports, "report", "reports")
        )?;
        for r in &self.reports {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}
