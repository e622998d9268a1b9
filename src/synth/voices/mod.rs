//! Auralis's own SoundFont renderer (`--engine voices`): rustysynth parses
//! the font; zone resolution, envelopes, LFOs, the filter, interpolation and
//! voice management are ours, written for this pipeline's needs. It renders
//! dry (reverb is applied on the mix), starts notes on the frame they are
//! played, and drops a voice only when it has fallen under −100 dB for good,
//! so no level gate can cut a held note.

mod envelope;
mod filter;
mod kernels;
mod lfo;
mod voice;
mod zone;

use std::sync::Arc;

use rustysynth::SoundFont;

use super::engine::{Engine, EngineSettings};
use crate::music::PIANO_CHANNEL;
use crate::soundfont::FontSet;
use kernels::{Accumulator, Isa, Lane, Lanes, GROUP};
use voice::{Voice, BLOCK};

const CHANNELS: usize = 16;

/// Like the other engines: one synthesizer per distinct font, the piano
/// channel on the piano font and every other channel on the pad font.
pub struct VoicesEngine {
    piano: FontSynth,
    pad: Option<FontSynth>,
}

impl VoicesEngine {
    pub fn new(fonts: &FontSet, settings: EngineSettings) -> Self {
        let piano = FontSynth::new(&fonts.piano.font, settings);
        let pad = (!Arc::ptr_eq(&fonts.piano.font, &fonts.pad.font))
            .then(|| FontSynth::new(&fonts.pad.font, settings));
        Self { piano, pad }
    }

    fn synth_for(&mut self, channel: u8) -> &mut FontSynth {
        match &mut self.pad {
            Some(pad) if channel != PIANO_CHANNEL => pad,
            _ => &mut self.piano,
        }
    }

    /// Voices sounding now, for tests and diagnostics.
    pub fn active_voices(&self) -> usize {
        self.piano.voices.len() + self.pad.as_ref().map_or(0, |p| p.voices.len())
    }
}

struct FontSynth {
    font: Arc<SoundFont>,
    /// The preset each channel plays; `None` until a program change, which
    /// then means program 0.
    presets: [Option<usize>; CHANNELS],
    /// Never longer than `polyphony`: allocated once, so note-ons on the
    /// audio path do not allocate.
    voices: Vec<Voice>,
    polyphony: usize,
    gain: f32,
    next_age: u64,
    isa: Isa,
    /// Each voice's interpolated block, row `i` for `voices[i]`, and zeros
    /// for the lanes of the last group that have no voice.
    rows: Vec<[f32; BLOCK]>,
    /// Each voice's filter and gain for the block being rendered.
    lanes: Vec<Lane>,
    /// The same, a group of voices to an entry.
    groups: Vec<Lanes>,
    left: Box<Accumulator>,
    right: Box<Accumulator>,
}

impl FontSynth {
    fn new(font: &Arc<SoundFont>, settings: EngineSettings) -> Self {
        let polyphony = settings.polyphony.clamp(8, 256);
        Self {
            font: font.clone(),
            presets: [None; CHANNELS],
            voices: Vec::with_capacity(polyphony),
            polyphony,
            gain: settings.gain,
            next_age: 0,
            isa: Isa::detect(),
            rows: vec![[0.0; BLOCK]; polyphony.next_multiple_of(GROUP)],
            lanes: vec![Lane::default(); polyphony],
            groups: Vec::with_capacity(polyphony.div_ceil(GROUP)),
            left: Box::new([[0.0; GROUP]; BLOCK]),
            right: Box::new([[0.0; GROUP]; BLOCK]),
        }
    }

    fn program_change(&mut self, channel: u8, program: u8) {
        if let Some(slot) = self.presets.get_mut(usize::from(channel)) {
            *slot = zone::preset_index(&self.font, program);
        }
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        if velocity == 0 {
            self.note_off(channel, key);
            return;
        }
        let Some(&selected) = self.presets.get(usize::from(channel)) else {
            return;
        };
        let Some(preset) = selected.or_else(|| zone::preset_index(&self.font, 0)) else {
            return;
        };
        // A key struck again releases its previous note, as libfluidsynth does.
        self.note_off(channel, key);
        let age = self.next_age;
        self.next_age += 1;
        let font = self.font.clone();
        for z in zone::zones(&font, preset, key.min(127), velocity.min(127)) {
            if z.exclusive_class != 0 {
                for v in &mut self.voices {
                    if v.channel == channel
                        && v.exclusive_class == z.exclusive_class
                        && v.age != age
                    {
                        v.cut();
                    }
                }
            }
            let voice = Voice::new(channel, key, age, z, self.gain, crate::SAMPLE_RATE as f32);
            if self.voices.len() < self.polyphony {
                self.voices.push(voice);
            } else if let Some(i) = self.victim() {
                self.voices[i] = voice;
            }
        }
    }

    /// The voice to give up when all are in use: the quietest released one,
    /// else the oldest.
    fn victim(&self) -> Option<usize> {
        let released = self
            .voices
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_released())
            .min_by(|a, b| a.1.gain().total_cmp(&b.1.gain()));
        released
            .or_else(|| self.voices.iter().enumerate().min_by_key(|(_, v)| v.age))
            .map(|(i, _)| i)
    }

    fn note_off(&mut self, channel: u8, key: u8) {
        for v in &mut self.voices {
            if v.channel == channel && v.key == key && !v.is_released() {
                v.release();
            }
        }
    }

    fn all_notes_off(&mut self) {
        for v in &mut self.voices {
            v.release();
        }
    }

    fn sound_off(&mut self) {
        self.voices.clear();
    }

    /// Adds this font's voices to `left` and `right`: each voice reads its
    /// sample into its own row, then the rows are filtered and mixed a
    /// group of voices at a time.
    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let wave = self.font.get_wave_data();
        let rate = crate::SAMPLE_RATE as f32;
        for (l, r) in left.chunks_mut(BLOCK).zip(right.chunks_mut(BLOCK)) {
            let n = l.len();
            let voices = self.voices.len();
            for ((v, row), lane) in self
                .voices
                .iter_mut()
                .zip(self.rows.iter_mut())
                .zip(self.lanes.iter_mut())
            {
                *lane = v.prepare(self.isa, wave, rate, n, row);
            }
            self.groups.clear();
            self.groups
                .extend(self.lanes[..voices].chunks(GROUP).map(Lanes::gather));
            let lanes = self.groups.len() * GROUP;
            for row in &mut self.rows[voices..lanes] {
                *row = [0.0; BLOCK];
            }
            kernels::filter_mix(
                self.isa,
                &self.rows[..lanes],
                n,
                &mut self.groups,
                &mut self.left,
                &mut self.right,
            );
            for (v, (group, k)) in self.voices.iter_mut().zip(
                self.groups
                    .iter()
                    .flat_map(|g| (0..GROUP).map(move |k| (g, k))),
            ) {
                let (z1, z2) = group.state(k);
                v.set_filter_state(z1, z2);
            }
            kernels::reduce(self.isa, &mut self.left, &mut self.right, l, r);
            self.voices.retain(|v| !v.is_finished());
        }
    }
}

impl Engine for VoicesEngine {
    fn name(&self) -> &'static str {
        "voices"
    }

    fn program_change(&mut self, channel: u8, program: u8) {
        self.synth_for(channel).program_change(channel, program);
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        self.synth_for(channel).note_on(channel, key, velocity);
    }

    fn note_off(&mut self, channel: u8, key: u8) {
        self.synth_for(channel).note_off(channel, key);
    }

    fn all_notes_off(&mut self) {
        self.piano.all_notes_off();
        if let Some(pad) = &mut self.pad {
            pad.all_notes_off();
        }
    }

    fn sound_off(&mut self) {
        self.piano.sound_off();
        if let Some(pad) = &mut self.pad {
            pad.sound_off();
        }
    }

    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        left.fill(0.0);
        right.fill(0.0);
        self.piano.render(left, right);
        if let Some(pad) = &mut self.pad {
            pad.render(left, right);
        }
    }
}

#[cfg(test)]
mod tests;
