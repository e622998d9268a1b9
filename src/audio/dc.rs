//! The DC blocker at the head of the mix. Some fonts' samples carry an
//! offset (FluidR3's pad 89 adds +0.12 FS while it plays): it costs headroom,
//! fools any level meter that is not K-weighted, and turns every start, stop
//! and underrun into a thump. A 12 Hz high-pass removes it without touching
//! the lowest musical note (A0 is 27.5 Hz: −0.4 dB there).

use super::biquad::{Coefficients, StereoBiquad};

const CUTOFF_HZ: f64 = 12.0;

#[derive(Debug, Clone)]
pub struct DcBlocker {
    filter: StereoBiquad,
}

impl Default for DcBlocker {
    fn default() -> Self {
        Self::new()
    }
}

impl DcBlocker {
    pub fn new() -> Self {
        Self {
            filter: StereoBiquad::new(Coefficients::high_pass(
                CUTOFF_HZ,
                std::f64::consts::FRAC_1_SQRT_2,
                f64::from(crate::SAMPLE_RATE),
            )),
        }
    }

    /// Filters a block in place, the filter's state in a local so that it
    /// stays in registers across the block.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let mut filter = self.filter;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let [fl, fr] = filter.tick([f64::from(*l), f64::from(*r)]);
            *l = fl as f32;
            *r = fr as f32;
        }
        self.filter = filter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_tone_loses_its_offset_but_keeps_its_level() {
        let n = 44_100 * 2;
        let tone: Vec<f32> = (0..n)
            .map(|i| 0.12 + 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / 44_100.0).sin())
            .collect();
        let (mut l, mut r) = (tone.clone(), tone);
        DcBlocker::new().process(&mut l, &mut r);
        let tail = &l[n / 2..];
        let mean = tail.iter().sum::<f32>() / tail.len() as f32;
        let peak = tail.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(mean.abs() < 1e-3, "mean {mean}");
        assert!((peak - 0.3).abs() < 0.01, "peak {peak}");
    }
}
