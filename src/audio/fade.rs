//! Fades at the edges of a stream: in at the start (DESIGN §5: never a wall
//! of sound), out at every stop (a render's end, a server shutdown), so no
//! listener hears a cut. Raised-cosine curves: no corner at either end.

/// A fade's state: the gain it applies now and where it is heading.
#[derive(Debug, Clone)]
pub struct Fade {
    /// Frames into the current ramp, and its length.
    at: u64,
    len: u64,
    from: f32,
    to: f32,
}

impl Fade {
    /// Starts silent and rises to unity over `frames`.
    pub fn fade_in(frames: u64) -> Self {
        Self {
            at: 0,
            len: frames.max(1),
            from: 0.0,
            to: 1.0,
        }
    }

    /// From wherever the gain is now, falls to silence over `frames`.
    pub fn start_fade_out(&mut self, frames: u64) {
        self.from = self.gain();
        self.to = 0.0;
        self.at = 0;
        self.len = frames.max(1);
    }

    /// The gain of the next frame.
    pub fn gain(&self) -> f32 {
        if self.at >= self.len {
            return self.to;
        }
        let t = self.at as f64 / self.len as f64;
        let shape = (0.5 - 0.5 * (std::f64::consts::PI * t).cos()) as f32;
        self.from + (self.to - self.from) * shape
    }

    /// True once a fade-out has reached silence.
    pub fn is_silent(&self) -> bool {
        self.at >= self.len && self.to == 0.0
    }

    /// Applies the fade in place, multiplying each frame's gain into `gains`
    /// when given.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32], mut gains: Option<&mut [f32]>) {
        if self.at >= self.len && self.to == 1.0 {
            return;
        }
        for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
            let g = self.gain();
            *l *= g;
            *r *= g;
            if let Some(gs) = gains.as_deref_mut() {
                gs[i] *= g;
            }
            self.at = (self.at + 1).min(self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fades_in_from_silence_to_unity_without_a_corner() {
        let mut f = Fade::fade_in(1_000);
        let (mut l, mut r) = (vec![1.0; 1_200], vec![1.0; 1_200]);
        f.process(&mut l, &mut r, None);
        assert_eq!(l[0], 0.0);
        assert_eq!(l[1_100], 1.0);
        assert!(l.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] < 0.002));
    }

    #[test]
    fn a_fade_out_ends_in_digital_silence_and_stays_there() {
        let mut f = Fade::fade_in(10);
        let (mut l, mut r) = (vec![0.5; 20], vec![0.5; 20]);
        f.process(&mut l, &mut r, None);
        f.start_fade_out(500);
        let (mut l, mut r) = (vec![0.5; 800], vec![-0.5; 800]);
        f.process(&mut l, &mut r, None);
        assert!(f.is_silent());
        assert!(l[500..].iter().chain(&r[500..]).all(|&x| x == 0.0));
        assert!(l.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn a_fade_out_during_a_fade_in_starts_where_the_gain_is() {
        let mut f = Fade::fade_in(1_000);
        let (mut l, mut r) = (vec![1.0; 500], vec![1.0; 500]);
        f.process(&mut l, &mut r, None);
        let now = f.gain();
        f.start_fade_out(100);
        assert_eq!(f.gain(), now);
    }
}
