//! The render pipeline of one session: composer → engine → reverb → leveller
//! → limiter → 16-bit PCM, pulled a few thousand frames at a time. The offline `render`
//! and `bench` commands drive the very same type as the live stream, so what a
//! benchmark measures is what a listener hears.

use std::collections::VecDeque;

use crate::audio::{pcm, Leveller, Reverb, ReverbSettings, SoftLimiter};
use crate::music::{Composer, Event, EventKind, Frame, Params};
use crate::synth::Engine;

/// Largest piece rendered at once; scratch buffers are this size, allocated
/// once in `new`.
const MAX_BLOCK: usize = 4_410;
/// A stream starts with a fade-in rather than a wall of sound (DESIGN §5).
const FADE_IN_FRAMES: Frame = crate::SAMPLE_RATE as Frame * 3 / 2;

pub struct Renderer {
    composer: Composer,
    engine: Box<dyn Engine>,
    reverb: Reverb,
    leveller: Leveller,
    limiter: SoftLimiter,
    /// Events composed but not yet applied, sorted by frame. Bounded: the
    /// composer runs at most half a beat ahead, so this holds those notes
    /// and the note-offs of what is sounding.
    pending: VecDeque<Event>,
    position: Frame,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl Renderer {
    pub fn new(params: Params, engine: Box<dyn Engine>) -> Self {
        Self {
            composer: Composer::new(params),
            engine,
            reverb: Reverb::new(ReverbSettings::default()),
            leveller: Leveller::new(),
            limiter: SoftLimiter::new(),
            pending: VecDeque::new(),
            position: 0,
            left: vec![0.0; MAX_BLOCK],
            right: vec![0.0; MAX_BLOCK],
        }
    }

    pub fn params(&self) -> &Params {
        self.composer.params()
    }

    /// Hands new parameters to the composer, which stages them to the next
    /// eighth note it writes: the sounding notes are never cut.
    pub fn set_params(&mut self, params: Params) {
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
        self.engine.name()
    }

    /// Renders `frames` more frames and appends them to `out` as interleaved
    /// 16-bit stereo.
    pub fn render(&mut self, frames: usize, out: &mut Vec<i16>) {
        let end = self.position + frames as Frame;
        while self.position < end {
            self.compose_through(self.position);
            self.apply_due_events();
            let next_event = self.pending.front().map_or(Frame::MAX, |e| e.frame);
            let seg_end = end
                .min(next_event)
                .min(self.composer.horizon())
                .min(self.position + MAX_BLOCK as Frame);
            let n = (seg_end - self.position) as usize;
            let (left, right) = (&mut self.left[..n], &mut self.right[..n]);
            self.engine.render(left, right);
            fade_in(self.position, left, right);
            self.reverb.process(left, right);
            self.leveller.process(left, right);
            self.limiter.process(left, right);
            pcm::interleave_i16(left, right, out);
            self.position = seg_end;
        }
    }

    fn compose_through(&mut self, frame: Frame) {
        let mut composed = false;
        while self.composer.horizon() <= frame {
            let mut half = Vec::new();
            self.composer.compose_half(&mut half);
            self.pending.extend(half);
            composed = true;
        }
        if composed {
            self.pending
                .make_contiguous()
                .sort_by_key(|e| (e.frame, order(&e.kind)));
        }
    }

    fn apply_due_events(&mut self) {
        while let Some(e) = self.pending.front() {
            if e.frame > self.position {
                break;
            }
            self.engine.apply(e);
            self.pending.pop_front();
        }
    }
}

/// At one frame, programs are set before notes, and a note is released before
/// the same key is struck again.
fn order(kind: &EventKind) -> u8 {
    match kind {
        EventKind::Program { .. } => 0,
        EventKind::NoteOff { .. } => 1,
        EventKind::NoteOn { .. } => 2,
    }
}

fn fade_in(start: Frame, left: &mut [f32], right: &mut [f32]) {
    if start >= FADE_IN_FRAMES {
        return;
    }
    for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
        let t = ((start + i as Frame) as f32 / FADE_IN_FRAMES as f32).min(1.0);
        let g = t * t;
        *l *= g;
        *r *= g;
    }
}
