//! Offline uses of the render pipeline: `auralis render` (WAV and MIDI files),
//! `auralis soundcheck` (every preset measured) and `auralis bench` (how fast
//! a phrase renders, per engine and side by side). All drive the same
//! [`Renderer`] the live stream uses, chunk by chunk.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::args::{print_report, FontArgs, MusicArgs};

use crate::audio::analysis::{clicks_i16, tail_dbfs, ClickRule};
use crate::audio::loudness::{integrated_lufs, measure_i16, LoudnessReport, MeasureError};
use crate::audio::{midi, pcm::CHUNK_FRAMES};
use crate::music::{journey, Event, Params, PRESETS};
use crate::pipeline::calibration::Role;
use crate::pipeline::stems::Stems;
use crate::pipeline::{EngineSource, Renderer, StemSink};
use crate::soundfont::FontSet;
use crate::stats::percentile;
use crate::synth::{EngineError, EngineKind, EngineSettings};

pub use crate::pipeline::offline::{
    bars_frames, OfflineRender, RenderLength, DEFAULT_TAIL_SECONDS, MAX_MINUTES, TAIL_FADE_SECONDS,
};

/// Renders the music and its tail as interleaved 16-bit stereo, handing the
/// parts of the mix to `stems` when given.
pub fn render_pcm(
    params: &Params,
    length: RenderLength,
    fonts: &FontSet,
    engine: EngineKind,
    mut stems: Option<&mut dyn StemSink>,
) -> Result<Vec<i16>, EngineError> {
    let mut render = OfflineRender::new(params, length, &EngineSource::new(engine, fonts))?;
    let mut out = Vec::with_capacity(render.total_frames() * 2);
    loop {
        let tap: Option<&mut dyn StemSink> = match stems {
            Some(ref mut s) => Some(&mut **s),
            None => None,
        };
        if !render.next_piece(&mut out, tap) {
            return Ok(out);
        }
    }
}

/// The events of the same `bars` bars, journey steps included, for the
/// MIDI export.
pub fn compose_events(params: &Params, bars: u32) -> Vec<Event> {
    journey::compose_bars(params, bars)
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

/// Every preset's [`SoundCheck`] of one `auralis soundcheck` run: a table,
/// or in JSON the list of checks alone.
pub struct SoundCheckTable {
    pub bars: u32,
    pub seed: u64,
    pub engine: EngineKind,
    pub piano_font: String,
    pub pad_font: String,
    pub checks: Vec<SoundCheck>,
}

impl Serialize for SoundCheckTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.checks.serialize(s)
    }
}

impl fmt::Display for SoundCheckTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} bars + 6 s tail, seed {}, {} engine; piano: {}; pad: {}",
            self.bars, self.seed, self.engine, self.piano_font, self.pad_font
        )?;
        writeln!(
            f,
            "{:<10} {:>8} {:>6} {:>8} {:>8} {:>12} {:>7} {:>10}",
            "preset", "LUFS", "LRA", "dBTP", "DC", "piano-pad", "clicks", "tail dBFS"
        )?;
        for c in &self.checks {
            writeln!(
                f,
                "{:<10} {:>8.1} {:>6.1} {:>8.1} {:>8.4} {:>9.1} LU {:>7} {:>10.1}",
                c.preset,
                c.mix.integrated_lufs,
                c.mix.range_lu,
                c.mix.true_peak_dbtp,
                c.mix.dc[0].abs().max(c.mix.dc[1].abs()),
                c.balance_lu,
                c.clicks.len(),
                c.tail_dbfs
            )?;
        }
        Ok(())
    }
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
        clicks: clicks_i16(&mix, &events, &ClickRule::MIX),
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
    /// Replaying the last second with a control change in it, as a live
    /// session does for a listener (the 2–2.5 s pre-roll is most of it),
    /// at the median of one per phrase.
    pub splice_p50_ms: f64,
    pub peak_rss_mb: Option<f64>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "engine      {}", self.engine)?;
        writeln!(f, "fonts       {}", self.fonts.join(" + "))?;
        writeln!(f, "font load   {:.0} ms", self.font_load_ms)?;
        writeln!(f, "synth build {:.0} ms", self.engine_build_ms)?;
        writeln!(
            f,
            "phrases     {} × {:.0} s (8 bars at 60 BPM)",
            self.phrases, self.phrase_seconds
        )?;
        writeln!(f)?;
        writeln!(f, "{:<8} {:>10}", "", "ms/phrase")?;
        for (name, v) in [
            ("p50", self.p50_ms),
            ("p95", self.p95_ms),
            ("p99", self.p99_ms),
            ("max", self.max_ms),
        ] {
            writeln!(f, "{name:<8} {v:>10.1}")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "real time   {:.0}× (at the median)",
            self.realtime_factor
        )?;
        writeln!(
            f,
            "chunk p99   {:.2} ms per 100 ms chunk",
            self.chunk_p99_ms
        )?;
        writeln!(
            f,
            "splice p50  {:.1} ms to replay the last second with a change in it",
            self.splice_p50_ms
        )?;
        if let Some(rss) = self.peak_rss_mb {
            writeln!(f, "peak RSS    {rss:.0} MB")?;
        }
        Ok(())
    }
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

impl fmt::Display for CompareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, l, v) = (&self.rustysynth, &self.fluidsynth, &self.voices);
        writeln!(f, "fonts       {}", r.fonts.join(" + "))?;
        writeln!(
            f,
            "font load   {:.0} ms (resolving, rustysynth's parse); synth build: {} {:.0} ms, {} {:.0} ms, {} {:.0} ms",
            r.font_load_ms, r.engine, r.engine_build_ms, l.engine, l.engine_build_ms, v.engine, v.engine_build_ms
        )?;
        writeln!(
            f,
            "phrases     {} × {:.0} s (8 bars at 60 BPM), the same notes through all three, each: engine → reverb → leveller → limiter, 100 ms chunks",
            r.phrases, r.phrase_seconds
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>12} {:>14} {:>8} {:>10} {:>8}",
            "ms/phrase", r.engine, l.engine, "ratio", v.engine, "ratio"
        )?;
        for (name, a, b, c) in [
            ("p50", r.p50_ms, l.p50_ms, v.p50_ms),
            ("p95", r.p95_ms, l.p95_ms, v.p95_ms),
            ("p99", r.p99_ms, l.p99_ms, v.p99_ms),
            ("max", r.max_ms, l.max_ms, v.max_ms),
        ] {
            writeln!(
                f,
                "{name:<10} {a:>12.1} {b:>14.1} {:>8.2} {c:>10.1} {:>8.2}",
                b / a,
                b / c
            )?;
        }
        writeln!(
            f,
            "{:<10} {:>11.0}× {:>13.0}× {:>8} {:>9.0}×",
            "real time", r.realtime_factor, l.realtime_factor, "", v.realtime_factor
        )?;
        writeln!(
            f,
            "{:<10} {:>12.2} {:>14.2} {:>8} {:>10.2}   (ms per 100 ms chunk)",
            "chunk p99", r.chunk_p99_ms, l.chunk_p99_ms, "", v.chunk_p99_ms
        )?;
        writeln!(
            f,
            "{:<10} {:>12.1} {:>14.1} {:>8} {:>10.1}   (ms to replay the last second with a change)",
            "splice p50", r.splice_p50_ms, l.splice_p50_ms, "", v.splice_p50_ms
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "ratio       {:.2} (libfluidsynth ms / rustysynth ms at p50; p95 {:.2})",
            self.ratio_p50, self.ratio_p95
        )?;
        writeln!(
            f,
            "ratio       {:.2} (libfluidsynth ms / voices ms at p50; p95 {:.2})",
            self.voices_ratio_p50, self.voices_ratio_p95
        )?;
        writeln!(f)?;
        match (&self.command, &self.command_error) {
            (Some(c), _) => {
                writeln!(
                    f,
                    "fluidsynth command: p50 {:.0} ms, p95 {:.0} ms over {} runs, {:.1} s of audio",
                    c.p50_ms, c.p95_ms, c.runs, c.audio_seconds
                )?;
                writeln!(f, "  wall time of the whole process, its own font load included; its reverb and chorus off, none of our reverb/leveller/limiter; the first phrase's MIDI export:")?;
                writeln!(f, "  {}", c.command)?;
            }
            (None, Some(why)) => writeln!(f, "fluidsynth command: not timed: {why}")?,
            (None, None) => {}
        }
        Ok(())
    }
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
    splice_ms: Vec<f64>,
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
            splice_ms: Vec::new(),
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
        self.splice();
    }

    /// Goes back a second and plays it again, as a session does when a
    /// listener's change is spliced into its buffer; with the parameters
    /// unchanged, so the phrases that follow are the same music.
    fn splice(&mut self) {
        let back = u64::from(crate::SAMPLE_RATE);
        let Some(at) = self.renderer.position().checked_sub(back) else {
            return;
        };
        let params = self.renderer.params().clone();
        let start = Instant::now();
        if self.renderer.splice(at, params) {
            self.splice_ms.push(start.elapsed().as_secs_f64() * 1e3);
            self.out.clear();
            self.renderer.render(back as usize, &mut self.out);
        }
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
            splice_p50_ms: percentile(&mut self.splice_ms, 50.0),
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

/// `auralis render`.
#[derive(clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    music: MusicArgs,
    /// Number of 4/4 bars (8 bars at 60 BPM = 32 s).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    bars: u32,
    /// Minutes of music instead of bars (the whole bars nearest to it, up to
    /// 60): what /download.wav?minutes= serves for the same parameters.
    #[arg(long, conflicts_with = "bars", value_parser = parse_render_minutes)]
    minutes: Option<f64>,
    /// Output WAV file.
    #[arg(short, long)]
    output: PathBuf,
    /// Also write the composed notes as a standard MIDI file.
    #[arg(long)]
    midi: Option<PathBuf>,
    /// Seconds after the last bar in which every note is released and rings
    /// out with the reverb, the last 3 s fading to silence (0: stop at the
    /// bar line).
    #[arg(long, default_value_t = DEFAULT_TAIL_SECONDS, value_parser = parse_tail)]
    tail: f32,
    /// Also write each layer (piano, pad) as WAVs in this directory, dry
    /// (`piano-dry.wav`) and with reverb (`piano.wav`), aligned with the mix.
    #[arg(long, value_name = "DIR")]
    stems: Option<PathBuf>,
    #[command(flatten)]
    fonts: FontArgs,
    /// Synthesizer: voices (ours, the fastest), rustysynth (the reference), or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, default_value_t = EngineKind::default())]
    engine: EngineKind,
}

fn parse_tail(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=60.0).contains(&v) => Ok(v),
        _ => Err(format!("expected seconds from 0 to 60, got {s:?}")),
    }
}

fn parse_render_minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= MAX_MINUTES => Ok(v),
        _ => Err(format!(
            "expected minutes more than 0 and at most {MAX_MINUTES}, got {s:?}"
        )),
    }
}

pub fn render_command(args: RenderArgs) -> anyhow::Result<()> {
    let params = args.music.params()?;
    let fonts = args.fonts.load();
    let started = Instant::now();
    let bars = args
        .minutes
        .map_or(args.bars, |m| RenderLength::minutes(m, params.bpm).bars);
    let length = RenderLength {
        bars,
        tail_seconds: args.tail,
    };
    let mut stems = args.stems.as_deref().map(Stems::create).transpose()?;
    let source = EngineSource::new(args.engine, &fonts);
    let mut job = OfflineRender::new(&params, length, &source)?;
    let mut pcm = Vec::with_capacity(job.total_frames() * 2);
    let mut progress = super::progress::Progress::new("rendering", job.total_frames());
    loop {
        let tap = stems.as_mut().map(|s| s as &mut dyn StemSink);
        if !job.next_piece(&mut pcm, tap) {
            break;
        }
        progress.set(job.frames_done());
    }
    progress.finish();
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    crate::audio::wav::write_wav(std::io::BufWriter::new(file), &pcm)?;
    let seconds = pcm.len() as f64 / 2.0 / f64::from(crate::SAMPLE_RATE);
    eprintln!(
        "wrote {} ({seconds:.1} s, {} {} at {} BPM, intensity {}, seed {}) in {:.0} ms",
        args.output.display(),
        params.key,
        params.mode,
        params.bpm,
        params.intensity,
        params.seed,
        started.elapsed().as_secs_f64() * 1e3
    );
    if let Some(stems) = stems {
        for path in stems.finish()? {
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(path) = &args.midi {
        let bytes = render_midi(&params, bars)?;
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `auralis soundcheck`.
#[derive(clap::Args)]
pub struct SoundcheckArgs {
    /// Bars of each preset (32 bars at 60 BPM = 128 s).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    bars: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only these presets (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    presets: Vec<String>,
    #[command(flatten)]
    fonts: FontArgs,
    /// Synthesizer: voices (ours, the fastest), rustysynth (the reference), or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, default_value_t = EngineKind::default())]
    engine: EngineKind,
    /// Print the measurements as JSON.
    #[arg(long)]
    json: bool,
}

pub fn soundcheck_command(args: SoundcheckArgs) -> anyhow::Result<()> {
    let fonts = args.fonts.load();
    let presets: Vec<_> = if args.presets.is_empty() {
        PRESETS.iter().collect()
    } else {
        args.presets
            .iter()
            .map(|name| {
                PRESETS
                    .iter()
                    .find(|p| p.name == name.as_str())
                    .with_context(|| format!("unknown preset {name:?}; see `auralis presets`"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let length = RenderLength {
        bars: args.bars,
        tail_seconds: 6.0,
    };
    let mut checks = Vec::new();
    for preset in presets {
        let params = preset.params(args.seed);
        checks.push(soundcheck(
            preset.name,
            &params,
            length,
            &fonts,
            args.engine,
        )?);
    }
    let table = SoundCheckTable {
        bars: args.bars,
        seed: args.seed,
        engine: args.engine,
        piano_font: fonts.piano.info.name.clone(),
        pad_font: fonts.pad.info.name.clone(),
        checks,
    };
    print_report(&table, args.json)
}

/// `auralis bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Phrases to render (each 8 bars at 60 BPM, 32 s).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    phrases: u32,
    #[command(flatten)]
    music: MusicArgs,
    #[command(flatten)]
    fonts: FontArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Synthesizer: voices (ours, the fastest), rustysynth (the reference), or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, default_value_t = EngineKind::default(), conflicts_with = "compare")]
    engine: EngineKind,
    /// Render the same notes with rustysynth and libfluidsynth, and time the
    /// `fluidsynth` command on their MIDI export.
    #[arg(long)]
    compare: bool,
}

pub fn bench_command(args: BenchArgs) -> anyhow::Result<()> {
    let params = args.music.params()?;
    let started = Instant::now();
    let fonts = args.fonts.load();
    let load = started.elapsed();
    let phrases = args.phrases as usize;
    if args.compare {
        print_report(&compare(&params, phrases, &fonts, load)?, args.json)
    } else {
        print_report(
            &bench(&params, phrases, &fonts, load, args.engine)?,
            args.json,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bars_at_60_bpm_is_32_seconds() {
        assert_eq!(bars_frames(8, 60.0), 32 * 44_100);
    }
}
