//! The /ws/stream connection loop: one task per listener that writes the
//! session's chunks in order and reads the listener's control, ping and stats
//! messages. Writing and reading share the task through `select!`, so when
//! either side ends, both do.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::protocol::{self, ClientMessage, ClientStats, ProtocolError, MAX_CLIENT_MESSAGE};
use super::query::StreamRequest;
use crate::music::change::ParamChange;
use crate::stream::access::RoomControl;
use crate::stream::metrics::Metrics;
use crate::stream::session::{unix_now, CloseReason, Outgoing, SessionEnded, SessionHandle};
use crate::stream::{Hub, Listener};
use crate::wire::{ErrorCode, Hello, ServerMessage, WireFormat};

/// A session's message as a WebSocket frame in the listener's format; None
/// only if a JSON chunk were not UTF-8, which base64 rules out.
fn message(out: Outgoing, format: WireFormat) -> Option<Message> {
    match out {
        Outgoing::Chunk(chunk) => match format {
            WireFormat::Binary => Some(Message::Binary(chunk.binary_frame())),
            WireFormat::Json => Utf8Bytes::try_from(chunk.json_frame())
                .ok()
                .map(Message::Text),
        },
        Outgoing::Text(text) => Some(Message::Text(text.as_ref().into())),
    }
}

/// A send that takes longer than this means the peer stopped reading: a
/// 17.6 kB chunk that cannot drain in 2 s is a connection below 70 kbit/s,
/// far too slow to play the stream anyway.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a closing connection keeps reading for the client's close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Client messages allowed per second, and the burst above that rate.
const RATE_PER_SEC: f64 = 20.0;
const RATE_BURST: f64 = 40.0;
/// Rejections in a row after which a flooding client is closed.
const MAX_REJECTED: u32 = 100;
/// Replies (pongs, errors) waiting for the writer: room for a full burst of
/// allowed messages plus their rate-limit errors; a client that outpaces
/// even that is flooding.
const REPLY_QUEUE: usize = 64;

type Sink = SplitSink<WebSocket, Message>;

/// What the reader asks the writer to send: a text reply, or a close frame
/// (the reader has no sink of its own).
enum Reply {
    Text(String),
    Close(u16, String),
}

/// How long a connection may stay silent (no message, no pong) before it is
/// taken for dead; the server pings at a third of it so a live browser,
/// which answers pings by itself, never comes near.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60),
        }
    }
}

pub async fn run(
    socket: WebSocket,
    hub: Arc<Hub>,
    request: StreamRequest,
    client: Option<IpAddr>,
    timeouts: Timeouts,
) {
    let (mut sink, stream) = socket.split();
    let listener = match hub
        .join_resuming(
            client,
            request.room.clone(),
            request.params.clone(),
            request.preset.clone(),
            request.resume.clone(),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => {
            let _ = close(&mut sink, 1013, &e.to_string()).await;
            return;
        }
    };
    if let Some(seconds) = request.duration {
        let from = Some(listener.info.next_seq);
        if let Ok(Err(e)) = listener.session.set_timer(from, seconds).await {
            let _ = close(&mut sink, 1008, &e.to_string()).await;
            listener.leave().await;
            return;
        }
    }
    let hello = hello(&listener, &request);
    let (replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
    let session = listener.session.clone();
    let id = listener.id;
    let writer = write_loop(
        sink,
        listener,
        hello,
        request.format,
        replies_rx,
        hub.clone(),
        timeouts,
    );
    let reader = read_loop(stream, replies_tx, session.clone(), hub.clone(), timeouts);
    tokio::pin!(writer, reader);
    tokio::select! {
        () = &mut writer => {
            // The server closed the stream: keep reading briefly so the
            // client's close reply is consumed. Dropping a socket with unread
            // input makes the kernel send a reset, which can destroy the close
            // frame (and its reason) before the client reads it.
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut reader).await;
        }
        ended = &mut reader => match ended {
            Ended::Closed => session.leave(id).await,
            Ended::Dropped => session.detach(id).await,
        },
    }
}

fn hello(listener: &Listener, request: &StreamRequest) -> String {
    let state = &listener.info.state;
    let control_key = listener.control_key.as_ref().map(|k| k.to_hex());
    ServerMessage::Hello(Hello {
        session_id: &listener.session.id,
        room: listener.session.room.as_deref(),
        sample_rate: crate::SAMPLE_RATE,
        channels: crate::CHANNELS,
        chunk_ms: crate::audio::CHUNK_MS,
        format: request.format,
        preset: state.preset.as_deref(),
        params: &state.params,
        next_seq: listener.info.next_seq,
        resume: listener.info.resume.as_deref(),
        server_version: env!("CARGO_PKG_VERSION"),
        control_key: control_key.as_deref(),
    })
    .to_json()
}

async fn write_loop(
    mut sink: Sink,
    mut listener: Listener,
    hello: String,
    format: WireFormat,
    mut replies: mpsc::Receiver<Reply>,
    hub: Arc<Hub>,
    timeouts: Timeouts,
) {
    let metrics = hub.metrics.clone();
    if send(&mut sink, Message::Text(hello.into())).await.is_err() {
        listener.leave().await;
        return;
    }
    let mut pings = tokio::time::interval(timeouts.idle / 3);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pings.tick().await;
    loop {
        let msg = tokio::select! {
            biased;
            reason = &mut listener.kicked => {
                let reason = reason.unwrap_or(CloseReason::Shutdown);
                if reason == CloseReason::TooSlow {
                    tracing::info!(listener = listener.id, "closing a listener that stopped reading");
                }
                if reason != CloseReason::TooSlow {
                    // The session's last chunks are its fade-out: deliver
                    // them before the close (bounded: the queue is).
                    while let Some(msg) = listener.queue.try_recv().ok().and_then(|o| message(o, format)) {
                        if send(&mut sink, msg).await.is_err() {
                            break;
                        }
                    }
                }
                let _ = close(&mut sink, reason.code(), reason.text()).await;
                break;
            }
            _ = pings.tick() => Message::Ping(bytes::Bytes::new()),
            reply = replies.recv() => match reply {
                Some(Reply::Text(text)) => Message::Text(text.into()),
                Some(Reply::Close(code, reason)) => {
                    let _ = close(&mut sink, code, &reason).await;
                    break;
                }
                None => break,
            },
            out = listener.queue.recv() => {
                let Some(out) = out else { break };
                if matches!(out, Outgoing::Chunk(_)) {
                    metrics.chunks_sent.fetch_add(1, Ordering::Relaxed);
                }
                match message(out, format) {
                    Some(m) => m,
                    None => break,
                }
            }
        };
        let len = match &msg {
            Message::Binary(b) => b.len(),
            Message::Text(t) => t.len(),
            _ => 0,
        };
        // Race the send against a kick: a stalled peer blocks the send, and
        // the session's verdict should not wait for the timeout.
        let sent = tokio::select! {
            r = send(&mut sink, msg) => r,
            reason = &mut listener.kicked => {
                tracing::info!(listener = listener.id, ?reason, "dropping a listener that stopped reading");
                Err(())
            }
        };
        if sent.is_err() {
            // The peer is gone or stuck, not gone by choice: it may resume.
            listener.detach().await;
            return;
        }
        metrics.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
    }
    listener.leave().await;
}

async fn send(sink: &mut Sink, msg: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn close(sink: &mut Sink, code: u16, reason: &str) -> Result<(), ()> {
    // Close reasons are limited to 123 bytes by the protocol.
    let reason: String = reason.chars().take(120).collect();
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let result = send(sink, Message::Close(Some(frame))).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    result
}

/// A token bucket: steady `RATE_PER_SEC` with bursts up to `RATE_BURST`.
struct RateLimit {
    tokens: f64,
    last: Instant,
    rejected_in_a_row: u32,
}

impl RateLimit {
    fn new() -> Self {
        Self {
            tokens: RATE_BURST,
            last: Instant::now(),
            rejected_in_a_row: 0,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * RATE_PER_SEC;
        self.tokens = (self.tokens + refill).min(RATE_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.rejected_in_a_row = 0;
            true
        } else {
            self.rejected_in_a_row += 1;
            false
        }
    }
}

/// One listener's side of the conversation: a handler per client message,
/// apart from the socket so that it can be driven directly.
struct Client {
    session: SessionHandle,
    metrics: Arc<Metrics>,
    /// The highest underrun count the client reported: its counter is
    /// cumulative, the server's is a sum over clients.
    underruns: u64,
}

impl Client {
    /// The reply to one text message, if it has one. `Err` means the session
    /// has ended and the connection should too.
    async fn on_text(&mut self, text: &str) -> Result<Option<String>, SessionEnded> {
        let reply = match protocol::parse(text) {
            Err(e) => Some(self.error(&e)),
            Ok(ClientMessage::Ping { t }) => Some(on_ping(t)),
            Ok(ClientMessage::Stats(s)) => {
                self.on_stats(&s);
                None
            }
            Ok(ClientMessage::Control {
                change,
                key,
                playing,
            }) => self.on_control(change, key.as_deref(), playing).await?,
            Ok(ClientMessage::Timer { seconds }) => self.on_timer(seconds).await?,
        };
        Ok(reply)
    }

    fn error(&self, e: &ProtocolError) -> String {
        self.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
        e.to_json()
    }

    fn on_stats(&mut self, s: &ClientStats) {
        let m = &self.metrics;
        if let Some(v) = s.latency_ms {
            m.record_client_latency_ms(v);
        }
        if let Some(v) = s.control_latency_ms {
            m.record_control_latency_ms(v);
        }
        if let Some(v) = s.buffer_ms {
            m.record_client_buffer_ms(v);
        }
        if let Some(u) = s.underruns {
            let delta = u.saturating_sub(self.underruns);
            m.client_underruns.fetch_add(delta, Ordering::Relaxed);
            self.underruns = self.underruns.max(u);
        }
    }

    /// The new parameters reach every listener (this one included) as a
    /// `params` message from the session, so success has no reply here. A
    /// shared room changes only for whoever holds its key.
    async fn on_control(
        &self,
        change: ParamChange,
        key: Option<&str>,
        playing: Option<u64>,
    ) -> Result<Option<String>, SessionEnded> {
        let control = &self.session.control;
        if !control.permits(key) {
            let why = match control {
                RoomControl::Nobody => "this room is run by the server: its controls need the key set in the server's configuration",
                _ if key.is_none() => "this room's controls need its key: send \"key\" with the control_key its creator received in hello",
                _ => "wrong key for this room: nothing changed",
            };
            return Ok(Some(
                self.error(&ProtocolError::new(ErrorCode::Forbidden, why)),
            ));
        }
        Ok(match self.session.control(change, playing).await? {
            Ok(_) => None,
            Err(e) => {
                Some(self.error(&ProtocolError::new(ErrorCode::InvalidParams, e.to_string())))
            }
        })
    }
}

impl Client {
    /// A timer that takes has no reply: the stream's end is its answer.
    async fn on_timer(&self, seconds: Option<f64>) -> Result<Option<String>, SessionEnded> {
        let answer = match seconds {
            Some(s) => self.session.set_timer(None, s).await?.map(drop),
            None => self.session.cancel_timer().await?,
        };
        Ok(match answer {
            Ok(_) => None,
            Err(e) => {
                Some(self.error(&ProtocolError::new(ErrorCode::InvalidParams, e.to_string())))
            }
        })
    }
}

fn on_ping(t: f64) -> String {
    ServerMessage::Pong {
        t,
        server_time: unix_now(),
    }
    .to_json()
}

/// How a client's side of the conversation ended: by its close frame (it
/// left), or by the connection dying or going silent (it may come back).
enum Ended {
    Closed,
    Dropped,
}

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    replies: mpsc::Sender<Reply>,
    session: SessionHandle,
    hub: Arc<Hub>,
    timeouts: Timeouts,
) -> Ended {
    let mut client = Client {
        session,
        metrics: hub.metrics.clone(),
        underruns: 0,
    };
    let mut limit = RateLimit::new();
    loop {
        let Ok(incoming) = tokio::time::timeout(timeouts.idle, stream.next()).await else {
            let reason = format!(
                "idle timeout: no message or pong for {} s",
                timeouts.idle.as_secs_f64()
            );
            close_with(&replies, 1008, reason).await;
            drain(&mut stream).await;
            return Ended::Dropped;
        };
        let Some(incoming) = incoming else {
            return Ended::Dropped;
        };
        let reply = match incoming {
            Ok(Message::Text(text)) => {
                // The transport's own limit is far above this one, so a
                // client that overshoots learns why it is closed.
                if text.len() > MAX_CLIENT_MESSAGE {
                    let reason = format!(
                        "message of {} bytes is too big: the limit is {MAX_CLIENT_MESSAGE}",
                        text.len()
                    );
                    close_with(&replies, 1009, reason).await;
                    drain(&mut stream).await;
                    return Ended::Closed;
                }
                if !limit.allow() {
                    if limit.rejected_in_a_row >= MAX_REJECTED {
                        let reason =
                            format!("message flood: more than {RATE_PER_SEC} messages per second");
                        close_with(&replies, 1008, reason).await;
                        drain(&mut stream).await;
                        return Ended::Closed;
                    }
                    let e = ProtocolError::new(
                        ErrorCode::RateLimited,
                        format!(
                            "too many messages: at most {RATE_PER_SEC} per second (bursts of {RATE_BURST})"
                        ),
                    );
                    let _ = replies.try_send(Reply::Text(client.error(&e)));
                    continue;
                }
                match client.on_text(&text).await {
                    Ok(reply) => reply,
                    Err(SessionEnded) => return Ended::Closed,
                }
            }
            Ok(Message::Binary(_)) => Some(client.error(&ProtocolError::new(
                ErrorCode::BinaryNotSupported,
                "the server accepts only JSON text messages from clients",
            ))),
            Ok(Message::Close(_)) => return Ended::Closed,
            Err(_) => return Ended::Dropped,
            Ok(_) => continue,
        };
        if let Some(r) = reply {
            if replies.try_send(Reply::Text(r)).is_err() {
                // Replies pile up faster than the client reads them: a flood.
                let reason = "message flood: replies are not being read".to_string();
                close_with(&replies, 1008, reason).await;
                drain(&mut stream).await;
                return Ended::Closed;
            }
        }
    }
}

/// Reads and discards whatever the client still sends until its close frame
/// arrives (the caller bounds how long), completing the closing handshake.
async fn drain(stream: &mut SplitStream<WebSocket>) {
    while let Some(Ok(msg)) = stream.next().await {
        if matches!(msg, Message::Close(_)) {
            return;
        }
    }
}

/// Hands a close frame to the writer and waits (briefly) until it has gone.
async fn close_with(replies: &mpsc::Sender<Reply>, code: u16, reason: String) {
    let wait = async {
        if replies.send(Reply::Close(code, reason)).await.is_ok() {
            replies.closed().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), wait).await;
}

/// The transport refuses (and drops) anything larger than this outright;
/// between `MAX_CLIENT_MESSAGE` and this, the client gets a 1009 close with
/// a reason.
pub const TRANSPORT_MAX_MESSAGE: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::session_tests::{join, next_text, tone_hub};

    fn client(hub: &Hub, listener: &Listener) -> Client {
        Client {
            session: listener.session.clone(),
            metrics: hub.metrics.clone(),
            underruns: 0,
        }
    }

    fn json(reply: Option<String>) -> serde_json::Value {
        serde_json::from_str(&reply.expect("a reply")).expect("JSON")
    }

    #[tokio::test(start_paused = true)]
    async fn ping_is_answered_with_the_clients_time() {
        let (hub, _) = tone_hub(20, 2);
        let l = join(&hub, None).await;
        let mut c = client(&hub, &l);
        let pong = json(c.on_text(r#"{"type":"ping","t":12.5}"#).await.unwrap());
        assert_eq!(pong["type"], "pong");
        assert_eq!(pong["t"], 12.5);
        assert!(pong["server_time"].as_f64().unwrap() > 1.6e9);
    }

    #[tokio::test(start_paused = true)]
    async fn stats_feed_the_metrics_and_underruns_count_once() {
        let (hub, _) = tone_hub(20, 2);
        let l = join(&hub, None).await;
        let mut c = client(&hub, &l);
        for text in [
            r#"{"type":"stats","underruns":3,"latency_ms":400,"buffer_ms":300}"#,
            r#"{"type":"stats","underruns":5,"control_latency_ms":250}"#,
            r#"{"type":"stats","underruns":2}"#,
        ] {
            assert_eq!(c.on_text(text).await.unwrap(), None, "stats have no reply");
        }
        let m = &hub.metrics;
        assert_eq!(m.client_underruns.load(Ordering::Relaxed), 5);
        assert_eq!(m.client_latency_ms().count, 1);
        assert_eq!(m.control_latency_ms().p50, 250.0);
        assert_eq!(m.client_buffer_ms().p50, 300.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_control_reaches_the_session_and_a_bad_one_gets_an_error() {
        let (hub, _) = tone_hub(20, 2);
        let mut l = join(&hub, None).await;
        let mut c = client(&hub, &l);
        let ok = c
            .on_text(r#"{"type":"control","params":{"key":"F","mode":"lydian"}}"#)
            .await
            .unwrap();
        assert_eq!(ok, None, "the session answers everyone with `params`");
        let params = next_text(&mut l).await;
        assert_eq!(
            (params["key"].as_str(), params["mode"].as_str()),
            (Some("F"), Some("lydian"))
        );
        let err = json(
            c.on_text(r#"{"type":"control","params":{"bpm":500}}"#)
                .await
                .unwrap(),
        );
        assert_eq!(err["type"], "error");
        assert_eq!(err["code"], "invalid_params");
        assert!(
            err["message"].as_str().unwrap().contains("40 to 120"),
            "{err}"
        );
        let err = json(c.on_text("nonsense").await.unwrap());
        assert_eq!(err["code"], "invalid_json");
        assert_eq!(hub.metrics.protocol_errors.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_control_after_the_session_ended_ends_the_connection() {
        let (hub, _) = tone_hub(20, 2);
        let l = join(&hub, None).await;
        let mut c = client(&hub, &l);
        hub.shutdown.cancel();
        l.leave().await;
        // The session fades out (three chunks on the render pool), then ends.
        c.session.closed().await;
        let r = c.on_text(r#"{"type":"control","params":{"bpm":70}}"#).await;
        assert!(matches!(r, Err(SessionEnded)));
    }
}
