//! The renderer on the built-in font: what a listener would hear go wrong if
//! a stage broke (a note late, a held pad cut, a release that never ends).

use super::*;
use crate::soundfont::builtin_font::{NEW_AGE_PAD_PROGRAM, WARM_PAD_PROGRAM};

const RATE: usize = crate::SAMPLE_RATE as usize;
const PAD: u8 = 1;

fn engine() -> VoicesEngine {
    VoicesEngine::new(&FontSet::builtin(), EngineSettings::default())
}

/// Renders `frames` frames in chunks of 1000 (not a multiple of the block),
/// returning the left+right sum.
fn run(engine: &mut VoicesEngine, frames: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(frames);
    let (mut l, mut r) = (vec![0.0; 1000], vec![0.0; 1000]);
    while out.len() < frames {
        let n = (frames - out.len()).min(1000);
        engine.render(&mut l[..n], &mut r[..n]);
        out.extend(l[..n].iter().zip(&r[..n]).map(|(a, b)| a + b));
    }
    out
}

fn rms_db(x: &[f32]) -> f64 {
    let ms = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * ms.max(1e-30).log10()
}

#[test]
fn a_note_sounds_from_the_frame_it_is_played() {
    let mut e = engine();
    e.program_change(PIANO_CHANNEL, 0);
    run(&mut e, 137);
    e.note_on(PIANO_CHANNEL, 60, 100);
    let out = run(&mut e, 2 * BLOCK);
    let first = out.iter().position(|s| *s != 0.0).expect("the note sounds");
    assert!(first <= 2, "first sound {first} frames after the note-on");
}

#[test]
fn a_held_pad_loops_on_at_a_steady_level() {
    for program in [NEW_AGE_PAD_PROGRAM, WARM_PAD_PROGRAM] {
        let mut e = engine();
        e.program_change(PAD, program);
        e.note_on(PAD, 57, 90);
        let out = run(&mut e, 30 * RATE);
        // Far past any sample's length, the loop keeps the note alive and
        // level: no gate, no cut. Windows of 9 s span the pads' slow LFO.
        let (early, late) = (
            rms_db(&out[3 * RATE..12 * RATE]),
            rms_db(&out[21 * RATE..30 * RATE]),
        );
        assert!(late > -60.0, "program {program}: {late:.1} dB after 29 s");
        assert!(
            (early - late).abs() < 3.0,
            "program {program}: {early:.1} → {late:.1} dB"
        );
        assert!(e.active_voices() > 0);
    }
}

#[test]
fn a_release_fades_out_and_frees_its_voices() {
    let mut e = engine();
    e.program_change(PAD, WARM_PAD_PROGRAM);
    e.note_on(PAD, 60, 100);
    let held = run(&mut e, 2 * RATE);
    e.note_off(PAD, 60);
    let tail = run(&mut e, 20 * RATE);
    let sounding = rms_db(&held[RATE..]);
    assert!(
        rms_db(&tail[..RATE / 20]) > sounding - 6.0,
        "the release starts where the note was"
    );
    // Culled once inaudible, long before the 96 dB release would end.
    assert_eq!(e.active_voices(), 0, "voices left after the release");
    let silent_from = tail.iter().rposition(|s| *s != 0.0).unwrap_or(0);
    assert!(
        silent_from < 19 * RATE,
        "still sounding {silent_from} frames after note-off"
    );
    // The fade is smooth: no step larger than the note's own motion.
    let worst = tail
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    let peak = held.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(
        worst < 0.5 * peak,
        "a jump of {worst} against a peak of {peak}"
    );
}

#[test]
fn a_key_struck_again_releases_the_note_before_it() {
    let mut e = engine();
    e.program_change(PIANO_CHANNEL, 0);
    e.note_on(PIANO_CHANNEL, 60, 100);
    run(&mut e, RATE / 10);
    let one = e.active_voices();
    e.note_on(PIANO_CHANNEL, 60, 100);
    run(&mut e, RATE / 10);
    e.all_notes_off();
    run(&mut e, 20 * RATE);
    assert!(one > 0);
    assert_eq!(e.active_voices(), 0);
}

#[test]
fn polyphony_is_a_hard_bound() {
    let mut e = VoicesEngine::new(
        &FontSet::builtin(),
        EngineSettings {
            polyphony: 8,
            ..EngineSettings::default()
        },
    );
    e.program_change(PAD, WARM_PAD_PROGRAM);
    for key in 40..80 {
        e.note_on(PAD, key, 100);
    }
    assert!(e.active_voices() <= 8);
    let out = run(&mut e, RATE);
    assert!(rms_db(&out) > -40.0);
}

#[test]
fn a_non_looping_sample_ends_and_frees_its_voice() {
    let mut e = engine();
    e.program_change(PIANO_CHANNEL, 0);
    e.note_on(PIANO_CHANNEL, 72, 100);
    // Held, a piano note still dies away: its voice goes with it.
    let out = run(&mut e, 60 * RATE);
    assert!(rms_db(&out[..RATE]) > -40.0);
    assert_eq!(e.active_voices(), 0);
}
