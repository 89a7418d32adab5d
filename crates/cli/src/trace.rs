//! A Chrome / Perfetto trace-event writer: tracks named by metadata events, duration ("X")
//! and instant ("i") events, written as `{"traceEvents":[...]}` (opens in ui.perfetto.dev and
//! chrome://tracing).
//!
//! Written for what Perfetto's JSON importer does with the file (its trace processor, read
//! in `src/trace_processor/importers/json/`):
//! * Times are kept in whole nanoseconds and written as microseconds with three decimals.
//!   The importer turns `ts` and `dur` into nanoseconds separately (rounding each), and on
//!   one track a slice that starts inside another must end inside it or it is truncated and
//!   counted as `misplaced_end_event` (data loss). Microseconds with more decimals could
//!   round a child's end past its parent's; whole nanoseconds cannot.
//! * Events are written in time order, metadata first and, at one timestamp, the longer
//!   slice first: importers that break timestamp ties by file order then see the
//!   enclosing slice before the one it encloses.
//! * No `displayTimeUnit`: it is only a display hint in the format, which some versions of
//!   the trace processor read as the unit of `ts` (and the current one ignores, with a note).

use serde_json::{Value, json};
use std::io::{self, Write};
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

/// A point on the trace's clock: whole nanoseconds since the trace started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    /// Nanoseconds since the trace started.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// The microseconds the trace-event format counts in (three decimals, exact).
    fn micros(self) -> f64 {
        self.0 as f64 / 1000.0
    }
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

    /// A trace whose clock started at `origin` on `CLOCK_MONOTONIC`, the clock every process
    /// shares: the traces of several processes started at one origin line up when merged
    /// ([`extend`](Self::extend)). An origin in the future counts as now.
    pub fn starting_at(enabled: bool, origin: dmabuf::MonotonicTime) -> Self {
        let since = dmabuf::MonotonicTime::now()
            .checked_duration_since(origin)
            .unwrap_or_default();
        let now = Instant::now();
        Trace {
            start: now.checked_sub(since).unwrap_or(now),
            enabled,
            events: Mutex::new(Vec::new()),
        }
    }

    /// When the trace's clock started, on `CLOCK_MONOTONIC` (what
    /// [`starting_at`](Self::starting_at) takes).
    pub fn origin(&self) -> dmabuf::MonotonicTime {
        let now = dmabuf::MonotonicTime::now().as_nanos();
        let since = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        dmabuf::MonotonicTime::from_nanos(now.saturating_sub(since))
    }

    /// Whether events are recorded.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Now, on the trace's clock (the start of a [`complete`](Self::complete) event).
    pub fn now(&self) -> Stamp {
        Stamp(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
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

    /// A duration event on `track` from `start` (see [`now`](Self::now)) to now.
    pub fn complete(&self, track: Track, name: &str, start: Stamp, args: Value) {
        if !self.enabled {
            return;
        }
        let end = self.now().max(start);
        self.push(json!({"name": name, "ph": "X", "ts": start.micros(),
            "dur": Stamp(end.0 - start.0).micros(),
            "pid": track.pid, "tid": track.tid, "args": args}));
    }

    /// An instant event on `track`, now.
    pub fn instant(&self, track: Track, name: &str, args: Value) {
        if !self.enabled {
            return;
        }
        self.push(
            json!({"name": name, "ph": "i", "s": "t", "ts": self.now().micros(),
            "pid": track.pid, "tid": track.tid, "args": args}),
        );
    }

    /// One end of a flow arrow (Perfetto draws it between the slices that enclose its two
    /// ends): the start (`"s"`) on `track` now if `start`, else the end (`"f"`, bound to the
    /// slice that encloses it). Both ends carry the same `id` and `name`.
    pub fn flow(&self, track: Track, name: &str, id: u64, start: bool) {
        if !self.enabled {
            return;
        }
        let mut event = json!({"name": name, "cat": "fence", "ph": if start { "s" } else { "f" },
            "id": id, "ts": self.now().micros(), "pid": track.pid, "tid": track.tid});
        if !start {
            event["bp"] = json!("e");
        }
        self.push(event);
    }

    /// The events recorded so far, in the order they were recorded (to hand to another
    /// process's trace).
    pub fn events(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds events recorded by another trace with the same origin (see
    /// [`starting_at`](Self::starting_at)).
    pub fn extend(&self, events: Vec<Value>) {
        if self.enabled {
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(events);
        }
    }

    /// The whole trace as a JSON document: metadata first, then the events by time, the
    /// longer of two slices that start together first.
    pub fn to_json(&self) -> Value {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let nanos = |e: &Value, key: &str| {
            e.get(key)
                .and_then(Value::as_f64)
                .map_or(0, |us| (us * 1000.0).round() as u64)
        };
        // Metadata carries no `ts` and sorts first; the sort is stable.
        events.sort_by_key(|e| {
            (
                e.get("ts").is_some(),
                nanos(e, "ts"),
                std::cmp::Reverse(nanos(e, "dur")),
            )
        });
        json!({ "traceEvents": events })
    }

    /// Writes the trace as JSON to `out`.
    ///
    /// # Errors
    /// Writing failed.
    pub fn write(&self, out: impl Write) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        serde_json::to_writer(&mut out, &self.to_json())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::{Stamp, Trace, Track};
    use serde_json::{Value, json};

    const T: Track = Track { pid: 1, tid: 1 };

    fn nanos(v: &Value) -> u64 {
        (v.as_f64().expect("number") * 1000.0).round() as u64
    }

    #[test]
    fn metadata_comes_first_and_of_two_slices_starting_together_the_longer() {
        let trace = Trace::new(true);
        let start = trace.now();
        trace.instant(T, "mark", json!({}));
        trace.complete(T, "inner", start, json!({}));
        std::thread::sleep(std::time::Duration::from_millis(1));
        trace.complete(T, "outer", start, json!({}));
        trace.name_thread(T, "worker");
        let doc = trace.to_json();
        let names: Vec<&str> = doc["traceEvents"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["name"].as_str().expect("named"))
            .collect();
        assert_eq!(names, ["thread_name", "outer", "inner", "mark"]);
    }

    #[test]
    fn times_are_whole_nanoseconds_that_survive_the_importers_rounding() {
        // Perfetto rounds ts and dur to nanoseconds each on its own; written from whole
        // nanoseconds, ts + dur is exactly the end.
        for ns in [0, 1, 999, 1_001, 123_456_789, 3_600_000_000_123] {
            let us = Stamp(ns).micros();
            let back: Value = serde_json::from_str(&json!(us).to_string()).expect("json");
            assert_eq!(nanos(&back), ns, "{us}");
        }
        let trace = Trace::new(true);
        let start = trace.now();
        trace.complete(T, "slice", start, json!({}));
        let e = &trace.to_json()["traceEvents"][0];
        assert_eq!(nanos(&e["ts"]), start.as_nanos());
    }

    #[test]
    fn a_disabled_trace_records_nothing() {
        let trace = Trace::new(false);
        trace.complete(T, "slice", trace.now(), json!({}));
        trace.instant(T, "mark", json!({}));
        trace.name_process(1, "p");
        assert_eq!(trace.to_json()["traceEvents"], json!([]));
    }
}
