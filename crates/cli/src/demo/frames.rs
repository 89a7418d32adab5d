//! The submitter's book of frames: which attempt of each frame is current, what each reading
//! stage said of it, and how many frames are finished, which is what bounds the frames in
//! flight and what the progress bar counts.

use super::Args;
use super::stages::{Consumer, Delivery};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One frame's current attempt as the reading stages report on it.
#[derive(Debug)]
struct FrameState {
    started: Instant,
    attempt: u32,
    encoder: Option<Result<(), String>>,
    usb: Option<Result<(), String>>,
    finished: Option<Instant>,
}

impl FrameState {
    /// Whether every reading stage received this attempt intact.
    fn delivered(&self) -> bool {
        matches!((&self.encoder, &self.usb), (Some(Ok(())), Some(Ok(()))))
    }
}

/// Every frame submitted so far.
#[derive(Debug)]
pub struct Frames {
    runs_encoder: bool,
    runs_usb: bool,
    states: HashMap<u64, FrameState>,
    /// Frames whose current attempt every reading stage has answered.
    finished: u64,
}

impl Frames {
    /// An empty book for a run with the reading stages of `args`.
    pub fn new(args: &Args) -> Self {
        Frames {
            runs_encoder: args.runs(Consumer::Encoder),
            runs_usb: args.runs(Consumer::Usb),
            states: HashMap::new(),
            finished: 0,
        }
    }

    /// Frame `frame` is submitted (attempt 0), now.
    pub fn start(&mut self, frame: u64) {
        let state = self.attempt(Instant::now(), 0);
        if let Some(old) = self.states.insert(frame, state)
            && old.finished.is_some()
        {
            self.finished -= 1;
        }
    }

    /// Frame `frame` is submitted again (its previous attempt failed): the reading stages'
    /// answers start over and the frame is unfinished until they answer this attempt. Its
    /// latency still counts from the first submission.
    pub fn retry(&mut self, frame: u64) {
        let Some(old) = self.states.get(&frame) else {
            return;
        };
        if old.finished.is_some() {
            self.finished -= 1;
        }
        let state = self.attempt(old.started, old.attempt + 1);
        self.states.insert(frame, state);
    }

    /// A fresh attempt; a stage that does not run has nothing to deliver: it counts as done.
    fn attempt(&self, started: Instant, attempt: u32) -> FrameState {
        let pending = |runs| if runs { None } else { Some(Ok(())) };
        FrameState {
            started,
            attempt,
            encoder: pending(self.runs_encoder),
            usb: pending(self.runs_usb),
            finished: None,
        }
    }

    /// Records a reading stage's verdict; answers about an attempt that is not the frame's
    /// current one are ignored.
    pub fn record(&mut self, d: Delivery) {
        let Some(st) = self.states.get_mut(&d.frame) else {
            return;
        };
        if d.attempt != st.attempt || st.finished.is_some() {
            return;
        }
        match d.consumer {
            Consumer::Encoder => st.encoder = Some(d.result),
            Consumer::Usb => st.usb = Some(d.result),
        }
        if st.encoder.is_some() && st.usb.is_some() {
            st.finished = Some(d.at);
            self.finished += 1;
        }
    }

    /// Frames whose current attempt is answered by every reading stage.
    pub fn finished(&self) -> u64 {
        self.finished
    }

    /// Frames submitted and not finished.
    pub fn pending(&self) -> u64 {
        self.states.len() as u64 - self.finished
    }

    /// Whether `frame`'s current attempt is answered by every reading stage.
    pub fn is_finished(&self, frame: u64) -> bool {
        self.states
            .get(&frame)
            .is_some_and(|s| s.finished.is_some())
    }

    /// Whether a reading stage found `frame`'s current attempt broken.
    pub fn failed(&self, frame: u64) -> bool {
        self.states
            .get(&frame)
            .is_some_and(|s| matches!(s.encoder, Some(Err(_))) || matches!(s.usb, Some(Err(_))))
    }

    /// Whether every reading stage received `frame`'s current attempt intact.
    pub fn delivered(&self, frame: u64) -> bool {
        self.states.get(&frame).is_some_and(FrameState::delivered)
    }

    /// The frames not delivered intact, and the latencies (first submission to the last
    /// stage's answer) of those that were, sorted.
    pub fn outcome(&self) -> (u64, Vec<Duration>) {
        let mut lost = 0;
        let mut latencies = Vec::new();
        for st in self.states.values() {
            match (st.delivered(), st.finished) {
                (true, Some(t)) => latencies.push(t.saturating_duration_since(st.started)),
                _ => lost += 1,
            }
        }
        latencies.sort();
        (lost, latencies)
    }
}

#[cfg(test)]
mod tests {
    use super::Frames;
    use crate::demo::Args;
    use crate::demo::stages::{Consumer, Delivery};
    use std::time::Instant;

    fn answer(consumer: Consumer, frame: u64, attempt: u32, ok: bool) -> Delivery {
        Delivery {
            consumer,
            frame,
            attempt,
            result: if ok { Ok(()) } else { Err("torn".into()) },
            at: Instant::now(),
        }
    }

    #[test]
    fn a_frame_is_finished_once_every_running_stage_answers_its_current_attempt() {
        let mut f = Frames::new(&Args::default());
        f.start(0);
        f.start(1);
        f.record(answer(Consumer::Encoder, 0, 0, true));
        assert_eq!((f.finished(), f.pending()), (0, 2));
        f.record(answer(Consumer::Usb, 0, 0, true));
        f.record(answer(Consumer::Usb, 0, 0, true)); // a repeat counts once
        assert_eq!((f.finished(), f.pending()), (1, 1));
        assert!(f.is_finished(0) && f.delivered(0) && !f.failed(0));
        f.record(answer(Consumer::Usb, 7, 0, true)); // never submitted
        assert_eq!(f.finished(), 1);
    }

    #[test]
    fn a_retried_frame_is_unfinished_again_and_old_answers_are_ignored() {
        // The fault: the hung attempt finishes failed while other frames finish around it;
        // every one of them stays counted, and the retried frame counts once, when its
        // new attempt is answered.
        let mut f = Frames::new(&Args::default());
        for frame in 0..3 {
            f.start(frame);
        }
        for c in [Consumer::Encoder, Consumer::Usb] {
            f.record(answer(c, 0, 0, true));
            f.record(answer(c, 1, 0, false));
            f.record(answer(c, 2, 0, true));
        }
        assert_eq!(f.finished(), 3);
        assert!(f.failed(1));
        f.retry(1);
        assert_eq!((f.finished(), f.pending()), (2, 1));
        f.record(answer(Consumer::Encoder, 1, 0, true)); // the old attempt
        f.record(answer(Consumer::Usb, 1, 0, true));
        assert!(!f.is_finished(1));
        f.record(answer(Consumer::Encoder, 1, 1, true));
        f.record(answer(Consumer::Usb, 1, 1, true));
        assert_eq!((f.finished(), f.pending()), (3, 0));
        let (lost, latencies) = f.outcome();
        assert_eq!((lost, latencies.len()), (0, 3));
    }

    #[test]
    fn a_stage_that_does_not_run_counts_as_answered() {
        let args = Args {
            stages: vec![Consumer::Usb],
            ..Args::default()
        };
        let mut f = Frames::new(&args);
        f.start(0);
        f.record(answer(Consumer::Usb, 0, 0, true));
        assert!(f.delivered(0));
        assert_eq!(f.outcome().0, 0);
    }
}
