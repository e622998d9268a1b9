//! Health and introspection: /api/status, /api/metrics (JSON), /metrics
//! (Prometheus text), /healthz.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::music::params::{decimal, CONTROLS};
use crate::music::presets::FOCUS;
use crate::music::{Params, PRESETS};
use crate::stream::Hub;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn status(State(hub): State<Arc<Hub>>) -> Json<Value> {
    let fonts = &hub.config().fonts;
    let presets: Vec<Value> = PRESETS
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "key": p.key.to_string(),
                "mode": p.mode.to_string(),
                "bpm": decimal(p.bpm),
                "intensity": decimal(p.intensity),
                "pad_program": p.pad_program,
            })
        })
        .collect();
    Json(json!({
        "name": "auralis",
        "version": env!("CARGO_PKG_VERSION"),
        "engine": "rustysynth",
        "sample_rate": crate::SAMPLE_RATE,
        "channels": crate::CHANNELS,
        "chunk_ms": crate::audio::CHUNK_MS,
        "soundfonts": {
            "piano": fonts.piano.info,
            "pad": fonts.pad.info,
            "problems": fonts.problems,
        },
        "uptime_s": hub.metrics.uptime_s(),
        "sessions": hub.sessions(),
        "rooms": hub.rooms(),
        "listeners": hub.listeners(),
        "limits": {
            "max_listeners": hub.config().max_listeners,
            "max_sessions": hub.config().max_sessions,
            "max_rooms": hub.config().max_rooms,
        },
        "presets": presets,
        "controls": controls(),
    }))
}

/// The parameter table as the web page builds its controls from it: each
/// control's name, kind, range or choices, and the value a new stream has.
fn controls() -> Vec<Value> {
    let mut defaults = serde_json::to_value(Params::default()).unwrap_or_default();
    defaults["preset"] = FOCUS.name.into();
    CONTROLS
        .iter()
        .map(|c| {
            let mut v = json!(c);
            let choices = c.domain.choices();
            if !choices.is_empty() {
                v["values"] = choices.into();
            }
            v["default"] = defaults[c.name].clone();
            v
        })
        .collect()
}

pub async fn metrics(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(metrics_json(&hub))
}

fn metrics_json(hub: &Hub) -> Value {
    let m = &hub.metrics;
    json!({
        "uptime_s": m.uptime_s(),
        "sessions": hub.sessions(),
        "listeners": hub.listeners(),
        "render_threads": hub.render_threads(),
        "synthesis_ms_per_chunk": m.synth_ms(),
        "chunks_rendered": m.chunks_rendered.load(Ordering::Relaxed),
        "chunks_sent": m.chunks_sent.load(Ordering::Relaxed),
        "bytes_sent": m.bytes_sent.load(Ordering::Relaxed),
        "listener_queue_capacity_chunks": hub.config().queue_chunks,
        "listener_queue_depth_chunks": m.queue_depth(),
        "listeners_dropped_slow": m.listeners_dropped_slow.load(Ordering::Relaxed),
        "control_changes": m.control_changes.load(Ordering::Relaxed),
        "protocol_errors": m.protocol_errors.load(Ordering::Relaxed),
        "client_underruns": m.client_underruns.load(Ordering::Relaxed),
        "client_latency_ms": m.client_latency_ms(),
        "client_control_latency_ms": m.control_latency_ms(),
        "client_buffer_ms": m.client_buffer_ms(),
        "rss_mb": crate::rss::rss_mb(),
        "peak_rss_mb": crate::rss::peak_rss_mb(),
    })
}

/// The same numbers in the Prometheus text exposition format (0.0.4),
/// written directly: a dozen gauges and counters do not need a registry.
pub async fn prometheus(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let m = &hub.metrics;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP auralis_{name} {help}");
        let _ = writeln!(out, "# TYPE auralis_{name} {kind}");
        let _ = writeln!(out, "auralis_{name} {value}");
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        m.uptime_s(),
    );
    metric(
        "sessions",
        "gauge",
        "Running sessions.",
        hub.sessions() as f64,
    );
    metric(
        "listeners",
        "gauge",
        "Connected listeners.",
        hub.listeners() as f64,
    );
    metric(
        "chunks_rendered_total",
        "counter",
        "100 ms chunks synthesized.",
        m.chunks_rendered.load(Ordering::Relaxed) as f64,
    );
    metric(
        "chunks_sent_total",
        "counter",
        "Chunks sent to listeners.",
        m.chunks_sent.load(Ordering::Relaxed) as f64,
    );
    metric(
        "bytes_sent_total",
        "counter",
        "Audio and message bytes sent.",
        m.bytes_sent.load(Ordering::Relaxed) as f64,
    );
    metric(
        "listeners_dropped_slow_total",
        "counter",
        "Listeners closed for not reading.",
        m.listeners_dropped_slow.load(Ordering::Relaxed) as f64,
    );
    metric(
        "control_changes_total",
        "counter",
        "Accepted control changes.",
        m.control_changes.load(Ordering::Relaxed) as f64,
    );
    metric(
        "protocol_errors_total",
        "counter",
        "Client messages answered with an error.",
        m.protocol_errors.load(Ordering::Relaxed) as f64,
    );
    metric(
        "client_underruns_total",
        "counter",
        "Buffer underruns reported by clients.",
        m.client_underruns.load(Ordering::Relaxed) as f64,
    );
    if let Some(rss) = crate::rss::rss_mb() {
        metric(
            "resident_memory_bytes",
            "gauge",
            "Resident set size.",
            rss * 1024.0 * 1024.0,
        );
    }
    metric(
        "listener_queue_depth_chunks",
        "gauge",
        "Deepest listener queue of a session at its recent chunks (p99).",
        m.queue_depth().p99,
    );
    for (name, help, p) in [
        (
            "synthesis_seconds",
            "Synthesis time per 100 ms chunk (recent window).",
            m.synth_ms(),
        ),
        (
            "client_latency_seconds",
            "End-to-end latency reported by clients (recent window).",
            m.client_latency_ms(),
        ),
        (
            "client_control_latency_seconds",
            "Control-to-audible latency reported by clients (recent window).",
            m.control_latency_ms(),
        ),
    ] {
        let _ = writeln!(out, "# HELP auralis_{name} {help}");
        let _ = writeln!(out, "# TYPE auralis_{name} summary");
        for (q, v) in [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)] {
            let _ = writeln!(out, "auralis_{name}{{quantile=\"{q}\"}} {}", v / 1e3);
        }
        let _ = writeln!(out, "auralis_{name}_count {}", p.count);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
