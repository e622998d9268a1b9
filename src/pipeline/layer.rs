//! One layer of the mix (the piano, the pads): its own synthesizer and a
//! fader. A synthesizer per layer is what lets each be calibrated for its font
//! and balanced against the other, and lets `render --stems` write each one;
//! the cost is one more synthesizer with the same voices, not more voices.

use super::calibration::{self, Role};
use super::fader::Fader;
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
    program: Option<u8>,
    /// True from the first note struck until [`Layer::fade_out`] ends: a
    /// program set on a silent layer takes its level at once (nothing sounds
    /// to jump), one set while notes sound glides there.
    struck: bool,
    /// True while the layer fades out under the layer that took its place.
    leaving: bool,
    fader: Fader,
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
            program: None,
            struck: false,
            leaving: false,
            fader: Fader::new(1.0),
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
                self.program = Some(program);
                match calibration::gain_db(&self.source, self.role, program) {
                    Ok(db) => {
                        self.calibration_db = db;
                        self.aim(!self.struck);
                    }
                    Err(e) => {
                        tracing::warn!("cannot calibrate {:?} program {program}: {e}", self.role)
                    }
                }
            }
            EventKind::NoteOn { .. } => self.struck = true,
            _ => {}
        }
        self.engine.apply(event);
    }

    /// Releases every sounding note; they ring out on their envelopes.
    pub fn release(&mut self) {
        self.engine.all_notes_off();
    }

    /// Stops every voice at once and forgets what was struck: the layer
    /// starts over, as when the renderer goes back to play a passage again.
    pub fn silence(&mut self) {
        self.engine.sound_off();
        self.struck = false;
        self.leaving = false;
    }

    /// True when a change to `program` should crossfade: the layer has
    /// sounded with another program, so its notes would ring on in the new
    /// one's level.
    pub fn sounds_other_than(&self, program: u8) -> bool {
        self.struck && self.program != Some(program)
    }

    /// True when nothing sounds and no fade is under way: the layer can take
    /// a new program at once.
    pub fn is_idle(&self) -> bool {
        !self.struck && !self.leaving
    }

    /// Fades the layer to silence over `frames`, its notes held, then stops
    /// them: the outgoing half of a crossfade.
    pub fn fade_out(&mut self, frames: u32) {
        self.leaving = true;
        self.fader.fade_out(frames);
    }

    /// Brings the layer up from silence to its level over `frames`: the
    /// incoming half of a crossfade.
    pub fn fade_in(&mut self, frames: u32) {
        self.fader.fade_in_to(self.target(), frames);
    }

    /// Renders `n` frames into the layer's own buffers, through its fader.
    pub fn render(&mut self, n: usize) {
        let (l, r) = (&mut self.left[..n], &mut self.right[..n]);
        self.engine.render(l, r);
        self.fader.apply(l, r);
        if self.leaving && !self.fader.is_moving() {
            self.leaving = false;
            self.struck = false;
            self.engine.sound_off();
        }
    }

    pub fn left(&self, n: usize) -> &[f32] {
        &self.left[..n]
    }

    pub fn right(&self, n: usize) -> &[f32] {
        &self.right[..n]
    }

    /// Writes the sum of this layer and `other` into the mix: one pass
    /// instead of a copy and an add.
    pub fn sum_to(&self, other: &Layer, left: &mut [f32], right: &mut [f32]) {
        for ((d, a), b) in left.iter_mut().zip(&self.left).zip(&other.left) {
            *d = *a + *b;
        }
        for ((d, a), b) in right.iter_mut().zip(&self.right).zip(&other.right) {
            *d = *a + *b;
        }
    }

    /// Adds what `other` rendered into this layer's buffers, so the two
    /// pads of a crossfade are one pad to the mix and to its stem.
    pub fn absorb(&mut self, other: &Layer, n: usize) {
        for (d, s) in self.left[..n].iter_mut().zip(&other.left[..n]) {
            *d += *s;
        }
        for (d, s) in self.right[..n].iter_mut().zip(&other.right[..n]) {
            *d += *s;
        }
    }

    fn target(&self) -> f32 {
        10f64.powf((self.calibration_db + self.balance_db) / 20.0) as f32
    }

    fn aim(&mut self, now: bool) {
        if now {
            self.fader.set(self.target());
        } else {
            self.fader.glide_to(self.target(), GLIDE_FRAMES);
        }
    }
}
