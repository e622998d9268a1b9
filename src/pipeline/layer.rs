//! One layer of the mix (the piano, the pads): its own synthesizer and a
//! fader. A synthesizer per layer is what lets each be calibrated for its font
//! and balanced against the other, and lets `render --stems` write each one;
//! the cost is one more synthesizer with the same voices, not more voices.

use super::calibration::{self, Role};
use super::EngineSource;
use crate::music::{Event, EventKind};
use crate::synth::{Engine, EngineError};

/// How long a fader takes to reach a new setting (a program change, a new
/// intensity): long enough to be a glide, short enough for the level to be
/// right within the 3 s a listener waits after a preset change.
const GLIDE_FRAMES: u32 = crate::SAMPLE_RATE;

pub struct Layer {
    role: Role,
    source: EngineSource,
    engine: Box<dyn Engine>,
    /// The font's correction for the current program, and the layer's
    /// place in the mix, both in dB; the fader aims at their sum.
    calibration_db: f64,
    balance_db: f64,
    /// True once a program has been measured; the first one sets the fader
    /// at once, later ones glide.
    calibrated: bool,
    gain: f32,
    step: f32,
    glide_left: u32,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl Layer {
    pub fn new(source: &EngineSource, role: Role, max_block: usize) -> Result<Self, EngineError> {
        Ok(Self {
            role,
            source: source.clone(),
            engine: source.build()?,
            calibration_db: 0.0,
            balance_db: calibration::balance_db(role),
            calibrated: false,
            gain: 1.0,
            step: 0.0,
            glide_left: 0,
            left: vec![0.0; max_block],
            right: vec![0.0; max_block],
        })
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    pub fn apply(&mut self, event: &Event) {
        match event.kind {
            EventKind::Program { program } if event.channel == self.role.channel() => {
                match calibration::gain_db(&self.source, self.role, program) {
                    Ok(db) => {
                        self.calibration_db = db;
                        let first = !self.calibrated;
                        self.calibrated = true;
                        self.aim(first);
                    }
                    Err(e) => {
                        tracing::warn!("cannot calibrate {:?} program {program}: {e}", self.role)
                    }
                }
            }
            _ => {}
        }
        self.engine.apply(event);
    }

    /// Releases every sounding note; they ring out on their envelopes.
    pub fn release(&mut self) {
        self.engine.all_notes_off();
    }

    /// Renders `n` frames into the layer's own buffers, through its fader.
    pub fn render(&mut self, n: usize) {
        let (l, r) = (&mut self.left[..n], &mut self.right[..n]);
        self.engine.render(l, r);
        for (a, b) in l.iter_mut().zip(r.iter_mut()) {
            if self.glide_left > 0 {
                self.gain += self.step;
                self.glide_left -= 1;
            }
            *a *= self.gain;
            *b *= self.gain;
        }
    }

    pub fn left(&self, n: usize) -> &[f32] {
        &self.left[..n]
    }

    pub fn right(&self, n: usize) -> &[f32] {
        &self.right[..n]
    }

    pub fn write_to(&self, left: &mut [f32], right: &mut [f32]) {
        left.copy_from_slice(&self.left[..left.len()]);
        right.copy_from_slice(&self.right[..right.len()]);
    }

    pub fn add_to(&self, left: &mut [f32], right: &mut [f32]) {
        for (d, s) in left.iter_mut().zip(&self.left) {
            *d += *s;
        }
        for (d, s) in right.iter_mut().zip(&self.right) {
            *d += *s;
        }
    }

    fn aim(&mut self, now: bool) {
        let target = 10f64.powf((self.calibration_db + self.balance_db) / 20.0) as f32;
        if now {
            self.gain = target;
            self.glide_left = 0;
        } else {
            self.step = (target - self.gain) / GLIDE_FRAMES as f32;
            self.glide_left = GLIDE_FRAMES;
        }
    }
}
