//! Offline uses of the render pipeline: `auralis render` (WAV and MIDI files)
//! and `auralis bench` (how fast a phrase renders). Both drive the same
//! [`Renderer`] the live stream uses, chunk by chunk.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audio::{midi, pcm::CHUNK_FRAMES};
use crate::music::{Composer, Event, Params};
use crate::stream::renderer::Renderer;
use crate::synth::{EngineSettings, FontSet, RustyEngine};

/// Frames in `bars` bars of 4/4 at `bpm`.
pub fn bars_frames(bars: u32, bpm: f32) -> usize {
    (f64::from(bars) * 4.0 * 60.0 / f64::from(bpm) * f64::from(crate::SAMPLE_RATE)).round() as usize
}

/// Renders `bars` bars as interleaved 16-bit stereo.
pub fn render_pcm(params: &Params, bars: u32, fonts: &FontSet) -> Vec<i16> {
    let engine = Box::new(RustyEngine::new(fonts, EngineSettings::default()));
    let mut renderer = Renderer::new(params.clone(), engine);
    let frames = bars_frames(bars, params.bpm);
    let mut out = Vec::with_capacity(frames * 2);
    let mut done = 0;
    while done < frames {
        let n = CHUNK_FRAMES.min(frames - done);
        renderer.render(n, &mut out);
        done += n;
    }
    out
}

/// The events of the same `bars` bars, for the MIDI export.
pub fn compose_events(params: &Params, bars: u32) -> Vec<Event> {
    Composer::new(params.clone()).compose_bars(bars)
}

pub fn render_midi(params: &Params, bars: u32) -> Result<Vec<u8>, midi::MidiError> {
    midi::midi_bytes(&compose_events(params, bars), params.bpm)
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub engine: String,
    pub fonts: Vec<String>,
    pub phrases: usize,
    pub phrase_seconds: f64,
    pub font_load_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Audio seconds rendered per wall second, at the median.
    pub realtime_factor: f64,
    pub chunk_p99_ms: f64,
    pub peak_rss_mb: Option<f64>,
}

/// Renders `phrases` successive 8-bar phrases at 60 BPM on one continuous
/// stream (so pad tails overlap as they do live) and times each phrase.
pub fn bench(params: &Params, phrases: usize, fonts: &FontSet, font_load: Duration) -> BenchReport {
    let params = Params {
        bpm: 60.0,
        ..params.clone()
    };
    let engine = Box::new(RustyEngine::new(fonts, EngineSettings::default()));
    let engine_name = crate::synth::Engine::name(engine.as_ref()).to_string();
    let mut renderer = Renderer::new(params.clone(), engine);
    let frames = bars_frames(8, params.bpm);
    let mut out = Vec::with_capacity(CHUNK_FRAMES * 2);
    let mut phrase_ms = Vec::with_capacity(phrases);
    let mut chunk_ms = Vec::new();
    for _ in 0..phrases.max(1) {
        let start = Instant::now();
        let mut done = 0;
        while done < frames {
            let n = CHUNK_FRAMES.min(frames - done);
            out.clear();
            let chunk_start = Instant::now();
            renderer.render(n, &mut out);
            chunk_ms.push(chunk_start.elapsed().as_secs_f64() * 1e3);
            done += n;
        }
        phrase_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let phrase_seconds = frames as f64 / f64::from(crate::SAMPLE_RATE);
    let p50 = percentile(&mut phrase_ms, 50.0);
    BenchReport {
        engine: engine_name,
        fonts: fonts
            .distinct()
            .iter()
            .map(|f| f.info.name.clone())
            .collect(),
        phrases: phrase_ms.len(),
        phrase_seconds,
        font_load_ms: font_load.as_secs_f64() * 1e3,
        p50_ms: p50,
        p95_ms: percentile(&mut phrase_ms, 95.0),
        p99_ms: percentile(&mut phrase_ms, 99.0),
        max_ms: percentile(&mut phrase_ms, 100.0),
        realtime_factor: phrase_seconds * 1e3 / p50,
        chunk_p99_ms: percentile(&mut chunk_ms, 99.0),
        peak_rss_mb: crate::rss::peak_rss_mb(),
    }
}

/// Nearest-rank percentile; sorts in place.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bars_at_60_bpm_is_32_seconds() {
        assert_eq!(bars_frames(8, 60.0), 32 * 44_100);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
    }
}
