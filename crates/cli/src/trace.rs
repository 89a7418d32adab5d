//! A Chrome / Perfetto trace-event writer: tracks named by metadata events, duration ("X")
//! and instant ("i") events, written as `{"traceEvents":[...]}` (opens in ui.perfetto.dev and
//! chrome://tracing).

use serde_json::{Value, json};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// One track: a thread of a process in the trace-event model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// The process (a device, or the fence timelines).
    pub pid: u32,
    /// The thread within it (a worker, or one timeline).
    pub tid: u32,
}

/// Collects trace events from any thread; cheap no-ops when disabled.
#[derive(Debug)]
pub struct Trace {
    start: Instant,
    enabled: bool,
    events: Mutex<Vec<Value>>,
}

impl Trace {
    /// A trace whose clock starts now; `enabled = false` records nothing.
    pub fn new(enabled: bool) -> Self {
        Trace {
            start: Instant::now(),
            enabled,
            events: Mutex::new(Vec::new()),
        }
    }

    /// Whether events are recorded.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Microseconds since the trace started (the events' time base).
    pub fn now_us(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e6
    }

    fn push(&self, event: Value) {
        if self.enabled {
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event);
        }
    }

    /// Names process `pid` (a "process_name" metadata event).
    pub fn name_process(&self, pid: u32, name: &str) {
        self.push(
            json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": {"name": name}}),
        );
    }

    /// Names the thread `track` (a "thread_name" metadata event).
    pub fn name_thread(&self, track: Track, name: &str) {
        self.push(json!({"name": "thread_name", "ph": "M", "pid": track.pid,
            "tid": track.tid, "args": {"name": name}}));
    }

    /// A duration event on `track` from `start_us` (see [`now_us`](Self::now_us)) to now.
    pub fn complete(&self, track: Track, name: &str, start_us: f64, args: Value) {
        let dur = (self.now_us() - start_us).max(0.0);
        self.push(json!({"name": name, "ph": "X", "ts": start_us, "dur": dur,
            "pid": track.pid, "tid": track.tid, "args": args}));
    }

    /// An instant event on `track`, now.
    pub fn instant(&self, track: Track, name: &str, args: Value) {
        self.push(
            json!({"name": name, "ph": "i", "s": "t", "ts": self.now_us(),
            "pid": track.pid, "tid": track.tid, "args": args}),
        );
    }

    /// The whole trace as a JSON document.
    pub fn to_json(&self) -> Value {
        let events = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        json!({"traceEvents": events, "displayTimeUnit": "ms"})
    }

    /// Writes the trace to `path`.
    ///
    /// # Errors
    /// Creating or writing the file.
    pub fn write_to(&self, path: &Path) -> io::Result<()> {
        let mut file = io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(&mut file, &self.to_json())?;
        file.flush()
    }
}
