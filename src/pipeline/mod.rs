//! The render pipeline of one stream: composer → one synthesizer per layer →
//! layer faders → DC blocker → reverb → leveller → limiter → fade → 16-bit PCM,
//! pulled a few thousand frames at a time. The live stream, `render` and
//! `bench` all drive this one type, so what a benchmark measures and what a
//! file holds is what a listener hears.

pub mod calibration;
#[cfg(test)]
mod crossfade_tests;
mod fader;
mod layer;
pub mod offline;
#[cfg(test)]
mod resume_tests;
pub mod stems;

use std::collections::VecDeque;

use crate::audio::{pcm, DcBlocker, Fade, Leveller, Reverb, ReverbSettings, SoftLimiter};
use crate::music::journey::JourneyDriver;
use crate::music::{Composer, Event, EventKind, Frame, Params, PIANO_CHANNEL};
use std::sync::Arc;

use crate::soundfont::FontSet;
use crate::synth::{build_engine, Engine, EngineError, EngineKind, EngineSettings};
use calibration::Role;
use layer::Layer;

/// Largest piece rendered at once; scratch buffers are this size, allocated
/// once in `new`.
const MAX_BLOCK: usize = 4_410;
/// A stream starts with a fade-in rather than a wall of sound (DESIGN §5).
const FADE_IN_FRAMES: u64 = crate::SAMPLE_RATE as u64 * 3 / 2;
/// A piece resumed mid-way comes back over 200 ms: the listener heard it a
/// moment ago, so a long fade would sound like a new start.
const RESUME_FADE_FRAMES: u64 = crate::SAMPLE_RATE as u64 / 5;
/// A new pad program comes in under the old one, which holds its chord and
/// fades out, over this long: a preset change is a crossfade, not a cut.
const CROSSFADE_FRAMES: u32 = crate::SAMPLE_RATE * 3;

/// Builds a synthesizer in place of a SoundFont engine: tests give a signal
/// generator, so session logic is checked without fonts.
pub type EngineFactory = Arc<dyn Fn() -> Box<dyn Engine> + Send + Sync>;

/// What a renderer builds its synthesizers from: one per layer, all of the
/// same kind over the same fonts.
#[derive(Clone)]
pub struct EngineSource {
    pub kind: EngineKind,
    pub fonts: FontSet,
    pub settings: EngineSettings,
    /// When set, every engine comes from here instead of `kind`.
    pub custom: Option<EngineFactory>,
}

impl EngineSource {
    pub fn new(kind: EngineKind, fonts: &FontSet) -> Self {
        Self {
            kind,
            fonts: fonts.clone(),
            settings: EngineSettings::default(),
            custom: None,
        }
    }

    pub fn build(&self) -> Result<Box<dyn Engine>, EngineError> {
        match &self.custom {
            Some(make) => Ok(make()),
            None => build_engine(self.kind, &self.fonts, self.settings),
        }
    }
}

/// Receives what the mix is made of, block by block, for stems: each layer's
/// dry signal after its fader, and the gain the master stages applied to
/// every frame (leveller × limiter × fade), so a stem processed the same way
/// lines up with the mix sample for sample.
pub trait StemSink {
    fn layer(&mut self, role: Role, left: &[f32], right: &[f32]);
    fn master_gain(&mut self, gains: &[f32]);
}

pub struct Renderer {
    composer: Composer,
    journey: JourneyDriver,
    piano: Layer,
    pad: Layer,
    /// The pad's second synthesizer: the outgoing pad during a crossfade,
    /// otherwise idle (and not rendered) until the next program change.
    spare_pad: Layer,
    dc: DcBlocker,
    reverb: Reverb,
    leveller: Leveller,
    limiter: SoftLimiter,
    fade: Fade,
    /// Events composed but not yet applied, sorted by frame. Bounded: the
    /// composer runs at most half a beat ahead, so this holds those notes
    /// and the note-offs of what is sounding.
    pending: VecDeque<Event>,
    /// One eighth note's events on their way to `pending`, kept so the
    /// render thread does not allocate per eighth.
    half: Vec<Event>,
    position: Frame,
    /// False once the music has been released for its tail: nothing new is
    /// composed, what sounds rings out.
    composing: bool,
    left: Vec<f32>,
    right: Vec<f32>,
    gains: Vec<f32>,
}

impl Renderer {
    pub fn new(params: Params, source: &EngineSource) -> Result<Self, EngineError> {
        let piano = Layer::new(source, Role::Piano, MAX_BLOCK)?;
        let pad = Layer::new(source, Role::Pad, MAX_BLOCK)?;
        let spare_pad = Layer::new(source, Role::Pad, MAX_BLOCK)?;
        Ok(Self {
            journey: JourneyDriver::new(params.clone()),
            composer: Composer::new(params),
            piano,
            pad,
            spare_pad,
            dc: DcBlocker::new(),
            reverb: Reverb::new(ReverbSettings::default()),
            leveller: Leveller::new(),
            limiter: SoftLimiter::new(),
            fade: Fade::fade_in(FADE_IN_FRAMES),
            pending: VecDeque::new(),
            half: Vec::new(),
            position: 0,
            composing: true,
            left: vec![0.0; MAX_BLOCK],
            right: vec![0.0; MAX_BLOCK],
            gains: vec![0.0; MAX_BLOCK],
        })
    }

    pub fn params(&self) -> &Params {
        self.composer.params()
    }

    /// Hands new parameters to the composer, which stages them to the next
    /// eighth note it writes: the sounding notes are never cut.
    pub fn set_params(&mut self, params: Params) {
        self.journey.rehome(params.clone(), self.composer.seconds());
        self.composer.set_params(params);
    }

    /// Frames rendered so far.
    pub fn position(&self) -> Frame {
        self.position
    }

    /// The first frame the composer has not yet written; a control change
    /// applied now is heard from the eighth note that starts here.
    pub fn horizon(&self) -> Frame {
        self.composer.horizon()
    }

    pub fn engine_name(&self) -> &'static str {
        self.piano.engine_name()
    }

    /// Moves a fresh renderer to `frame` by running the composer alone (the
    /// composer is deterministic, so the piece is where it would have been)
    /// and striking there the notes that would still be held, with a short
    /// fade-in. The synthesizers render nothing on the way: this costs the
    /// composer's time only, about a beat's worth of work per beat skipped.
    pub fn skip_to(&mut self, frame: Frame) {
        let mut held: Vec<Event> = Vec::new();
        let mut half = Vec::new();
        while self.composer.horizon() <= frame {
            half.clear();
            self.composer.compose_half(&mut half);
            half.sort();
            for e in half.drain(..) {
                if e.frame >= frame {
                    self.pending.push_back(e);
                    continue;
                }
                match e.kind {
                    EventKind::Program { .. } => self.apply(&e),
                    EventKind::NoteOn { key, .. } => {
                        held.retain(|h| !is_note(h, e.channel, key));
                        held.push(e);
                    }
                    EventKind::NoteOff { key } => held.retain(|h| !is_note(h, e.channel, key)),
                }
            }
        }
        for e in held.into_iter().rev() {
            self.pending.push_front(Event { frame, ..e });
        }
        self.pending.make_contiguous().sort();
        self.position = frame;
        self.fade = Fade::fade_in(RESUME_FADE_FRAMES);
    }

    /// Stops the music where it is: nothing new is played, every sounding
    /// note is released and rings out with the reverb (a render's tail).
    pub fn release(&mut self) {
        self.composing = false;
        self.pending.clear();
        self.piano.release();
        self.pad.release();
        self.spare_pad.release();
    }

    /// Fades the output to silence over `frames`; what follows is silent.
    pub fn fade_out(&mut self, frames: u64) {
        self.fade.start_fade_out(frames);
    }

    /// Renders `frames` more frames and appends them to `out` as interleaved
    /// 16-bit stereo.
    pub fn render(&mut self, frames: usize, out: &mut Vec<i16>) {
        self.render_with(frames, out, None);
    }

    /// As [`Renderer::render`], also handing each block's parts to `stems`.
    pub fn render_with(
        &mut self,
        frames: usize,
        out: &mut Vec<i16>,
        mut stems: Option<&mut dyn StemSink>,
    ) {
        let end = self.position + frames as Frame;
        while self.position < end {
            if self.composing {
                self.compose_through(self.position);
            }
            self.apply_due_events();
            let next_event = self.pending.front().map_or(Frame::MAX, |e| e.frame);
            let horizon = if self.composing {
                self.composer.horizon()
            } else {
                Frame::MAX
            };
            let seg_end = end
                .min(next_event)
                .min(horizon)
                .min(self.position + MAX_BLOCK as Frame);
            let n = (seg_end - self.position) as usize;
            let tap: Option<&mut dyn StemSink> = match stems {
                Some(ref mut s) => Some(&mut **s),
                None => None,
            };
            self.mix_block(n, tap);
            pcm::interleave_i16(&self.left[..n], &self.right[..n], out);
            self.position = seg_end;
        }
    }

    fn mix_block(&mut self, n: usize, stems: Option<&mut dyn StemSink>) {
        let (left, right) = (&mut self.left[..n], &mut self.right[..n]);
        self.piano.render(n);
        self.pad.render(n);
        if !self.spare_pad.is_idle() {
            self.spare_pad.render(n);
            self.pad.absorb(&self.spare_pad, n);
        }
        self.piano.write_to(left, right);
        self.pad.add_to(left, right);
        self.dc.process(left, right);
        self.reverb.process(left, right);
        let mut gains = stems.is_some().then_some(&mut self.gains[..n]);
        self.leveller.process(left, right, gains.as_deref_mut());
        self.limiter.process(left, right, gains.as_deref_mut());
        self.fade.process(left, right, gains);
        if let Some(s) = stems {
            s.layer(Role::Piano, self.piano.left(n), self.piano.right(n));
            s.layer(Role::Pad, self.pad.left(n), self.pad.right(n));
            s.master_gain(&self.gains[..n]);
        }
    }

    fn compose_through(&mut self, frame: Frame) {
        let mut composed = false;
        while self.composer.horizon() <= frame {
            self.journey.before_half(&mut self.composer);
            self.composer.compose_half(&mut self.half);
            self.pending.extend(self.half.drain(..));
            composed = true;
        }
        if composed {
            self.pending.make_contiguous().sort();
        }
    }

    fn apply_due_events(&mut self) {
        while let Some(e) = self.pending.front() {
            if e.frame > self.position {
                break;
            }
            let e = *e;
            self.apply(&e);
            self.pending.pop_front();
        }
    }

    /// Sends `e` to its layer. A new pad program goes to the idle spare,
    /// which becomes the pad, while the old pad holds its chord and fades out
    /// (the composer's note-offs at the change reach the new pad, which does
    /// not hold those notes). A second change within the fade glides the
    /// level in place, as there is no third synthesizer to take it.
    fn apply(&mut self, e: &Event) {
        if e.channel == PIANO_CHANNEL {
            self.piano.apply(e);
            return;
        }
        if let EventKind::Program { program } = e.kind {
            if self.pad.sounds_other_than(program) && self.spare_pad.is_idle() {
                std::mem::swap(&mut self.pad, &mut self.spare_pad);
                self.spare_pad.fade_out(CROSSFADE_FRAMES);
                self.pad.apply(e);
                self.pad.fade_in(CROSSFADE_FRAMES);
                return;
            }
        }
        self.pad.apply(e);
    }
}

fn is_note(e: &Event, channel: u8, key: u8) -> bool {
    e.channel == channel && matches!(e.kind, EventKind::NoteOn { key: k, .. } if k == key)
}
