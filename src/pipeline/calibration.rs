//! Gain staging per font: each layer is brought to a reference loudness
//! before it is mixed, so a preset sounds as loud, and as balanced, on the
//! built-in font as on FluidR3 or Salamander. Fonts differ wildly (FluidR3's
//! piano sits 10–16 LU under its pad 89; its pad 88 is far quieter than its
//! 89), and no fixed gain can serve them all; a leveller per layer would flatten
//! the music's own dynamics. So each (engine, font, program) is measured once,
//! on reference notes, and the layer's fader is set from that.

use std::sync::{Arc, Mutex, Weak};

use rustysynth::SoundFont;

use super::EngineSource;
use crate::audio::loudness::{lufs, KWeighting};
use crate::music::{PAD_CHANNEL, PIANO_CHANNEL};
use crate::synth::{EngineError, EngineKind};

/// The loudness every layer is brought to on its reference notes; the
/// balance between layers is set relative to it, and the master leveller
/// lifts the sum to the stream's target.
pub const REFERENCE_LUFS: f64 = -24.0;
/// How far the piano stands above the reference, in dB, against the pad at
/// the reference. Measured in the mix (stems, gated, so the piano's level is
/// its level while it plays), this puts it within a few LU of the pad and
/// lets a quiet preset's softer touch keep it further back ("sleep"), as the
/// presets intend; see README, "Sound".
const PIANO_LIFT_DB: f64 = 2.5;
/// A font that is silent or absurdly loud on the reference gets at most this
/// much correction rather than a wild gain.
const MAX_CORRECTION_DB: f64 = 30.0;
const SECONDS: f64 = 4.0;

/// Which part of the mix a calibration is for: they are measured on
/// different reference notes, each typical of how the composer writes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Piano,
    Pad,
}

impl Role {
    /// The MIDI channel whose program decides the layer's calibration.
    pub fn channel(self) -> u8 {
        match self {
            Role::Piano => PIANO_CHANNEL,
            Role::Pad => PAD_CHANNEL,
        }
    }
}

/// A layer's place in the mix relative to the reference, in dB.
pub fn balance_db(role: Role) -> f64 {
    match role {
        Role::Piano => PIANO_LIFT_DB,
        Role::Pad => 0.0,
    }
}

/// Measures every program the composer can ask for, so that no session
/// measures one later on the server's threads; also proves at start-up that
/// the engine builds over these fonts.
pub fn prepare(source: &EngineSource) -> Result<(), EngineError> {
    gain_db(source, Role::Piano, crate::music::PIANO_PROGRAM)?;
    for program in crate::music::Params::PAD_PROGRAMS {
        gain_db(source, Role::Pad, program)?;
    }
    Ok(())
}

struct Entry {
    font: Weak<SoundFont>,
    kind: EngineKind,
    role: Role,
    program: u8,
    gain_db: f64,
}

/// Measurements already made in this process. Keyed by the font itself (a
/// weak reference: a font that is dropped drops out), so each font, engine
/// and program is measured once however many sessions use it.
static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The gain in dB that brings `role` playing `program` to [`REFERENCE_LUFS`].
pub fn gain_db(source: &EngineSource, role: Role, program: u8) -> Result<f64, EngineError> {
    let font = match role {
        Role::Piano => &source.fonts.piano.font,
        Role::Pad => &source.fonts.pad.font,
    };
    if source.custom.is_some() {
        // Not a SoundFont engine: nothing to key a cache by, and cheap.
        return measure(source, role, program);
    }
    let weak = Arc::downgrade(font);
    let found = lock()
        .iter()
        .find(|e| {
            e.kind == source.kind && e.role == role && e.program == program && e.font.ptr_eq(&weak)
        })
        .map(|e| e.gain_db);
    if let Some(g) = found {
        return Ok(g);
    }
    // Measured outside the lock: two sessions racing here both measure the
    // same thing, which costs a few milliseconds and no correctness.
    let g = measure(source, role, program)?;
    let mut cache = lock();
    cache.retain(|e| e.font.strong_count() > 0);
    cache.push(Entry {
        font: weak,
        kind: source.kind,
        role,
        program,
        gain_db: g,
    });
    Ok(g)
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Renders the reference notes dry and returns the correction to the
/// reference loudness. Pads: a three-note open voicing held (their level is
/// their sustain). Piano: a broken chord, each note let ring (its level is its
/// attack and decay).
fn measure(source: &EngineSource, role: Role, program: u8) -> Result<f64, EngineError> {
    let mut engine = source.build()?;
    let sr = f64::from(crate::SAMPLE_RATE);
    let notes: &[(f64, u8, u8)] = match role {
        Role::Pad => &[(0.0, 48, 64), (0.0, 55, 64), (0.0, 64, 64)],
        Role::Piano => &[(0.0, 60, 72), (0.75, 64, 72), (1.5, 67, 72), (2.25, 72, 72)],
    };
    let channel = role.channel();
    engine.program_change(channel, program);
    let total = (SECONDS * sr) as usize;
    let block = 441;
    let (mut l, mut r) = (vec![0f32; block], vec![0f32; block]);
    let mut weighting = KWeighting::new(sr);
    let mut energy = 0.0;
    let mut next = 0;
    for start in (0..total).step_by(block) {
        while next < notes.len() && (notes[next].0 * sr) as usize <= start {
            engine.note_on(channel, notes[next].1, notes[next].2);
            next += 1;
        }
        engine.render(&mut l, &mut r);
        for (a, b) in l.iter().zip(&r) {
            energy += weighting.power(*a, *b);
        }
    }
    let measured = lufs(energy / total as f64);
    Ok((REFERENCE_LUFS - measured).clamp(-MAX_CORRECTION_DB, MAX_CORRECTION_DB))
}
