//! /listen.opus and /listen.wav: the music as one endless HTTP response, for
//! players that speak no WebSocket (VLC, mpv, smart speakers, `<audio>`).
//!
//! An HTTP listener is an ordinary hub listener: it joins a session or a
//! room through `Hub::join`, counts against the limits, and has the same
//! bounded queue. The queue is drained by a task of its own rather than by
//! the response body, because hyper stops polling a body whose peer has
//! stopped reading: were the body the reader, a stalled player would hold
//! its place in the session forever. The task notices the session's kick
//! even then, leaves, and the body ends as soon as hyper looks at it again.
//! That kick comes late at low bitrates (kernel buffers hold tens of seconds
//! of Opus), so the task also watches what the peer acknowledges
//! (`peer.rs`) and drops a player whose receive window stays closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::client::Client;
use super::peer::{PeerSocket, PeerWatch};
use super::query::{QueryError, StreamRequest};
use crate::audio::opus::{DEFAULT_KBPS, MAX_KBPS, MIN_KBPS};
use crate::music::params::{control, control_names};
use crate::stream::opus::LaneUse;
use crate::stream::session::{CloseReason, Outgoing};
use crate::stream::{Hub, Listener};

/// Pieces of body waiting for hyper; the listener's own queue is the real
/// buffer (and the stall detector), so this only smooths the hand-over.
const BODY_QUEUE: usize = 2;
/// Response headers that say where the stream starts, so a client can line
/// it up with the same room's WebSocket chunks.
pub const SESSION_HEADER: &str = "x-auralis-session";
pub const FIRST_SEQ_HEADER: &str = "x-auralis-first-seq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Opus { kbps: u32 },
    Wav,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Opus { .. } => "audio/ogg",
            Format::Wav => "audio/wav",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
enum ListenQueryError {
    #[error("unknown query parameter \"{0}\": allowed are {allowed}", allowed = allowed(.1))]
    Unknown(String, bool),
    #[error("bitrate applies to /listen.opus only: WAV is uncompressed")]
    BitrateForWav,
    #[error("bitrate must be a whole number of kbit/s from {MIN_KBPS} to {MAX_KBPS}, got \"{0}\"")]
    Bitrate(String),
    #[error(transparent)]
    Stream(#[from] QueryError),
}

/// What a /listen query may hold: /ws/stream's (`format` aside) and, for
/// Opus, the bitrate.
fn allowed(opus: &bool) -> String {
    let bitrate = if *opus { ", bitrate" } else { "" };
    format!("{}, room, duration{bitrate}", control_names())
}

/// The stream query minus `bitrate`, which only /listen.opus knows; the
/// rest is exactly /ws/stream's (`format` aside: it names a WebSocket
/// framing, so it is refused here).
fn parse(
    query: &HashMap<String, String>,
    opus: bool,
) -> Result<(StreamRequest, Format), ListenQueryError> {
    let mut rest = HashMap::with_capacity(query.len());
    let mut kbps = DEFAULT_KBPS;
    for (name, value) in query {
        match name.as_str() {
            "bitrate" if !opus => return Err(ListenQueryError::BitrateForWav),
            "bitrate" => {
                kbps = value
                    .parse()
                    .ok()
                    .filter(|k| (MIN_KBPS..=MAX_KBPS).contains(k))
                    .ok_or_else(|| ListenQueryError::Bitrate(value.chars().take(40).collect()))?;
            }
            n if n == "room" || n == "duration" || control(n).is_some() => {
                rest.insert(name.clone(), value.clone());
            }
            other => {
                return Err(ListenQueryError::Unknown(
                    other.chars().take(40).collect(),
                    opus,
                ))
            }
        }
    }
    let format = if opus {
        Format::Opus { kbps }
    } else {
        Format::Wav
    };
    Ok((StreamRequest::parse(&rest)?, format))
}

pub async fn opus(
    State(hub): State<Arc<Hub>>,
    client: Option<Extension<Client>>,
    socket: Option<Extension<PeerSocket>>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let watch = socket.and_then(|Extension(s)| s.watch());
    listen(hub, client, watch, method, &query, true).await
}

pub async fn wav(
    State(hub): State<Arc<Hub>>,
    client: Option<Extension<Client>>,
    socket: Option<Extension<PeerSocket>>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let watch = socket.and_then(|Extension(s)| s.watch());
    listen(hub, client, watch, method, &query, false).await
}

async fn listen(
    hub: Arc<Hub>,
    client: Option<Extension<Client>>,
    watch: Option<PeerWatch>,
    method: Method,
    query: &HashMap<String, String>,
    opus: bool,
) -> Response {
    let client = client.map(|Extension(c)| c.addr);
    let (request, format) = match parse(query, opus) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    if let Err(e) = hub.admit_from(client, request.room.as_deref()) {
        return (super::refusal_status(&e), format!("{e}\n")).into_response();
    }
    if method == Method::HEAD {
        // Players probe with HEAD; answering it must not start a session.
        // A body of unknown length, so the headers say "chunked" as the GET
        // would rather than "content-length: 0".
        let nothing = futures_util::stream::empty::<Result<Bytes, Infallible>>();
        return stream_response(format, Body::from_stream(nothing), None);
    }
    let listener = match hub
        .join_from(client, request.room, request.params, request.preset)
        .await
    {
        Ok(l) => l,
        Err(e) => return (super::refusal_status(&e), format!("{e}\n")).into_response(),
    };
    let (prelude, first_seq, lane) = match format {
        Format::Wav => (wav_header(), listener.info.next_seq, None),
        Format::Opus { kbps } => match listener.session.opus(kbps).await {
            Ok(Ok(sub)) => {
                let mut prelude = BytesMut::from(&sub.header[..]);
                for page in &sub.backlog {
                    prelude.extend_from_slice(page);
                }
                (prelude.freeze(), sub.first_seq, Some(sub.lane))
            }
            Ok(Err(e)) => {
                listener.leave().await;
                return unavailable(e);
            }
            Err(e) => {
                listener.leave().await;
                return unavailable(e);
            }
        },
    };
    if let Some(seconds) = request.duration {
        match listener.session.set_timer(Some(first_seq), seconds).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                listener.leave().await;
                return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
            }
            Err(e) => {
                listener.leave().await;
                return unavailable(e);
            }
        }
    }
    let session = listener.session.id.clone();
    let (tx, rx) = mpsc::channel(BODY_QUEUE);
    let feed = Feed {
        listener,
        format,
        first_seq,
        _lane: lane,
        hub,
        ending: false,
    };
    tokio::spawn(feed.run(prelude, tx, watch));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    stream_response(format, Body::from_stream(body), Some((&session, first_seq)))
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
}

fn stream_response(format: Format, body: Body, start: Option<(&str, u64)>) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // Live audio: a cached copy would replay stale music or stall a player.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some((session, seq)) = start {
        if let Ok(v) = HeaderValue::from_str(session) {
            headers.insert(SESSION_HEADER, v);
        }
        headers.insert(FIRST_SEQ_HEADER, HeaderValue::from(seq));
    }
    response
}

/// RIFF/WAVE header for an endless stream: sizes of "unknown length".
fn wav_header() -> Bytes {
    Bytes::copy_from_slice(&crate::audio::wav::header(None))
}

/// How long a timed stream's last pieces wait for a player that stopped
/// reading: the session has already let go, only this task holds on.
const ENDING_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn reserve_before_giving_up(body: &mpsc::Sender<Bytes>) -> Option<mpsc::Permit<'_, Bytes>> {
    tokio::time::timeout(ENDING_GRACE, body.reserve())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Moves one listener's chunks from its queue to its response body.
struct Feed {
    listener: Listener,
    format: Format,
    first_seq: u64,
    /// Keeps the session encoding this listener's Opus bitrate.
    _lane: Option<Arc<LaneUse>>,
    hub: Arc<Hub>,
    /// The timer ran out: the session has queued its last chunks and let
    /// go of the queue, which is read to its end instead of cut.
    ending: bool,
}

impl Feed {
    async fn run(mut self, prelude: Bytes, body: mpsc::Sender<Bytes>, watch: Option<PeerWatch>) {
        let stalled = async {
            match watch {
                Some(mut w) => {
                    w.stalled().await;
                    w
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.stream(prelude, &body) => {}
            w = stalled => {
                tracing::info!(
                    listener = self.listener.id,
                    "ending an HTTP stream whose player stopped taking data for {:?}",
                    super::peer::STALL
                );
                self.hub.metrics.listeners_dropped_slow.fetch_add(1, Ordering::Relaxed);
                w.abort();
            }
        }
        self.listener.leave().await;
    }

    async fn stream(&mut self, prelude: Bytes, body: &mpsc::Sender<Bytes>) {
        if self.pass(body, prelude).await {
            while let Some(bytes) = self.next_piece(body).await {
                let len = bytes.len() as u64;
                if !self.pass(body, bytes).await {
                    break;
                }
                let metrics = &self.hub.metrics;
                metrics.chunks_sent.fetch_add(1, Ordering::Relaxed);
                metrics.bytes_sent.fetch_add(len, Ordering::Relaxed);
            }
        }
    }

    /// The next piece of body, or `None` when the stream should end: the
    /// session kicked this listener, the client went away, or the session
    /// ended.
    async fn next_piece(&mut self, body: &mpsc::Sender<Bytes>) -> Option<Bytes> {
        loop {
            let chunk = tokio::select! {
                biased;
                reason = &mut self.listener.kicked, if !self.ending => {
                    let reason = reason.unwrap_or(CloseReason::Shutdown);
                    if reason == CloseReason::Ended {
                        self.ending = true;
                        continue;
                    }
                    self.log_kick(reason);
                    return None;
                }
                () = body.closed() => return None,
                out = self.listener.queue.recv() => match out? {
                    Outgoing::Chunk(c) => c,
                    // Parameter changes are WebSocket news; audio is all
                    // an HTTP player understands.
                    Outgoing::Text(_) => continue,
                },
            };
            if chunk.seq < self.first_seq {
                continue;
            }
            return match self.format {
                Format::Wav => Some(chunk.pcm.clone()),
                Format::Opus { kbps } => {
                    let page = chunk.opus_page(kbps).cloned();
                    if page.is_none() {
                        tracing::warn!(
                            listener = self.listener.id,
                            kbps,
                            "Opus stream closed: the session could not encode it"
                        );
                    }
                    page
                }
            };
        }
    }

    /// Hands a piece to the body, waiting for room but not past a kick: a
    /// player that stopped reading leaves a full body queue, and the
    /// session's verdict must end the wait. Returns false to stop.
    async fn pass(&mut self, body: &mpsc::Sender<Bytes>, bytes: Bytes) -> bool {
        let permit = if self.ending {
            reserve_before_giving_up(body).await
        } else {
            tokio::select! {
                biased;
                reason = &mut self.listener.kicked => {
                    let reason = reason.unwrap_or(CloseReason::Shutdown);
                    if reason != CloseReason::Ended {
                        self.log_kick(reason);
                        return false;
                    }
                    self.ending = true;
                    reserve_before_giving_up(body).await
                }
                permit = body.reserve() => permit.ok(),
            }
        };
        permit.map(|p| p.send(bytes)).is_some()
    }

    fn log_kick(&self, reason: CloseReason) {
        if reason == CloseReason::TooSlow {
            tracing::info!(
                listener = self.listener.id,
                "ending an HTTP stream whose player stopped reading"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::query::tests::q;

    #[test]
    fn bitrate_defaults_and_is_validated() {
        let (_, f) = parse(&q(&[]), true).unwrap();
        assert_eq!(f, Format::Opus { kbps: DEFAULT_KBPS });
        let (r, f) = parse(
            &q(&[("bitrate", "128"), ("room", "a"), ("preset", "calm")]),
            true,
        )
        .unwrap();
        assert_eq!(f, Format::Opus { kbps: 128 });
        assert_eq!(r.room.as_deref(), Some("a"));
        assert_eq!(r.preset.as_deref(), Some("calm"));
        for bad in ["31", "257", "96k", "-1", ""] {
            let e = parse(&q(&[("bitrate", bad)]), true).unwrap_err();
            assert!(e.to_string().contains("32 to 256"), "{bad}: {e}");
        }
    }

    #[test]
    fn wav_and_opus_refuse_what_they_do_not_take() {
        assert_eq!(
            parse(&q(&[("bitrate", "96")]), false).unwrap_err(),
            ListenQueryError::BitrateForWav
        );
        let e = parse(&q(&[("format", "json")]), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowed are") && e.contains("bitrate"), "{e}");
        let e = parse(&q(&[("bpm", "500")]), false).unwrap_err().to_string();
        assert!(e.contains("40"), "{e}");
    }

    #[test]
    fn wav_header_is_44_bytes_of_streaming_riff() {
        let h = wav_header();
        assert_eq!(h.len(), 44);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(&h[4..8], &[0xFF; 4]);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 2);
        assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 44_100);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 176_400);
        assert_eq!(u16::from_le_bytes([h[34], h[35]]), 16);
        assert_eq!(&h[36..40], b"data");
        assert_eq!(&h[40..44], &[0xFF; 4]);
    }
}
