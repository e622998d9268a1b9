//! The default backend: rustysynth, a pure-Rust SoundFont synthesizer, so
//! Auralis builds and runs with no C library installed.

use std::sync::Arc;

use rustysynth::{Synthesizer, SynthesizerSettings};

use super::engine::{Engine, EngineSettings};
use crate::music::PIANO_CHANNEL;
use crate::soundfont::FontSet;

/// Frames rendered per call into the scratch buffers; any request is split
/// into pieces of at most this size so nothing is allocated on the audio path.
const SCRATCH_FRAMES: usize = 1024;

/// Frames per synthesizer block. rustysynth starts a note at its next block
/// boundary, so this is also how late a note may start: 256 frames is 5.8 ms,
/// well inside the 25–50 ms the composer humanises timing by, for a quarter
/// of the per-block envelope, LFO and filter updates of the default 64.
const BLOCK_FRAMES: usize = 256;

/// rustysynth leaves a voice out of the mix whenever its gain (master volume
/// × velocity and attenuation × channel volume² × envelope) is under 1e-3: a
/// gate on absolute level, not on the note's own. FluidR3_GM's pad 88
/// ("Fantasia": 25 dB of initial attenuation, sustain 48 dB and 100 dB down)
/// falls under it 4–5 s after each attack while the note is still held, so
/// the pad dropped to digital silence with a click, and the leveller made
/// both audible. Running the synthesizer 2^16 louder puts that gate at
/// −156 dB; the scale is a power of two, so undoing it after the voice sum
/// is exact.
const GATE_HEADROOM: f32 = 65_536.0;
const INVERSE_GATE_HEADROOM: f32 = 1.0 / GATE_HEADROOM;

/// One rustysynth synthesizer per distinct font: the piano channel plays from
/// the piano font, every other channel from the pad/GM font. When both are the
/// same font a single synthesizer serves all channels.
///
/// The synthesizers' own reverb and chorus are off: reverb is applied once on
/// the mix (see `audio::reverb`), which is cheaper than one per font and lets
/// the brief's reverb parameters be set exactly.
pub struct RustyEngine {
    piano: Synthesizer,
    pad: Option<Synthesizer>,
    scratch_left: Vec<f32>,
    scratch_right: Vec<f32>,
}

impl RustyEngine {
    pub fn new(fonts: &FontSet, settings: EngineSettings) -> Self {
        let piano = synthesizer(&fonts.piano.font, settings);
        let pad = (!Arc::ptr_eq(&fonts.piano.font, &fonts.pad.font))
            .then(|| synthesizer(&fonts.pad.font, settings));
        Self {
            piano,
            pad,
            scratch_left: vec![0.0; SCRATCH_FRAMES],
            scratch_right: vec![0.0; SCRATCH_FRAMES],
        }
    }

    fn synth_for(&mut self, channel: u8) -> &mut Synthesizer {
        match &mut self.pad {
            Some(pad) if channel != PIANO_CHANNEL => pad,
            _ => &mut self.piano,
        }
    }
}

fn synthesizer(font: &Arc<rustysynth::SoundFont>, settings: EngineSettings) -> Synthesizer {
    let mut s = SynthesizerSettings::new(crate::SAMPLE_RATE as i32);
    s.maximum_polyphony = settings.polyphony.clamp(8, 256);
    s.enable_reverb_and_chorus = false;
    s.block_size = BLOCK_FRAMES;
    let mut synth =
        Synthesizer::new(font, &s).expect("sample rate and clamped polyphony are always valid");
    synth.set_master_volume(settings.gain * GATE_HEADROOM);
    synth
}

impl Engine for RustyEngine {
    fn name(&self) -> &'static str {
        "rustysynth"
    }

    fn program_change(&mut self, channel: u8, program: u8) {
        self.synth_for(channel).process_midi_message(
            i32::from(channel),
            0xC0,
            i32::from(program),
            0,
        );
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        self.synth_for(channel)
            .note_on(i32::from(channel), i32::from(key), i32::from(velocity));
    }

    fn note_off(&mut self, channel: u8, key: u8) {
        self.synth_for(channel)
            .note_off(i32::from(channel), i32::from(key));
    }

    fn all_notes_off(&mut self) {
        self.piano.note_off_all(false);
        if let Some(pad) = &mut self.pad {
            pad.note_off_all(false);
        }
    }

    fn sound_off(&mut self) {
        self.piano.note_off_all(true);
        if let Some(pad) = &mut self.pad {
            pad.note_off_all(true);
        }
    }

    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let Some(pad) = &mut self.pad else {
            self.piano.render(left, right);
            unscale(left);
            unscale(right);
            return;
        };
        for (l, r) in left
            .chunks_mut(SCRATCH_FRAMES)
            .zip(right.chunks_mut(SCRATCH_FRAMES))
        {
            self.piano.render(l, r);
            let (sl, sr) = (
                &mut self.scratch_left[..l.len()],
                &mut self.scratch_right[..r.len()],
            );
            pad.render(sl, sr);
            for (d, s) in l.iter_mut().zip(sl.iter()) {
                *d = (*d + *s) * INVERSE_GATE_HEADROOM;
            }
            for (d, s) in r.iter_mut().zip(sr.iter()) {
                *d = (*d + *s) * INVERSE_GATE_HEADROOM;
            }
        }
    }
}

fn unscale(x: &mut [f32]) {
    for v in x {
        *v *= INVERSE_GATE_HEADROOM;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames from a note-on to the note's first sound, the note-on falling
    /// `offset` frames into a block.
    fn start_delay(offset: usize) -> usize {
        let mut engine = RustyEngine::new(&FontSet::builtin(), EngineSettings::default());
        let (mut l, mut r) = (vec![0.0; offset], vec![0.0; offset]);
        engine.render(&mut l, &mut r);
        engine.note_on(PIANO_CHANNEL, 60, 100);
        let (mut l, mut r) = (vec![0.0; 4 * BLOCK_FRAMES], vec![0.0; 4 * BLOCK_FRAMES]);
        engine.render(&mut l, &mut r);
        l.iter()
            .zip(&r)
            .position(|(a, b)| *a != 0.0 || *b != 0.0)
            .expect("the note sounds")
    }

    #[test]
    fn a_note_starts_at_the_next_block_at_the_latest() {
        // A note-on one frame into a block waits for the rest of it.
        assert!((BLOCK_FRAMES - 1..BLOCK_FRAMES + 2).contains(&start_delay(1)));
        for offset in [0, 100, 255, 256, 300] {
            let delay = start_delay(offset);
            assert!(
                delay <= BLOCK_FRAMES + 1,
                "offset {offset}: {delay} frames late"
            );
        }
    }
}
