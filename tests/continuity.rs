//! No clicks and no dropouts from the synthesizers: every preset's pad, alone
//! and under the piano, rendered through every engine this build has, on the
//! built-in font and on FluidR3_GM.
//!
//! FluidR3_GM's pad 88 used to drop to digital silence 4–5 s after each
//! attack under rustysynth (its mix gate, see `synth::rusty`), with a click at
//! each drop; these tests are what would catch that again.
//!
//! What counts, measured on the dry engine output (mono, the mean of left and
//! right, before reverb and the leveller, which would only smear or amplify):
//! - A **click** is a sample whose second difference `x[i] − 2x[i−1] + x[i−2]`
//!   is more than [`CLICK_RATIO`] times the RMS second difference of the
//!   [`LOCAL_MS`] before it *and* of the [`LOCAL_MS`] after it, and above
//!   [`CLICK_FLOOR`] (the three samples on each side that the jump itself
//!   spreads into are left out of both windows). The second difference is
//!   near zero for the smooth waveforms of a pad and large at a jump in value
//!   or slope; requiring it to stand out from both sides keeps a periodic
//!   waveform's own sharp edges (a sawtooth's reset recurs within 10 ms) from
//!   counting, while a cut to silence stands out from the tone before it and
//!   the zeros after it. Detections closer than [`LOCAL_MS`] are one click.
//! - Samples within [`EVENT_GUARD_MS`] of a note-on or note-off are not
//!   judged: an attack is a legitimate edge.
//! - **Digital silence** is a run of at least [`SILENCE_MS`] of exact zeros on
//!   both channels while at least one pad note is held (a piano note decays
//!   to silence by itself however long it is held).
#![allow(clippy::cast_precision_loss)]

use std::path::Path;

use auralis::music::{Composer, Event, EventKind, PAD_CHANNEL, PRESETS};
use auralis::soundfont::discovery::load_file;
use auralis::soundfont::{FontSet, FontSource};
use auralis::synth::{build_engine, Engine, EngineKind, EngineSettings};

const FLUID_R3: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";
const RATE: f64 = 44_100.0;
const BARS: u32 = 16;
const CLICK_RATIO: f64 = 12.0;
/// −70 dBFS. A voice's own end is under it: rustysynth ends a voice once its
/// envelope is 60 dB under the note's level, a step of about 1e-4 that the
/// composer's rests (both layers silent) leave bare, and nobody hears. The old
/// mix gate's drops reached down to that size too; the digital-silence check
/// below is what catches those whatever their size.
const CLICK_FLOOR: f64 = 3e-4;
const LOCAL_MS: f64 = 10.0;
const EVENT_GUARD_MS: f64 = 15.0;
const SILENCE_MS: f64 = 10.0;

fn ms(ms: f64) -> usize {
    (ms * RATE / 1000.0) as usize
}

/// The engines this build has: libfluidsynth only with `--features fluidsynth`.
fn engines() -> Vec<EngineKind> {
    EngineKind::ALL
        .into_iter()
        .filter(|&k| cfg!(feature = "fluidsynth") || k != EngineKind::Fluidsynth)
        .collect()
}

fn fluid_r3() -> FontSet {
    let path = Path::new(FLUID_R3);
    assert!(
        path.is_file(),
        "{FLUID_R3} is missing: scripts/install-deps.sh installs it (Debian fluid-soundfont-gm)"
    );
    let font = load_file(path, FontSource::System).expect("FluidR3_GM loads");
    FontSet {
        piano: font.clone(),
        pad: font,
        problems: Vec::new(),
    }
}

/// Plays `events` into `engine` at their exact frames; returns the dry mono mix.
fn render(engine: &mut dyn Engine, events: &[Event], frames: usize) -> Vec<f32> {
    let (mut left, mut right) = (vec![0.0f32; frames], vec![0.0f32; frames]);
    let mut pos = 0;
    let mut events = events.iter().peekable();
    while pos < frames {
        while let Some(e) = events.next_if(|e| e.frame as usize <= pos) {
            engine.apply(e);
        }
        let end = events
            .peek()
            .map_or(frames, |e| (e.frame as usize).clamp(pos + 1, frames));
        engine.render(&mut left[pos..end], &mut right[pos..end]);
        pos = end;
    }
    left.iter()
        .zip(&right)
        .map(|(l, r)| 0.5 * (l + r))
        .collect()
}

/// Frames of the clicks in `x`, ignoring those within the guard of `events`.
fn clicks(x: &[f32], events: &[Event]) -> Vec<usize> {
    let d2: Vec<f64> = (0..x.len())
        .map(|i| {
            if i < 2 {
                0.0
            } else {
                f64::from(x[i]) - 2.0 * f64::from(x[i - 1]) + f64::from(x[i - 2])
            }
        })
        .collect();
    // Running sums of squares make each window's RMS O(1).
    let mut sq = vec![0.0f64; d2.len() + 1];
    for (i, v) in d2.iter().enumerate() {
        sq[i + 1] = sq[i] + v * v;
    }
    let rms = |a: usize, b: usize| ((sq[b] - sq[a]).max(0.0) / (b - a).max(1) as f64).sqrt();
    let guard = ms(EVENT_GUARD_MS);
    let mut near_event = vec![false; x.len()];
    for e in events {
        if matches!(e.kind, EventKind::Program { .. }) {
            continue;
        }
        let f = e.frame as usize;
        for flag in &mut near_event[f.saturating_sub(guard).min(x.len())..(f + guard).min(x.len())]
        {
            *flag = true;
        }
    }
    let (w, gap) = (ms(LOCAL_MS), 3);
    let mut found: Vec<usize> = Vec::new();
    for i in w + gap..d2.len().saturating_sub(w + gap) {
        let step = d2[i].abs();
        let click = !near_event[i]
            && step > CLICK_FLOOR
            && step > CLICK_RATIO * rms(i - gap - w, i - gap)
            && step > CLICK_RATIO * rms(i + gap + 1, i + gap + 1 + w);
        if click && found.last().is_none_or(|&last| i - last > w) {
            found.push(i);
        }
    }
    found
}

/// Start frames of runs of exact zeros at least [`SILENCE_MS`] long that lie
/// where a note of `events` is held.
fn silences_while_held(x: &[f32], events: &[Event]) -> Vec<usize> {
    let mut held = vec![0i32; x.len() + 1];
    let mut sounding = std::collections::HashSet::new();
    for e in events.iter().filter(|e| e.channel == PAD_CHANNEL) {
        let f = (e.frame as usize).min(x.len());
        match e.kind {
            EventKind::NoteOn { key, .. } if sounding.insert((e.channel, key)) => held[f] += 1,
            EventKind::NoteOff { key } if sounding.remove(&(e.channel, key)) => held[f] -= 1,
            _ => {}
        }
    }
    let mut depth = 0;
    let held: Vec<bool> = held
        .iter()
        .map(|d| {
            depth += d;
            depth > 0
        })
        .collect();
    let min = ms(SILENCE_MS);
    let mut found = Vec::new();
    let mut run = 0;
    for (i, &v) in x.iter().enumerate() {
        if v == 0.0 && held[i] {
            run += 1;
            if run == min {
                found.push(i + 1 - min);
            }
        } else {
            run = 0;
        }
    }
    found
}

struct Finding {
    what: String,
    clicks: Vec<usize>,
    silences: Vec<usize>,
}

/// Every preset's pad alone, then the pad with the piano, through every engine.
fn check_every_preset(fonts: &FontSet) -> Vec<Finding> {
    let mut findings = Vec::new();
    for kind in engines() {
        for preset in PRESETS {
            let events = Composer::new(preset.params(1)).compose_bars(BARS);
            let frames = events.last().map_or(0, |e| e.frame as usize) + ms(1000.0);
            let pad: Vec<Event> = events
                .iter()
                .copied()
                .filter(|e| e.channel == PAD_CHANNEL)
                .collect();
            for (part, evs) in [("pad", &pad), ("mix", &events)] {
                let mut engine = build_engine(kind, fonts, EngineSettings::default())
                    .unwrap_or_else(|e| panic!("{kind}: {e}"));
                let x = render(engine.as_mut(), evs, frames);
                let f = Finding {
                    what: format!(
                        "{kind} {} {part} (pad program {})",
                        preset.name, preset.pad_program
                    ),
                    clicks: clicks(&x, evs),
                    silences: silences_while_held(&x, evs),
                };
                eprintln!(
                    "{}: {} clicks, {} silences while held",
                    f.what,
                    f.clicks.len(),
                    f.silences.len()
                );
                findings.push(f);
            }
        }
    }
    findings
}

fn assert_clean(findings: &[Finding], font: &str) {
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| !f.clicks.is_empty() || !f.silences.is_empty())
        .map(|f| {
            let secs = |v: &[usize]| {
                v.iter()
                    .take(5)
                    .map(|&i| format!("{:.2}", i as f64 / RATE))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{}: {} clicks (first at s {}), {} digital silences while a note is held (first at s {})",
                f.what,
                f.clicks.len(),
                secs(&f.clicks),
                f.silences.len(),
                secs(&f.silences)
            )
        })
        .collect();
    assert!(bad.is_empty(), "{font}:\n{}", bad.join("\n"));
}

#[test]
fn every_preset_plays_without_clicks_or_dropouts_on_the_builtin_font() {
    assert_clean(&check_every_preset(&FontSet::builtin()), "built-in font");
}

#[test]
#[ignore = "needs /usr/share/sounds/sf2/FluidR3_GM.sf2 (scripts/install-deps.sh installs it; scripts/test.sh runs this)"]
fn every_preset_plays_without_clicks_or_dropouts_on_fluid_r3() {
    assert_clean(&check_every_preset(&fluid_r3()), "FluidR3_GM");
}

/// The detectors themselves: a held tone that is cut to zero is one click and
/// one silence; the same tone left alone is neither.
#[test]
fn the_detectors_see_a_cut_and_nothing_in_a_clean_tone() {
    let n = ms(2000.0);
    let tone: Vec<f32> = (0..n)
        .map(|i| 0.01 * (2.0 * std::f64::consts::PI * 220.0 * i as f64 / RATE).sin() as f32)
        .collect();
    let held = [
        Event {
            frame: 0,
            channel: PAD_CHANNEL,
            kind: EventKind::NoteOn {
                key: 57,
                velocity: 90,
            },
        },
        Event {
            frame: n as u64,
            channel: PAD_CHANNEL,
            kind: EventKind::NoteOff { key: 57 },
        },
    ];
    assert!(clicks(&tone, &held).is_empty());
    assert!(silences_while_held(&tone, &held).is_empty());

    let cut_at = ms(1000.0) + 37;
    let mut cut = tone.clone();
    cut[cut_at..].fill(0.0);
    assert_eq!(clicks(&cut, &held).len(), 1, "{:?}", clicks(&cut, &held));
    assert_eq!(silences_while_held(&cut, &held), vec![cut_at]);
}
