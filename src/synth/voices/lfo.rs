//! The SF2 low-frequency oscillators: a triangle that stays at zero through
//! its delay, then starts upwards from zero.

use super::zone::LfoSettings;

#[derive(Debug, Clone, Copy)]
pub struct Lfo {
    delay_left: f32,
    /// Phase per frame, in cycles.
    step: f32,
    phase: f32,
}

impl Lfo {
    pub fn new(s: &LfoSettings, rate: f32) -> Self {
        Self {
            delay_left: (s.delay * rate).max(0.0),
            step: (s.frequency / rate).clamp(0.0, 0.5),
            phase: 0.0,
        }
    }

    /// Moves on by `frames` and returns the value, −1 to 1.
    pub fn advance(&mut self, frames: f32) -> f32 {
        let run = frames - self.delay_left;
        if run <= 0.0 {
            self.delay_left -= frames;
            return 0.0;
        }
        self.delay_left = 0.0;
        // Under 2^31, truncating through `i32` is `fract`'s `trunc`, without
        // the library call baseline x86-64 makes for it; the phase stays
        // under 1 + 0.5 a frame.
        let phase = self.phase + run * self.step;
        self.phase = phase - phase as i32 as f32;
        triangle(self.phase)
    }
}

fn triangle(phase: f32) -> f32 {
    if phase < 0.25 {
        4.0 * phase
    } else if phase < 0.75 {
        2.0 - 4.0 * phase
    } else {
        4.0 * phase - 4.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_through_the_delay_then_a_triangle_from_zero_upwards() {
        let mut lfo = Lfo::new(
            &LfoSettings {
                delay: 0.5,
                frequency: 1.0,
            },
            100.0,
        );
        assert_eq!(lfo.advance(50.0), 0.0);
        assert!((lfo.advance(25.0) - 1.0).abs() < 1e-6);
        assert!((lfo.advance(50.0) + 1.0).abs() < 1e-6);
        assert!(lfo.advance(25.0).abs() < 1e-6);
    }
}
