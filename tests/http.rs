//! The HTTP side: status, metrics, Prometheus text, health, the web page.

mod common;

use common::*;

#[tokio::test]
async fn status_reports_version_fonts_and_presets() {
    let server = start().await;
    let s = get_json(&server, "/api/status").await;
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["engine"], "voices");
    assert_eq!(s["soundfonts"]["piano"]["source"], "built_in");
    assert!(s["soundfonts"]["piano"]["licence"].as_str().unwrap().len() > 2);
    assert!(s["soundfonts"]["pad"]["attribution"].is_string());
    assert_eq!(s["sessions"], 0);
    assert_eq!(s["listeners"], 0);
    let presets = s["presets"].as_array().unwrap();
    assert!(presets.len() >= 6);
    assert!(presets
        .iter()
        .any(|p| p["name"] == "focus" && p["mode"] == "dorian"));
    assert!(s["uptime_s"].as_f64().unwrap() >= 0.0);
    let controls = s["controls"].as_array().unwrap();
    let names: Vec<&str> = controls.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "preset",
            "key",
            "mode",
            "bpm",
            "intensity",
            "seed",
            "journey",
            "hour"
        ]
    );
    let bpm = &controls[3];
    assert_eq!(
        (
            bpm["type"].as_str(),
            bpm["min"].as_f64(),
            bpm["max"].as_f64()
        ),
        (Some("number"), Some(40.0), Some(120.0))
    );
    assert_eq!(bpm["default"], 60.0);
    assert_eq!(controls[2]["values"].as_array().unwrap().len(), 7);
    assert_eq!(controls[0]["default"], "focus");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_in_json_and_prometheus_text() {
    let server = start().await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    for _ in 0..5 {
        next_audio(&mut ws).await;
    }
    let m = get_json(&server, "/api/metrics").await;
    assert!(m["chunks_sent"].as_u64().unwrap() >= 5);
    assert!(m["synthesis_ms_per_chunk"]["p99"].as_f64().unwrap() > 0.0);
    assert!(m["rss_mb"].as_f64().unwrap() > 1.0);
    assert_eq!(m["listeners"], 1);
    let depth = &m["listener_queue_depth_chunks"];
    assert!(depth["count"].as_u64().unwrap() >= 5);
    assert!(
        depth["max"].as_f64().unwrap() <= 20.0,
        "queues stay bounded: {depth}"
    );
    let (status, text) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE auralis_chunks_sent_total counter"));
    assert!(text.contains("auralis_listeners 1"));
    assert!(text.contains("auralis_synthesis_seconds{quantile=\"0.99\"}"));
    for name in [
        "sessions_waiting",
        "render_threads",
        "listener_queue_capacity_chunks",
        "client_buffer_seconds",
        "peak_resident_memory_bytes",
    ] {
        assert!(text.contains(&format!("# TYPE auralis_{name} ")), "{name}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_page_and_unknown_paths() {
    let server = start().await;
    assert_eq!(
        http_get(&server, "/healthz").await,
        (200, "ok\n".to_string())
    );
    let (status, body) = http_get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    let (status, body) = http_get(&server, "/no/such/thing").await;
    assert_eq!(status, 404);
    assert!(body.contains("not found"));
    server.shutdown().await.unwrap();
}
