//! A layer's fader: the gain its calibration and balance call for, reached
//! by a glide, and the two halves of a crossfade. A crossfade's curves are
//! equal-power (sine in, cosine out): two pads that share no phase add in
//! power, so the sum holds its loudness where a linear crossfade dips 3 dB
//! in the middle.

use std::f64::consts::FRAC_PI_2;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Linear,
    /// Rising as sin(πt/2): a crossfade's incoming half.
    SineIn,
    /// Falling as cos(πt/2): a crossfade's outgoing half.
    CosineOut,
}

impl Shape {
    /// How far from `from` to `to` the gain is at `t` ∈ [0, 1].
    fn progress(self, t: f64) -> f64 {
        match self {
            Shape::Linear => t,
            Shape::SineIn => (FRAC_PI_2 * t).sin(),
            Shape::CosineOut => 1.0 - (FRAC_PI_2 * t).cos(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fader {
    from: f32,
    to: f32,
    at: u32,
    len: u32,
    shape: Shape,
}

impl Fader {
    pub fn new(gain: f32) -> Self {
        Self {
            from: gain,
            to: gain,
            at: 0,
            len: 0,
            shape: Shape::Linear,
        }
    }

    /// The gain of the next frame.
    pub fn gain(&self) -> f32 {
        if self.at >= self.len {
            return self.to;
        }
        let t = f64::from(self.at) / f64::from(self.len);
        self.from + (self.to - self.from) * self.shape.progress(t) as f32
    }

    /// True while a glide or a fade is under way.
    pub fn is_moving(&self) -> bool {
        self.at < self.len
    }

    pub fn set(&mut self, gain: f32) {
        *self = Self::new(gain);
    }

    /// From the gain now to `gain` in a straight line over `frames`.
    pub fn glide_to(&mut self, gain: f32, frames: u32) {
        self.start(self.gain(), gain, frames, Shape::Linear);
    }

    /// From silence up to `gain`: the new layer of a crossfade.
    pub fn fade_in_to(&mut self, gain: f32, frames: u32) {
        self.start(0.0, gain, frames, Shape::SineIn);
    }

    /// From the gain now down to silence: the old layer of a crossfade.
    pub fn fade_out(&mut self, frames: u32) {
        self.start(self.gain(), 0.0, frames, Shape::CosineOut);
    }

    /// Multiplies both channels by the gain, frame by frame.
    pub fn apply(&mut self, left: &mut [f32], right: &mut [f32]) {
        if !self.is_moving() {
            let g = self.to;
            left.iter_mut().for_each(|x| *x *= g);
            right.iter_mut().for_each(|x| *x *= g);
            return;
        }
        for (a, b) in left.iter_mut().zip(right.iter_mut()) {
            let g = self.gain();
            self.at = self.at.saturating_add(1).min(self.len);
            *a *= g;
            *b *= g;
        }
    }

    fn start(&mut self, from: f32, to: f32, frames: u32, shape: Shape) {
        *self = Self {
            from,
            to,
            at: 0,
            len: frames.max(1),
            shape,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &mut Fader, frames: usize) -> Vec<f32> {
        let (mut l, mut r) = (vec![1.0; frames], vec![1.0; frames]);
        f.apply(&mut l, &mut r);
        assert_eq!(l, r);
        l
    }

    #[test]
    fn a_glide_is_a_straight_line_that_ends_on_its_target() {
        let mut f = Fader::new(1.0);
        f.glide_to(0.5, 100);
        let g = run(&mut f, 200);
        assert_eq!(g[0], 1.0);
        assert!((g[50] - 0.75).abs() < 1e-6);
        assert!(g[100..].iter().all(|&x| x == 0.5));
        assert!(!f.is_moving());
    }

    #[test]
    fn a_crossfade_holds_the_power_of_the_sum() {
        let (mut old, mut new) = (Fader::new(0.8), Fader::new(0.0));
        old.fade_out(1000);
        new.fade_in_to(0.8, 1000);
        let (a, b) = (run(&mut old, 1200), run(&mut new, 1200));
        for (x, y) in a.iter().zip(&b) {
            let power = x * x + y * y;
            assert!((power - 0.64).abs() < 1e-3, "power {power}");
        }
        assert_eq!((a[1100], b[1100]), (0.0, 0.8));
    }

    #[test]
    fn each_step_is_small_a_fade_never_clicks() {
        let mut f = Fader::new(1.0);
        f.fade_out(44_100);
        let g = run(&mut f, 44_200);
        let largest = g
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(largest < 1e-4, "step {largest}");
    }
}
