//! The SF2 low-pass: two poles, a cutoff in cents and a resonance in dB,
//! with the DC gain lowered by half the resonance as libfluidsynth does, so
//! a resonant zone is not louder overall than the same zone without it.

const TWO_PI: f32 = std::f32::consts::TAU;

/// Cutoffs above this share of the sample rate leave the filter out: it would
/// only touch the top of the audible band, and most GM zones sit there.
const OPEN_SHARE: f32 = 0.45;

/// A cutoff must move by more than this many cents before the coefficients
/// are worked out again; a smaller step is not audible.
const RETUNE_CENTS: f32 = 2.0;

#[derive(Debug, Clone, Copy, Default)]
pub struct LowPass {
    b0: f32,
    b1: f32,
    a1: f32,
    a2: f32,
    z1: f32,
    z2: f32,
    cents: f32,
    q: f32,
    gain: f32,
    open: bool,
}

impl LowPass {
    pub fn new(q_db: f32) -> Self {
        // The SF2 Q counts from a flat response; the biquad's from the
        // Butterworth 3 dB dip, hence the shift.
        let q = 10f32.powf((q_db - 3.01) / 20.0);
        Self {
            q,
            gain: 10f32.powf(-q_db / 40.0),
            cents: f32::NEG_INFINITY,
            open: true,
            ..Self::default()
        }
    }

    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Sets the cutoff for the next block.
    pub fn tune(&mut self, cents: f32, rate: f32) {
        if (cents - self.cents).abs() <= RETUNE_CENTS {
            return;
        }
        self.cents = cents;
        let hz = 8.176 * (cents / 1200.0).exp2();
        let was_open = self.open;
        self.open = hz >= OPEN_SHARE * rate && self.q <= 0.71;
        if self.open {
            return;
        }
        if was_open {
            self.z1 = 0.0;
            self.z2 = 0.0;
        }
        let w = TWO_PI * hz.min(OPEN_SHARE * rate) / rate;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * self.q);
        let a0 = 1.0 + alpha;
        let b1 = (1.0 - cos) / a0 * self.gain;
        self.b0 = b1 * 0.5;
        self.b1 = b1;
        self.a1 = -2.0 * cos / a0;
        self.a2 = (1.0 - alpha) / a0;
    }

    /// `[b0, b1, b2, a1, a2]` for the next block. An open filter's pass the
    /// sample through unchanged (`b0 = 1`, the rest 0), so open and closed
    /// voices can share one lock-step pass.
    pub fn coefficients(&self) -> [f32; 5] {
        if self.open {
            [1.0, 0.0, 0.0, 0.0, 0.0]
        } else {
            [self.b0, self.b1, self.b0, self.a1, self.a2]
        }
    }

    /// The state to run the next block from; none while open, where the
    /// identity must add nothing (a filter that closes again starts from
    /// rest, see [`LowPass::tune`]).
    pub fn state(&self) -> (f32, f32) {
        if self.open {
            (0.0, 0.0)
        } else {
            (self.z1, self.z2)
        }
    }

    pub fn set_state(&mut self, z1: f32, z2: f32) {
        self.z1 = z1;
        self.z2 = z2;
    }

    /// Filters a block in place (transposed direct form II), one voice at a
    /// time: the reference the lock-step kernel is checked against.
    #[cfg(test)]
    pub fn process(&mut self, x: &mut [f32]) {
        let (b0, b1, a1, a2) = (self.b0, self.b1, self.a1, self.a2);
        let (mut z1, mut z2) = (self.z1, self.z2);
        for s in x {
            let input = *s;
            let y = b0 * input + z1;
            z1 = b1 * input - a1 * y + z2;
            z2 = b0 * input - a2 * y;
            *s = y;
        }
        self.z1 = z1;
        self.z2 = z2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain_at(hz: f32, cutoff_hz: f32, q_db: f32) -> f32 {
        let rate = 44_100.0;
        let mut f = LowPass::new(q_db);
        f.tune(1200.0 * (cutoff_hz / 8.176).log2(), rate);
        let mut x: Vec<f32> = (0..44_100)
            .map(|i| (TWO_PI * hz * i as f32 / rate).sin())
            .collect();
        f.process(&mut x);
        let tail = &x[22_050..];
        let rms = (tail.iter().map(|v| v * v).sum::<f32>() / tail.len() as f32).sqrt();
        20.0 * (rms * std::f32::consts::SQRT_2).log10()
    }

    #[test]
    fn passes_below_the_cutoff_and_falls_12_db_an_octave_above() {
        assert!(gain_at(100.0, 2000.0, 0.0).abs() < 0.1);
        let (one, two) = (gain_at(8000.0, 2000.0, 0.0), gain_at(16000.0, 2000.0, 0.0));
        assert!(one < -20.0 && two < one - 9.0, "{one} {two}");
    }

    #[test]
    fn resonance_peaks_at_the_cutoff_and_lowers_the_dc_gain() {
        let dc = gain_at(100.0, 2000.0, 12.0);
        assert!((dc + 6.0).abs() < 0.3, "{dc}");
        // The peak stands the resonance (less the Butterworth 3 dB) above DC.
        assert!(gain_at(2000.0, 2000.0, 12.0) > dc + 8.5);
    }

    #[test]
    fn an_open_filter_is_left_out() {
        let mut f = LowPass::new(0.0);
        f.tune(13_500.0, 44_100.0);
        assert!(f.is_open());
        f.tune(9_000.0, 44_100.0);
        assert!(!f.is_open());
    }
}
