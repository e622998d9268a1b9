//! The Salamander builder end to end: OGG files in, a SoundFont out that
//! plays in tune in rustysynth and loads in FluidSynth.
//!
//! CI cannot download the real samples, so the test makes its own: tones at
//! known pitches, encoded as Ogg Vorbis by `ffmpeg` (there is no pure-Rust
//! Vorbis encoder; scripts/install-deps.sh installs it) and named like the
//! npm packages' files, one directory per velocity layer. The real samples
//! (`SALAMANDER_SAMPLES=DIR[:DIR…]`, or an installed font) are checked by
//! ignored tests: `cargo test --test salamander -- --ignored`.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use auralis::soundfont::discovery::{load_file, FontSource};
use auralis::soundfont::fluidsynth_check;
use auralis::soundfont::salamander::{
    build_font, installed_paths, write_font, SALAMANDER_ATTRIBUTION, SALAMANDER_FILE_NAME,
};
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

/// Encodes `expression` (an ffmpeg `aevalsrc` expression of `F`, the
/// note's frequency, and `t`) as a stereo Ogg Vorbis file per fixture note,
/// named with `layer` in place of the package's `v10`.
fn write_layer(dir: &Path, layer: &str, expression: &str) {
    assert!(
        has("ffmpeg"),
        "ffmpeg is needed to encode the Ogg Vorbis fixtures; scripts/install-deps.sh installs it"
    );
    std::fs::create_dir_all(dir).unwrap();
    for &(name, key) in FIXTURE {
        let name = name.replace("v10", layer);
        let source = format!(
            "aevalsrc={}:s=48000:d=3",
            expression.replace('F', &format!("{:.6}", hz(key)))
        );
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(&source)
            .args(["-ac", "2", "-c:a", "libvorbis", "-q:a", "6"])
            .arg(dir.join(&name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ffmpeg failed on {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One layer of pure sines, like the package's velocity10.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_layer(dir.path(), "v10", "0.5*sin(2*PI*F*t)");
    dir
}

/// Layers 3 and 12: soft pure sines, and loud ones with a strong third
/// harmonic, so which layer sounded can be told from the spectrum.
const SOFT: &str = "0.1*sin(2*PI*F*t)";
const LOUD: &str = "0.4*sin(2*PI*F*t)+0.4*sin(2*PI*3*F*t)";

fn two_layers() -> (tempfile::TempDir, Vec<PathBuf>) {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("v12"), root.path().join("v3")];
    write_layer(&dirs[0], "v12", LOUD);
    write_layer(&dirs[1], "v3", SOFT);
    (root, dirs)
}

fn one(dir: &tempfile::TempDir) -> Vec<PathBuf> {
    vec![dir.path().to_path_buf()]
}

/// Renders `key` for `seconds` with reverb off and returns the left channel.
fn render(font: &Arc<SoundFont>, key: u8, seconds: f64) -> Vec<f32> {
    render_velocity(font, key, 100, seconds)
}

fn render_velocity(font: &Arc<SoundFont>, key: u8, velocity: u8, seconds: f64) -> Vec<f32> {
    let mut settings = SynthesizerSettings::new(RATE);
    settings.enable_reverb_and_chorus = false;
    let mut synth = Synthesizer::new(font, &settings).unwrap();
    synth.process_midi_message(0, 0xC0, 0, 0);
    synth.note_on(0, i32::from(key), i32::from(velocity));
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
fn fixture_notes_play_in_tune_between_and_beyond_the_roots() {
    let dir = fixture();
    let (bytes, report) = build_font(&one(&dir), "test fixture").unwrap();
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
fn notes_fade_on_release_instead_of_cutting() {
    let dir = fixture();
    let (bytes, _) = build_font(&one(&dir), "test fixture").unwrap();
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
fn velocity_changes_loudness() {
    let dir = fixture();
    let (bytes, _) = build_font(&one(&dir), "test fixture").unwrap();
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
fn the_written_font_is_found_and_credited() {
    let dir = fixture();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("fonts").join(SALAMANDER_FILE_NAME);
    let mut told = Vec::new();
    let report = write_font(&one(&dir), "test fixture", &out, &mut |done, total| {
        told.push((done, total))
    })
    .unwrap();
    assert_eq!(
        std::fs::metadata(&out).unwrap().len() as usize,
        report.bytes
    );
    // Progress is told once per sample file, counting up to all of them.
    let n = FIXTURE.len();
    assert_eq!(told, (1..=n).map(|i| (i, n)).collect::<Vec<_>>());
    let loaded = load_file(&out, FontSource::System).unwrap();
    assert_eq!(loaded.info.licence, "CC-BY 3.0");
    assert_eq!(loaded.info.attribution, SALAMANDER_ATTRIBUTION);
    assert_eq!(loaded.info.name, "Salamander Grand Piano");
    // Written again over itself: no partial files are left behind.
    write_font(&one(&dir), "test fixture", &out, &mut |_, _| {}).unwrap();
    let names: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(SALAMANDER_FILE_NAME)]);
}

#[test]
fn fluidsynth_loads_the_font() {
    assert!(
        fluidsynth_check::installed(),
        "the fluidsynth command is needed; scripts/install-deps.sh installs it"
    );
    let (root, dirs) = two_layers();
    let (bytes, _) = build_font(&dirs, "test fixture").unwrap();
    let font = root.path().join("fixture.sf2");
    std::fs::write(&font, bytes).unwrap();
    let complaints = fluidsynth_check::complaints(&font, 0, CHECK_KEYS).unwrap();
    assert!(complaints.is_empty(), "{complaints:?}");
}

/// Power of the component at `hz` in `signal`, by a Hann-windowed DFT.
fn power_at(signal: &[f32], hz: f64) -> f64 {
    let n = signal.len() as f64;
    let w = std::f64::consts::TAU * hz / f64::from(RATE);
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in signal.iter().enumerate() {
        let hann = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
        let x = f64::from(s) * hann;
        re += x * (w * i as f64).cos();
        im += x * (w * i as f64).sin();
    }
    re * re + im * im
}

#[test]
fn each_velocity_layer_sounds_in_its_own_range() {
    let (_root, dirs) = two_layers();
    let (bytes, report) = build_font(&dirs, "test fixture").unwrap();
    let font = parse(&bytes);

    // Softest first whatever the order given; split halfway between the
    // layers' places (layer 3 at velocity 24, layer 12 at 96).
    let layers: Vec<_> = report
        .layers
        .iter()
        .map(|l| (l.number, l.velocities))
        .collect();
    assert_eq!(layers, vec![(Some(3), (0, 60)), (Some(12), (61, 127))]);
    assert_eq!(report.samples, 2 * FIXTURE.len());
    let regions = font.get_instruments()[0].get_regions();
    assert_eq!(
        regions.len(),
        2 * 2 * FIXTURE.len(),
        "stereo zones per layer"
    );
    for key in [0, 45, 50, 57, 127] {
        for velocity in [1, 60, 61, 127] {
            let covering = regions.iter().filter(|r| r.contains(key, velocity)).count();
            assert_eq!(
                covering, 2,
                "key {key} velocity {velocity}: one stereo pair"
            );
        }
    }

    // Every root of each layer plays its own layer's sample: the third
    // harmonic is there only above the split.
    for &(_, key) in FIXTURE {
        let f0 = hz(key);
        let third = |velocity| {
            let audio = render_velocity(&font, key, velocity, 0.6);
            let steady = &audio[4_410..26_460];
            power_at(steady, 3.0 * f0) / power_at(steady, f0)
        };
        let (soft, loud) = (third(60), third(61));
        assert!(soft < 1e-3, "key {key} at velocity 60: third/first {soft}");
        assert!(loud > 0.3, "key {key} at velocity 61: third/first {loud}");
    }

    // The loud layer is brought toward the soft one, but stays louder.
    let recorded_db = 20.0 * (0.4f64 * 2f64.sqrt() / 0.1).log10();
    let gain = report.layers[1].gain_db;
    assert!(
        (gain + 0.5 * recorded_db).abs() < 1.0,
        "gain {gain:.1} dB for a {recorded_db:.1} dB step"
    );
    let peak = |velocity| {
        let audio = render_velocity(&font, 57, velocity, 0.5);
        audio.iter().fold(0.0f32, |m, s| m.max(s.abs()))
    };
    let (below, above) = (peak(60), peak(61));
    assert!(
        above > 2.0 * below,
        "crossing into the loud layer: {below} -> {above}"
    );
}

/// Keys across the fixture's range and beyond both ends.
const CHECK_KEYS: &[u8] = &[33, 45, 50, 57, 60, 72, 100];

/// The real samples, from `SALAMANDER_SAMPLES=DIR[:DIR…]`, one directory
/// per velocity layer (each package's `package/audio`).
fn real_samples() -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::var_os("SALAMANDER_SAMPLES")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    assert!(
        !dirs.is_empty() && dirs.iter().all(|d| d.is_dir()),
        "set SALAMANDER_SAMPLES to the packages' audio directories, separated by ':'"
    );
    dirs
}

#[test]
#[ignore = "needs the real samples: SALAMANDER_SAMPLES=DIR[:DIR…] (scripts/install-salamander.sh --keep DIR fetches them)"]
fn real_samples_build_a_full_keyboard() {
    let dirs = real_samples();
    let (bytes, report) = build_font(&dirs, "SALAMANDER_SAMPLES").unwrap();
    assert_eq!(report.samples, 30 * dirs.len());
    assert_eq!(report.roots, (21, 108));
    let font = parse(&bytes);
    let regions = font.get_instruments()[0].get_regions();
    assert!(regions.iter().any(|r| r.get_key_range_start() == 0));
    assert!(regions.iter().any(|r| r.get_key_range_end() == 127));
    check_real_font(&font);
}

#[test]
#[ignore = "needs an installed Salamander font (scripts/install-salamander.sh builds one)"]
fn the_installed_font_plays() {
    let path = installed_paths()
        .into_iter()
        .find(|p| p.is_file())
        .expect("an installed Salamander font");
    let loaded = load_file(&path, FontSource::System).unwrap();
    assert_eq!(loaded.info.attribution, SALAMANDER_ATTRIBUTION);
    check_real_font(&loaded.font);
    let complaints = fluidsynth_check::complaints(&path, 0, CHECK_KEYS).unwrap();
    assert!(complaints.is_empty(), "{complaints:?}");
}

/// Brightness and level of the first half second of `key` at `velocity`:
/// the RMS frequency (the square root of the spectrum's second moment,
/// which the energy of the signal's difference gives without an FFT) and
/// the RMS level.
fn brightness_and_level(font: &Arc<SoundFont>, key: u8, velocity: u8) -> (f64, f64) {
    let audio = render_velocity(font, key, velocity, 0.55);
    let part = &audio[441..22_491];
    let energy = |it: &mut dyn Iterator<Item = f64>| it.map(|x| x * x).sum::<f64>();
    let signal = energy(&mut part.iter().map(|&s| f64::from(s)));
    let slope = energy(&mut part.windows(2).map(|w| f64::from(w[1] - w[0])));
    let hz = f64::from(RATE) / std::f64::consts::TAU * (slope / signal).sqrt();
    (hz, (signal / part.len() as f64).sqrt())
}

/// Real piano notes: every tested key sounds, and in the middle register
/// (roots and keys between roots) the strongest component within a
/// semitone of the expected fundamental sits on it. A real piano is
/// stretch-tuned and its partials are inharmonic, so the tolerance is
/// looser than for the pure fixture tones.
fn check_real_font(font: &Arc<SoundFont>) {
    let layers = {
        let regions = font.get_instruments()[0].get_regions();
        let mut starts: Vec<i32> = regions
            .iter()
            .map(|r| r.get_velocity_range_start())
            .collect();
        starts.sort_unstable();
        starts.dedup();
        starts.len()
    };
    if layers > 1 {
        // Harder strikes are brighter and louder, in every register.
        for key in [48u8, 60, 72, 84] {
            let measured: Vec<_> = [20u8, 50, 80, 110]
                .iter()
                .map(|&v| brightness_and_level(font, key, v))
                .collect();
            for w in measured.windows(2) {
                assert!(w[1].0 > w[0].0, "key {key}: brightness falls {measured:?}");
                assert!(w[1].1 > w[0].1, "key {key}: level falls {measured:?}");
            }
        }
    }
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
