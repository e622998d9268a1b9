//! Bad input, abusive and broken clients, limits: each gets a clear answer,
//! nothing panics, and other listeners carry on.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Reads messages until the close frame; returns its code and reason.
async fn close_of(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        if let Message::Close(frame) = next(ws).await {
            let f = frame.expect("a close frame with a code");
            return (f.code, f.reason.to_string());
        }
    }
}

/// Asserts the listener is still getting consecutive chunks.
async fn still_streaming(ws: &mut Ws) {
    let a = next_audio(ws).await.seq;
    let b = next_audio(ws).await.seq;
    assert_eq!(b, a + 1);
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009_and_others_carry_on() {
    let server = start().await;
    let mut other = connect(&server, "").await;
    next_event(&mut other).await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    let big = json!({"type":"ping","t":1,"pad":"x".repeat(5_000)}).to_string();
    ws.send(Message::Text(big.into())).await.unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("4096"), "{reason}");
    still_streaming(&mut other).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed_with_1008() {
    let server = start().await;
    let mut other = connect(&server, "").await;
    next_event(&mut other).await;
    let mut ws = connect(&server, "").await;
    next_event(&mut ws).await;
    for i in 0..400 {
        let sent = ws
            .send(Message::Text(
                json!({"type":"ping","t":i}).to_string().into(),
            ))
            .await;
        if sent.is_err() {
            break;
        }
    }
    let mut limited = 0;
    let (code, reason) = loop {
        match next(&mut ws).await {
            Message::Text(t) if t.contains("rate_limited") => limited += 1,
            Message::Close(Some(f)) => break (f.code, f.reason.to_string()),
            _ => {}
        }
    };
    assert!(limited > 0, "some messages were answered with rate_limited");
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("flood"), "{reason}");
    still_streaming(&mut other).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn limits_answer_503_with_a_reason() {
    let mut config = config();
    config.hub.max_listeners = 3;
    config.hub.max_sessions = 1;
    config.hub.max_rooms = 1;
    let server = start_with(config).await;
    let mut first = connect(&server, "?room=a").await;
    next_event(&mut first).await;
    // Another session: over the session limit.
    let (status, body) = http_get(&server, "/ws/stream").await;
    assert_eq!(status, 503);
    assert!(body.contains("sessions"), "{body}");
    // Another room: over the room (and session) limit.
    let (status, _) = http_get(&server, "/ws/stream?room=b").await;
    assert_eq!(status, 503);
    // The existing room still takes listeners up to the listener limit.
    let mut second = connect(&server, "?room=a").await;
    next_event(&mut second).await;
    let mut third = connect(&server, "?room=a").await;
    next_event(&mut third).await;
    let url = format!("ws://{}/ws/stream?room=a", server.addr);
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("expected an HTTP refusal, got {err:?}")
    };
    assert_eq!(resp.status(), 503);
    let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("listeners"), "{body}");
    still_streaming(&mut first).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn origins_outside_the_allowlist_are_refused() {
    let mut config = config();
    config.allowed_origins = vec!["http://good.example".into()];
    let server = start_with(config).await;
    let connect_from = |origin: &'static str| {
        let mut req = format!("ws://{}/ws/stream", server.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    match connect_from("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let (mut ws, _) = connect_from("http://good.example")
        .await
        .expect("allowed origin");
    assert_eq!(next_event(&mut ws).await["type"], "hello");
    let mut no_origin = connect(&server, "").await;
    assert_eq!(next_event(&mut no_origin).await["type"], "hello");
    server.shutdown().await.unwrap();
}

/// Opens /ws/stream by hand, so the test controls every byte the client
/// sends (or does not send).
async fn raw_handshake(server: &auralis::server::RunningServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = "GET /ws/stream HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Reads server frames (never answering pings) until a close frame; returns
/// its code, or None if the connection ended without one.
async fn raw_read_until_close(s: &mut TcpStream) -> Option<u16> {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no close frame in time");
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.ok()?;
        let opcode = h[0] & 0x0F;
        let len = match h[1] & 0x7F {
            126 => u64::from(s.read_u16().await.ok()?),
            127 => s.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await.ok()?;
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_as_idle() {
    let mut config = config();
    config.timeouts.idle = Duration::from_secs(1);
    config.hub.queue_chunks = 600;
    let server = start_with(config).await;
    let mut s = raw_handshake(&server).await;
    assert_eq!(raw_read_until_close(&mut s).await, Some(1008));
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["listeners"], 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_killed_mid_frame_leaves_the_server_unharmed() {
    let server = start().await;
    let mut other = connect(&server, "").await;
    next_event(&mut other).await;
    for _ in 0..10 {
        let mut s = raw_handshake(&server).await;
        // A masked text frame header promising 100 bytes, then 3 of them.
        s.write_all(&[0x81, 0x80 | 100, 1, 2, 3, 4, b'{', b'"', b't'])
            .await
            .unwrap();
        drop(s);
    }
    still_streaming(&mut other).await;
    // Wait (bounded) for the dropped connections to be cleaned up.
    let t0 = Instant::now();
    while get_json(&server, "/api/status").await["listeners"] != 1 {
        assert!(t0.elapsed() < WAIT, "dropped listeners are not cleaned up");
        next_audio(&mut other).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hundred_connect_disconnect_cycles_leave_nothing_behind() {
    let server = start().await;
    let rss = |m: &serde_json::Value| m["rss_mb"].as_f64().unwrap();
    // Warm up allocator pools before taking the baseline.
    for _ in 0..10 {
        let mut ws = connect(&server, "").await;
        next_audio(&mut ws).await;
    }
    let before = rss(&get_json(&server, "/api/metrics").await);
    for i in 0..100 {
        let mut ws = connect(&server, &format!("?seed={i}")).await;
        next_audio(&mut ws).await;
        if i % 2 == 0 {
            ws.close(None).await.unwrap();
        }
    }
    // A closed connection ends its session. A dropped one keeps it, paused,
    // for its listener to resume (README, Resuming), but only a quarter of
    // the session limit at once: what is left is exactly those.
    let max_waiting = config().hub.max_sessions / 4;
    let t0 = Instant::now();
    loop {
        let s = get_json(&server, "/api/status").await;
        if s["listeners"] == 0 && s["sessions"] == s["sessions_waiting"] {
            assert_eq!(
                s["sessions_waiting"], max_waiting,
                "50 dropped connections fill the waiting places"
            );
            break;
        }
        assert!(t0.elapsed() < WAIT, "sessions left behind: {s}");
        tokio::task::yield_now().await;
    }
    let after = rss(&get_json(&server, "/api/metrics").await);
    println!("RSS before {before:.1} MB, after 100 cycles {after:.1} MB");
    assert!(
        after - before < 8.0,
        "RSS grew from {before:.1} to {after:.1} MB"
    );
    server.shutdown().await.unwrap();
}
