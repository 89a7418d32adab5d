//! What `demo --kernel` reports: the counts (the same for one seed and set of options,
//! whatever the timing, as long as no wait but the fault's runs out), the latencies of each
//! stage, and the descriptors each stage had open before and after.

use super::devices::Devices;
use super::stage::{Role, StageReport};
use crate::demo::Args;
use crate::demo::summary::percentiles;
use crate::plural;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// The counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCounts {
    /// Frames the camera captured.
    pub frames: u64,
    /// Frames both readers received intact.
    pub delivered: u64,
    /// Frames not received intact by both.
    pub lost: u64,
    /// Renders reset and done again.
    pub rerendered: u64,
    /// Frame bytes checked, by every stage that read a frame.
    pub bytes_checked: u64,
    /// Fence and point waits of every stage.
    pub waits: u64,
    /// Waits that ran out of time.
    pub timeouts: u64,
    /// Library fences created, in every stage.
    pub fences_created: u64,
    /// Library fences signalled, in every stage.
    pub fences_signalled: u64,
    /// Frames whose content a stage found wrong.
    pub corrupt: u64,
    /// Stages that ended with more descriptors open than they started with.
    pub leaking_stages: u64,
    /// The validator's reports, in every stage.
    pub validator_reports: u64,
}

/// A run's summary.
#[derive(Debug, Clone)]
pub struct KernelSummary {
    /// The counts.
    pub counts: KernelCounts,
    /// Each stage's role and report.
    pub stages: Vec<(Role, StageReport)>,
    /// The devices used.
    pub devices: Devices,
    /// The frame whose first render hung, if any.
    pub fault: Option<u64>,
    /// The seed.
    pub seed: u64,
    /// Wall time, from starting the first stage to the last report.
    pub elapsed: Duration,
    /// Per frame delivered, from the start of its capture to the later reader's check,
    /// sorted.
    pub latencies: Vec<Duration>,
    /// Per wait for another stage's fence that ended with its signal, from just before the
    /// signal (in the signalling process) or the start of the wait if that came later, to
    /// just after the wake (in the waiting process), sorted.
    pub fence_latencies: Vec<Duration>,
}

fn sorted_us(us: impl Iterator<Item = u64>) -> Vec<Duration> {
    let mut v: Vec<Duration> = us.map(Duration::from_micros).collect();
    v.sort();
    v
}

impl KernelSummary {
    /// The summary of the stages' reports (in [`Role::ALL`] order).
    pub fn new(
        args: &Args,
        devices: &Devices,
        fault: Option<u64>,
        elapsed: Duration,
        stages: Vec<(Role, StageReport)>,
    ) -> KernelSummary {
        let by = |role| stages.iter().find(|(r, _)| *r == role).map(|(_, rep)| rep);
        // Per reader, each frame's first intact arrival (a frame rendered again after one
        // reader gave up on it arrives twice at the other).
        let readers: Vec<HashMap<u64, u64>> = [Role::Encoder, Role::Display]
            .into_iter()
            .filter_map(by)
            .map(|r| {
                let mut first = HashMap::new();
                for &(frame, us) in &r.delivered {
                    first.entry(frame).or_insert(us);
                }
                first
            })
            .collect();
        let mut latencies = Vec::new();
        if let Some((one, others)) = readers.split_first() {
            for (frame, &us) in one {
                let all: Option<Vec<u64>> = others.iter().map(|r| r.get(frame).copied()).collect();
                if let Some(all) = all {
                    latencies.push(Duration::from_micros(all.into_iter().fold(us, u64::max)));
                }
            }
        }
        latencies.sort();
        let sum = |f: fn(&StageReport) -> u64| stages.iter().map(|(_, r)| f(r)).sum::<u64>();
        let frames = by(Role::Camera).map_or(0, |c| c.frames);
        let delivered = latencies.len() as u64;
        let counts = KernelCounts {
            frames,
            delivered,
            lost: frames.saturating_sub(delivered),
            rerendered: sum(|r| r.rerendered),
            bytes_checked: sum(|r| r.bytes_checked),
            waits: sum(|r| r.waits),
            timeouts: sum(|r| r.timeouts),
            fences_created: sum(|r| r.fences.0),
            fences_signalled: sum(|r| r.fences.1),
            corrupt: sum(|r| r.corrupt.len() as u64),
            leaking_stages: sum(|r| u64::from(r.fds.1 > r.fds.0)),
            validator_reports: sum(|r| r.validator_reports.len() as u64),
        };
        // Each wake beside the signal (in another process) that ended it.
        let signals: HashMap<(u8, u64), u64> = stages
            .iter()
            .flat_map(|(_, r)| r.signals.iter().map(|&(e, id, ns)| ((e, id), ns)))
            .collect();
        let mut fence_latencies: Vec<Duration> = stages
            .iter()
            .flat_map(|(_, r)| &r.wakes)
            .filter_map(|&(e, id, began, woke)| {
                // From the signal, or from the start of the wait if the signal came first
                // (then it is the time to notice a signalled fence through the kernel).
                let from = (*signals.get(&(e, id))?).max(began);
                Some(Duration::from_nanos(woke.saturating_sub(from)))
            })
            .collect();
        fence_latencies.sort();
        KernelSummary {
            counts,
            devices: devices.clone(),
            fault,
            seed: args.seed,
            elapsed,
            latencies,
            fence_latencies,
            stages,
        }
    }

    /// Frames delivered per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.counts.delivered as f64 / secs
        } else {
            0.0
        }
    }

    /// Why the run failed, if it did: validator reports, frames corrupt or lost, fences
    /// never signalled, descriptors left open.
    pub fn failure(&self) -> Option<String> {
        let c = &self.counts;
        if c.validator_reports > 0 {
            Some(format!(
                "the validator reported {}",
                plural(c.validator_reports, "problem", "problems")
            ))
        } else if c.corrupt > 0 {
            let first = self.stages.iter().flat_map(|(_, r)| &r.corrupt).next();
            Some(format!(
                "{} corrupt ({})",
                plural(c.corrupt, "frame", "frames"),
                first.map_or("", String::as_str)
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
        } else if c.leaking_stages > 0 {
            Some(format!(
                "{} ended with descriptors it did not have at the start",
                plural(c.leaking_stages, "stage", "stages")
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for KernelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let pcts = percentiles;
        writeln!(f, "dmabuf demo --kernel summary (seed {})", self.seed)?;
        let pid = |role: Role| {
            self.stages
                .iter()
                .find(|(r, _)| *r == role)
                .map_or(0, |(_, rep)| rep.pid)
        };
        writeln!(
            f,
            "  processes   camera ({}) -> renderer ({}) -> encoder ({}, implicit sync) + \
             display ({}, timeline points)",
            pid(Role::Camera),
            pid(Role::Renderer),
            pid(Role::Encoder),
            pid(Role::Display)
        )?;
        writeln!(
            f,
            "  devices     buffers from {}, timelines on {}, pending fences from vgem",
            self.devices.allocator, self.devices.render_node
        )?;
        writeln!(
            f,
            "  frames      {} captured, {} delivered, {} lost, {} re-rendered, {:.1} MiB checked",
            c.frames,
            c.delivered,
            c.lost,
            c.rerendered,
            c.bytes_checked as f64 / (1024.0 * 1024.0)
        )?;
        writeln!(
            f,
            "  throughput  {:.1} frames/s over {:.2} s",
            self.throughput(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  latency     capture started -> both readers checked: {}",
            pcts(&self.latencies)
        )?;
        for (role, r) in &self.stages {
            writeln!(
                f,
                "  {:<11} per attempt: {}",
                role.name(),
                pcts(&sorted_us(r.latencies_us.iter().copied()))
            )?;
        }
        writeln!(
            f,
            "  waits       {} ({} timed out); signal (or wait) -> wake across processes: {}",
            c.waits,
            c.timeouts,
            pcts(&self.fence_latencies)
        )?;
        writeln!(
            f,
            "  fences      {} library fences created, {} signalled",
            c.fences_created, c.fences_signalled
        )?;
        match self.fault {
            Some(frame) => writeln!(
                f,
                "  fault       frame {frame}: its render hung, the readers' waits timed out, the \
                 render was reset and done again ({})",
                if c.rerendered > 0 && c.lost == 0 {
                    "recovered"
                } else {
                    "NOT recovered"
                }
            )?,
            None => writeln!(f, "  fault       none injected (--no-fault)")?,
        }
        let fds: Vec<String> = self
            .stages
            .iter()
            .map(|(role, r)| {
                format!(
                    "{} {} -> {} (peak {})",
                    role.name(),
                    r.fds.0,
                    r.fds.1,
                    r.fds_peak
                )
            })
            .collect();
        writeln!(
            f,
            "  descriptors {} (open at start -> at end: {})",
            if c.leaking_stages == 0 {
                "no stage leaked any"
            } else {
                "LEAKED"
            },
            fds.join(", ")
        )?;
        write!(
            f,
            "  validator   {} (lockdep-style lock and fence checker, in every stage)",
            plural(c.validator_reports, "report", "reports")
        )?;
        for (role, r) in &self.stages {
            for report in &r.validator_reports {
                write!(f, "\n{}: {report}", role.name())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::KernelSummary;
    use crate::demo::Args;
    use crate::demo::kernel::devices::{Allocator, Devices};
    use crate::demo::kernel::stage::{Role, StageReport};
    use crate::demo::summary::percentile;
    use std::time::Duration;

    fn reports() -> Vec<(Role, StageReport)> {
        let stage = |pid| StageReport {
            pid,
            fds: (4, 4),
            ..StageReport::default()
        };
        let mut camera = stage(10);
        camera.frames = 3;
        camera.fences = (3, 3);
        camera.signals = vec![(0, 0, 1_000), (0, 1, 2_000), (0, 2, 3_000)];
        let mut renderer = stage(11);
        renderer.rerendered = 1;
        renderer.wakes = vec![(0, 0, 0, 1_500), (0, 1, 2_050, 2_100), (0, 2, 0, 3_900)];
        renderer.signals = vec![(1, 1, 5_000), (2, 1, 5_000)];
        let mut encoder = stage(12);
        encoder.delivered = vec![(0, 700), (1, 800), (2, 900)];
        encoder.wakes = vec![(1, 1, 4_000, 5_300)];
        encoder.timeouts = 1;
        let mut display = stage(13);
        // Frame 1 never reached the display intact.
        display.delivered = vec![(0, 750), (2, 1000)];
        display.wakes = vec![(2, 1, 4_000, 5_200)];
        vec![
            (Role::Camera, camera),
            (Role::Renderer, renderer),
            (Role::Encoder, encoder),
            (Role::Display, display),
        ]
    }

    fn summary(stages: Vec<(Role, StageReport)>) -> KernelSummary {
        let devices = Devices {
            allocator: Allocator::SystemHeap,
            render_node: "/dev/dri/renderD128 (virtio_gpu)".into(),
        };
        KernelSummary::new(
            &Args::default(),
            &devices,
            Some(1),
            Duration::from_secs(1),
            stages,
        )
    }

    #[test]
    fn a_frame_counts_as_delivered_once_both_readers_have_it_and_signals_meet_their_wakes() {
        let s = summary(reports());
        assert_eq!(
            (s.counts.frames, s.counts.delivered, s.counts.lost),
            (3, 2, 1)
        );
        // The later reader's latency per frame.
        assert_eq!(
            s.latencies,
            [Duration::from_micros(750), Duration::from_micros(1000)]
        );
        // Five wakes, each beside its signal in another stage (frame 1's wait began after
        // the signal: 50 ns to notice it).
        let ns = |n| Duration::from_nanos(n);
        assert_eq!(
            s.fence_latencies,
            [ns(50), ns(200), ns(300), ns(500), ns(900)]
        );
        assert_eq!(percentile(&s.fence_latencies, 50.0), ns(300));
        assert_eq!(s.failure().as_deref(), Some("1 frame lost"));
        let text = s.to_string();
        assert!(
            text.contains("3 captured, 2 delivered, 1 lost, 1 re-rendered"),
            "{text}"
        );
        assert!(
            text.contains("camera (10) -> renderer (11) -> encoder (12"),
            "{text}"
        );
        assert!(text.contains("no stage leaked any"), "{text}");
    }

    #[test]
    fn a_run_fails_on_a_report_a_corrupt_frame_an_unsignalled_fence_or_a_leak() {
        let with = |change: fn(&mut Vec<(Role, StageReport)>)| {
            let mut r = reports();
            r[3].1.delivered.push((1, 900));
            change(&mut r);
            summary(r).failure()
        };
        assert_eq!(with(|_| {}), None);
        assert_eq!(
            with(|r| r[2].1.validator_reports.push("x".into())).as_deref(),
            Some("the validator reported 1 problem")
        );
        assert_eq!(
            with(|r| r[1].1.corrupt.push("frame 2: torn".into())).as_deref(),
            Some("1 frame corrupt (frame 2: torn)")
        );
        assert_eq!(
            with(|r| r[0].1.fences.0 += 1).as_deref(),
            Some("1 fence never signalled")
        );
        assert_eq!(
            with(|r| r[3].1.fds.1 += 1).as_deref(),
            Some("1 stage ended with descriptors it did not have at the start")
        );
    }
}
