//! One sounding zone: a sample read at a pitch, through the SF2 filter, under
//! the volume envelope, panned into the mix. Control values (pitch, cutoff,
//! level) change once per block. A voice only reads its sample here; its
//! filter and mix run with other voices' in lock-step (`kernels`), so the
//! per-frame work is whole-register arithmetic.

use super::envelope::{db_to_gain, sustain_gain, Envelope, Stage, VolumeGain};
use super::filter::LowPass;
use super::kernels::{self, cubic, Isa, Lane};
use super::lfo::Lfo;
use super::zone::{Looping, Zone};

/// Frames between control updates (2.9 ms); also the longest block a voice
/// renders. libfluidsynth steps every 64 frames; 128 halves the per-block
/// work (envelopes, LFOs, filter coefficients: about 12 % of a phrase on
/// FluidR3) while each step's gain is still ramped across it, and single
/// notes still match libfluidsynth within 0.7 dB (`tests/voices.rs`, whose
/// attack test watches the first 10 ms). Note starts are not moved: a block
/// begins at every event.
pub const BLOCK: usize = 128;

/// A voice whose level can no longer rise and is under this gain (−100 dB of
/// full scale) is inaudible under any mix and is dropped. It is a floor on
/// the voice's absolute output, and applies only once the envelope is falling
/// for good, so a quiet note that is still held is never cut.
const CULL_GAIN: f32 = 1e-5;

/// Sample positions are 32.32 fixed point: exact loop arithmetic, and the
/// fraction is ready for interpolation without a float floor.
pub const FRACTION_BITS: u32 = 32;
const ONE: u64 = 1 << FRACTION_BITS;

pub struct Voice {
    pub channel: u8,
    pub key: u8,
    pub exclusive_class: i32,
    /// Note-on order, for choosing a voice to steal.
    pub age: u64,
    zone: Zone,
    /// The sample's rate over the output rate: source frames per output
    /// frame at the sample's recorded pitch.
    rate_ratio: f32,
    /// Linear gain from the zone, velocity and engine.
    note_gain: f32,
    /// Pan gains, with the scale from i16 samples to ±1 folded in.
    pan_left: f32,
    pan_right: f32,
    volume: Envelope,
    volume_gain: VolumeGain,
    /// Whether the level the volume envelope decays to is already under
    /// [`CULL_GAIN`], so that a decaying voice may be dropped.
    decays_to_silence: bool,
    modulation: Envelope,
    mod_lfo: Lfo,
    vib_lfo: Lfo,
    filter: LowPass,
    /// The pitch in cents the step was last worked out for, and that step:
    /// a voice without pitch modulation keeps both, and skips an `exp2` a
    /// block.
    pitch: (f32, u64),
    pos: u64,
    /// The gain reached at the end of the last block; each block ramps from it.
    gain: f32,
    released: bool,
    cut: bool,
    finished: bool,
}

impl Voice {
    pub fn new(channel: u8, key: u8, age: u64, zone: Zone, engine_gain: f32, rate: f32) -> Self {
        let angle = (zone.pan + 50.0) / 100.0 * std::f32::consts::FRAC_PI_2;
        let note_gain = engine_gain * db_to_gain(-zone.attenuation_db);
        let volume = Envelope::volume(&zone.volume, rate);
        Self {
            channel,
            key,
            exclusive_class: zone.exclusive_class,
            age,
            rate_ratio: zone.sample_rate / rate,
            note_gain,
            pan_left: angle.cos() / 32_768.0,
            pan_right: angle.sin() / 32_768.0,
            volume_gain: VolumeGain::new(&volume),
            decays_to_silence: note_gain * sustain_gain(&volume) < CULL_GAIN,
            volume,
            modulation: Envelope::modulation(&zone.modulation, rate),
            mod_lfo: Lfo::new(&zone.mod_lfo, rate),
            vib_lfo: Lfo::new(&zone.vib_lfo, rate),
            filter: LowPass::new(zone.q_db),
            pitch: (f32::NAN, 0),
            pos: (zone.start as u64) << FRACTION_BITS,
            gain: 0.0,
            released: false,
            cut: false,
            finished: false,
            zone,
        }
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The level the voice reached, for choosing which to steal.
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// The key went up: the envelopes release and a loop-until-release
    /// sample plays on past its loop.
    pub fn release(&mut self) {
        self.released = true;
        self.volume.release();
        self.modulation.release();
    }

    /// Silences the voice within one block (an exclusive class, a stolen
    /// voice): a ramp down rather than a step, so there is no click.
    pub fn cut(&mut self) {
        self.released = true;
        self.cut = true;
    }

    fn looping(&self) -> bool {
        match self.zone.looping {
            Looping::Always => true,
            Looping::UntilRelease => !self.released,
            Looping::Off => false,
        }
    }

    /// Works out the next `n` (at most [`BLOCK`]) frames' control values,
    /// reads the sample into `out` and returns the voice's filter and gain
    /// ramp for them; [`FontSynth::render`](super::FontSynth) filters and
    /// mixes the voices together, then hands the filter state back with
    /// [`Voice::set_filter_state`].
    pub fn prepare(
        &mut self,
        isa: Isa,
        wave: &[i16],
        rate: f32,
        n: usize,
        out: &mut [f32; BLOCK],
    ) -> Lane {
        let n = n.min(BLOCK);
        let frames = n as f32;
        let z = &self.zone;
        let mod_env = self.modulation.advance(frames);
        let mod_lfo = self.mod_lfo.advance(frames);
        let vib_lfo = self.vib_lfo.advance(frames);
        let cents = z.base_cents
            + mod_env * z.mod_env_to_pitch
            + mod_lfo * z.mod_lfo_to_pitch
            + vib_lfo * z.vib_lfo_to_pitch;
        if cents != self.pitch.0 {
            let ratio = (cents / 1200.0).exp2() * self.rate_ratio;
            self.pitch = (cents, ((ratio * ONE as f32) as u64).max(1));
        }
        let step = self.pitch.1;
        let cutoff = z.cutoff_cents + mod_env * z.mod_env_to_cutoff + mod_lfo * z.mod_lfo_to_cutoff;
        self.filter.tune(cutoff, rate);
        self.volume.advance(frames);
        let target = if self.cut {
            0.0
        } else {
            // Most zones have no tremolo, and 0 dB is exactly 1.
            let tremolo_db = mod_lfo * z.mod_lfo_to_volume;
            let tremolo = if tremolo_db == 0.0 {
                1.0
            } else {
                db_to_gain(tremolo_db)
            };
            self.note_gain * self.volume_gain.of(&self.volume) * tremolo
        };

        let produced = self.fill(isa, wave, step, &mut out[..n]);
        out[produced..].fill(0.0);
        let lane = Lane::new(
            &self.filter,
            self.gain,
            (target - self.gain) / frames.max(1.0),
            self.pan_left,
            self.pan_right,
        );
        self.gain = target;

        let falling = match self.volume.stage() {
            Stage::Release | Stage::Done => true,
            Stage::Decay => self.decays_to_silence,
            _ => false,
        };
        self.finished = self.cut
            || produced < n
            || self.volume.stage() == Stage::Done
            || (falling && target < CULL_GAIN);
        lane
    }

    pub fn set_filter_state(&mut self, z1: f32, z2: f32) {
        self.filter.set_state(z1, z2);
    }

    /// Reads the sample at the current pitch into `out`; returns how many
    /// frames there were before a sample without a loop ran out.
    fn fill(&mut self, isa: Isa, wave: &[i16], step: u64, out: &mut [f32]) -> usize {
        let z = &self.zone;
        let mut i = 0;
        // Every pass writes at least one frame.
        while i < out.len() {
            let looping = self.looping();
            let idx = (self.pos >> FRACTION_BITS) as usize;
            let limit = if looping { z.loop_end } else { z.end };
            if !looping && idx >= z.end {
                break;
            }
            if idx > z.start && idx + 3 <= limit {
                // Frames whose four neighbours all lie inside the sample (or
                // loop) need no bounds logic.
                let last = (((limit - 3) as u64) << FRACTION_BITS) | (ONE - 1);
                let left = out.len() - i;
                // Most blocks end well before the sample or loop does; then
                // the one multiply says so, without a 64-bit divide.
                let k = if step.saturating_mul(left as u64 - 1) <= last - self.pos {
                    left
                } else {
                    (((last - self.pos) / step + 1) as usize).min(left)
                };
                self.pos = kernels::interpolate(isa, wave, self.pos, step, &mut out[i..i + k]);
                i += k;
            } else {
                let at = |j: usize| fetch(wave, z, looping, j);
                let f = (self.pos & (ONE - 1)) as f32 / ONE as f32;
                // Fused or not as the kernels are, so that a frame next to a
                // loop's end rounds as the frames around it.
                let cubic = if isa.fused() {
                    cubic::<true>
                } else {
                    cubic::<false>
                };
                out[i] = cubic(
                    at(idx.wrapping_sub(1)),
                    at(idx),
                    at(idx + 1),
                    at(idx + 2),
                    f,
                );
                self.pos += step;
                i += 1;
            }
            if looping && (self.pos >> FRACTION_BITS) as usize >= z.loop_end {
                let len = (z.loop_end - z.loop_start) as u64;
                let over = (self.pos >> FRACTION_BITS) - z.loop_start as u64;
                self.pos =
                    ((z.loop_start as u64 + over % len) << FRACTION_BITS) | (self.pos & (ONE - 1));
            }
        }
        i
    }
}

/// One source sample as the loop or the sample's end sees it: past a loop's
/// end the loop starts again; outside the sample there is silence.
fn fetch(wave: &[i16], z: &Zone, looping: bool, j: usize) -> f32 {
    let j = if looping && j >= z.loop_end && j != usize::MAX {
        j - (z.loop_end - z.loop_start)
    } else {
        j
    };
    if j < z.start || j >= z.end {
        return 0.0;
    }
    wave.get(j).map_or(0.0, |&s| f32::from(s))
}
