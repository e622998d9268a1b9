//! One sounding zone: a sample read at a pitch, through the SF2 filter, under
//! the volume envelope, panned into the mix. Control values (pitch, cutoff,
//! level) change once per block; the per-frame loops are plain arithmetic
//! over slices, so the compiler can keep them tight.

use super::envelope::{db_to_gain, sustain_gain, volume_gain, Envelope, Stage};
use super::filter::LowPass;
use super::lfo::Lfo;
use super::zone::{Looping, Zone};

/// Frames between control updates; also the longest block a voice renders.
pub const BLOCK: usize = 64;

/// A voice whose level can no longer rise and is under this gain (−100 dB of
/// full scale) is inaudible under any mix and is dropped. It is a floor on
/// the voice's absolute output, and applies only once the envelope is falling
/// for good, so a quiet note that is still held is never cut.
const CULL_GAIN: f32 = 1e-5;

/// Sample positions are 32.32 fixed point: exact loop arithmetic, and the
/// fraction is ready for interpolation without a float floor.
const FRACTION_BITS: u32 = 32;
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
    modulation: Envelope,
    mod_lfo: Lfo,
    vib_lfo: Lfo,
    filter: LowPass,
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
        Self {
            channel,
            key,
            exclusive_class: zone.exclusive_class,
            age,
            rate_ratio: zone.sample_rate / rate,
            note_gain: engine_gain * db_to_gain(-zone.attenuation_db),
            pan_left: angle.cos() / 32_768.0,
            pan_right: angle.sin() / 32_768.0,
            volume: Envelope::volume(&zone.volume, rate),
            modulation: Envelope::modulation(&zone.modulation, rate),
            mod_lfo: Lfo::new(&zone.mod_lfo, rate),
            vib_lfo: Lfo::new(&zone.vib_lfo, rate),
            filter: LowPass::new(zone.q_db),
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

    /// Adds the next `left.len()` (at most [`BLOCK`]) frames of this voice
    /// to `left` and `right`.
    pub fn render(
        &mut self,
        wave: &[i16],
        rate: f32,
        scratch: &mut [f32; BLOCK],
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let n = left.len().min(BLOCK);
        let frames = n as f32;
        let z = &self.zone;
        let mod_env = self.modulation.advance(frames);
        let mod_lfo = self.mod_lfo.advance(frames);
        let vib_lfo = self.vib_lfo.advance(frames);
        let cents = z.base_cents
            + mod_env * z.mod_env_to_pitch
            + mod_lfo * z.mod_lfo_to_pitch
            + vib_lfo * z.vib_lfo_to_pitch;
        let ratio = (cents / 1200.0).exp2() * self.rate_ratio;
        let step = ((ratio * ONE as f32) as u64).max(1);
        let cutoff = z.cutoff_cents + mod_env * z.mod_env_to_cutoff + mod_lfo * z.mod_lfo_to_cutoff;
        self.filter.tune(cutoff, rate);
        self.volume.advance(frames);
        let target = if self.cut {
            0.0
        } else {
            self.note_gain * volume_gain(&self.volume) * db_to_gain(mod_lfo * z.mod_lfo_to_volume)
        };

        let out = &mut scratch[..n];
        let produced = self.fill(wave, step, out);
        out[produced..].fill(0.0);
        if !self.filter.is_open() {
            self.filter.process(out);
        }
        mix(
            out,
            self.gain,
            target,
            self.pan_left,
            self.pan_right,
            left,
            right,
        );
        self.gain = target;

        let falling = match self.volume.stage() {
            Stage::Release | Stage::Done => true,
            Stage::Decay => self.note_gain * sustain_gain(&self.volume) < CULL_GAIN,
            _ => false,
        };
        self.finished = self.cut
            || produced < n
            || self.volume.stage() == Stage::Done
            || (falling && target < CULL_GAIN);
    }

    /// Reads the sample at the current pitch into `out`; returns how many
    /// frames there were before a sample without a loop ran out.
    fn fill(&mut self, wave: &[i16], step: u64, out: &mut [f32]) -> usize {
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
                let k = (((last - self.pos) / step + 1) as usize).min(out.len() - i);
                self.pos = interpolate(wave, self.pos, step, &mut out[i..i + k]);
                i += k;
            } else {
                let at = |j: usize| fetch(wave, z, looping, j);
                let f = (self.pos & (ONE - 1)) as f32 / ONE as f32;
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

/// Four-point cubic Hermite (Catmull-Rom) interpolation at `f` between `x0`
/// and `x1`; libfluidsynth's default is a four-point interpolator too, so the
/// top octave loses as little as it does there.
#[inline(always)]
fn cubic(xm1: f32, x0: f32, x1: f32, x2: f32, f: f32) -> f32 {
    let c1 = 0.5 * (x1 - xm1);
    let c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2;
    let c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1);
    ((c3 * f + c2) * f + c1) * f + x0
}

/// The inner loop: the caller guarantees every index it reads is in `wave`.
fn interpolate(wave: &[i16], mut pos: u64, step: u64, out: &mut [f32]) -> u64 {
    const SCALE: f32 = 1.0 / ONE as f32;
    for o in out {
        let idx = (pos >> FRACTION_BITS) as usize;
        let f = (pos & (ONE - 1)) as f32 * SCALE;
        let w = &wave[idx - 1..idx + 3];
        *o = cubic(
            f32::from(w[0]),
            f32::from(w[1]),
            f32::from(w[2]),
            f32::from(w[3]),
            f,
        );
        pos += step;
    }
    pos
}

/// Adds `x` to both channels under a gain ramp from `from` to `to`.
fn mix(x: &[f32], from: f32, to: f32, pan_l: f32, pan_r: f32, left: &mut [f32], right: &mut [f32]) {
    let step = (to - from) / x.len().max(1) as f32;
    for (i, ((s, l), r)) in x
        .iter()
        .zip(left.iter_mut())
        .zip(right.iter_mut())
        .enumerate()
    {
        let g = (from + step * (i + 1) as f32) * s;
        *l += g * pan_l;
        *r += g * pan_r;
    }
}
