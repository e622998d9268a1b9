//! Second-order IIR sections for the mix stages that shape or measure the
//! spectrum (DC blocker, K-weighting). Both stereo channels run in lock-step:
//! two independent recursions per frame give the CPU two dependency chains to
//! overlap, which matters because a biquad is latency-bound, not
//! throughput-bound.

use std::f64::consts::PI;

/// Normalised coefficients (a0 = 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    pub b0: f64,
    pub b1: f64,
    pub b2: f64,
    pub a1: f64,
    pub a2: f64,
}

impl Coefficients {
    /// Butterworth-style high-pass (RBJ cookbook form) at `hz` with quality `q`.
    pub fn high_pass(hz: f64, q: f64, sample_rate: f64) -> Self {
        let k = (PI * hz / sample_rate).tan();
        let a0 = 1.0 + k / q + k * k;
        Self {
            b0: 1.0 / a0,
            b1: -2.0 / a0,
            b2: 1.0 / a0,
            a1: 2.0 * (k * k - 1.0) / a0,
            a2: (1.0 - k / q + k * k) / a0,
        }
    }

    /// High shelf from its analogue prototype through the bilinear transform:
    /// `gain_db` above `hz`, `vb_exponent` sets the mid-band gain
    /// (ITU-R BS.1770's pre-filter is one of these).
    pub fn high_shelf(hz: f64, gain_db: f64, q: f64, vb_exponent: f64, sample_rate: f64) -> Self {
        let k = (PI * hz / sample_rate).tan();
        let vh = 10f64.powf(gain_db / 20.0);
        let vb = vh.powf(vb_exponent);
        let a0 = 1.0 + k / q + k * k;
        Self {
            b0: (vh + vb * k / q + k * k) / a0,
            b1: 2.0 * (k * k - vh) / a0,
            b2: (vh - vb * k / q + k * k) / a0,
            a1: 2.0 * (k * k - 1.0) / a0,
            a2: (1.0 - k / q + k * k) / a0,
        }
    }

    /// Magnitude response at `hz`, for tests and documentation.
    pub fn gain_at(&self, hz: f64, sample_rate: f64) -> f64 {
        let w = 2.0 * PI * hz / sample_rate;
        let (c1, s1, c2, s2) = (w.cos(), w.sin(), (2.0 * w).cos(), (2.0 * w).sin());
        let num = (
            self.b0 + self.b1 * c1 + self.b2 * c2,
            -self.b1 * s1 - self.b2 * s2,
        );
        let den = (
            1.0 + self.a1 * c1 + self.a2 * c2,
            -self.a1 * s1 - self.a2 * s2,
        );
        (num.0.hypot(num.1)) / (den.0.hypot(den.1))
    }
}

/// One section's state for both channels, in f64 (a 12 Hz pole sits within
/// 0.2 % of the unit circle, where f32 state drifts). Direct form I, summed
/// so that only `a1·y[n−1]` waits on the previous output: the recursion's
/// critical path is one multiply and one subtract, half that of transposed
/// direct form II, and a biquad is latency-bound.
#[derive(Debug, Clone, Copy)]
pub struct StereoBiquad {
    c: Coefficients,
    x1: [f64; 2],
    x2: [f64; 2],
    y1: [f64; 2],
    y2: [f64; 2],
}

impl StereoBiquad {
    pub fn new(c: Coefficients) -> Self {
        Self {
            c,
            x1: [0.0; 2],
            x2: [0.0; 2],
            y1: [0.0; 2],
            y2: [0.0; 2],
        }
    }

    /// Filters one frame and returns it.
    #[inline]
    pub fn tick(&mut self, x: [f64; 2]) -> [f64; 2] {
        let c = self.c;
        let mut y = [0.0; 2];
        for ch in 0..2 {
            let partial =
                c.b0 * x[ch] + c.b1 * self.x1[ch] + c.b2 * self.x2[ch] - c.a2 * self.y2[ch];
            y[ch] = partial - c.a1 * self.y1[ch];
        }
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_pass_blocks_dc_and_passes_the_audible_band() {
        let c = Coefficients::high_pass(12.0, std::f64::consts::FRAC_1_SQRT_2, 44_100.0);
        assert!(c.gain_at(0.5, 44_100.0) < 0.002);
        assert!((c.gain_at(12.0, 44_100.0) - std::f64::consts::FRAC_1_SQRT_2).abs() < 0.01);
        assert!((c.gain_at(40.0, 44_100.0) - 1.0).abs() < 0.05);
        assert!((c.gain_at(1_000.0, 44_100.0) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn filtering_a_step_settles_to_zero() {
        let c = Coefficients::high_pass(12.0, std::f64::consts::FRAC_1_SQRT_2, 44_100.0);
        let mut f = StereoBiquad::new(c);
        let mut last = [1.0; 2];
        for _ in 0..44_100 {
            last = f.tick([0.25, -0.25]);
        }
        assert!(last[0].abs() < 1e-6 && last[1].abs() < 1e-6, "{last:?}");
    }
}
