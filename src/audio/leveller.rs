//! A slow automatic level for the master bus. Fonts and presets differ by
//! 10 dB and more (FluidR3's pad 88 is far quieter than its 89), and a quiet
//! stream is a bad stream; a fixed gain cannot serve them all. The leveller
//! steers the long-term loudness toward a target, slowly enough (seconds) that
//! phrasing and intensity still shape the dynamics, and leaves the peaks to
//! the limiter that follows.

/// Long-term RMS the leveller aims for: ambient material has a crest factor
/// of 12–16 dB, so peaks land around −4 to −2 dBFS, where DESIGN §5 wants them.
const TARGET_RMS: f32 = 0.126; // −18 dBFS
/// Frames below this level are left out of the measurement, so a pause or a
/// fading tail holds the gain instead of pumping it up into noise.
const GATE_RMS: f32 = 0.001; // −60 dBFS
const MIN_GAIN: f32 = 0.25;
const MAX_GAIN: f32 = 12.0;
/// Starting gain: about right for the fonts we ship with, so the fade-in is
/// not followed by a slow climb.
const INITIAL_GAIN: f32 = 4.0;
/// Seconds over which loudness is measured.
const WINDOW_S: f32 = 3.0;
/// How fast the gain may move, in dB per second: rising slower than falling,
/// so a swell is caught quickly and a quiet passage is not pumped up at once.
const RISE_DB_PER_S: f32 = 1.5;
const FALL_DB_PER_S: f32 = 6.0;

pub struct Leveller {
    mean_square: f32,
    gain: f32,
    alpha: f32,
    rise: f32,
    fall: f32,
}

impl Default for Leveller {
    fn default() -> Self {
        Self::new()
    }
}

impl Leveller {
    pub fn new() -> Self {
        let sr = crate::SAMPLE_RATE as f32;
        let per_sample = |db: f32| 10f32.powf(db / 20.0 / sr);
        Self {
            mean_square: (TARGET_RMS / INITIAL_GAIN).powi(2),
            gain: INITIAL_GAIN,
            alpha: 1.0 - (-1.0 / (WINDOW_S * sr)).exp(),
            rise: per_sample(RISE_DB_PER_S),
            fall: 1.0 / per_sample(FALL_DB_PER_S),
        }
    }

    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Applies the gain in place; sample by sample, so block size does not
    /// change the result.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let power = 0.5 * (*l * *l + *r * *r);
            if power.is_finite() && power > GATE_RMS * GATE_RMS {
                self.mean_square += (power - self.mean_square) * self.alpha;
                let wanted = (TARGET_RMS / self.mean_square.sqrt()).clamp(MIN_GAIN, MAX_GAIN);
                self.gain = if wanted > self.gain {
                    (self.gain * self.rise).min(wanted)
                } else {
                    (self.gain * self.fall).max(wanted)
                };
            }
            *l *= self.gain;
            *r *= self.gain;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f32, seconds: f32) -> Vec<f32> {
        let n = (seconds * crate::SAMPLE_RATE as f32) as usize;
        (0..n)
            .map(|i| amplitude * (i as f32 * 0.0627).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn quiet_and_loud_inputs_converge_to_the_same_level() {
        for amplitude in [0.03, 0.1, 0.5] {
            let mut lev = Leveller::new();
            let mut l = tone(amplitude, 40.0);
            let mut r = l.clone();
            lev.process(&mut l, &mut r);
            let tail = rms(&l[l.len() - 44_100..]);
            let db = 20.0 * (tail / TARGET_RMS).log10();
            assert!(
                db.abs() < 1.5,
                "amplitude {amplitude}: {db:.1} dB off target"
            );
        }
    }

    #[test]
    fn silence_is_not_boosted() {
        let mut lev = Leveller::new();
        let mut l = vec![0.0; 44_100 * 5];
        let mut r = l.clone();
        lev.process(&mut l, &mut r);
        assert!(lev.gain() <= INITIAL_GAIN);
    }

    #[test]
    fn gain_moves_slowly() {
        let mut lev = Leveller::new();
        let mut l = tone(0.01, 1.0);
        let mut r = l.clone();
        lev.process(&mut l, &mut r);
        let db = 20.0 * (lev.gain() / INITIAL_GAIN).log10();
        assert!(db <= RISE_DB_PER_S + 0.01, "rose {db:.2} dB in one second");
    }
}
