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

/// Filters `left` and `right` through `first`, then `second`, and adds each
/// frame's output power (`l² + r²`) to `energy`, frame by frame: the
/// K-weighting's measurement. With AVX, the two sections run as one
/// recursion on four `f64` lanes, the second [`SKEW`] frames behind the
/// first (its input is the first's output of that frame), so a frame is one
/// pass of vector arithmetic rather than four scalar sections. A skew of one
/// frame would chain each frame's vector on the one before through the whole
/// section; three frames leave the recursion's own multiply and subtract as
/// the critical path. Every lane does [`StereoBiquad::tick`]'s multiplies and
/// adds in its order, and the powers are added in frame order, so the result
/// is the same to the bit.
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
pub fn cascade_power_avx(
    first: &mut StereoBiquad,
    second: &mut StereoBiquad,
    left: &[f32],
    right: &[f32],
    mut energy: f64,
) -> f64 {
    use std::arch::x86_64::*;

    const SKEW: usize = 3;
    let power = |[l, r]: [f64; 2]| l * l + r * r;
    let n = left.len().min(right.len());
    if n <= SKEW {
        for (&l, &r) in left.iter().zip(right) {
            energy += power(second.tick(first.tick([f64::from(l), f64::from(r)])));
        }
        return energy;
    }
    // The first section's outputs of the last `SKEW` frames, oldest first,
    // in the lower lanes.
    let mut outputs = [_mm256_setzero_pd(); SKEW];
    for (o, (&l, &r)) in outputs.iter_mut().zip(left.iter().zip(right)) {
        let [l, r] = first.tick([f64::from(l), f64::from(r)]);
        *o = _mm256_setr_pd(l, r, 0.0, 0.0);
    }
    let pair = |a: [f64; 2], b: [f64; 2]| _mm256_setr_pd(a[0], a[1], b[0], b[1]);
    let (f, s) = (first.c, second.c);
    let b0 = pair([f.b0; 2], [s.b0; 2]);
    let b1 = pair([f.b1; 2], [s.b1; 2]);
    let b2 = pair([f.b2; 2], [s.b2; 2]);
    let a1 = pair([f.a1; 2], [s.a1; 2]);
    let a2 = pair([f.a2; 2], [s.a2; 2]);
    let mut x1 = pair(first.x1, second.x1);
    let mut x2 = pair(first.x2, second.x2);
    let mut y1 = pair(first.y1, second.y1);
    let mut y2 = pair(first.y2, second.y2);
    for (&l, &r) in left[SKEW..n].iter().zip(&right[SKEW..n]) {
        let input = _mm256_cvtps_pd(_mm_setr_ps(l, r, 0.0, 0.0));
        let x = _mm256_blend_pd::<0b1100>(
            input,
            _mm256_permute2f128_pd::<0x00>(outputs[0], outputs[0]),
        );
        let partial = _mm256_sub_pd(
            _mm256_add_pd(
                _mm256_add_pd(_mm256_mul_pd(b0, x), _mm256_mul_pd(b1, x1)),
                _mm256_mul_pd(b2, x2),
            ),
            _mm256_mul_pd(a2, y2),
        );
        let y = _mm256_sub_pd(partial, _mm256_mul_pd(a1, y1));
        (x2, x1, y2, y1) = (x1, x, y1, y);
        let done = _mm256_extractf128_pd::<1>(y);
        let squares = _mm_mul_pd(done, done);
        energy += _mm_cvtsd_f64(squares) + _mm_cvtsd_f64(_mm_unpackhi_pd(squares, squares));
        outputs = [outputs[1], outputs[2], y];
    }
    let lanes = |v: __m256d| {
        let mut a = [0.0; 4];
        // SAFETY: `a` holds four `f64`.
        unsafe { _mm256_storeu_pd(a.as_mut_ptr(), v) };
        ([a[0], a[1]], [a[2], a[3]])
    };
    (first.x1, second.x1) = lanes(x1);
    (first.x2, second.x2) = lanes(x2);
    (first.y1, second.y1) = lanes(y1);
    (first.y2, second.y2) = lanes(y2);
    for o in outputs {
        energy += power(second.tick(lanes(o).0));
    }
    energy
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx_cascade_measures_as_the_sections_one_after_the_other_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx") {
            return;
        }
        let rate = 44_100.0;
        let shelf = Coefficients::high_shelf(1_680.0, 4.0, 0.71, 0.5, rate);
        let high_pass = Coefficients::high_pass(38.0, 0.5, rate);
        let signal = |i: usize, k: f32| (i as f32 * k).sin() * 0.8 + (i as f32 * 0.001).cos() * 0.1;
        let left: Vec<f32> = (0..5_000).map(|i| signal(i, 0.031)).collect();
        let right: Vec<f32> = (0..5_000).map(|i| signal(i, 0.017)).collect();
        let (mut a1, mut a2) = (StereoBiquad::new(shelf), StereoBiquad::new(high_pass));
        let (mut b1, mut b2) = (a1, a2);
        let (mut want, mut got) = (0.25, 0.25);
        // Calls of every length the special cases have, and a long one.
        let mut at = 0;
        for n in [0, 1, 2, 3, 4, 5, 57, 4_410, 1, 476] {
            let (l, r) = (&left[at..at + n], &right[at..at + n]);
            for (&l, &r) in l.iter().zip(r) {
                let [l, r] = a2.tick(a1.tick([f64::from(l), f64::from(r)]));
                want += l * l + r * r;
            }
            // SAFETY: AVX was detected above.
            got = unsafe { cascade_power_avx(&mut b1, &mut b2, l, r, got) };
            assert_eq!(got.to_bits(), want.to_bits(), "after {n} frames");
            for (a, b) in [(&a1, &b1), (&a2, &b2)] {
                assert_eq!(
                    [a.x1, a.x2, a.y1, a.y2].map(|s| s.map(f64::to_bits)),
                    [b.x1, b.x2, b.y1, b.y2].map(|s| s.map(f64::to_bits))
                );
            }
            at += n;
        }
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
