//! /listen.opus, /listen.mp3 and /listen.wav: the music as one endless HTTP response, for
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
use axum::extract::{Extension, MatchedPath, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::client::Client;
use super::peer::{PeerSocket, PeerWatch};
use super::query::{QueryError, StreamRequest};
use crate::audio::mp3;
use crate::audio::opus::{DEFAULT_KBPS, MAX_KBPS, MIN_KBPS};
use crate::music::params::{control, control_names};
use crate::stream::lanes::LaneUse;
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
    Mp3 { kbps: u32 },
    Wav,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Opus { .. } => "audio/ogg",
            Format::Mp3 { .. } => "audio/mpeg",
            Format::Wav => "audio/wav",
        }
    }
}

/// Which of the /listen paths was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Opus,
    Mp3,
    Wav,
}

#[derive(Debug, thiserror::Error, PartialEq)]
enum ListenQueryError {
    #[error("unknown query parameter \"{0}\": allowed are {allowed}", allowed = allowed(.1))]
    Unknown(String, Kind),
    #[error("bitrate applies to /listen.opus and /listen.mp3 only: WAV is uncompressed")]
    BitrateForWav,
    #[error("bitrate must be a whole number of kbit/s from {MIN_KBPS} to {MAX_KBPS}, got \"{0}\"")]
    Bitrate(String),
    #[error("an MP3 bitrate must be one of {allowed} kbit/s, got \"{0}\"", allowed = mp3_bitrates())]
    Mp3Bitrate(String),
    #[error(transparent)]
    Stream(#[from] QueryError),
}

/// What a /listen query may hold: /ws/stream's (`format` aside) and, for
/// Opus and MP3, the bitrate.
fn allowed(kind: &Kind) -> String {
    let bitrate = if *kind == Kind::Wav { "" } else { ", bitrate" };
    format!("{}, room, duration{bitrate}", control_names())
}

fn mp3_bitrates() -> String {
    mp3::BITRATES.map(|b| b.to_string()).join(", ")
}

/// The stream query minus `bitrate`, which only /listen.opus and
/// /listen.mp3 know; the rest is exactly /ws/stream's (`format` aside: it
/// names a WebSocket framing, so it is refused here).
fn parse(
    query: &HashMap<String, String>,
    kind: Kind,
) -> Result<(StreamRequest, Format), ListenQueryError> {
    let mut rest = HashMap::with_capacity(query.len());
    let mut kbps = match kind {
        Kind::Mp3 => mp3::DEFAULT_KBPS,
        _ => DEFAULT_KBPS,
    };
    for (name, value) in query {
        let clipped = || value.chars().take(40).collect();
        match name.as_str() {
            "bitrate" if kind == Kind::Wav => return Err(ListenQueryError::BitrateForWav),
            "bitrate" if kind == Kind::Mp3 => {
                kbps = value
                    .parse()
                    .ok()
                    .filter(|k| mp3::BITRATES.contains(k))
                    .ok_or_else(|| ListenQueryError::Mp3Bitrate(clipped()))?;
            }
            "bitrate" => {
                kbps = value
                    .parse()
                    .ok()
                    .filter(|k| (MIN_KBPS..=MAX_KBPS).contains(k))
                    .ok_or_else(|| ListenQueryError::Bitrate(clipped()))?;
            }
            n if n == "room" || n == "duration" || control(n).is_some() => {
                rest.insert(name.clone(), value.clone());
            }
            other => {
                return Err(ListenQueryError::Unknown(
                    other.chars().take(40).collect(),
                    kind,
                ))
            }
        }
    }
    let format = match kind {
        Kind::Opus => Format::Opus { kbps },
        Kind::Mp3 => Format::Mp3 { kbps },
        Kind::Wav => Format::Wav,
    };
    Ok((StreamRequest::parse(&rest)?, format))
}

/// `/listen.opus`, `/listen.mp3` and `/listen.wav`: one handler, the format
/// named by the path's extension.
pub async fn stream(
    State(hub): State<Arc<Hub>>,
    client: Option<Extension<Client>>,
    socket: Option<Extension<PeerSocket>>,
    method: Method,
    path: MatchedPath,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let kind = match path.as_str().rsplit('.').next() {
        Some("opus") => Kind::Opus,
        Some("mp3") => Kind::Mp3,
        _ => Kind::Wav,
    };
    let watch = socket.and_then(|Extension(s)| s.watch());
    listen(hub, client, watch, method, &query, kind).await
}

async fn listen(
    hub: Arc<Hub>,
    client: Option<Extension<Client>>,
    watch: Option<PeerWatch>,
    method: Method,
    query: &HashMap<String, String>,
    kind: Kind,
) -> Response {
    let client = client.map(|Extension(c)| c.addr);
    let (request, format) = match parse(query, kind) {
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
        .join_once(client, request.room, request.params, request.preset)
        .await
    {
        Ok(l) => l,
        Err(e) => return (super::refusal_status(&e), format!("{e}\n")).into_response(),
    };
    // An encoded format starts with its header (Opus) and the lane's recent
    // pages or frames, so a player has something to decode at once.
    let prelude = |header: &[u8], backlog: &[Bytes]| {
        let mut p = BytesMut::from(header);
        for b in backlog {
            p.extend_from_slice(b);
        }
        p.freeze()
    };
    let subscribed = match format {
        Format::Wav => Ok((wav_header(), listener.info.next_seq, None)),
        Format::Opus { kbps } => match listener.session.opus(kbps).await {
            Ok(Ok(sub)) => Ok((
                prelude(&sub.header, &sub.backlog),
                sub.first_seq,
                Some(sub.lane),
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Format::Mp3 { kbps } => match listener.session.mp3(kbps).await {
            Ok(Ok(sub)) => Ok((prelude(&[], &sub.backlog), sub.first_seq, Some(sub.lane))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    };
    let (prelude, first_seq, lane) = match subscribed {
        Ok(s) => s,
        Err(e) => {
            listener.leave().await;
            return unavailable(e);
        }
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
    /// Keeps the session encoding this listener's Opus or MP3 bitrate.
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
                Format::Mp3 { kbps } => {
                    let frames = chunk.mp3_frames(kbps).cloned();
                    if frames.is_none() {
                        tracing::warn!(
                            listener = self.listener.id,
                            kbps,
                            "MP3 stream closed: the session could not encode it"
                        );
                    }
                    frames
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
        let (_, f) = parse(&q(&[]), Kind::Opus).unwrap();
        assert_eq!(f, Format::Opus { kbps: DEFAULT_KBPS });
        let (r, f) = parse(
            &q(&[("bitrate", "128"), ("room", "a"), ("preset", "calm")]),
            Kind::Opus,
        )
        .unwrap();
        assert_eq!(f, Format::Opus { kbps: 128 });
        assert_eq!(r.room.as_deref(), Some("a"));
        assert_eq!(r.preset.as_deref(), Some("calm"));
        for bad in ["31", "257", "96k", "-1", ""] {
            let e = parse(&q(&[("bitrate", bad)]), Kind::Opus).unwrap_err();
            assert!(e.to_string().contains("32 to 256"), "{bad}: {e}");
        }
    }

    #[test]
    fn wav_and_opus_refuse_what_they_do_not_take() {
        assert_eq!(
            parse(&q(&[("bitrate", "96")]), Kind::Wav).unwrap_err(),
            ListenQueryError::BitrateForWav
        );
        let e = parse(&q(&[("format", "json")]), Kind::Opus)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowed are") && e.contains("bitrate"), "{e}");
        let e = parse(&q(&[("bpm", "500")]), Kind::Wav)
            .unwrap_err()
            .to_string();
        assert!(e.contains("40"), "{e}");
    }

    #[test]
    fn mp3_takes_layer_iii_bitrates_only() {
        let (_, f) = parse(&q(&[]), Kind::Mp3).unwrap();
        assert_eq!(f, Format::Mp3 { kbps: 128 });
        let (_, f) = parse(&q(&[("bitrate", "320")]), Kind::Mp3).unwrap();
        assert_eq!(f, Format::Mp3 { kbps: 320 });
        let e = parse(&q(&[("bitrate", "100")]), Kind::Mp3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("96, 112, 128") && e.contains("\"100\""), "{e}");
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
