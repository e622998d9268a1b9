//! A render of a fixed length that ends on its tail: what `auralis render`
//! writes and what a download sends, one piece at a time.

use crate::audio::pcm::CHUNK_FRAMES;
use crate::music::Params;
use crate::synth::EngineError;

use super::{EngineSource, Renderer, StemSink};

/// Frames in `bars` bars of 4/4 at `bpm`.
pub fn bars_frames(bars: u32, bpm: f32) -> usize {
    (f64::from(bars) * 4.0 * 60.0 / f64::from(bpm) * f64::from(crate::SAMPLE_RATE)).round() as usize
}

/// How much to render offline: the music, then its tail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderLength {
    pub bars: u32,
    /// Seconds after the last bar: every note is released at the bar line and
    /// rings out with the reverb; the last [`TAIL_FADE_SECONDS`] (or the whole
    /// tail, if shorter) fade to digital silence. 0 stops at the bar line.
    pub tail_seconds: f32,
}

/// The fade that ends a render's tail.
pub const TAIL_FADE_SECONDS: f32 = 3.0;

impl RenderLength {
    pub fn bars(bars: u32) -> Self {
        Self {
            bars,
            tail_seconds: 0.0,
        }
    }
}

/// The tail `auralis render` and a download add after the music.
pub const DEFAULT_TAIL_SECONDS: f32 = 6.0;
/// Longest `--minutes` and download: an hour of WAV is 635 MB.
pub const MAX_MINUTES: f64 = 60.0;

impl RenderLength {
    /// The whole bars nearest `minutes` at `bpm` (at least one), then the
    /// default tail: what `render --minutes` and a download both mean.
    pub fn minutes(minutes: f64, bpm: f32) -> Self {
        let bar_seconds = 4.0 * 60.0 / f64::from(bpm);
        Self {
            bars: ((minutes * 60.0 / bar_seconds).round() as u32).max(1),
            tail_seconds: DEFAULT_TAIL_SECONDS,
        }
    }
}

/// An offline render handed out a chunk at a time, so that an hour-long
/// download never sits in memory whole and a progress bar can follow it.
/// The pieces are those `render_pcm` always rendered (chunks, cut at the
/// release and at the start of the fade), so the samples are the same.
pub struct OfflineRender {
    renderer: Renderer,
    music: usize,
    /// Frames of tail before the fade, and of the fade.
    ring: usize,
    fade: usize,
    done: usize,
}

impl OfflineRender {
    pub fn new(
        params: &Params,
        length: RenderLength,
        source: &EngineSource,
    ) -> Result<Self, EngineError> {
        let music = bars_frames(length.bars, params.bpm);
        let sr = f64::from(crate::SAMPLE_RATE);
        let tail = (f64::from(length.tail_seconds.max(0.0)) * sr).round() as usize;
        let fade = tail.min((f64::from(TAIL_FADE_SECONDS) * sr) as usize);
        Ok(Self {
            renderer: Renderer::new(params.clone(), source)?,
            music,
            ring: tail - fade,
            fade,
            done: 0,
        })
    }

    pub fn total_frames(&self) -> usize {
        self.music + self.ring + self.fade
    }

    pub fn frames_done(&self) -> usize {
        self.done
    }

    /// Appends the next piece (at most a chunk) to `out`; false once the
    /// render is complete.
    pub fn next_piece(&mut self, out: &mut Vec<i16>, stems: Option<&mut dyn StemSink>) -> bool {
        let tail_start = self.music;
        let fade_start = self.music + self.ring;
        if self.done >= self.total_frames() {
            return false;
        }
        let has_tail = self.ring + self.fade > 0;
        if has_tail && self.done == tail_start {
            self.renderer.release();
        }
        if self.fade > 0 && self.done == fade_start {
            self.renderer.fade_out(self.fade as u64);
        }
        let phase_end = [tail_start, fade_start, self.total_frames()]
            .into_iter()
            .find(|&end| end > self.done)
            .unwrap_or(self.total_frames());
        let n = CHUNK_FRAMES.min(phase_end - self.done);
        self.renderer.render_with(n, out, stems);
        self.done += n;
        true
    }
}
