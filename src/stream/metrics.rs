//! Server-wide counters and recent-sample windows behind /api/metrics and
//! /metrics. Windows are fixed-size rings, so memory does not grow with uptime.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::stats::Percentiles;

/// Samples kept per window: enough for stable p99s over the last minutes.
const WINDOW: usize = 4_096;

/// The newest `WINDOW` values of one measurement.
struct Window {
    values: Vec<f64>,
    next: usize,
}

impl Window {
    fn new() -> Self {
        Self {
            values: Vec::with_capacity(WINDOW),
            next: 0,
        }
    }

    fn push(&mut self, v: f64) {
        if self.values.len() < WINDOW {
            self.values.push(v);
        } else {
            self.values[self.next] = v;
        }
        self.next = (self.next + 1) % WINDOW;
    }

    fn summary(&self) -> Percentiles {
        Percentiles::of(&mut self.values.clone())
    }
}

pub struct Metrics {
    pub started: Instant,
    pub chunks_rendered: AtomicU64,
    pub chunks_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub listeners_dropped_slow: AtomicU64,
    pub client_underruns: AtomicU64,
    pub control_changes: AtomicU64,
    /// Control changes spliced into audio already sent.
    pub splices: AtomicU64,
    pub protocol_errors: AtomicU64,
    synth_ms: Mutex<Window>,
    client_latency_ms: Mutex<Window>,
    control_latency_ms: Mutex<Window>,
    client_buffer_ms: Mutex<Window>,
    /// Per chunk sent, the deepest listener queue of its session, in chunks.
    queue_depth: Mutex<Window>,
    /// The Icecast mounts this server pushes rooms to, fixed at start.
    pushes: Mutex<Vec<Arc<PushStatus>>>,
}

/// One room pushed to an Icecast mount, as /api/status and /metrics show it.
#[derive(Debug, Default, Serialize)]
pub struct PushStatus {
    pub room: String,
    /// Where to, without the password: `http://source@host:port/mount`.
    pub target: String,
    pub connected: AtomicBool,
    /// Source connections Icecast accepted.
    pub connections: AtomicU64,
    /// Attempts after the first: connections lost or refused.
    pub reconnects: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Why the last connection ended or failed.
    pub last_error: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn record(window: &Mutex<Window>, v: f64) {
    if v.is_finite() {
        window.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    }
}

fn summary(window: &Mutex<Window>) -> Percentiles {
    window.lock().unwrap_or_else(|e| e.into_inner()).summary()
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            chunks_rendered: AtomicU64::new(0),
            chunks_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            listeners_dropped_slow: AtomicU64::new(0),
            client_underruns: AtomicU64::new(0),
            control_changes: AtomicU64::new(0),
            splices: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            synth_ms: Mutex::new(Window::new()),
            client_latency_ms: Mutex::new(Window::new()),
            control_latency_ms: Mutex::new(Window::new()),
            client_buffer_ms: Mutex::new(Window::new()),
            queue_depth: Mutex::new(Window::new()),
            pushes: Mutex::new(Vec::new()),
        }
    }

    pub fn add_push(&self, status: Arc<PushStatus>) {
        self.pushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(status);
    }

    pub fn pushes(&self) -> Vec<Arc<PushStatus>> {
        self.pushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn record_synth_ms(&self, ms: f64) {
        self.chunks_rendered.fetch_add(1, Ordering::Relaxed);
        record(&self.synth_ms, ms);
    }

    pub fn record_client_latency_ms(&self, ms: f64) {
        record(&self.client_latency_ms, ms);
    }

    pub fn record_control_latency_ms(&self, ms: f64) {
        record(&self.control_latency_ms, ms);
    }

    pub fn record_client_buffer_ms(&self, ms: f64) {
        record(&self.client_buffer_ms, ms);
    }

    pub fn record_queue_depth(&self, chunks: f64) {
        record(&self.queue_depth, chunks);
    }

    pub fn queue_depth(&self) -> Percentiles {
        summary(&self.queue_depth)
    }

    pub fn synth_ms(&self) -> Percentiles {
        summary(&self.synth_ms)
    }

    pub fn client_latency_ms(&self) -> Percentiles {
        summary(&self.client_latency_ms)
    }

    pub fn control_latency_ms(&self) -> Percentiles {
        summary(&self.control_latency_ms)
    }

    pub fn client_buffer_ms(&self) -> Percentiles {
        summary(&self.client_buffer_ms)
    }

    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_only_the_newest_values() {
        let mut w = Window::new();
        for i in 0..(WINDOW * 3) {
            w.push(i as f64);
        }
        assert_eq!(w.values.len(), WINDOW);
        let s = w.summary();
        assert_eq!(s.max, (WINDOW * 3 - 1) as f64);
        assert!(s.p50 >= (WINDOW * 2) as f64);
    }

    #[test]
    fn non_finite_reports_are_ignored() {
        let m = Metrics::new();
        m.record_client_latency_ms(f64::NAN);
        m.record_client_latency_ms(120.0);
        assert_eq!(m.client_latency_ms().count, 1);
    }
}
