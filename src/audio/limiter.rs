//! A soft limiter for the master bus. Ambient mixes swell slowly (long pad
//! releases stack), so gain is ridden smoothly; a final soft-knee curve catches
//! what the envelope is too slow for, so output never hard-clips or crackles.

/// Linear ceiling the limiter holds sample peaks under: −1.5 dBFS, so that
/// the inter-sample peaks a DAC or a lossy re-encoder reconstructs stay under
/// −1 dBTP (measured in the loudness tests; ambient material has little
/// energy near Nyquist, so overshoot between samples is small).
pub const CEILING: f32 = 0.841;
/// Level above which the soft-knee curve starts bending the waveform.
const KNEE: f32 = 0.66;

#[derive(Clone)]
pub struct SoftLimiter {
    gain: f32,
    release: f32,
}

impl Default for SoftLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftLimiter {
    pub fn new() -> Self {
        // Gain recovers over ~400 ms: slow enough not to pump on a piano attack.
        let release = 1.0 - (-1.0 / (0.4 * crate::SAMPLE_RATE as f32)).exp();
        Self { gain: 1.0, release }
    }

    /// Limits a stereo block in place. Stateful sample by sample, so the result
    /// does not depend on how the stream is cut into blocks. When `gains` is
    /// given, each frame's gain is multiplied into it (stems follow the mix).
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32], gains: Option<&mut [f32]>) {
        if self.idles_through(left, right) {
            let g = self.gain;
            if g != 1.0 {
                left.iter_mut()
                    .chain(right.iter_mut())
                    .for_each(|x| *x *= g);
                if let Some(gs) = gains {
                    gs.iter_mut().for_each(|x| *x *= g);
                }
            }
            return;
        }
        self.limit_frames(left, right, gains);
    }

    /// The limiter proper, frame by frame.
    fn limit_frames(&mut self, left: &mut [f32], right: &mut [f32], mut gains: Option<&mut [f32]>) {
        for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
            let peak = l.abs().max(r.abs());
            let wanted = if peak * self.gain > CEILING {
                CEILING / peak
            } else {
                1.0
            };
            if wanted < self.gain {
                self.gain = wanted;
            } else {
                self.gain += (wanted - self.gain) * self.release;
            }
            if let Some(g) = gains.as_deref_mut() {
                g[i] *= self.gain;
            }
            *l = soft_knee(*l * self.gain);
            *r = soft_knee(*r * self.gain);
        }
    }

    /// True when the frame-by-frame loop would do nothing but multiply by
    /// the gain it has now: every sample is finite and under the knee (so
    /// the wanted gain is 1 and the curve is the identity), and the gain sits
    /// where recovering toward 1 no longer moves it in f32 (at 1, or a few
    /// 10⁻⁴ under it after a limited peak). That is almost every block, and
    /// the shortcut gives the same bits as the loop.
    fn idles_through(&self, left: &[f32], right: &[f32]) -> bool {
        let under = |xs: &[f32]| xs.iter().fold(true, |ok, x| ok & (x.abs() <= KNEE));
        self.gain + (1.0 - self.gain) * self.release == self.gain && under(left) && under(right)
    }
}

/// Identity below the knee; above it, a tanh curve that approaches the ceiling
/// asymptotically, continuous in value and slope at the knee.
fn soft_knee(x: f32) -> f32 {
    let a = x.abs();
    if a <= KNEE || !a.is_finite() {
        return if a.is_finite() { x } else { 0.0 };
    }
    let span = CEILING - KNEE;
    let bent = KNEE + span * ((a - KNEE) / span).tanh();
    bent.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_signal_passes_unchanged() {
        let mut lim = SoftLimiter::new();
        let mut l = vec![0.3_f32, -0.5, 0.65];
        let mut r = l.clone();
        lim.process(&mut l, &mut r, None);
        assert_eq!(l, vec![0.3, -0.5, 0.65]);
    }

    #[test]
    fn loud_signal_never_exceeds_the_ceiling() {
        let mut lim = SoftLimiter::new();
        let mut l: Vec<f32> = (0..44_100).map(|i| 4.0 * (i as f32 * 0.05).sin()).collect();
        let mut r = l.clone();
        lim.process(&mut l, &mut r, None);
        assert!(l.iter().chain(&r).all(|x| x.abs() <= CEILING));
    }

    #[test]
    fn limiting_is_smooth_not_clipped() {
        let mut lim = SoftLimiter::new();
        let input: Vec<f32> = (0..4_410).map(|i| 2.0 * (i as f32 * 0.01).sin()).collect();
        let mut l = input.clone();
        let mut r = input;
        lim.process(&mut l, &mut r, None);
        let max_step = l
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(max_step < 0.05, "largest sample-to-sample step {max_step}");
    }

    #[test]
    fn non_finite_input_becomes_silence() {
        let mut lim = SoftLimiter::new();
        let mut l = vec![f32::NAN, f32::INFINITY];
        let mut r = vec![0.0, f32::NEG_INFINITY];
        lim.process(&mut l, &mut r, None);
        assert!(l
            .iter()
            .chain(&r)
            .all(|x| x.is_finite() && x.abs() <= CEILING));
    }

    /// A limited burst, then a quiet passage long enough for the gain to
    /// settle: the shortcut takes over and must give the loop's bits.
    #[test]
    fn the_shortcut_gives_the_loops_bits() {
        let input: Vec<f32> = (0..200_000)
            .map(|i| {
                let a = if i < 20_000 { 2.0 } else { 0.5 };
                a * (i as f32 * 0.01).sin()
            })
            .collect();
        let mut fast = (input.clone(), input.clone(), vec![1.0; input.len()]);
        let mut lim = SoftLimiter::new();
        for ((l, r), g) in fast
            .0
            .chunks_mut(4_410)
            .zip(fast.1.chunks_mut(4_410))
            .zip(fast.2.chunks_mut(4_410))
        {
            lim.process(l, r, Some(g));
        }
        assert!(lim.gain < 1.0, "the gain settled at 1");
        let mut slow = (input.clone(), input, vec![1.0; fast.2.len()]);
        SoftLimiter::new().limit_frames(&mut slow.0, &mut slow.1, Some(&mut slow.2));
        assert!(fast == slow);
    }

    #[test]
    fn result_does_not_depend_on_block_size() {
        let input: Vec<f32> = (0..10_000)
            .map(|i| 3.0 * (i as f32 * 0.003).sin())
            .collect();
        let mut whole = (input.clone(), input.clone());
        SoftLimiter::new().process(&mut whole.0, &mut whole.1, None);
        let mut pieces = (input.clone(), input);
        let mut lim = SoftLimiter::new();
        for (l, r) in pieces.0.chunks_mut(333).zip(pieces.1.chunks_mut(333)) {
            lim.process(l, r, None);
        }
        assert_eq!(whole, pieces);
    }
}
