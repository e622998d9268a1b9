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
#[cfg(test)]
mod splice_tests;
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
/// Audio played again before a splice, so the reverb and the voices are
/// where they were when the passage first played: 2 s fill the reverb and
/// carry a pad past its attack.
const PREROLL_FRAMES: Frame = crate::SAMPLE_RATE as Frame * 2;
/// How far back a splice may go: as far as a deep client buffer reaches.
pub const MAX_SPLICE_FRAMES: Frame = crate::SAMPLE_RATE as Frame * 2;
/// A checkpoint is taken on the first eighth note at least this long after
/// the last (a few kB each), so the pre-roll is at most this much longer
/// than it needs to be.
const CHECKPOINT_SPACING: Frame = crate::SAMPLE_RATE as Frame / 2;
/// Checkpoints kept: they reach back past the longest splice, the pre-roll
/// and the spacing of two checkpoints.
const CHECKPOINTS: usize = 10;

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
    /// The programs and the notes held now, as events: what a passage
    /// played again must strike first.
    sounding: Vec<Event>,
    /// Where the music can be played again from, oldest first (see
    /// [`Renderer::splice`]).
    checkpoints: VecDeque<Checkpoint>,
}

/// The music as it stood at an eighth note: the composer and journey before
/// composing it, what was sounding, and the master stages' state (the
/// leveller's gain follows the music, so a passage played again must meet
/// the gain it met the first time). The composer is deterministic, so from
/// here the same notes follow. The reverb is not kept (it is the bulk of the
/// state): its tail falls 60 dB in about 1.5 s, so the pre-roll refills it.
struct Checkpoint {
    frame: Frame,
    composer: Composer,
    journey: JourneyDriver,
    sounding: Vec<Event>,
    /// Events composed before the checkpoint for after it.
    pending: Vec<Event>,
    master: Master,
}

/// The stages after the mix whose state carries the music's recent past.
#[derive(Clone)]
struct Master {
    dc: DcBlocker,
    leveller: Leveller,
    limiter: SoftLimiter,
    fade: Fade,
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
            sounding: Vec::new(),
            checkpoints: VecDeque::with_capacity(CHECKPOINTS),
        })
    }

    pub fn params(&self) -> &Params {
        self.composer.params()
    }

    /// Hands new parameters to the composer, heard from the next frame
    /// rendered: what was composed past it and not yet played is taken back
    /// (see [`Composer::rewind_to`]); the sounding notes are never cut.
    pub fn set_params(&mut self, params: Params) {
        if params != *self.composer.params() {
            self.take_back_from(self.position);
        }
        self.journey.rehome(params.clone(), self.composer.seconds());
        self.composer.set_params(params);
    }

    /// Plays the music again from `frame`, a point already rendered, with
    /// `params` in force from there: the listener's buffer still holds
    /// audio past `frame`, and this is what replaces it, so a change is heard
    /// without waiting for that buffer to play out. The renderer goes back to
    /// the last eighth note at least [`PREROLL_FRAMES`] before `frame`,
    /// strikes what was sounding there, and renders up to `frame` unheard,
    /// which puts the same notes in the same reverb; it renders nothing past
    /// `frame`. Returns false, changing nothing, when it cannot: `frame` is
    /// more than [`MAX_SPLICE_FRAMES`] back or in the future, too close to
    /// the start, or the music has been released.
    pub fn splice(&mut self, frame: Frame, params: Params) -> bool {
        let reachable = frame <= self.position && self.position - frame <= MAX_SPLICE_FRAMES;
        let Some(at) = self
            .checkpoints
            .iter()
            .rposition(|c| c.frame + PREROLL_FRAMES <= frame)
            .filter(|_| reachable && self.composing)
        else {
            return false;
        };
        self.checkpoints.truncate(at + 1);
        let Checkpoint {
            frame: from,
            composer,
            journey,
            sounding,
            pending,
            master,
        } = self.checkpoints.pop_back().expect("found above");
        for layer in [&mut self.piano, &mut self.pad, &mut self.spare_pad] {
            layer.silence();
        }
        self.composer = composer;
        self.journey = journey;
        self.reverb.clear();
        Master {
            dc: self.dc,
            leveller: self.leveller,
            limiter: self.limiter,
            fade: self.fade,
        } = master;
        self.pending.clear();
        self.pending.extend(pending);
        self.pending
            .extend(sounding.into_iter().map(|e| Event { frame: from, ..e }));
        self.pending.make_contiguous().sort();
        self.sounding.clear();
        self.position = from;
        let mut unheard = Vec::with_capacity((frame - from) as usize * 2);
        self.render((frame - from) as usize, &mut unheard);
        self.set_params(params);
        true
    }

    /// Drops the piano notes composed to start at or after `frame`, and
    /// their releases, and rewinds the composer to `frame`.
    fn take_back_from(&mut self, frame: Frame) {
        if self.composer.horizon() <= frame {
            return;
        }
        let mut dropped = [false; 128];
        self.pending.retain(|e| {
            if e.channel != PIANO_CHANNEL {
                return true;
            }
            match e.kind {
                EventKind::NoteOn { key, .. } if e.frame >= frame => {
                    dropped[usize::from(key)] = true;
                    false
                }
                EventKind::NoteOff { key } if dropped[usize::from(key)] => {
                    dropped[usize::from(key)] = false;
                    false
                }
                _ => true,
            }
        });
        self.composer.rewind_to(frame);
    }

    /// Frames rendered so far.
    pub fn position(&self) -> Frame {
        self.position
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
            self.journey.before_half(&mut self.composer);
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
        self.piano.sum_to(&self.pad, left, right);
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
            self.checkpoint();
            self.journey.before_half(&mut self.composer);
            self.composer.compose_half(&mut self.half);
            self.pending.extend(self.half.drain(..));
            composed = true;
        }
        if composed {
            self.pending.make_contiguous().sort();
        }
    }

    /// Remembers the music as it stands before the next eighth is composed;
    /// the oldest checkpoint makes room, so memory does not grow.
    fn checkpoint(&mut self) {
        let frame = self.composer.horizon();
        if self
            .checkpoints
            .back()
            .is_some_and(|c| frame < c.frame + CHECKPOINT_SPACING)
        {
            return;
        }
        if self.checkpoints.len() == CHECKPOINTS {
            self.checkpoints.pop_front();
        }
        self.checkpoints.push_back(Checkpoint {
            frame,
            composer: self.composer.clone(),
            journey: self.journey.clone(),
            sounding: self.sounding.clone(),
            pending: self.pending.iter().copied().collect(),
            master: Master {
                dc: self.dc.clone(),
                leveller: self.leveller.clone(),
                limiter: self.limiter.clone(),
                fade: self.fade.clone(),
            },
        });
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
        self.track(e);
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

    /// Keeps `sounding` up to date: one program per channel, the notes held.
    fn track(&mut self, e: &Event) {
        let channel = e.channel;
        match e.kind {
            EventKind::Program { .. } => self
                .sounding
                .retain(|s| s.channel != channel || !matches!(s.kind, EventKind::Program { .. })),
            EventKind::NoteOn { key, .. } | EventKind::NoteOff { key } => {
                self.sounding.retain(|s| !is_note(s, channel, key))
            }
        }
        if !matches!(e.kind, EventKind::NoteOff { .. }) {
            self.sounding.push(*e);
        }
    }
}

fn is_note(e: &Event, channel: u8, key: u8) -> bool {
    e.channel == channel && matches!(e.kind, EventKind::NoteOn { key: k, .. } if k == key)
}
