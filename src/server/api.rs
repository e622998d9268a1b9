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

use crate::music::params::CONTROLS;
use crate::music::presets::FOCUS;
use crate::music::{Params, PRESETS};
use crate::stats::Percentiles;
use crate::stream::metrics::PushStatus;
use crate::stream::Hub;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// What /api/status may show beyond the public facts.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOptions {
    /// The SoundFonts' file paths (`--status-paths`): for operators; to
    /// everyone else they only map out the server's disk.
    pub paths: bool,
}

pub async fn status(
    State(hub): State<Arc<Hub>>,
    State(options): State<StatusOptions>,
) -> Json<Value> {
    let fonts = &hub.config().fonts;
    let font = |info: &crate::soundfont::discovery::FontInfo| {
        let mut v = json!(info);
        if !options.paths {
            if let Some(o) = v.as_object_mut() {
                o.remove("path");
            }
        }
        v
    };
    let problems: Vec<String> = if options.paths {
        fonts.problems.clone()
    } else {
        fonts.problems.iter().map(|p| file_names_only(p)).collect()
    };
    Json(json!({
        "name": "auralis",
        "version": env!("CARGO_PKG_VERSION"),
        "engine": hub.config().engine_kind.as_str(),
        "sample_rate": crate::SAMPLE_RATE,
        "channels": crate::CHANNELS,
        "chunk_ms": crate::audio::CHUNK_MS,
        "soundfonts": {
            "piano": font(&fonts.piano.info),
            "pad": font(&fonts.pad.info),
            "problems": problems,
        },
        "uptime_s": hub.metrics.uptime_s(),
        "sessions": hub.sessions(),
        "sessions_waiting": hub.waiting_for_resume(),
        "rooms": hub.rooms(),
        "listeners": hub.listeners(),
        "limits": {
            "max_listeners": hub.config().max_listeners,
            "max_sessions": hub.config().max_sessions,
            "max_rooms": hub.config().max_rooms,
        },
        "presets": PRESETS,
        "controls": controls(),
        "icecast": pushes_json(&hub),
    }))
}

/// `text` with every path in it cut to its last component: a problem
/// still names the file, not where it lives.
fn file_names_only(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.rfind('/') {
            Some(i) if word.len() > 1 => {
                let quote = if word.starts_with(['"', '\'', '`']) {
                    &word[..1]
                } else {
                    ""
                };
                format!("{quote}{}", &word[i + 1..])
            }
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    let mut v = metrics_json(&series(&hub));
    v["icecast"] = pushes_json(&hub);
    Json(v)
}

/// Each room pushed to Icecast: where to, connected, bytes, reconnects.
fn pushes_json(hub: &Hub) -> Value {
    hub.metrics.pushes().iter().map(|p| json!(&**p)).collect()
}

/// The pushed rooms in Prometheus text, one labelled series per mount.
fn pushes_prometheus(hub: &Hub) -> String {
    let pushes = hub.metrics.pushes();
    let mut out = String::new();
    if pushes.is_empty() {
        return out;
    }
    type Read = fn(&PushStatus) -> u64;
    let families: [(&str, &str, &str, Read); 4] = [
        (
            "icecast_connected",
            "gauge",
            "1 while the room's Icecast source connection is up.",
            |p| u64::from(p.connected.load(Ordering::Relaxed)),
        ),
        (
            "icecast_bytes_sent_total",
            "counter",
            "Bytes pushed to Icecast.",
            |p| p.bytes_sent.load(Ordering::Relaxed),
        ),
        (
            "icecast_connections_total",
            "counter",
            "Source connections Icecast accepted.",
            |p| p.connections.load(Ordering::Relaxed),
        ),
        (
            "icecast_reconnects_total",
            "counter",
            "Source connections lost or refused.",
            |p| p.reconnects.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, read) in families {
        let _ = writeln!(out, "# HELP auralis_{name} {help}");
        let _ = writeln!(out, "# TYPE auralis_{name} {kind}");
        for p in &pushes {
            let _ = writeln!(
                out,
                "auralis_{name}{{room=\"{}\",target=\"{}\"}} {}",
                p.room,
                p.target,
                read(p)
            );
        }
    }
    out
}

/// The Prometheus text exposition format (0.0.4), written directly: a
/// couple of dozen series do not need a registry.
pub async fn prometheus(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus_text(&series(&hub)) + &pushes_prometheus(&hub),
    )
}

/// One measurement as both endpoints show it.
enum Reading {
    Gauge(Option<f64>),
    /// A whole-number gauge, kept whole in the JSON.
    Count(u64),
    Counter(u64),
    /// Percentiles of a recent window; in JSON in the series' own unit, in
    /// Prometheus multiplied by `Series::prometheus_scale`.
    Summary(Percentiles),
}

struct Series {
    /// The key in /api/metrics.
    json: &'static str,
    /// The name in /metrics, after `auralis_`, in base units.
    prometheus: &'static str,
    help: &'static str,
    /// From the JSON unit to the Prometheus one (ms → s, MB → bytes).
    prometheus_scale: f64,
    reading: Reading,
}

const MS: f64 = 1e-3;
const MB: f64 = 1024.0 * 1024.0;

/// Every series /api/metrics and /metrics show, in one table.
fn series(hub: &Hub) -> Vec<Series> {
    let m = &hub.metrics;
    let counter = |a: &std::sync::atomic::AtomicU64| Reading::Counter(a.load(Ordering::Relaxed));
    let s = |json, prometheus, help, prometheus_scale, reading| Series {
        json,
        prometheus,
        help,
        prometheus_scale,
        reading,
    };
    vec![
        s(
            "uptime_s",
            "uptime_seconds",
            "Seconds since the server started.",
            1.0,
            Reading::Gauge(Some(m.uptime_s())),
        ),
        s(
            "sessions",
            "sessions",
            "Running sessions.",
            1.0,
            Reading::Count(hub.sessions() as u64),
        ),
        s(
            "sessions_waiting",
            "sessions_waiting",
            "Sessions paused for a dropped listener to resume them.",
            1.0,
            Reading::Count(hub.waiting_for_resume() as u64),
        ),
        s(
            "listeners",
            "listeners",
            "Connected listeners.",
            1.0,
            Reading::Count(hub.listeners() as u64),
        ),
        s(
            "render_threads",
            "render_threads",
            "Threads that synthesize audio.",
            1.0,
            Reading::Count(hub.render_threads() as u64),
        ),
        s(
            "synthesis_ms_per_chunk",
            "synthesis_seconds",
            "Synthesis time per 100 ms chunk (recent window).",
            MS,
            Reading::Summary(m.synth_ms()),
        ),
        s(
            "chunks_rendered",
            "chunks_rendered_total",
            "100 ms chunks synthesized.",
            1.0,
            counter(&m.chunks_rendered),
        ),
        s(
            "chunks_sent",
            "chunks_sent_total",
            "Chunks sent to listeners.",
            1.0,
            counter(&m.chunks_sent),
        ),
        s(
            "bytes_sent",
            "bytes_sent_total",
            "Audio and message bytes sent.",
            1.0,
            counter(&m.bytes_sent),
        ),
        s(
            "listener_queue_capacity_chunks",
            "listener_queue_capacity_chunks",
            "Chunks a listener may leave unread before it is dropped.",
            1.0,
            Reading::Count(hub.config().queue_chunks as u64),
        ),
        s(
            "listener_queue_depth_chunks",
            "listener_queue_depth_chunks",
            "Deepest listener queue of a session at its recent chunks.",
            1.0,
            Reading::Summary(m.queue_depth()),
        ),
        s(
            "listeners_dropped_slow",
            "listeners_dropped_slow_total",
            "Listeners closed for not reading.",
            1.0,
            counter(&m.listeners_dropped_slow),
        ),
        s(
            "control_changes",
            "control_changes_total",
            "Accepted control changes.",
            1.0,
            counter(&m.control_changes),
        ),
        s(
            "control_splices",
            "control_splices_total",
            "Control changes spliced into audio the listener had buffered.",
            1.0,
            counter(&m.splices),
        ),
        s(
            "protocol_errors",
            "protocol_errors_total",
            "Client messages answered with an error.",
            1.0,
            counter(&m.protocol_errors),
        ),
        s(
            "client_underruns",
            "client_underruns_total",
            "Buffer underruns reported by clients.",
            1.0,
            counter(&m.client_underruns),
        ),
        s(
            "client_latency_ms",
            "client_latency_seconds",
            "End-to-end latency reported by clients (recent window).",
            MS,
            Reading::Summary(m.client_latency_ms()),
        ),
        s(
            "client_control_latency_ms",
            "client_control_latency_seconds",
            "Control-to-audible latency reported by clients (recent window).",
            MS,
            Reading::Summary(m.control_latency_ms()),
        ),
        s(
            "client_buffer_ms",
            "client_buffer_seconds",
            "Buffered audio reported by clients (recent window).",
            MS,
            Reading::Summary(m.client_buffer_ms()),
        ),
        s(
            "rss_mb",
            "resident_memory_bytes",
            "Resident set size.",
            MB,
            Reading::Gauge(crate::rss::rss_mb()),
        ),
        s(
            "peak_rss_mb",
            "peak_resident_memory_bytes",
            "Highest resident set size so far.",
            MB,
            Reading::Gauge(crate::rss::peak_rss_mb()),
        ),
    ]
}

fn metrics_json(series: &[Series]) -> Value {
    let mut out = serde_json::Map::new();
    for s in series {
        let v = match &s.reading {
            Reading::Gauge(v) => json!(v),
            Reading::Count(n) | Reading::Counter(n) => json!(n),
            Reading::Summary(p) => json!(p),
        };
        out.insert(s.json.into(), v);
    }
    Value::Object(out)
}

fn prometheus_text(series: &[Series]) -> String {
    let mut out = String::new();
    for s in series {
        let (kind, value) = match &s.reading {
            Reading::Gauge(None) => continue,
            Reading::Gauge(Some(v)) => ("gauge", *v),
            Reading::Count(n) => ("gauge", *n as f64),
            Reading::Counter(n) => ("counter", *n as f64),
            Reading::Summary(_) => ("summary", 0.0),
        };
        let name = s.prometheus;
        let _ = writeln!(out, "# HELP auralis_{name} {}", s.help);
        let _ = writeln!(out, "# TYPE auralis_{name} {kind}");
        match &s.reading {
            Reading::Summary(p) => {
                for (q, v) in [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)] {
                    let v = v * s.prometheus_scale;
                    let _ = writeln!(out, "auralis_{name}{{quantile=\"{q}\"}} {v}");
                }
                let _ = writeln!(out, "auralis_{name}_count {}", p.count);
            }
            _ => {
                let _ = writeln!(out, "auralis_{name} {}", value * s.prometheus_scale);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn problems_lose_their_directories() {
        assert_eq!(
            super::file_names_only("cannot read \"/home/op/fonts/Piano.sf2\": no such file"),
            "cannot read \"Piano.sf2\": no such file"
        );
        assert_eq!(super::file_names_only("a / b"), "a / b");
    }

    use super::*;

    #[test]
    fn every_series_is_in_both_formats() {
        let p = Percentiles::of(&mut [1.0, 2.0, 3.0]);
        let series = vec![
            Series {
                json: "a_ms",
                prometheus: "a_seconds",
                help: "A.",
                prometheus_scale: MS,
                reading: Reading::Summary(p),
            },
            Series {
                json: "n",
                prometheus: "n_total",
                help: "N.",
                prometheus_scale: 1.0,
                reading: Reading::Counter(7),
            },
            Series {
                json: "g",
                prometheus: "g",
                help: "G.",
                prometheus_scale: 1.0,
                reading: Reading::Count(2),
            },
            Series {
                json: "missing",
                prometheus: "missing",
                help: "M.",
                prometheus_scale: 1.0,
                reading: Reading::Gauge(None),
            },
        ];
        let v = metrics_json(&series);
        assert_eq!(v["a_ms"]["p50"], 2.0);
        assert_eq!(v["n"], 7);
        assert_eq!(v["g"], 2);
        assert!(v["missing"].is_null());
        let text = prometheus_text(&series);
        assert!(text.contains("# TYPE auralis_a_seconds summary"), "{text}");
        assert!(
            text.contains("auralis_a_seconds{quantile=\"0.5\"} 0.002"),
            "{text}"
        );
        assert!(text.contains("auralis_a_seconds_count 3"), "{text}");
        assert!(
            text.contains("# TYPE auralis_n_total counter\nauralis_n_total 7\n"),
            "{text}"
        );
        assert!(text.contains("auralis_g 2\n"), "{text}");
        assert!(!text.contains("missing"), "{text}");
    }
}
