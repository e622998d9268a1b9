//! /download.wav, /download.opus and /download.mid: minutes of the music as
//! a file, the same file `auralis render --minutes` writes for the same
//! parameters.
//!
//! A download renders as fast as the machine can, not paced to the wall
//! clock, so it is real CPU work: it runs on a blocking thread (never on the
//! reactor or the live sessions' render pool), a small semaphore caps how
//! many run at once, and the file goes out a chunk at a time through a
//! short queue, so an hour of WAV (635 MB) never sits in memory and a client
//! that stops reading stops the render.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::audio::opus::{OggOpusEncoder, DEFAULT_KBPS};
use crate::audio::resample::To48k;
use crate::audio::{midi, pcm, wav, CHUNK_FRAMES};
use crate::music::change::{ChangeError, FieldError, ParamChange, RawValue};
use crate::music::params::{control, control_names};
use crate::music::{journey, Params};
use crate::pipeline::offline::{OfflineRender, RenderLength, MAX_MINUTES};
use crate::pipeline::EngineSource;
use crate::stream::Hub;

/// Downloads rendering at once. Each takes a core while it runs; two leave
/// the live sessions' render threads room on a small machine.
pub const MAX_DOWNLOADS: usize = 2;
/// Pieces of file waiting for the client: enough to keep the socket busy,
/// few enough that a slow client holds the render back instead of memory.
const BODY_QUEUE: usize = 8;

/// What the download handlers share: the hub (for its fonts and engine)
/// and the permits.
#[derive(Clone)]
pub struct Downloads {
    pub hub: Arc<Hub>,
    pub permits: Arc<Semaphore>,
}

impl Downloads {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            permits: Arc::new(Semaphore::new(MAX_DOWNLOADS)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wav,
    Opus,
    Midi,
}

impl Kind {
    fn extension(self) -> &'static str {
        match self {
            Kind::Wav => "wav",
            Kind::Opus => "opus",
            Kind::Midi => "mid",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Kind::Wav => "audio/wav",
            Kind::Opus => "audio/ogg",
            Kind::Midi => "audio/midi",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DownloadQueryError {
    #[error("unknown query parameter \"{0}\": allowed are {names}, minutes", names = control_names())]
    Unknown(String),
    #[error(
        "minutes is required: how many minutes of music, more than 0 and at most {MAX_MINUTES}"
    )]
    MissingMinutes,
    #[error("minutes must be a number more than 0 and at most {MAX_MINUTES}, got \"{0}\"")]
    Minutes(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Params(#[from] ChangeError),
}

/// The music and its length.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadRequest {
    pub params: Params,
    pub preset: Option<String>,
    pub length: RenderLength,
}

impl DownloadRequest {
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, DownloadQueryError> {
        let mut change = ParamChange::default();
        let mut minutes = None;
        for (name, value) in query {
            match name.as_str() {
                "minutes" => {
                    minutes = Some(
                        value
                            .parse::<f64>()
                            .ok()
                            .filter(|m| *m > 0.0 && *m <= MAX_MINUTES)
                            .ok_or_else(|| DownloadQueryError::Minutes(clip(value)))?,
                    );
                }
                n if control(n).is_some() => change.set(n, RawValue::Text(value))?,
                other => return Err(DownloadQueryError::Unknown(clip(other))),
            }
        }
        let minutes = minutes.ok_or(DownloadQueryError::MissingMinutes)?;
        let (params, preset) = change.resolve()?;
        Ok(Self {
            length: RenderLength::minutes(minutes, params.bpm),
            preset: preset.map(|p| p.name.to_string()),
            params,
        })
    }

    /// e.g. `auralis-focus-D-dorian-60bpm-seed0-5min.wav`: what it is, so a
    /// folder of downloads reads as a list of pieces.
    fn file_name(&self, kind: Kind, minutes: &str) -> String {
        let p = &self.params;
        let name: String = format!(
            "auralis-{}-{}-{}-{}bpm-seed{}-{}min.{}",
            self.preset.as_deref().unwrap_or("custom"),
            p.key,
            p.mode,
            p.bpm,
            p.seed,
            minutes,
            kind.extension()
        );
        // Only characters that need no quoting in the header.
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

pub async fn wav(state: State<Downloads>, query: Query<HashMap<String, String>>) -> Response {
    download(state, query, Kind::Wav).await
}

pub async fn opus(state: State<Downloads>, query: Query<HashMap<String, String>>) -> Response {
    download(state, query, Kind::Opus).await
}

pub async fn midi(state: State<Downloads>, query: Query<HashMap<String, String>>) -> Response {
    download(state, query, Kind::Midi).await
}

async fn download(
    State(downloads): State<Downloads>,
    Query(query): Query<HashMap<String, String>>,
    kind: Kind,
) -> Response {
    let request = match DownloadRequest::parse(&query) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let name = request.file_name(kind, query.get("minutes").map_or("", String::as_str));
    if kind == Kind::Midi {
        // Composing is cheap (no synthesis): no permit, no thread.
        let events = journey::compose_bars(&request.params, request.length.bars);
        return match midi::midi_bytes(&events, request.params.bpm) {
            Ok(bytes) => file_response(kind, &name, Some(bytes.len() as u64), Body::from(bytes)),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
    }
    let Ok(permit) = Arc::clone(&downloads.permits).try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many downloads: {MAX_DOWNLOADS} are rendering now, so live listeners keep their share of the machine; try again in a minute\n"
            ),
        )
            .into_response();
    };
    let config = downloads.hub.config();
    let source = EngineSource {
        settings: config.engine,
        ..EngineSource::new(config.engine_kind, &config.fonts)
    };
    let params = request.params.clone();
    let length = request.length;
    let made = tokio::task::spawn_blocking(move || OfflineRender::new(&params, length, &source))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let render = match made {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot start a synthesizer: {e}\n"),
            )
                .into_response()
        }
    };
    let wav_bytes = render.total_frames() as u64 * 4;
    let (length, prelude) = match kind {
        Kind::Wav => match u32::try_from(wav_bytes) {
            Ok(n) => (
                Some(44 + wav_bytes),
                Bytes::copy_from_slice(&wav::header(Some(n))),
            ),
            Err(_) => {
                return (StatusCode::BAD_REQUEST, "too long for a WAV file\n").into_response()
            }
        },
        _ => (None, Bytes::new()),
    };
    let (tx, rx) = mpsc::channel(BODY_QUEUE);
    tokio::task::spawn_blocking(move || produce(render, kind, prelude, &tx, permit));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    file_response(kind, &name, length, Body::from_stream(body))
}

fn file_response(kind: Kind, name: &str, length: Option<u64>, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Renders the file piece by piece into the body queue, on a blocking
/// thread; stops as soon as the client has gone. The permit is held until
/// the render ends.
fn produce(
    mut render: OfflineRender,
    kind: Kind,
    prelude: Bytes,
    body: &mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let mut opus = match kind {
        Kind::Opus => match OpusFile::new() {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(error = %e, "cannot start an Opus download");
                return;
            }
        },
        _ => None,
    };
    let mut first = match opus.as_ref() {
        Some(o) => o.header.clone(),
        None => prelude,
    };
    let mut samples = Vec::with_capacity(CHUNK_FRAMES * 2);
    loop {
        samples.clear();
        let more = render.next_piece(&mut samples, None);
        let mut out = std::mem::take(&mut first).to_vec();
        match opus.as_mut() {
            Some(o) => {
                if let Err(e) = o.push(&samples, !more, &mut out) {
                    tracing::error!(error = %e, "Opus download failed");
                    return;
                }
            }
            None => pcm::to_le_bytes(&samples, &mut out),
        }
        if !out.is_empty() && body.blocking_send(Bytes::from(out)).is_err() {
            return;
        }
        if !more {
            return;
        }
    }
}

/// Ogg Opus of a whole render: chunks of exactly 100 ms for the encoder,
/// the last one padded with silence and marked end-of-stream.
struct OpusFile {
    header: Bytes,
    encoder: OggOpusEncoder,
    resampler: To48k,
    pending: Vec<i16>,
    pcm48: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
enum OpusFileError {
    #[error(transparent)]
    Opus(#[from] crate::audio::opus::OpusError),
    #[error(transparent)]
    Resample(#[from] crate::audio::resample::ResampleError),
}

impl OpusFile {
    fn new() -> Result<Self, OpusFileError> {
        let encoder = OggOpusEncoder::new(DEFAULT_KBPS, 1)?;
        Ok(Self {
            header: encoder.header_pages(encoder.next_page_seq())?,
            encoder,
            resampler: To48k::new()?,
            pending: Vec::with_capacity(CHUNK_FRAMES * 4),
            pcm48: Vec::new(),
        })
    }

    /// Takes the next samples and appends every whole page to `out`.
    fn push(
        &mut self,
        samples: &[i16],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), OpusFileError> {
        self.pending.extend_from_slice(samples);
        if last {
            let whole = self.pending.len().div_ceil(CHUNK_FRAMES * 2).max(1) * CHUNK_FRAMES * 2;
            self.pending.resize(whole, 0);
        }
        let chunk = CHUNK_FRAMES * 2;
        let mut at = 0;
        while self.pending.len() - at >= chunk {
            let is_last = last && self.pending.len() - at == chunk;
            self.resampler
                .process(&self.pending[at..at + chunk], &mut self.pcm48)?;
            let page = self.encoder.encode_chunk_with(&self.pcm48, is_last)?;
            out.extend_from_slice(&page.bytes);
            at += chunk;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::query::tests::q;

    #[test]
    fn minutes_are_required_and_bounded() {
        let r = DownloadRequest::parse(&q(&[("minutes", "5"), ("preset", "calm")])).unwrap();
        assert_eq!(r.preset.as_deref(), Some("calm"));
        assert!(r.length.bars > 1);
        assert_eq!(
            DownloadRequest::parse(&q(&[])).unwrap_err(),
            DownloadQueryError::MissingMinutes
        );
        for bad in ["0", "61", "-1", "an hour", "NaN"] {
            let e = DownloadRequest::parse(&q(&[("minutes", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("at most 60"), "{bad}: {e}");
        }
        let e = DownloadRequest::parse(&q(&[("minutes", "1"), ("room", "a")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowed are") && e.contains("minutes"), "{e}");
    }

    #[test]
    fn file_names_say_what_the_music_is() {
        let r = DownloadRequest::parse(&q(&[("minutes", "5"), ("key", "F#")])).unwrap();
        assert_eq!(
            r.file_name(Kind::Wav, "5"),
            "auralis-focus-F_-dorian-60bpm-seed0-5min.wav"
        );
    }

    #[test]
    fn an_opus_file_is_whole_pages_ending_the_stream() {
        let mut f = OpusFile::new().unwrap();
        let mut out = Vec::new();
        f.push(&vec![0; 3_000], false, &mut out).unwrap();
        assert!(out.is_empty(), "less than a chunk waits");
        f.push(&vec![0; 7_000], true, &mut out).unwrap();
        // 10,000 samples = 5,000 frames: two chunks, the second padded.
        let pages: Vec<usize> = out
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"OggS")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(pages.len(), 2);
        assert_eq!(out[pages[0] + 5], 0);
        assert_eq!(out[pages[1] + 5], 0x04, "end of stream");
    }
}
