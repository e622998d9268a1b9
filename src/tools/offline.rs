//! Offline uses of the render pipeline: `auralis render` (WAV and MIDI files)
//! and `auralis bench` (how fast a phrase renders, per engine and side by
//! side). Both drive the same [`Renderer`] the live stream uses, chunk by chunk.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audio::analysis::{clicks, tail_dbfs};
use crate::audio::loudness::{integrated_lufs, measure_i16, LoudnessReport, MeasureError};
use crate::audio::{midi, pcm::CHUNK_FRAMES};
use crate::music::{Composer, Event, Params};
use crate::pipeline::calibration::Role;
use crate::pipeline::stems::Stems;
use crate::pipeline::{EngineSource, Renderer, StemSink};
use crate::soundfont::FontSet;
use crate::synth::{EngineError, EngineKind, EngineSettings};

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

/// Renders the music and its tail as interleaved 16-bit stereo, handing the
/// parts of the mix to `stems` when given.
pub fn render_pcm(
    params: &Params,
    length: RenderLength,
    fonts: &FontSet,
    engine: EngineKind,
    mut stems: Option<&mut dyn StemSink>,
) -> Result<Vec<i16>, EngineError> {
    let mut renderer = Renderer::new(params.clone(), &EngineSource::new(engine, fonts))?;
    let music = bars_frames(length.bars, params.bpm);
    let sr = f64::from(crate::SAMPLE_RATE);
    let tail = (f64::from(length.tail_seconds.max(0.0)) * sr).round() as usize;
    let fade = tail.min((f64::from(TAIL_FADE_SECONDS) * sr) as usize);
    let mut out = Vec::with_capacity((music + tail) * 2);
    let mut render = |renderer: &mut Renderer, frames: usize| {
        let mut done = 0;
        while done < frames {
            let n = CHUNK_FRAMES.min(frames - done);
            let tap: Option<&mut dyn StemSink> = match stems {
                Some(ref mut s) => Some(&mut **s),
                None => None,
            };
            renderer.render_with(n, &mut out, tap);
            done += n;
        }
    };
    render(&mut renderer, music);
    if tail > 0 {
        renderer.release();
        render(&mut renderer, tail - fade);
        renderer.fade_out(fade as u64);
        render(&mut renderer, fade);
    }
    Ok(out)
}

/// The events of the same `bars` bars, for the MIDI export.
pub fn compose_events(params: &Params, bars: u32) -> Vec<Event> {
    Composer::new(params.clone()).compose_bars(bars)
}

pub fn render_midi(params: &Params, bars: u32) -> Result<Vec<u8>, midi::MidiError> {
    midi::midi_bytes(&compose_events(params, bars), params.bpm)
}

/// What a mastering engineer checks on a render of one preset: loudness,
/// range, peaks, DC, the piano against the pad, clicks, and how it ends.
#[derive(Debug, Clone, Serialize)]
pub struct SoundCheck {
    pub preset: String,
    pub engine: String,
    pub piano_font: String,
    pub pad_font: String,
    pub seconds: f64,
    pub mix: LoudnessReport,
    /// Gated integrated loudness of each layer with its reverb, as it sits in
    /// the mix: the piano's is its level while it plays.
    pub piano_lufs: f64,
    pub pad_lufs: f64,
    /// Piano minus pad, LU.
    pub balance_lu: f64,
    /// Frames with a sample step far above the local level, away from notes.
    pub clicks: Vec<u64>,
    /// RMS of the last 10 ms, dBFS, and the largest of the last frame's samples.
    pub tail_dbfs: f64,
    pub last_sample: f64,
}

/// Renders `length` of `params` with stems and measures it.
pub fn soundcheck(
    name: &str,
    params: &Params,
    length: RenderLength,
    fonts: &FontSet,
    engine: EngineKind,
) -> Result<SoundCheck, SoundCheckError> {
    let mut stems = Stems::in_memory();
    let mix = render_pcm(params, length, fonts, engine, Some(&mut stems))?;
    let events: Vec<u64> = compose_events(params, length.bars)
        .iter()
        .filter(|e| !matches!(e.kind, crate::music::EventKind::Program { .. }))
        .map(|e| e.frame)
        .collect();
    let layer = |role| -> Result<f64, SoundCheckError> {
        let wet = stems.wet(role).unwrap_or_default();
        Ok(integrated_lufs(wet)?)
    };
    let (piano_lufs, pad_lufs) = (layer(Role::Piano)?, layer(Role::Pad)?);
    let last = mix.len().saturating_sub(2);
    Ok(SoundCheck {
        preset: name.to_string(),
        engine: engine.to_string(),
        piano_font: fonts.piano.info.name.clone(),
        pad_font: fonts.pad.info.name.clone(),
        seconds: mix.len() as f64 / 2.0 / f64::from(crate::SAMPLE_RATE),
        mix: measure_i16(&mix)?,
        piano_lufs,
        pad_lufs,
        balance_lu: piano_lufs - pad_lufs,
        clicks: clicks(&mix, &events),
        tail_dbfs: tail_dbfs(&mix, CHUNK_FRAMES / 10),
        last_sample: mix[last..]
            .iter()
            .map(|&s| f64::from(s).abs() / 32_768.0)
            .fold(0.0, f64::max),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SoundCheckError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Measure(#[from] MeasureError),
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub engine: String,
    pub fonts: Vec<String>,
    pub phrases: usize,
    pub phrase_seconds: f64,
    pub font_load_ms: f64,
    /// Building the synthesizer: for libfluidsynth this is its own font load
    /// (the fonts are also parsed once by rustysynth when resolved).
    pub engine_build_ms: f64,
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
pub fn bench(
    params: &Params,
    phrases: usize,
    fonts: &FontSet,
    font_load: Duration,
    engine: EngineKind,
) -> Result<BenchReport, EngineError> {
    let mut run = PhraseBench::new(params, fonts, engine)?;
    for _ in 0..phrases.max(1) {
        run.phrase();
    }
    Ok(run.report(fonts, font_load))
}

/// Both engines on the same composed notes, and the `fluidsynth` command on
/// the MIDI export of the first phrase.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub rustysynth: BenchReport,
    pub fluidsynth: BenchReport,
    pub voices: BenchReport,
    /// libfluidsynth ms / rustysynth ms per phrase, at the median.
    pub ratio_p50: f64,
    pub ratio_p95: f64,
    /// libfluidsynth ms / voices ms per phrase, at the median.
    pub voices_ratio_p50: f64,
    pub voices_ratio_p95: f64,
    pub command: Option<CommandReport>,
    /// Why the command was not timed (e.g. not installed).
    pub command_error: Option<String>,
}

/// Wall time of the `fluidsynth` program rendering one phrase's MIDI file to
/// WAV: process start and its own font load included, its reverb and chorus
/// off, and none of our reverb, leveller or limiter. An outside reference,
/// not a like-for-like row.
#[derive(Debug, Clone, Serialize)]
pub struct CommandReport {
    pub command: String,
    pub runs: usize,
    pub audio_seconds: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Renders the same phrases with rustysynth, libfluidsynth and our `voices`
/// in one run, rotating which goes first so that none always meets a warm or
/// a cold cache; ratios within one run are what to trust on a noisy machine.
pub fn compare(
    params: &Params,
    phrases: usize,
    fonts: &FontSet,
    font_load: Duration,
) -> Result<CompareReport, EngineError> {
    let mut rusty = PhraseBench::new(params, fonts, EngineKind::Rustysynth)?;
    let mut fluid = PhraseBench::new(params, fonts, EngineKind::Fluidsynth)?;
    let mut ours = PhraseBench::new(params, fonts, EngineKind::Voices)?;
    for i in 0..phrases.max(1) {
        let mut order = [&mut rusty, &mut fluid, &mut ours];
        order.rotate_left(i % 3);
        for bench in order {
            bench.phrase();
        }
    }
    let rustysynth = rusty.report(fonts, font_load);
    let fluidsynth = fluid.report(fonts, font_load);
    let voices = ours.report(fonts, font_load);
    let (command, command_error) = match time_fluidsynth_command(params, fonts, phrases.max(1)) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    Ok(CompareReport {
        ratio_p50: fluidsynth.p50_ms / rustysynth.p50_ms,
        ratio_p95: fluidsynth.p95_ms / rustysynth.p95_ms,
        voices_ratio_p50: fluidsynth.p50_ms / voices.p50_ms,
        voices_ratio_p95: fluidsynth.p95_ms / voices.p95_ms,
        rustysynth,
        fluidsynth,
        voices,
        command,
        command_error,
    })
}

/// One engine rendering successive phrases through the stream's pipeline,
/// in 100 ms chunks, keeping every phrase's and chunk's time.
struct PhraseBench {
    renderer: Renderer,
    engine_build: Duration,
    frames: usize,
    out: Vec<i16>,
    phrase_ms: Vec<f64>,
    chunk_ms: Vec<f64>,
}

impl PhraseBench {
    fn new(params: &Params, fonts: &FontSet, kind: EngineKind) -> Result<Self, EngineError> {
        let params = Params {
            bpm: 60.0,
            ..params.clone()
        };
        let started = Instant::now();
        let renderer = Renderer::new(params.clone(), &EngineSource::new(kind, fonts))?;
        let engine_build = started.elapsed();
        Ok(Self {
            renderer,
            engine_build,
            frames: bars_frames(8, params.bpm),
            out: Vec::with_capacity(CHUNK_FRAMES * 2),
            phrase_ms: Vec::new(),
            chunk_ms: Vec::new(),
        })
    }

    fn phrase(&mut self) {
        let start = Instant::now();
        let mut done = 0;
        while done < self.frames {
            let n = CHUNK_FRAMES.min(self.frames - done);
            self.out.clear();
            let chunk_start = Instant::now();
            self.renderer.render(n, &mut self.out);
            self.chunk_ms
                .push(chunk_start.elapsed().as_secs_f64() * 1e3);
            done += n;
        }
        self.phrase_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }

    fn report(mut self, fonts: &FontSet, font_load: Duration) -> BenchReport {
        let phrase_seconds = self.frames as f64 / f64::from(crate::SAMPLE_RATE);
        let p50 = percentile(&mut self.phrase_ms, 50.0);
        BenchReport {
            engine: self.renderer.engine_name().to_string(),
            fonts: fonts
                .distinct()
                .iter()
                .map(|f| f.info.name.clone())
                .collect(),
            phrases: self.phrase_ms.len(),
            phrase_seconds,
            font_load_ms: font_load.as_secs_f64() * 1e3,
            engine_build_ms: self.engine_build.as_secs_f64() * 1e3,
            p50_ms: p50,
            p95_ms: percentile(&mut self.phrase_ms, 95.0),
            p99_ms: percentile(&mut self.phrase_ms, 99.0),
            max_ms: percentile(&mut self.phrase_ms, 100.0),
            realtime_factor: phrase_seconds * 1e3 / p50,
            chunk_p99_ms: percentile(&mut self.chunk_ms, 99.0),
            peak_rss_mb: crate::rss::peak_rss_mb(),
        }
    }
}

/// Times `runs` runs of the `fluidsynth` command on the first phrase's MIDI
/// export, with the same fonts and gain as our engines. The command takes one
/// font stack for all channels, so with two distinct fonts the pad font is
/// loaded first and the piano font over it.
fn time_fluidsynth_command(
    params: &Params,
    fonts: &FontSet,
    runs: usize,
) -> Result<CommandReport, String> {
    let params = Params {
        bpm: 60.0,
        ..params.clone()
    };
    let dir = std::env::temp_dir().join(format!(
        "auralis-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = run_fluidsynth_command(&params, fonts, runs, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_fluidsynth_command(
    params: &Params,
    fonts: &FontSet,
    runs: usize,
    dir: &Path,
) -> Result<CommandReport, String> {
    let midi_path = dir.join("phrase.mid");
    let wav_path = dir.join("out.wav");
    let midi = render_midi(params, 8).map_err(|e| e.to_string())?;
    std::fs::write(&midi_path, midi).map_err(|e| e.to_string())?;
    let mut font_paths: Vec<PathBuf> = Vec::new();
    for font in fonts.distinct().into_iter().rev() {
        font_paths.push(match &font.info.path {
            Some(path) => path.clone(),
            None => {
                let path = dir.join("builtin.sf2");
                std::fs::write(&path, crate::soundfont::builtin_font::builtin_font_bytes())
                    .map_err(|e| e.to_string())?;
                path
            }
        });
    }
    let gain = EngineSettings::default().gain.to_string();
    let rate = crate::SAMPLE_RATE.to_string();
    let mut args: Vec<&std::ffi::OsStr> = ["-ni", "-g", &gain, "-R", "0", "-C", "0", "-r", &rate]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .collect();
    args.push("-F".as_ref());
    args.push(wav_path.as_os_str());
    args.extend(font_paths.iter().map(|p| p.as_os_str()));
    args.push(midi_path.as_os_str());
    let mut wall_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new("fluidsynth")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "the fluidsynth command is not installed (apt-get install fluidsynth)"
                        .to_string()
                }
                _ => format!("cannot run fluidsynth: {e}"),
            })?;
        wall_ms.push(started.elapsed().as_secs_f64() * 1e3);
        if !status.success() {
            return Err(format!("fluidsynth exited with {status}"));
        }
    }
    let audio_seconds = hound::WavReader::open(&wav_path)
        .map(|r| f64::from(r.duration()) / f64::from(r.spec().sample_rate))
        .map_err(|e| format!("fluidsynth wrote no readable WAV: {e}"))?;
    let command = std::iter::once("fluidsynth".to_string())
        .chain(args.iter().map(|a| {
            let a = Path::new(a);
            // Temporary paths say nothing to a reader; their names do.
            if a.starts_with(dir) {
                a.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            } else {
                a.display().to_string()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(CommandReport {
        command,
        runs: wall_ms.len(),
        audio_seconds,
        p50_ms: percentile(&mut wall_ms, 50.0),
        p95_ms: percentile(&mut wall_ms, 95.0),
    })
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
