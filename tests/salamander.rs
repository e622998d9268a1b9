//! The Salamander builder end to end: OGG files in, a SoundFont out that
//! plays in tune in rustysynth and loads in FluidSynth.
//!
//! CI cannot download the real samples, so the test makes its own: sine
//! tones at known pitches, encoded as Ogg Vorbis by `ffmpeg` (there is no
//! pure-Rust Vorbis encoder) and named like the npm package's files. Without
//! `ffmpeg` the fixture tests cannot run, so they are `#[ignore]`d and
//! scripts/test.sh runs them (it installs ffmpeg). The real samples
//! (`SALAMANDER_SAMPLES=DIR`, or an installed font) have ignored tests of
//! their own, run by hand where the samples are.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use auralis::synth::fluidsynth_check;
use auralis::synth::salamander::{
    build_font, installed_paths, write_font, SALAMANDER_ATTRIBUTION, SALAMANDER_FILE_NAME,
};
use auralis::synth::soundfonts::{load_file, FontSource};
use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

const RATE: i32 = 44_100;

/// Fixture notes: (file name, MIDI key). The names use both spellings of a
/// sharp, as the parser accepts both.
const FIXTURE: &[(&str, u8)] = &[
    ("A2v10.ogg", 45),
    ("C3v10.ogg", 48),
    ("D#3v10.ogg", 51),
    ("Fs3v10.ogg", 54),
    ("A3v10.ogg", 57),
];

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn hz(key: u8) -> f64 {
    440.0 * 2f64.powf((f64::from(key) - 69.0) / 12.0)
}

/// Writes the fixture OGG files into a fresh directory.
fn fixture() -> tempfile::TempDir {
    assert!(
        has("ffmpeg"),
        "ffmpeg is not installed, so no Ogg Vorbis fixture can be made (scripts/install-deps.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    for &(name, key) in FIXTURE {
        let source = format!("sine=frequency={}:sample_rate=48000:duration=3", hz(key));
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(&source)
            .args(["-ac", "2", "-c:a", "libvorbis", "-q:a", "6"])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ffmpeg failed on {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// Renders `key` for `seconds` with reverb off and returns the left channel.
fn render(font: &Arc<SoundFont>, key: u8, seconds: f64) -> Vec<f32> {
    let mut settings = SynthesizerSettings::new(RATE);
    settings.enable_reverb_and_chorus = false;
    let mut synth = Synthesizer::new(font, &settings).unwrap();
    synth.process_midi_message(0, 0xC0, 0, 0);
    synth.note_on(0, i32::from(key), 100);
    let n = (seconds * f64::from(RATE)) as usize;
    let (mut left, mut right) = (vec![0.0; n], vec![0.0; n]);
    synth.render(&mut left, &mut right);
    left
}

/// Frequency from the mean period between rising zero crossings, each
/// located by linear interpolation; precise to well under a cent for the
/// near-pure tones of the fixture.
fn zero_crossing_hz(signal: &[f32]) -> f64 {
    let mut crossings = Vec::new();
    for i in 1..signal.len() {
        let (a, b) = (f64::from(signal[i - 1]), f64::from(signal[i]));
        if a < 0.0 && b >= 0.0 {
            crossings.push((i - 1) as f64 + a / (a - b));
        }
    }
    assert!(crossings.len() > 10, "too few zero crossings to measure");
    let span = crossings[crossings.len() - 1] - crossings[0];
    f64::from(RATE) * (crossings.len() - 1) as f64 / span
}

fn cents(measured: f64, expected: f64) -> f64 {
    1200.0 * (measured / expected).log2()
}

fn parse(bytes: &[u8]) -> Arc<SoundFont> {
    Arc::new(SoundFont::new(&mut Cursor::new(bytes)).unwrap())
}

#[test]
#[ignore = "needs ffmpeg for its fixture; scripts/test.sh runs it"]
fn fixture_notes_play_in_tune_between_and_beyond_the_roots() {
    let dir = fixture();
    let (bytes, report) = build_font(dir.path(), "test fixture").unwrap();
    assert_eq!(report.samples, FIXTURE.len());
    assert!(report.stereo);
    assert_eq!(report.sample_rate, 48_000, "native rate is kept");
    let font = parse(&bytes);

    let info = font.get_info();
    assert_eq!(info.get_copyright(), SALAMANDER_ATTRIBUTION);
    assert!(info.get_comments().contains("test fixture"));
    assert!(info.get_comments().contains("CC-BY 3.0"));
    let headers = font.get_sample_headers();
    assert_eq!(headers.len(), 2 * FIXTURE.len(), "stereo pairs");
    assert!(headers.iter().all(|h| h.get_sample_rate() == 48_000));
    let presets = font.get_presets();
    assert_eq!(presets.len(), 1);
    assert_eq!(
        (presets[0].get_bank_number(), presets[0].get_patch_number()),
        (0, 0)
    );

    // Roots, keys between roots, and keys past both ends.
    for key in [45u8, 46, 47, 48, 50, 51, 52, 53, 54, 56, 57, 58, 43, 60] {
        let audio = render(&font, key, 1.0);
        let measured = zero_crossing_hz(&audio[4_410..]);
        let error = cents(measured, hz(key));
        assert!(
            error.abs() < 5.0,
            "key {key}: {measured:.3} Hz is {error:+.2} cents from {:.3} Hz",
            hz(key)
        );
    }
}

#[test]
#[ignore = "needs ffmpeg for its fixture; scripts/test.sh runs it"]
fn notes_fade_on_release_instead_of_cutting() {
    let dir = fixture();
    let (bytes, _) = build_font(dir.path(), "test fixture").unwrap();
    let font = parse(&bytes);
    let mut settings = SynthesizerSettings::new(RATE);
    settings.enable_reverb_and_chorus = false;
    let mut synth = Synthesizer::new(&font, &settings).unwrap();
    synth.note_on(0, 57, 100);
    let block = RATE as usize / 10;
    let peak = |synth: &mut Synthesizer| {
        let (mut l, mut r) = (vec![0.0f32; block], vec![0.0f32; block]);
        synth.render(&mut l, &mut r);
        l.iter().chain(&r).fold(0.0f32, |m, s| m.max(s.abs()))
    };
    for _ in 0..5 {
        peak(&mut synth);
    }
    let held = peak(&mut synth);
    synth.note_off(0, 57);
    let after_200ms = {
        peak(&mut synth);
        peak(&mut synth)
    };
    for _ in 0..13 {
        peak(&mut synth);
    }
    let after_1500ms = peak(&mut synth);
    assert!(held > 0.005, "the held note sounds: {held}");
    assert!(
        after_200ms > held * 0.05 && after_200ms < held,
        "fading, not cut: {after_200ms} after 0.2 s vs {held} held"
    );
    assert!(
        after_1500ms < held * 0.01,
        "gone after the release: {after_1500ms}"
    );
}

#[test]
#[ignore = "needs ffmpeg for its fixture; scripts/test.sh runs it"]
fn velocity_changes_loudness() {
    let dir = fixture();
    let (bytes, _) = build_font(dir.path(), "test fixture").unwrap();
    let font = parse(&bytes);
    let level = |velocity: i32| {
        let mut settings = SynthesizerSettings::new(RATE);
        settings.enable_reverb_and_chorus = false;
        let mut synth = Synthesizer::new(&font, &settings).unwrap();
        synth.note_on(0, 57, velocity);
        let (mut l, mut r) = (vec![0.0f32; 22_050], vec![0.0f32; 22_050]);
        synth.render(&mut l, &mut r);
        l.iter().fold(0.0f32, |m, s| m.max(s.abs()))
    };
    let (soft, loud) = (level(40), level(120));
    assert!(
        loud > soft * 2.0,
        "velocity 120 peaks at {loud}, 40 at {soft}"
    );
}

#[test]
#[ignore = "needs ffmpeg for its fixture; scripts/test.sh runs it"]
fn the_written_font_is_found_and_credited() {
    let dir = fixture();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("fonts").join(SALAMANDER_FILE_NAME);
    let report = write_font(dir.path(), "test fixture", &out).unwrap();
    assert_eq!(
        std::fs::metadata(&out).unwrap().len() as usize,
        report.bytes
    );
    let loaded = load_file(&out, FontSource::System).unwrap();
    assert_eq!(loaded.info.licence, "CC-BY 3.0");
    assert_eq!(loaded.info.attribution, SALAMANDER_ATTRIBUTION);
    assert_eq!(loaded.info.name, "Salamander Grand Piano");
    // Written again over itself: no partial files are left behind.
    write_font(dir.path(), "test fixture", &out).unwrap();
    let names: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(SALAMANDER_FILE_NAME)]);
}

#[test]
#[ignore = "needs ffmpeg and the fluidsynth command; scripts/test.sh runs it"]
fn fluidsynth_loads_the_font() {
    assert!(
        fluidsynth_check::installed(),
        "the fluidsynth command is not installed (scripts/install-deps.sh installs it)"
    );
    let dir = fixture();
    let (bytes, _) = build_font(dir.path(), "test fixture").unwrap();
    let font = dir.path().join("fixture.sf2");
    std::fs::write(&font, bytes).unwrap();
    let complaints = fluidsynth_check::complaints(&font, 0, CHECK_KEYS).unwrap();
    assert!(complaints.is_empty(), "{complaints:?}");
}

/// Keys across the fixture's range and beyond both ends.
const CHECK_KEYS: &[u8] = &[33, 45, 50, 57, 60, 72, 100];

#[test]
#[ignore = "needs SALAMANDER_SAMPLES=DIR, the npm package's audio directory"]
fn real_samples_build_a_full_keyboard() {
    let dir = std::env::var_os("SALAMANDER_SAMPLES")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .expect("SALAMANDER_SAMPLES names the package's audio directory");
    let (bytes, report) = build_font(&dir, "SALAMANDER_SAMPLES").unwrap();
    assert_eq!(report.samples, 30);
    assert_eq!(report.roots, (21, 108));
    let font = parse(&bytes);
    let regions = font.get_instruments()[0].get_regions();
    assert_eq!(regions[0].get_key_range_start(), 0);
    assert_eq!(regions[regions.len() - 1].get_key_range_end(), 127);
    check_real_font(&font);
}

#[test]
#[ignore = "needs an installed Salamander font (scripts/install-salamander.sh builds one)"]
fn the_installed_font_plays() {
    let path = installed_paths()
        .into_iter()
        .find(|p| p.is_file())
        .expect("an installed Salamander font (scripts/install-salamander.sh builds one)");
    let loaded = load_file(&path, FontSource::System).unwrap();
    assert_eq!(loaded.info.attribution, SALAMANDER_ATTRIBUTION);
    check_real_font(&loaded.font);
    if fluidsynth_check::installed() {
        let complaints = fluidsynth_check::complaints(&path, 0, CHECK_KEYS).unwrap();
        assert!(complaints.is_empty(), "{complaints:?}");
    }
}

/// Real piano notes: every tested key sounds, and in the middle register
/// (roots and keys between roots) the strongest component within a
/// semitone of the expected fundamental sits on it. A real piano is
/// stretch-tuned and its partials are inharmonic, so the tolerance is
/// looser than for the pure fixture tones.
fn check_real_font(font: &Arc<SoundFont>) {
    for key in [21u8, 40, 60, 69, 90, 108, 0, 127] {
        let audio = render(font, key, 0.5);
        let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.01, "key {key} is silent ({peak})");
    }
    for key in [57u8, 60, 64, 69, 70, 71] {
        let audio = render(font, key, 1.5);
        let expected = hz(key);
        let error = strongest_component_cents(&audio[11_025..55_125], expected);
        assert!(
            error.abs() < 15.0,
            "key {key}: the fundamental is {error:+.1} cents from {expected:.2} Hz"
        );
    }
}

/// Where the strongest component within ±100 cents of `expected` lies, in
/// cents from it, by a Hann-windowed DFT evaluated every cent.
fn strongest_component_cents(signal: &[f32], expected: f64) -> f64 {
    let n = signal.len() as f64;
    let windowed: Vec<f64> = signal
        .iter()
        .enumerate()
        .map(|(i, &s)| f64::from(s) * (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos()))
        .collect();
    let power = |f: f64| {
        let w = std::f64::consts::TAU * f / f64::from(RATE);
        let (mut re, mut im) = (0.0, 0.0);
        for (i, s) in windowed.iter().enumerate() {
            re += s * (w * i as f64).cos();
            im += s * (w * i as f64).sin();
        }
        re * re + im * im
    };
    let mut best = (0.0, f64::MIN);
    for c in -100..=100 {
        let c = f64::from(c);
        let p = power(expected * 2f64.powf(c / 1200.0));
        if p > best.1 {
            best = (c, p);
        }
    }
    best.0
}
