//! /ws/stream against a real server on 127.0.0.1 with a real WebSocket client.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const CHUNK_BYTES: usize = 17_640;

#[tokio::test]
async fn hello_comes_first_then_binary_chunks_in_sequence() {
    let server = start().await;
    let mut ws = connect(&server, "").await;
    let hello = next_event(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["sample_rate"], 44_100);
    assert_eq!(hello["channels"], 2);
    assert_eq!(hello["chunk_ms"], 100);
    assert_eq!(hello["format"], "binary");
    assert_eq!(hello["preset"], "focus");
    assert_eq!(hello["params"]["key"], "D");
    assert_eq!(hello["params"]["mode"], "dorian");
    assert!(hello["session_id"].is_string());
    assert!(hello["server_version"].is_string());
    let first = hello["next_seq"].as_u64().unwrap();
    for i in 0..15 {
        let msg = next(&mut ws).await;
        assert!(
            matches!(msg, Message::Binary(_)),
            "binary frames by default"
        );
        let audio = decode_audio(&msg).unwrap();
        assert_eq!(audio.seq, first + i, "seq has no gaps");
        assert_eq!(audio.pcm.len(), CHUNK_BYTES);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_format_has_exactly_the_briefs_fields() {
    let server = start().await;
    let mut ws = connect(&server, "?format=json&preset=calm").await;
    let hello = next_event(&mut ws).await;
    assert_eq!(hello["format"], "json");
    assert_eq!(hello["preset"], "calm");
    let mut nonsilent = false;
    for i in 0..30 {
        let Message::Text(t) = next(&mut ws).await else {
            panic!("json format sends text frames")
        };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "audio_data",
                "channels",
                "duration_ms",
                "sample_rate",
                "seq",
                "timestamp",
                "type"
            ]
        );
        assert_eq!(v["seq"], i);
        assert_eq!(v["duration_ms"], 100);
        let now = auralis::stream::session::unix_now();
        assert!((now - v["timestamp"].as_f64().unwrap()).abs() < 5.0);
        let audio = decode_audio(&Message::Text(t)).unwrap();
        assert_eq!(audio.pcm.len(), CHUNK_BYTES);
        nonsilent |= audio
            .pcm
            .chunks(2)
            .any(|s| i16::from_le_bytes([s[0], s[1]]).abs() > 100);
    }
    assert!(nonsilent, "3 s of the calm preset is not silent");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn chunks_are_paced_at_ten_per_second_without_bursts() {
    let server = start().await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    let first = next_audio(&mut ws).await;
    let t0 = Instant::now();
    let mut count = 1u64;
    let mut worst_lead = 0.0f64;
    while t0.elapsed() < Duration::from_secs(5) {
        let a = next_audio(&mut ws).await;
        assert_eq!(a.seq, first.seq + count);
        count += 1;
        // Chunks received beyond what the wall clock has played since the
        // first: may never exceed the render lead (2 chunks) plus one.
        let ahead = count as f64 - t0.elapsed().as_secs_f64() * 10.0;
        worst_lead = worst_lead.max(ahead);
    }
    let rate = count as f64 / t0.elapsed().as_secs_f64();
    assert!((9.0..=11.5).contains(&rate), "{rate:.2} chunks/s");
    assert!(
        worst_lead <= 3.5,
        "burst of {worst_lead:.1} chunks ahead of the clock"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_control_change_is_acknowledged_and_changes_the_music() {
    let server = start().await;
    // Two sessions with the same seed render the same music until one is
    // steered; from the acknowledged chunk on, the steered one differs.
    let mut steered = connect(&server, "?seed=5").await;
    let mut plain = connect(&server, "?seed=5").await;
    next_event(&mut steered).await;
    next_event(&mut plain).await;
    const LAST: u64 = 80;
    let plain_task = tokio::spawn(async move {
        let mut v = Vec::new();
        while v.last().is_none_or(|x: &Audio| x.seq < LAST) {
            v.push(next_audio(&mut plain).await);
        }
        v
    });
    let mut a = Vec::new();
    for _ in 0..5 {
        a.push(next_audio(&mut steered).await);
    }
    send_json(
        &mut steered,
        json!({"type":"control","params":{"bpm":110,"mode":"lydian"}}),
    )
    .await;
    // Audio keeps flowing while the acknowledgement is on its way.
    let ack: serde_json::Value = loop {
        let msg = next(&mut steered).await;
        match decode_audio(&msg) {
            Some(audio) => a.push(audio),
            None => break serde_json::from_str(msg.to_text().unwrap()).unwrap(),
        }
    };
    assert_eq!(ack["type"], "params");
    assert_eq!(ack["bpm"], 110.0);
    assert_eq!(ack["mode"], "lydian");
    assert_eq!(ack["key"], "D", "unchanged fields stay");
    let applies = ack["applies_at_seq"].as_u64().unwrap();
    assert!(
        applies + 20 < LAST,
        "the change applies within a beat or two"
    );
    while a.last().unwrap().seq < LAST {
        a.push(next_audio(&mut steered).await);
    }
    let b = plain_task.await.unwrap();
    let pcm = |v: &[Audio], seq: u64| v.iter().find(|x| x.seq == seq).map(|x| x.pcm.clone());
    for seq in 0..applies {
        assert_eq!(
            pcm(&a, seq),
            pcm(&b, seq),
            "before the change, chunk {seq} is the same"
        );
    }
    let differs = (applies..=LAST).any(|s| pcm(&a, s) != pcm(&b, s));
    assert!(differs, "after the change the music differs");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_stream_goes_on() {
    let server = start().await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    let bad = [
        ("{oops", "invalid_json"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (
            r#"{"type":"control","params":{"bpm":500}}"#,
            "invalid_params",
        ),
        (
            r#"{"type":"control","params":{"key":"H"}}"#,
            "invalid_params",
        ),
        (
            r#"{"type":"control","params":{"preset":"disco"}}"#,
            "invalid_params",
        ),
    ];
    for (text, code) in bad {
        ws.send(Message::Text(text.into())).await.unwrap();
        let e = next_event(&mut ws).await;
        assert_eq!(e["type"], "error", "{text}");
        assert_eq!(e["code"], code, "{text}: {e}");
        assert!(e["message"].as_str().unwrap().len() > 10);
    }
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_event(&mut ws).await["code"], "binary_not_supported");
    let before = next_audio(&mut ws).await.seq;
    let after = next_audio(&mut ws).await.seq;
    assert_eq!(after, before + 1, "the stream carries on");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_query_is_refused_with_400_and_a_reason() {
    let server = start().await;
    let (status, body) = http_get(&server, "/ws/stream?bpm=500").await;
    assert_eq!(status, 400);
    assert!(body.contains("bpm") && body.contains("40"), "{body}");
    let (status, body) = http_get(&server, "/ws/stream?volume=3").await;
    assert_eq!(status, 400);
    assert!(body.contains("allowed"), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ping_is_answered_and_stats_reach_the_metrics() {
    let server = start().await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    send_json(&mut ws, json!({"type":"ping","t":1234.5})).await;
    let pong = next_event(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["t"], 1234.5);
    let now = auralis::stream::session::unix_now();
    assert!((pong["server_time"].as_f64().unwrap() - now).abs() < 5.0);
    send_json(
        &mut ws,
        json!({"type":"stats","buffer_ms":300,"underruns":3,"latency_ms":420}),
    )
    .await;
    // A ping after the stats: once it is answered, the stats were handled.
    send_json(&mut ws, json!({"type":"ping","t":1})).await;
    next_event(&mut ws).await;
    let m = get_json(&server, "/api/metrics").await;
    assert_eq!(m["client_underruns"], 3);
    assert_eq!(m["client_latency_ms"]["count"], 1);
    assert_eq!(m["client_latency_ms"]["p50"], 420.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_listeners_in_one_room_hear_the_same_chunks() {
    let server = start().await;
    let mut a = connect(&server, "?room=lobby").await;
    let ha = next_event(&mut a).await;
    let mut b = connect(&server, "?room=lobby&preset=night").await;
    let hb = next_event(&mut b).await;
    assert_eq!(ha["session_id"], hb["session_id"]);
    assert_eq!(hb["room"], "lobby");
    assert_eq!(hb["preset"], ha["preset"], "a room keeps its own params");
    let first_b = next_audio(&mut b).await;
    let mut chunk_a = next_audio(&mut a).await;
    while chunk_a.seq < first_b.seq {
        chunk_a = next_audio(&mut a).await;
    }
    assert_eq!(chunk_a, first_b);
    for _ in 0..10 {
        assert_eq!(next_audio(&mut a).await, next_audio(&mut b).await);
    }
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["listeners"], 2);
    assert_eq!(status["sessions"], 1);
    // A control from the room's creator (with its key) reaches the other.
    let key = ha["control_key"]
        .as_str()
        .expect("the creator gets the key");
    assert!(hb.get("control_key").is_none(), "only the creator");
    send_json(
        &mut a,
        json!({"type":"control","params":{"intensity":0.8},"key":key}),
    )
    .await;
    send_json(
        &mut a,
        json!({"type":"control","params":{"intensity":0.35},"key":key}),
    )
    .await;
    assert_eq!(next_event(&mut b).await["intensity"], 0.8);
    assert_eq!(
        next_event(&mut b).await["intensity"],
        0.35,
        "decimals arrive as sent"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn twenty_listeners_for_ten_seconds_have_no_gaps() {
    let server = start().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut ws = connect(&server, &format!("?seed={i}")).await;
        tasks.push(tokio::spawn(async move {
            next_event(&mut ws).await;
            let mut last = next_audio(&mut ws).await.seq;
            let t0 = Instant::now();
            let mut gaps = 0;
            let mut count = 1;
            let mut worst_gap = Duration::ZERO;
            let mut prev = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                let a = next_audio(&mut ws).await;
                worst_gap = worst_gap.max(prev.elapsed());
                prev = Instant::now();
                if a.seq != last + 1 {
                    gaps += 1;
                }
                last = a.seq;
                count += 1;
            }
            (gaps, count, worst_gap)
        }));
    }
    for t in tasks {
        let (gaps, count, worst_gap) = t.await.unwrap();
        assert_eq!(gaps, 0);
        assert!(count >= 95, "only {count} chunks in 10 s");
        assert!(
            worst_gap < Duration::from_millis(600),
            "a {worst_gap:?} silence"
        );
    }
    let m = get_json(&server, "/api/metrics").await;
    assert!(m["synthesis_ms_per_chunk"]["count"].as_u64().unwrap() >= 1900);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_listener_that_stops_reading_is_dropped() {
    let mut config = config();
    config.hub.queue_chunks = 10;
    let server = start_with(config).await;
    let stalled = connect(&server, "").await;
    let mut reader = connect(&server, "").await;
    next_event(&mut reader).await;
    let t0 = Instant::now();
    // Keep the healthy listener reading while the other never does; wait
    // (bounded) for the server to drop the stalled one.
    loop {
        next_audio(&mut reader).await;
        let m = get_json(&server, "/api/metrics").await;
        if m["listeners_dropped_slow"] == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "stalled listener not dropped"
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["listeners"], 1);
    drop(stalled);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_listeners_with_1001() {
    let server = start().await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    next_audio(&mut ws).await;
    let stop = tokio::spawn(server.shutdown());
    let close = loop {
        match next(&mut ws).await {
            Message::Close(frame) => break frame,
            _ => continue,
        }
    };
    let frame = close.expect("a close frame with a reason");
    assert_eq!(frame.code, CloseCode::Away);
    assert!(frame.reason.contains("shutting down"));
    stop.await.unwrap().unwrap();
    assert!(ws
        .next()
        .await
        .is_none_or(|m| m.is_err() || matches!(m, Ok(Message::Close(_)))));
}
