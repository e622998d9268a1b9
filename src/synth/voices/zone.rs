//! What one SoundFont zone pair (a preset region over an instrument region)
//! means for one note: every generator resolved once, at note-on, into the
//! units the voice works in, so nothing on the audio path looks at the font.

use rustysynth::{InstrumentRegion, LoopMode, PresetRegion, SoundFont};

/// The lowest cutoff of the SF2 filter, 1500 cents (about 20 Hz).
const MIN_CUTOFF_CENTS: f32 = 1500.0;

/// How the sample repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looping {
    /// Played once to its end.
    Off,
    /// The loop repeats until the voice has faded out.
    Always,
    /// The loop repeats while the key is held, then plays on to the end.
    UntilRelease,
}

/// Stage times in seconds and levels in the envelope's own unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvelopeTimes {
    pub delay: f32,
    pub attack: f32,
    pub hold: f32,
    pub decay: f32,
    /// Volume envelope: dB below the peak; modulation envelope: the level, 0–1.
    pub sustain: f32,
    pub release: f32,
}

/// Low-frequency oscillator settings: seconds of delay, then Hz.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LfoSettings {
    pub delay: f32,
    pub frequency: f32,
}

/// One zone pair resolved for a key and velocity.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub start: usize,
    pub end: usize,
    pub loop_start: usize,
    pub loop_end: usize,
    pub looping: Looping,
    /// The note's distance from the sample's recorded pitch, in cents, before
    /// any modulation.
    pub base_cents: f32,
    pub sample_rate: f32,
    /// dB of attenuation: the zone's own (scaled by 0.4 as the EMU hardware
    /// and libfluidsynth do) plus the velocity and channel-volume curves.
    pub attenuation_db: f32,
    /// −50 (left) to +50 (right).
    pub pan: f32,
    pub volume: EnvelopeTimes,
    pub modulation: EnvelopeTimes,
    pub mod_lfo: LfoSettings,
    pub vib_lfo: LfoSettings,
    pub mod_lfo_to_pitch: f32,
    pub vib_lfo_to_pitch: f32,
    pub mod_env_to_pitch: f32,
    pub cutoff_cents: f32,
    /// Resonance in dB above the DC gain.
    pub q_db: f32,
    pub mod_lfo_to_cutoff: f32,
    pub mod_env_to_cutoff: f32,
    /// dB; the LFO swings the level by this much either way.
    pub mod_lfo_to_volume: f32,
    pub exclusive_class: i32,
}

/// The channel volume every engine leaves at the MIDI default (controller 7 =
/// 100); libfluidsynth turns it into 40·log10(100/127) dB through the SF2
/// default modulator, and we do the same so the engines match in level.
const CHANNEL_VOLUME: f32 = 100.0 / 127.0;

/// libfluidsynth plays every zone this much louder than the arithmetic above
/// gives: measured on FluidR3_GM, the same to ±0.1 dB on every note of
/// tests/voices.rs whatever the program, key, velocity or zone attenuation,
/// so it is a constant of its output stage, and we follow the reference.
const REFERENCE_GAIN_DB: f32 = 1.15;

fn hz_to_cents(hz: f32) -> f32 {
    1200.0 * (hz / 8.176).log2()
}

/// Times scaled by key number: SF2's keynumTo*EnvHold/Decay, in timecents per
/// key away from middle C.
fn key_scaled(seconds: f32, timecents_per_key: i32, key: u8) -> f32 {
    seconds * ((60.0 - f32::from(key)) * timecents_per_key as f32 / 1200.0).exp2()
}

impl Zone {
    pub fn new(
        font: &SoundFont,
        preset: &PresetRegion,
        inst: &InstrumentRegion,
        key: u8,
        velocity: u8,
    ) -> Option<Self> {
        let header = font.get_sample_headers().get(inst.get_sample_id())?;
        let wave_len = font.get_wave_data().len();
        let clamp = |x: i32| (x.max(0) as usize).min(wave_len);
        let start = clamp(inst.get_sample_start());
        let end = clamp(inst.get_sample_end());
        if end <= start + 1 {
            return None;
        }
        let loop_start = clamp(inst.get_sample_start_loop()).clamp(start, end);
        let loop_end = clamp(inst.get_sample_end_loop()).clamp(start, end);
        let looping = match inst.get_sample_modes() {
            _ if loop_end < loop_start + 2 => Looping::Off,
            LoopMode::Continuous => Looping::Always,
            LoopMode::LoopUntilNoteOff => Looping::UntilRelease,
            LoopMode::NoLoop => Looping::Off,
        };

        let scale = inst.get_scale_tuning() + preset.get_scale_tuning();
        let root = inst.get_root_key();
        let base_cents = (i32::from(key) - root) as f32 * scale as f32
            + ((inst.get_coarse_tune() + preset.get_coarse_tune()) * 100) as f32
            + (inst.get_fine_tune() + preset.get_fine_tune()) as f32;

        let vel = f32::from(velocity.max(1)) / 127.0;
        let attenuation_db = 0.4
            * (inst.get_initial_attenuation() + preset.get_initial_attenuation())
            - 40.0 * vel.log10()
            - 40.0 * CHANNEL_VOLUME.log10()
            - REFERENCE_GAIN_DB;

        let cutoff_hz = inst.get_initial_filter_cutoff_frequency()
            * preset.get_initial_filter_cutoff_frequency();

        let hold_keys = inst.get_key_number_to_volume_envelope_hold()
            + preset.get_key_number_to_volume_envelope_hold();
        let decay_keys = inst.get_key_number_to_volume_envelope_decay()
            + preset.get_key_number_to_volume_envelope_decay();
        let volume = EnvelopeTimes {
            delay: inst.get_delay_volume_envelope() * preset.get_delay_volume_envelope(),
            attack: inst.get_attack_volume_envelope() * preset.get_attack_volume_envelope(),
            hold: key_scaled(
                inst.get_hold_volume_envelope() * preset.get_hold_volume_envelope(),
                hold_keys,
                key,
            ),
            decay: key_scaled(
                inst.get_decay_volume_envelope() * preset.get_decay_volume_envelope(),
                decay_keys,
                key,
            ),
            sustain: (inst.get_sustain_volume_envelope() + preset.get_sustain_volume_envelope())
                .clamp(0.0, 144.0),
            release: inst.get_release_volume_envelope() * preset.get_release_volume_envelope(),
        };
        let mod_hold_keys = inst.get_key_number_to_modulation_envelope_hold()
            + preset.get_key_number_to_modulation_envelope_hold();
        let mod_decay_keys = inst.get_key_number_to_modulation_envelope_decay()
            + preset.get_key_number_to_modulation_envelope_decay();
        let modulation = EnvelopeTimes {
            delay: inst.get_delay_modulation_envelope() * preset.get_delay_modulation_envelope(),
            attack: inst.get_attack_modulation_envelope() * preset.get_attack_modulation_envelope(),
            hold: key_scaled(
                inst.get_hold_modulation_envelope() * preset.get_hold_modulation_envelope(),
                mod_hold_keys,
                key,
            ),
            decay: key_scaled(
                inst.get_decay_modulation_envelope() * preset.get_decay_modulation_envelope(),
                mod_decay_keys,
                key,
            ),
            sustain: 1.0
                - (inst.get_sustain_modulation_envelope()
                    + preset.get_sustain_modulation_envelope())
                .clamp(0.0, 100.0)
                    / 100.0,
            release: inst.get_release_modulation_envelope()
                * preset.get_release_modulation_envelope(),
        };

        Some(Self {
            start,
            end,
            loop_start,
            loop_end,
            looping,
            base_cents,
            sample_rate: header.get_sample_rate().max(1) as f32,
            attenuation_db,
            pan: (inst.get_pan() + preset.get_pan()).clamp(-50.0, 50.0),
            volume,
            modulation,
            mod_lfo: LfoSettings {
                delay: inst.get_delay_modulation_lfo() * preset.get_delay_modulation_lfo(),
                frequency: inst.get_frequency_modulation_lfo()
                    * preset.get_frequency_modulation_lfo(),
            },
            vib_lfo: LfoSettings {
                delay: inst.get_delay_vibrato_lfo() * preset.get_delay_vibrato_lfo(),
                frequency: inst.get_frequency_vibrato_lfo() * preset.get_frequency_vibrato_lfo(),
            },
            mod_lfo_to_pitch: (inst.get_modulation_lfo_to_pitch()
                + preset.get_modulation_lfo_to_pitch()) as f32,
            vib_lfo_to_pitch: (inst.get_vibrato_lfo_to_pitch() + preset.get_vibrato_lfo_to_pitch())
                as f32,
            mod_env_to_pitch: (inst.get_modulation_envelope_to_pitch()
                + preset.get_modulation_envelope_to_pitch()) as f32,
            cutoff_cents: hz_to_cents(cutoff_hz).max(MIN_CUTOFF_CENTS),
            q_db: (inst.get_initial_filter_q() + preset.get_initial_filter_q()).clamp(0.0, 96.0),
            mod_lfo_to_cutoff: (inst.get_modulation_lfo_to_filter_cutoff_frequency()
                + preset.get_modulation_lfo_to_filter_cutoff_frequency())
                as f32,
            mod_env_to_cutoff: (inst.get_modulation_envelope_to_filter_cutoff_frequency()
                + preset.get_modulation_envelope_to_filter_cutoff_frequency())
                as f32,
            mod_lfo_to_volume: inst.get_modulation_lfo_to_volume()
                + preset.get_modulation_lfo_to_volume(),
            exclusive_class: inst.get_exclusive_class(),
        })
    }
}

/// The preset a program selects: bank 0 as General MIDI has it, else the
/// program in any bank, else the font's first preset, so any program number
/// plays something rather than nothing.
pub fn preset_index(font: &SoundFont, program: u8) -> Option<usize> {
    let presets = font.get_presets();
    let program = i32::from(program);
    presets
        .iter()
        .position(|p| p.get_bank_number() == 0 && p.get_patch_number() == program)
        .or_else(|| presets.iter().position(|p| p.get_patch_number() == program))
        .or_else(|| (!presets.is_empty()).then_some(0))
}

/// Every zone pair of `preset` that sounds for this key and velocity.
pub fn zones<'a>(
    font: &'a SoundFont,
    preset: usize,
    key: u8,
    velocity: u8,
) -> impl Iterator<Item = Zone> + 'a {
    let (k, v) = (i32::from(key), i32::from(velocity));
    font.get_presets()
        .get(preset)
        .map(|p| p.get_regions())
        .unwrap_or_default()
        .iter()
        .filter(move |pr| pr.contains(k, v))
        .flat_map(move |pr| {
            font.get_instruments()
                .get(pr.get_instrument_id())
                .map(|i| i.get_regions())
                .unwrap_or_default()
                .iter()
                .filter(move |ir| ir.contains(k, v))
                .filter_map(move |ir| Zone::new(font, pr, ir, key, velocity))
        })
}
