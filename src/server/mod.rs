//! HTTP and WebSocket: the axum router, the /ws/stream protocol, /api/*,
//! /metrics and the embedded web player.

pub mod accept;
pub mod api;
pub mod client;
pub mod download;
pub mod icecast;
pub mod listen;
pub mod peer;
pub mod protocol;
pub mod query;
pub mod web;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::stream::{Hub, HubConfig, JoinError};
pub use accept::Security;
use client::Client;
use query::StreamRequest;

/// Everything `auralis serve` can be told.
#[derive(Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub hub: HubConfig,
    pub render_threads: usize,
    /// Browser origins allowed to open /ws/stream (exact `scheme://host:port`);
    /// empty allows any. Requests without an Origin header (non-browser
    /// clients) are always allowed: the check exists to stop other web pages
    /// from using a visitor's browser against this server.
    pub allowed_origins: Vec<String>,
    pub timeouts: ws::Timeouts,
    /// Rooms pushed to Icecast from start to shutdown (`--icecast`).
    pub icecast: Vec<icecast::IcecastTarget>,
    /// Header deadline, per-address connection limit, trusted proxies.
    pub security: Security,
}

/// What every request handler shares.
#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    allowed_origins: Arc<[String]>,
    timeouts: ws::Timeouts,
    status: api::StatusOptions,
    downloads: download::Downloads,
}

impl axum::extract::FromRef<AppState> for api::StatusOptions {
    fn from_ref(state: &AppState) -> Self {
        state.status
    }
}

impl axum::extract::FromRef<AppState> for download::Downloads {
    fn from_ref(state: &AppState) -> Self {
        state.downloads.clone()
    }
}

impl axum::extract::FromRef<AppState> for Arc<Hub> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.hub)
    }
}

/// A server running in this process: where it listens, and how to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Closes every listener with 1001 and waits for the server to stop.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        // Upgraded WebSocket connections outlive the HTTP server's graceful
        // shutdown; wait (bounded) until each has sent its 1001 close.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.hub.wait_idle()).await;
        // A stalled HTTP reader can hold a response open forever; past the
        // grace period the server stops without it.
        match tokio::time::timeout(SHUTDOWN_GRACE, self.task).await {
            Ok(joined) => joined.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        }
    }
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Send-buffer size for accepted sockets. The kernel's default autotunes to
/// megabytes, which would hide a stalled listener for tens of seconds; this
/// keeps a stall visible within a few chunks and still carries the stream
/// (1.4 Mbit/s) at a 300 ms round trip.
const SOCKET_SEND_BUFFER: usize = 64 * 1024;

pub async fn start(config: ServerConfig) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let hub = Hub::new(config.hub, config.render_threads, shutdown.clone());
    icecast::spawn(&hub, &config.icecast);
    let app = router(AppState {
        hub: Arc::clone(&hub),
        allowed_origins: config.allowed_origins.into(),
        timeouts: config.timeouts,
        status: api::StatusOptions {
            paths: config.security.status_paths,
        },
        downloads: download::Downloads::new(Arc::clone(&hub)),
    });
    let task = tokio::spawn(accept::serve(
        listener,
        app,
        config.security,
        shutdown.clone(),
        |tcp| {
            let _ = tcp.set_nodelay(true);
            let _ = socket2::SockRef::from(tcp).set_send_buffer_size(SOCKET_SEND_BUFFER);
        },
    ));
    tracing::info!(%addr, "auralis listening");
    Ok(RunningServer {
        addr,
        hub,
        shutdown,
        task,
    })
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws/stream", get(stream))
        .route("/listen.opus", get(listen::stream))
        .route("/listen.mp3", get(listen::stream))
        .route("/listen.wav", get(listen::stream))
        .route("/download.wav", get(download::wav))
        .route("/download.opus", get(download::opus))
        .route("/download.mid", get(download::midi))
        .route("/api/status", get(api::status))
        .route("/api/metrics", get(api::metrics))
        .route("/metrics", get(api::prometheus))
        .route("/healthz", get(api::healthz))
        .fallback(web::asset)
        .with_state(state)
}

/// Checks the query and the limits before upgrading, so a bad request gets
/// a plain HTTP answer that says what was wrong.
async fn stream(
    State(state): State<AppState>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = state.allowed_origins.is_empty()
            || origin
                .to_str()
                .is_ok_and(|o| state.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            let msg = format!(
                "origin {:?} is not allowed; allowed origins: {}\n",
                origin,
                state.allowed_origins.join(", ")
            );
            return (StatusCode::FORBIDDEN, msg).into_response();
        }
    }
    let hub = state.hub;
    let request = match StreamRequest::parse(&query) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let client = client.map(|Extension(c)| c);
    let addr = client.as_ref().map(|c| c.addr);
    if let Err(e) = hub.admit_from(addr, request.room.as_deref()) {
        return (refusal_status(&e), format!("{e}\n")).into_response();
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(_) => {
            let msg = "/ws/stream is a WebSocket endpoint: connect with a WebSocket client\n";
            return (StatusCode::UPGRADE_REQUIRED, msg).into_response();
        }
    };
    // Small per-connection buffers: client messages are tiny and every audio
    // frame is flushed as it is sent, while the 128 KiB defaults would cost
    // half a gigabyte in a room of 2,000 listeners.
    upgrade
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(ws::TRANSPORT_MAX_MESSAGE)
        .max_frame_size(ws::TRANSPORT_MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            // The client's place in the per-address count lasts as long as
            // its stream.
            let _held = client;
            ws::run(socket, hub, request, addr, state.timeouts).await
        })
}

/// 429 for a limit on the client's own address (it should slow down), 503
/// for the server's (everyone should).
fn refusal_status(e: &JoinError) -> StatusCode {
    match e {
        JoinError::TooManySessionsFromAddress { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Runs `auralis serve` until SIGINT or SIGTERM, then closes every listener
/// with 1001 and returns.
pub async fn serve_until_signal(config: ServerConfig) -> anyhow::Result<()> {
    let server = start(config).await?;
    eprintln!("{LISTENING}{}/", server.addr);
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(())
}

/// The line `auralis serve` prints on stderr once it accepts connections;
/// tools that start a server (the load test, tests, e2e/server.mjs) wait
/// for it to learn the port.
pub const LISTENING: &str = "auralis: listening on http://";

/// The address in a [`LISTENING`] line, if `line` is one.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.split(LISTENING)
        .nth(1)?
        .trim_end()
        .trim_end_matches('/')
        .parse()
        .ok()
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_listening_line_round_trips() {
        let addr: std::net::SocketAddr = "127.0.0.1:41234".parse().unwrap();
        let line = format!("{}{addr}/", super::LISTENING);
        assert_eq!(super::listening_addr(&line), Some(addr));
        assert_eq!(super::listening_addr("2026 INFO something else"), None);
    }
}
