//! Shared helpers for the integration tests: a real server on 127.0.0.1 with
//! the built-in font, a real WebSocket client, and a minimal HTTP GET.
#![allow(dead_code)]

pub mod render;

use std::sync::OnceLock;
use std::time::Duration;

use auralis::server::{RunningServer, ServerConfig};
use auralis::soundfont::FontSet;
use auralis::stream::HubConfig;
use auralis::synth::EngineSettings;
use auralis::wire::BinaryHeader;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Every wait in a test is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn fonts() -> FontSet {
    static FONTS: OnceLock<FontSet> = OnceLock::new();
    FONTS.get_or_init(FontSet::builtin).clone()
}

pub fn config() -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        render_threads: 2,
        allowed_origins: Vec::new(),
        timeouts: auralis::server::ws::Timeouts::default(),
        icecast: Vec::new(),
        // The tests play many clients from one address.
        security: auralis::server::Security {
            max_connections_per_ip: 1_000,
            ..Default::default()
        },
        hub: HubConfig {
            fonts: fonts(),
            engine: EngineSettings::default(),
            engine_kind: auralis::synth::EngineKind::default(),
            max_listeners: 100,
            max_sessions: 50,
            max_rooms: 10,
            queue_chunks: 20,
            lead_chunks: auralis::stream::DEFAULT_LEAD_CHUNKS,
            access: auralis::stream::access::Access {
                max_sessions_per_ip: 1_000,
                ..Default::default()
            },
        },
    }
}

pub async fn start() -> RunningServer {
    start_with(config()).await
}

pub async fn start_with(config: ServerConfig) -> RunningServer {
    auralis::server::start(config).await.expect("server starts")
}

pub async fn connect(server: &RunningServer, query: &str) -> Ws {
    let url = format!("ws://{}/ws/stream{query}", server.addr);
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    ws
}

/// The next message of any kind, bounded by `WAIT`.
pub async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a message in time")
        .expect("stream open")
        .expect("no transport error")
}

/// The next text message that is not audio, as JSON.
pub async fn next_event(ws: &mut Ws) -> Value {
    loop {
        if let Message::Text(t) = next(ws).await {
            let v: Value = serde_json::from_str(&t).expect("server sends JSON");
            if v["type"] != "audio_chunk" {
                return v;
            }
        }
    }
}

/// A decoded audio chunk, whichever the format.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub seq: u64,
    pub timestamp: f64,
    pub pcm: Vec<u8>,
}

pub fn decode_audio(msg: &Message) -> Option<Audio> {
    use base64::Engine as _;
    match msg {
        Message::Binary(b) => {
            let (header, pcm) = BinaryHeader::decode(b).expect("a well-formed binary frame");
            Some(Audio {
                seq: header.seq,
                timestamp: header.timestamp,
                pcm: pcm.to_vec(),
            })
        }
        Message::Text(t) => {
            let v: Value = serde_json::from_str(t).ok()?;
            (v["type"] == "audio_chunk").then(|| Audio {
                seq: v["seq"].as_u64().unwrap(),
                timestamp: v["timestamp"].as_f64().unwrap(),
                pcm: base64::engine::general_purpose::STANDARD
                    .decode(v["audio_data"].as_str().unwrap())
                    .unwrap(),
            })
        }
        _ => None,
    }
}

pub async fn next_audio(ws: &mut Ws) -> Audio {
    loop {
        if let Some(a) = decode_audio(&next(ws).await) {
            return a;
        }
    }
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// A plain HTTP/1.1 GET: (status, body).
pub async fn http_get(server: &RunningServer, path: &str) -> (u16, String) {
    tokio::time::timeout(WAIT, auralis::tools::loadtest::http_get(server.addr, path))
        .await
        .expect("response in time")
        .expect("an HTTP response")
}

pub async fn get_json(server: &RunningServer, path: &str) -> Value {
    let (status, body) = http_get(server, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON body")
}
