//! The libfluidsynth backend against the things a listener would notice:
//! that it plays at all, in tune, and about as loud as rustysynth on the same
//! notes (so switching engines does not jump the level before the leveller).
#![cfg(feature = "fluidsynth")]

use std::path::Path;

use auralis::music::{Composer, Event, Params, PIANO_CHANNEL};
use auralis::pipeline::{EngineSource, Renderer};
use auralis::soundfont::discovery::load_file;
use auralis::soundfont::{FontSet, FontSource};
use auralis::synth::{build_engine, Engine, EngineKind, EngineSettings};

const FLUID_R3: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";
const RATE: f64 = 44_100.0;

fn fluid(fonts: &FontSet) -> Box<dyn Engine> {
    build_engine(EngineKind::Fluidsynth, fonts, EngineSettings::default()).expect("fluid engine")
}

/// FluidR3_GM when installed (the font the benchmarks use), else the
/// built-in font, which every machine has.
fn reference_fonts() -> FontSet {
    if Path::new(FLUID_R3).is_file() {
        let font = load_file(Path::new(FLUID_R3), FontSource::System).expect("FluidR3_GM loads");
        FontSet {
            piano: font.clone(),
            pad: font,
            problems: Vec::new(),
        }
    } else {
        FontSet::builtin()
    }
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[test]
fn a_composed_phrase_through_libfluidsynth_is_music_not_silence() {
    let source = EngineSource::new(EngineKind::Fluidsynth, &FontSet::builtin());
    let mut renderer = Renderer::new(Params::default(), &source).expect("fluid engine");
    assert_eq!(renderer.engine_name(), "libfluidsynth");
    let mut pcm = Vec::new();
    renderer.render(8 * 44_100, &mut pcm);
    let tail = &pcm[pcm.len() / 2..];
    let rms = (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
    let peak = tail.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(rms > 300.0, "rms {rms:.0} of 32767: near silence");
    assert!(peak < 32_767, "the limiter keeps peaks under full scale");
}

/// A4 on the piano channel sounds at 440 Hz within 5 cents, measured by
/// autocorrelation over half a second of the sustained tone.
#[test]
fn a4_on_the_piano_is_in_tune() {
    let fonts = reference_fonts();
    let mut engine = fluid(&fonts);
    engine.program_change(PIANO_CHANNEL, 0);
    engine.note_on(PIANO_CHANNEL, 69, 100);
    let n = 44_100;
    let (mut left, mut right) = (vec![0.0f32; n], vec![0.0f32; n]);
    engine.render(&mut left, &mut right);
    let mut mono: Vec<f64> = left
        .iter()
        .zip(&right)
        .map(|(l, r)| f64::from(l + r))
        .collect();
    low_pass(&mut mono, 700.0);
    let hz = autocorrelation_pitch(&mono[8_820..30_870], 200.0, 1_000.0);
    let cents = 1200.0 * (hz / 440.0).log2();
    assert!(
        cents.abs() < 5.0,
        "A4 measured at {hz:.2} Hz ({cents:+.1} cents) through {}",
        fonts.piano.info.name
    );
}

/// A piano's upper partials are stretched sharp (string stiffness), which
/// pulls a broadband autocorrelation about 6 cents high on FluidR3's A4; four
/// one-pole passes leave the fundamental to be measured alone.
fn low_pass(x: &mut [f64], cutoff_hz: f64) {
    let a = 1.0 - (-2.0 * std::f64::consts::PI * cutoff_hz / RATE).exp();
    for _ in 0..4 {
        let mut y = 0.0;
        for v in x.iter_mut() {
            y += a * (*v - y);
            *v = y;
        }
    }
}

/// Fundamental frequency: the first lag whose normalised autocorrelation
/// comes within 10 % of the best (so a lag of two periods never wins over
/// one), refined by a parabola through its neighbours.
fn autocorrelation_pitch(x: &[f64], min_hz: f64, max_hz: f64) -> f64 {
    let (min_lag, max_lag) = ((RATE / max_hz) as usize, (RATE / min_hz) as usize + 1);
    let window = x.len() - max_lag - 1;
    let r = |lag: usize| {
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for i in 0..window {
            xy += x[i] * x[i + lag];
            xx += x[i] * x[i];
            yy += x[i + lag] * x[i + lag];
        }
        xy / (xx * yy).sqrt().max(1e-12)
    };
    let corr: Vec<f64> = (0..=max_lag + 1)
        .map(|lag| if lag < min_lag - 1 { 0.0 } else { r(lag) })
        .collect();
    let best = (min_lag..=max_lag)
        .map(|l| corr[l])
        .fold(f64::MIN, f64::max);
    let lag = (min_lag..=max_lag)
        .find(|&l| corr[l] >= 0.9 * best && corr[l] >= corr[l - 1] && corr[l] >= corr[l + 1])
        .expect("a periodic tone has an autocorrelation peak");
    let (a, b, c) = (corr[lag - 1], corr[lag], corr[lag + 1]);
    let shift = 0.5 * (a - c) / (a - 2.0 * b + c);
    RATE / (lag as f64 + shift)
}

/// Plays composed events into an engine at their exact frames and returns the
/// dry stereo mix (no reverb, leveller or limiter: the engines alone).
fn render_events(engine: &mut dyn Engine, events: &[Event], frames: usize) -> Vec<f32> {
    let (mut left, mut right) = (vec![0.0f32; frames], vec![0.0f32; frames]);
    let mut pos = 0;
    let mut events = events.iter().peekable();
    while pos < frames {
        while let Some(e) = events.next_if(|e| e.frame as usize <= pos) {
            engine.apply(e);
        }
        let end = events
            .peek()
            .map_or(frames, |e| (e.frame as usize).min(frames));
        let end = end.max(pos + 1).min(frames);
        engine.render(&mut left[pos..end], &mut right[pos..end]);
        pos = end;
    }
    left.extend_from_slice(&right);
    left
}

fn assert_comparable_loudness(fonts: &FontSet) {
    let events = Composer::new(Params::default()).compose_bars(8);
    let frames = 32 * 44_100;
    let mut rusty = build_engine(EngineKind::Rustysynth, fonts, EngineSettings::default()).unwrap();
    let mut fluid = fluid(fonts);
    let a = rms(&render_events(rusty.as_mut(), &events, frames));
    let b = rms(&render_events(fluid.as_mut(), &events, frames));
    let db = 20.0 * (b / a).log10();
    eprintln!(
        "{}: rustysynth rms {a:.4}, libfluidsynth rms {b:.4}, {db:+.1} dB",
        fonts.piano.info.name
    );
    assert!(a > 1e-3 && b > 1e-3, "both engines play: {a} {b}");
    assert!(
        db.abs() < 10.0,
        "{}: libfluidsynth is {db:+.1} dB against rustysynth on the same notes",
        fonts.piano.info.name
    );
}

#[test]
fn both_engines_play_the_same_notes_equally_loud_on_the_builtin_font() {
    assert_comparable_loudness(&FontSet::builtin());
}

#[test]
#[ignore = "needs FluidR3_GM (Debian fluid-soundfont-gm); scripts/test.sh runs it"]
fn both_engines_play_the_same_notes_equally_loud_on_fluid_r3() {
    assert!(
        Path::new(FLUID_R3).is_file(),
        "{FLUID_R3} is not installed (scripts/install-deps.sh installs it)"
    );
    assert_comparable_loudness(&reference_fonts());
}

#[test]
fn a_missing_font_file_is_named_in_the_error() {
    // Two separate loads: distinct fonts, so the pad's is loaded from its path.
    let mut fonts = FontSet::builtin();
    fonts.pad = FontSet::builtin().pad;
    fonts.pad.info.path = Some("/nonexistent/pad.sf2".into());
    let err = build_engine(EngineKind::Fluidsynth, &fonts, EngineSettings::default())
        .err()
        .expect("the pad font does not exist");
    assert!(err.to_string().contains("/nonexistent/pad.sf2"), "{err}");
}
