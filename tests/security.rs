//! Who may do what, tried as an unfriendly visitor would: controls for
//! someone else's room, one address taking every session or connection,
//! connections that never finish a request, oversized and flooded headers,
//! forged forwarding headers, and what the server discloses. Meanwhile an
//! ordinary listener keeps its stream without a gap.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auralis::server::client::{Cidr, TrustedProxies};
use auralis::server::{RunningServer, ServerConfig};
use auralis::stream::access::RoomKey;
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The next message that is neither audio nor a pong.
async fn next_news(ws: &mut Ws) -> Value {
    loop {
        let v = next_event(ws).await;
        if v["type"] != "pong" {
            return v;
        }
    }
}

/// Sends a control, then a ping; the error the control got, if any. A
/// connection's replies keep their order, so an error comes before the
/// pong; a control that was accepted has no reply of its own.
async fn control(ws: &mut Ws, params: Value, key: Option<&str>) -> Option<Value> {
    let mut msg = json!({"type":"control","params":params});
    if let Some(k) = key {
        msg["key"] = k.into();
    }
    send_json(ws, msg).await;
    send_json(ws, json!({"type":"ping","t":7})).await;
    let mut error = None;
    loop {
        let v = next_event(ws).await;
        match v["type"].as_str() {
            Some("error") => error = Some(v),
            Some("pong") => return error,
            _ => {}
        }
    }
}

/// A raw HTTP exchange: sends `request` as is and reads until the server
/// closes; the whole response as text ("" when closed unanswered).
async fn raw(server: &RunningServer, request: &[u8]) -> String {
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    // A server that answers before reading everything may reset the rest.
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("the server answers or closes in time");
    String::from_utf8_lossy(&buf).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The status and body of a /ws/stream attempt that carries extra headers.
async fn ws_attempt(
    server: &RunningServer,
    query: &str,
    headers: &[(&'static str, &str)],
) -> Result<Ws, (u16, String)> {
    let mut request = format!("ws://{}/ws/stream{query}", server.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        request
            .headers_mut()
            .insert(*k, HeaderValue::from_str(v).unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => Err((0, e.to_string())),
    }
}

/// Polls `condition` until it holds, for at most `WAIT`.
async fn eventually<F, Fut, T>(mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = condition().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts `n` consecutive chunks arrive.
async fn keeps_streaming(ws: &mut Ws, n: usize) {
    let mut last = next_audio(ws).await.seq;
    for _ in 0..n {
        let seq = next_audio(ws).await.seq;
        assert_eq!(seq, last + 1, "a gap in the stream");
        last = seq;
    }
}

#[tokio::test]
async fn a_room_changes_only_for_its_key() {
    let server = start().await;
    let mut owner = connect(&server, "?room=lobby").await;
    let hello = next_event(&mut owner).await;
    let key = hello["control_key"].as_str().expect("the creator's key");
    assert_eq!(key.len(), 32);
    let mut guest = connect(&server, "?room=lobby").await;
    let guest_hello = next_event(&mut guest).await;
    assert!(guest_hello.get("control_key").is_none(), "{guest_hello}");

    // Without a key, with a guessed one, with one from another room.
    let mut other = connect(&server, "?room=other").await;
    let other_key = next_event(&mut other).await["control_key"]
        .as_str()
        .unwrap()
        .to_string();
    let guessed = RoomKey::generate().to_hex();
    for (offered, needle) in [
        (None, "need its key"),
        (Some(guessed.as_str()), "wrong key"),
        (Some(other_key.as_str()), "wrong key"),
        (Some("0"), "wrong key"),
    ] {
        let e = control(&mut guest, json!({"bpm":100}), offered)
            .await
            .expect("an error");
        assert_eq!(e["code"], "forbidden", "{e}");
        assert!(e["message"].as_str().unwrap().contains(needle), "{e}");
    }
    // The owner's key works, from the guest too (a key can be shared on
    // purpose), and it is the first change anyone in the room sees: none of
    // the forbidden ones went through.
    assert_eq!(
        control(&mut guest, json!({"bpm":77}), Some(key)).await,
        None
    );
    let params = next_news(&mut owner).await;
    assert_eq!(
        (params["type"].as_str(), params["bpm"].as_f64()),
        (Some("params"), Some(77.0))
    );
    // The other room's key works in the other room only.
    assert_eq!(
        control(&mut other, json!({"bpm":90}), Some(&other_key)).await,
        None
    );
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["rooms"], 2);

    // One's own session needs no key.
    let mut solo = connect(&server, "").await;
    assert!(next_event(&mut solo).await.get("control_key").is_none());
    assert_eq!(control(&mut solo, json!({"bpm":50}), None).await, None);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn open_rooms_and_configured_keys() {
    let configured = RoomKey::generate();
    let mut config = config();
    config.hub.access.open_rooms = true;
    config.hub.access.room_keys = Arc::new(HashMap::from([("radio".into(), configured.clone())]));
    let server = start_with(config).await;
    // --open-rooms: no key is made, anyone in the room controls it.
    let mut a = connect(&server, "?room=open").await;
    assert!(next_event(&mut a).await.get("control_key").is_none());
    let mut b = connect(&server, "?room=open").await;
    next_event(&mut b).await;
    assert_eq!(control(&mut b, json!({"bpm":88}), None).await, None);
    // A room with a configured key: whoever starts it is not given the key,
    // and only the configured one works.
    let mut first = connect(&server, "?room=radio").await;
    assert!(next_event(&mut first).await.get("control_key").is_none());
    let e = control(&mut first, json!({"bpm":88}), None).await.unwrap();
    assert_eq!(e["code"], "forbidden");
    assert_eq!(
        control(&mut first, json!({"bpm":88}), Some(&configured.to_hex())).await,
        None
    );
    server.shutdown().await.unwrap();
}

fn limited(sessions: usize, connections: usize) -> ServerConfig {
    let mut config = config();
    config.hub.access.max_sessions_per_ip = sessions;
    config.security.max_connections_per_ip = connections;
    config
}

#[tokio::test]
async fn one_address_gets_only_its_share_of_sessions_and_rooms() {
    let server = start_with(limited(3, 100)).await;
    let mut held = Vec::new();
    for query in ["", "?room=r1", "?room=r2"] {
        let mut ws = connect(&server, query).await;
        next_event(&mut ws).await;
        held.push(ws);
    }
    // A fourth session, a third room, or an HTTP stream: 429 with a reason.
    for query in ["", "?room=r3"] {
        let (status, body) = ws_attempt(&server, query, &[]).await.unwrap_err();
        assert_eq!(status, 429, "{query}");
        assert!(
            body.contains("too many sessions from your address"),
            "{body}"
        );
        assert!(body.contains('3'), "{body}");
    }
    let (status, body) = http_get(&server, "/listen.wav").await;
    assert_eq!(status, 429, "{body}");
    // Joining a room that runs costs no session: still welcome.
    let mut joiner = connect(&server, "?room=r1").await;
    next_event(&mut joiner).await;
    assert_eq!(get_json(&server, "/api/status").await["sessions"], 3);
    // A session ends (its listener leaves; a dropped one would be kept for
    // it to resume), its place comes back.
    held.remove(0).close(None).await.unwrap();
    let mut again = eventually(|| async { ws_attempt(&server, "", &[]).await.ok() }).await;
    next_event(&mut again).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_address_gets_only_its_share_of_connections() {
    let server = start_with(limited(100, 4)).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The fifth is answered 429 with a reason and closed.
    let response = raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&response), 429, "{response}");
    assert!(response.contains("too many connections from your address: at most 4"));
    assert!(response.to_ascii_lowercase().contains("connection: close"));
    // The streams count too: with one place given back, a WebSocket takes it
    // and the next attempt is refused before the upgrade.
    drop(idle.pop());
    let mut ws = eventually(|| async { ws_attempt(&server, "", &[]).await.ok() }).await;
    next_event(&mut ws).await;
    let (status, _) = ws_attempt(&server, "", &[]).await.unwrap_err();
    assert_eq!(status, 429);
    keeps_streaming(&mut ws, 3).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let xff = |ip| [("x-forwarded-for", ip)];
    // Untrusted: the header is ignored, every attempt is 127.0.0.1's.
    let server = start_with(limited(1, 100)).await;
    let mut a = ws_attempt(&server, "", &xff("203.0.113.1")).await.unwrap();
    next_event(&mut a).await;
    let (status, _) = ws_attempt(&server, "", &xff("203.0.113.2"))
        .await
        .unwrap_err();
    assert_eq!(status, 429, "a forged header buys no second session");
    server.shutdown().await.unwrap();

    // Behind a trusted proxy, each client has its own share.
    let mut config = limited(1, 100);
    config.security.trusted_proxies =
        TrustedProxies::new(vec!["127.0.0.1/32".parse::<Cidr>().unwrap()]);
    let server = start_with(config).await;
    let mut a = ws_attempt(&server, "", &xff("203.0.113.1")).await.unwrap();
    next_event(&mut a).await;
    let mut b = ws_attempt(&server, "", &[("forwarded", "for=\"[2001:db8::7]:443\"")])
        .await
        .unwrap();
    next_event(&mut b).await;
    let (status, body) = ws_attempt(&server, "", &xff("203.0.113.1"))
        .await
        .unwrap_err();
    assert_eq!(status, 429, "{body}");
    // A client that prepends its own entry is still the address the proxy saw.
    let (status, _) = ws_attempt(&server, "", &xff("198.51.100.9, 203.0.113.1"))
        .await
        .unwrap_err();
    assert_eq!(status, 429);
    server.shutdown().await.unwrap();
}

/// Connections that send half a request and then nothing, `n` of them.
async fn half_open(server: &RunningServer, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        conns.push(s);
    }
    conns
}

/// Waits (bounded) until the server closes `s`; true if it did.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn half_open_connections_are_closed_after_the_header_timeout() {
    let mut config = config();
    config.security.header_read_timeout = Duration::from_millis(500);
    config.security.max_pending = 10_000;
    let server = start_with(config).await;
    let mut conns = half_open(&server, 500).await;
    // Also one that sends nothing at all, and a kept-alive one gone idle.
    conns.push(TcpStream::connect(server.addr).await.unwrap());
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    conns.push(kept);
    for (i, c) in conns.iter_mut().enumerate() {
        assert!(closed_by_server(c, WAIT).await, "connection {i} still open");
    }
    let (status, _) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200, "the server still answers");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_pending_cap_are_closed_at_once() {
    let mut config = config();
    // Long enough that only the cap can close them within the test.
    config.security.header_read_timeout = Duration::from_secs(120);
    config.security.max_pending = 20;
    let server = start_with(config).await;
    let mut within = half_open(&server, 20).await;
    let mut beyond = half_open(&server, 5).await;
    for c in &mut beyond {
        assert!(closed_by_server(c, WAIT).await, "over the cap, closed");
    }
    // The first twenty are still there, waiting for their headers.
    let mut buf = [0u8; 1];
    for c in &mut within {
        let still_open = tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf))
            .await
            .is_err();
        assert!(still_open, "a connection within the cap was closed");
    }
    // Once they finish their request, a new client is welcome again.
    for c in &mut within {
        c.write_all(b"1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        assert_eq!(status_of(&String::from_utf8_lossy(&rest)), 200);
    }
    let (status, _) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_and_flooded_headers_get_431() {
    let server = start().await;
    // Exactly the limit and still no end of the head: the server has read
    // all of it when it answers, so no reset can overtake the 431.
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.resize(auralis::server::accept::MAX_REQUEST_HEAD, b'a');
    assert_eq!(status_of(&raw(&server, &big).await), 431);
    let mut flood = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        flood.push_str(&format!("X-H{i}: v\r\n"));
    }
    flood.push_str("\r\n");
    assert_eq!(status_of(&raw(&server, flood.as_bytes()).await), 431);
    let garbage = raw(&server, b"\x16\x03\x01\x02\x00 not http\r\n\r\n").await;
    assert!(
        garbage.is_empty() || status_of(&garbage) == 400,
        "{garbage:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_status_hides_paths() {
    let server = start().await;
    for path in [
        "/",
        "/app.js",
        "/api/status",
        "/metrics",
        "/nope",
        "/ws/stream?bpm=1",
    ] {
        let r = raw(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .to_ascii_lowercase();
        let (head, _) = r.split_once("\r\n\r\n").expect("a response");
        for needle in [
            "content-security-policy: default-src 'self'",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: deny",
        ] {
            assert!(head.contains(needle), "{path}: no {needle:?} in\n{head}");
        }
    }
    let status = get_json(&server, "/api/status").await;
    let piano = &status["soundfonts"]["piano"];
    assert!(
        piano["name"].is_string() && piano["licence"].is_string(),
        "{piano}"
    );
    assert!(piano.get("path").is_none(), "{piano}");
    server.shutdown().await.unwrap();

    let mut config = config();
    config.security.status_paths = true;
    let server = start_with(config).await;
    let status = get_json(&server, "/api/status").await;
    assert!(
        status["soundfonts"]["piano"].get("path").is_some(),
        "for operators"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_listener_keeps_its_stream_while_the_attacks_run() {
    let mut config = limited(3, 64);
    config.security.header_read_timeout = Duration::from_millis(500);
    let server = start_with(config).await;
    let mut listener = connect(&server, "?room=calm").await;
    let key = next_event(&mut listener).await["control_key"]
        .as_str()
        .unwrap()
        .to_string();
    // The listener reads throughout, as a player does, and checks that
    // every chunk follows the one before.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        tokio::pin!(stopped);
        let (mut chunks, mut last, mut params) = (0u64, None::<u64>, 0);
        loop {
            let msg = tokio::select! {
                _ = &mut stopped => break,
                m = next(&mut listener) => m,
            };
            if let Some(audio) = decode_audio(&msg) {
                if let Some(prev) = last {
                    assert_eq!(audio.seq, prev + 1, "a gap in the listener's stream");
                }
                last = Some(audio.seq);
                chunks += 1;
            } else if msg.to_text().is_ok_and(|t| t.contains("\"params\"")) {
                params += 1;
            }
        }
        (listener, chunks, params)
    });
    let server_addr = server.addr;
    let attacks = tokio::spawn(async move {
        // Half-open connections, up to the per-address cap and beyond.
        let mut slow = Vec::new();
        for _ in 0..100 {
            if let Ok(mut s) = TcpStream::connect(server_addr).await {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
                slow.push(s);
            }
        }
        // Header floods.
        for _ in 0..20 {
            if let Ok(mut s) = TcpStream::connect(server_addr).await {
                let _ = s.write_all(&vec![b'a'; 40_000]).await;
            }
        }
        for mut s in slow {
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await;
        }
    });
    // Session grabs and forbidden controls from a guest of the room.
    let mut guest = connect(&server, "?room=calm").await;
    next_event(&mut guest).await;
    for i in 0..20 {
        let e = control(&mut guest, json!({"bpm": 40 + i}), Some("00")).await;
        assert_eq!(e.unwrap()["code"], "forbidden");
        let _ = ws_attempt(&server, &format!("?room=grab{i}"), &[]).await;
    }
    attacks.await.unwrap();
    // A few more chunks after the attacks, then the verdict.
    let mut probe = connect(&server, "?room=calm").await;
    keeps_streaming(&mut probe, 5).await;
    stop.send(()).unwrap();
    let (mut listener, chunks, params) = reader.await.unwrap();
    assert!(chunks >= 5, "{chunks} chunks");
    assert_eq!(params, 0, "no forbidden control changed the room");
    assert_eq!(
        control(&mut listener, json!({"bpm":66}), Some(&key)).await,
        None
    );
    server.shutdown().await.unwrap();
}
