//! The composer: half a beat at a time, so a live stream can steer it between
//! eighth notes, and deterministic, so a seed always yields the same piece.
//!
//! Ambient time comes from four things running at unrelated rates: phrases
//! of a few chords held for several bars each (lengths drawn per chord), a
//! piano motif on a loop whose length in eighths is odd, a single "bell" note
//! on a longer odd loop, and slow sine curves over minutes (density, register,
//! brightness, pad presence) around the listener's intensity. Nothing lines
//! up with anything else for long, so no bar comes back exactly.

use std::f64::consts::TAU;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::chords::{ChordSpec, Phrase, MAX_STEPS};
use super::event::{Event, EventKind, Frame, PAD_CHANNEL, PIANO_CHANNEL};
use super::motif::{Motif, MotifNote};
use super::params::Params;
use super::style::Style;
use super::theory::Scale;
use super::voicing::{self, Voicing};
use crate::SAMPLE_RATE;

pub(crate) const BEATS_PER_BAR: u32 = 4;
/// The motif changes one note every third statement...
const MUTATE_EVERY_STATEMENTS: u32 = 3;
/// ...every fourth statement is a fragment or an augmentation of it...
const TRANSFORM_EVERY_STATEMENTS: u32 = 4;
/// ...and after this many statements (about ten minutes) a new idea begins.
const NEW_MOTIF_EVERY_STATEMENTS: u32 = 48;
/// The bell note moves to a neighbouring chord tone every fifth time.
const MOVE_BELL_EVERY: u32 = 5;
/// Chance that the next phrase is a varied return of this one rather than
/// a new one.
const RETURN_CHANCE: f64 = 0.6;
/// How far the arc moves density, brightness (velocity) and pad level away
/// from the listener's intensity, and the piano's register in semitones.
const ARC_DENSITY: f32 = 0.3;
const ARC_BRIGHTNESS: f32 = 0.2;
const ARC_PAD_VELOCITY: f32 = 6.0;
const ARC_REGISTER: f32 = 4.0;
/// Extra piano velocity while the pad rests.
const SOLO_VELOCITY: f32 = 12.0;
/// Intensity reaches a new value over this many beats instead of jumping.
const GLIDE_BEATS: u8 = 3;
/// Late by up to 40 ms, never early: early would land before the beat that
/// was asked for and break the horizon promise.
const MAX_JITTER: Frame = SAMPLE_RATE as Frame * 40 / 1000;
/// General MIDI's acoustic grand: the piano channel's only program.
pub const PIANO_PROGRAM: u8 = 0;
/// The bell sounds above the motif's floor by this range of semitones.
const BELL_RANGE: (i32, i32) = (14, 26);
const BELL_BEATS: f64 = 6.0;

/// Which layers a phrase uses: both, or one of them alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texture {
    Both,
    PianoAlone,
    PadAlone,
}

/// How one statement of the motif is played: transposed to the chord
/// sounding when it begins, whole, as its first half, or at half speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Whole,
    Fragment,
    Augmented,
}

#[derive(Debug, Clone, Copy)]
struct Statement {
    root: u8,
    form: Form,
    shift: i32,
}

/// Composes an endless piece for piano and pad.
///
/// Its memory is a fixed set of arrays (two phrases, the pad plan, the motif,
/// the sounding notes) and a few counters that wrap, so it can run for days
/// without growing.
#[derive(Debug, Clone)]
pub struct Composer {
    /// Target parameters; the fields below are what is actually in force.
    params: Params,
    scale: Scale,
    seed: u64,
    pad_program: u8,
    intensity: f32,
    glide_target: f32,
    glide_left: u8,
    rng: ChaCha8Rng,
    /// Exact frame position; rounding only on output keeps tempo drift-free.
    position: f64,
    /// Seconds of music so far: the clock of the long-form arc, which does
    /// not care about tempo changes.
    seconds: f64,
    /// Per-seed stretch of the arc's periods, so two seeds breathe apart.
    arc_stretch: f64,
    beat_in_phrase: u32,
    /// Whether the next half to compose is the second eighth of its beat.
    off_beat: bool,
    phrases: u32,
    started: bool,
    phrase: Phrase,
    /// Next phrase, decided a phrase early so that the pad's plan can look
    /// past the phrase end into the real continuation.
    upcoming: Phrase,
    chord: ChordSpec,
    /// Voicing of each step of the phrase, planned together at its start.
    plan: [Voicing; MAX_STEPS],
    /// Last pad voicing, kept while the pad rests to lead the next one.
    voicing: Option<Voicing>,
    pad_sounding: bool,
    /// Beats the pad has sounded, for its breathing loop (wraps).
    pad_beats: u32,
    texture: Texture,
    motif: Motif,
    motif_eighth: u32,
    statements: u32,
    statement: Statement,
    bell_eighth: u32,
    bells: u32,
    /// Scale degree above the tonic the bell aims for.
    bell_degree: i32,
    /// Onset and pending note-off frame per piano key: at most one note per
    /// key sounds.
    piano_offs: [Option<(Frame, Frame)>; 128],
}

impl Composer {
    /// Out-of-range values are clamped rather than trusted, so a caller that
    /// skipped validation gets odd music, not a panic.
    pub fn new(params: Params) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let style = Style::of(params.mode);
        let phrase = Phrase::generate(style, params.mode, None, &mut rng);
        let motif = Motif::generate(&mut rng);
        let intensity = unit(params.intensity);
        Self {
            scale: Scale::new(params.key, params.mode),
            seed: params.seed,
            pad_program: params.pad_program.min(127),
            intensity,
            glide_target: intensity,
            glide_left: 0,
            position: 0.0,
            seconds: 0.0,
            arc_stretch: 0.9 + 0.2 * (params.seed % 101) as f64 / 100.0,
            beat_in_phrase: 0,
            off_beat: false,
            phrases: 0,
            started: false,
            chord: phrase.first(),
            upcoming: phrase.clone(),
            phrase,
            plan: [[0; 4]; MAX_STEPS],
            voicing: None,
            pad_sounding: false,
            pad_beats: 0,
            texture: Texture::Both,
            motif,
            motif_eighth: 0,
            statements: 0,
            statement: Statement {
                root: 0,
                form: Form::Whole,
                shift: 0,
            },
            bell_eighth: 0,
            bells: 0,
            bell_degree: rng.gen_range(2..=6),
            piano_offs: [None; 128],
            rng,
            params,
        }
    }

    /// The parameters now in force: after [`Self::set_params`], the new
    /// targets, even before a glide or staged change has completed.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Staged: structural changes (key, mode, bpm, seed) take effect from the
    /// next eighth note composed; intensity glides over a few beats. A key,
    /// mode or seed change starts a new phrase on the new tonic on that
    /// eighth, voice-led from the sounding pad; a pad program change waits
    /// for the next bar line.
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
    }

    /// First frame not yet composed: all events with frame < horizon() are
    /// already emitted; every event emitted later has frame >= horizon() at the
    /// time of the call.
    pub fn horizon(&self) -> Frame {
        self.position.round() as Frame
    }

    /// Takes back what was composed from `frame` on, so that a change made
    /// now is heard from `frame` rather than from the next eighth note: the
    /// composer goes on from `frame` as if a new eighth started there. The
    /// caller drops the piano notes composed to start at or after `frame`
    /// (they were never heard) and keeps everything else, so no sounding
    /// note is cut; the pad's chord, struck on the eighth, rings on. The
    /// beat grid moves by the part of the eighth taken back, which nobody
    /// hears in music without a drum. A `frame` at or past the horizon
    /// changes nothing.
    pub fn rewind_to(&mut self, frame: Frame) {
        let horizon = self.horizon();
        if frame >= horizon {
            return;
        }
        for slot in &mut self.piano_offs {
            if slot.is_some_and(|(on, _)| on >= frame) {
                *slot = None;
            }
        }
        let back = self.position - frame as f64;
        self.position = frame as f64;
        self.seconds = (self.seconds - back / f64::from(SAMPLE_RATE)).max(0.0);
    }

    /// Seconds composed so far.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// True when the next eighth note begins a phrase: where a journey's
    /// step is staged, as the composer starts a new phrase there anyway.
    pub fn at_phrase_start(&self) -> bool {
        self.beat_in_phrase == 0 && !self.off_beat
    }

    /// Frames in 8 bars at the current bpm (phrases themselves vary in
    /// length; this is the unit the renderer budgets by).
    pub fn phrase_frames(&self) -> Frame {
        (beat_frames(self.params.bpm) * 32.0).round() as Frame
    }

    /// Composes exactly one more beat and appends its events to `out`
    /// (unsorted): its two eighth-note halves.
    pub fn compose_beat(&mut self, out: &mut Vec<Event>) {
        self.compose_half(out);
        self.compose_half(out);
    }

    /// Composes the next eighth note (half a beat) and appends its events to
    /// `out` (unsorted). A live stream composes in halves so that a change
    /// of key, mode, tempo or seed is heard from the next eighth rather than
    /// the next beat; phrase, chord and intensity decisions are still taken
    /// on the beat. Piano note-offs are held back until the half they fall
    /// in, which lets a retriggered key be released early instead of
    /// overlapping.
    pub fn compose_half(&mut self, out: &mut Vec<Event>) {
        let beat_len = beat_frames(self.params.bpm);
        let half_len = beat_len / 2.0;
        let start = self.horizon();
        let end = (self.position + half_len).round() as Frame;

        if !self.started {
            self.started = true;
            out.push(program(start, PIANO_CHANNEL, PIANO_PROGRAM));
            out.push(program(start, PAD_CHANNEL, self.pad_program));
        }
        let harmony_changed = self.apply_structure();
        let on_beat = !self.off_beat;
        if on_beat {
            self.glide_intensity();
            if self.beat_in_phrase == 0 && !harmony_changed {
                self.begin_phrase(start, out);
            }
        }
        self.compose_pad(harmony_changed, on_beat, start, out);

        let jitter = MAX_JITTER.min((end - start).saturating_sub(1));
        self.compose_piano(start, jitter, beat_len, out);
        self.release_piano_before(end, out);

        self.position += half_len;
        self.seconds += half_len / f64::from(SAMPLE_RATE);
        if self.off_beat {
            self.beat_in_phrase += 1;
            if self.beat_in_phrase >= self.phrase.beats() {
                self.beat_in_phrase = 0;
            }
        }
        self.off_beat = !self.off_beat;
    }

    /// Composes `bars` bars of 4/4 for offline rendering: sorted (at equal
    /// frames Program, then NoteOff, then NoteOn) and self-contained, every
    /// note still sounding released at the end. The pad re-attacks on the next
    /// beat composed, so composing on afterwards stays consistent.
    pub fn compose_bars(&mut self, bars: u32) -> Vec<Event> {
        let mut out = Vec::new();
        for _ in 0..u64::from(bars) * u64::from(BEATS_PER_BAR) {
            self.compose_beat(&mut out);
        }
        self.release_all(&mut out);
        out.sort();
        out
    }

    /// Releases every note still sounding at the horizon: the end of a
    /// fixed-length piece. The pad re-attacks on the next beat composed.
    pub fn release_all(&mut self, out: &mut Vec<Event>) {
        let end = self.horizon();
        for (key, off) in (0u8..).zip(self.piano_offs.iter_mut()) {
            if off.take().is_some() {
                out.push(note_off(end, PIANO_CHANNEL, key));
            }
        }
        self.release_pad(end, out);
    }

    /// Brings key, mode and seed into force; true when the harmony restarts
    /// in the new setting (a new first phrase, on its tonic, from this half).
    fn apply_structure(&mut self) -> bool {
        let mut changed = false;
        if self.params.seed != self.seed {
            self.seed = self.params.seed;
            self.rng = ChaCha8Rng::seed_from_u64(self.seed);
            self.motif = Motif::generate(&mut self.rng);
            changed = true;
        }
        let scale = Scale::new(self.params.key, self.params.mode);
        if changed || scale != self.scale {
            self.scale = scale;
            let style = Style::of(scale.mode);
            self.phrase = Phrase::generate(style, scale.mode, None, &mut self.rng);
            self.choose_upcoming();
            self.beat_in_phrase = 0;
            self.texture = Texture::Both;
            changed = true;
        }
        changed
    }

    fn glide_intensity(&mut self) {
        let target = unit(self.params.intensity);
        if target != self.glide_target {
            self.glide_target = target;
            self.glide_left = GLIDE_BEATS;
        }
        if self.glide_left > 0 {
            self.intensity += (target - self.intensity) / f32::from(self.glide_left);
            self.glide_left -= 1;
        }
    }

    fn style(&self) -> &'static Style {
        Style::of(self.scale.mode)
    }

    /// The long-form arc now: density, register, brightness and pad
    /// presence, each -1..1. Sines that start at 0, so every piece opens at
    /// the listener's intensity and then breathes around it.
    fn arc(&self) -> [f32; 4] {
        let minutes = self.seconds / 60.0;
        self.style()
            .arc_minutes
            .map(|period| (TAU * minutes / (period * self.arc_stretch)).sin() as f32)
    }

    /// Density of the piano now: the intensity moved by the arc.
    fn density(&self) -> f32 {
        unit(self.intensity + ARC_DENSITY * self.arc()[0])
    }

    /// A new phrase: the one planned a phrase ago, and a texture for it.
    /// The first phrase always has both layers, and a solo is always
    /// followed by both, so rests stay passages rather than the norm.
    fn begin_phrase(&mut self, at: Frame, out: &mut Vec<Event>) {
        if self.phrases > 0 {
            self.phrase.clone_from(&self.upcoming);
            let [density, _, _, presence] = self.arc();
            let style = self.style();
            let pad_alone = style.pad_alone * (1.0 - 0.6 * density);
            let piano_alone = style.piano_alone * (1.0 - 0.6 * presence);
            let r: f32 = self.rng.gen();
            self.texture = if self.texture != Texture::Both {
                Texture::Both
            } else if r < pad_alone {
                Texture::PadAlone
            } else if r < pad_alone + piano_alone {
                Texture::PianoAlone
            } else {
                Texture::Both
            };
            if self.texture == Texture::PianoAlone {
                self.release_pad(at, out);
            }
        }
        self.phrases = self.phrases.wrapping_add(1);
        self.choose_upcoming();
    }

    /// Decides the phrase after this one: usually a varied return, else a
    /// new phrase; never one that repeats the chord across the join.
    fn choose_upcoming(&mut self) {
        let style = self.style();
        let mode = self.scale.mode;
        let last = self.phrase.last_degree();
        if self.rng.gen_bool(RETURN_CHANCE) {
            self.upcoming.clone_from(&self.phrase);
            self.upcoming.vary(style, mode, &mut self.rng);
            if self.upcoming.first().degree != last {
                return;
            }
        }
        self.upcoming = Phrase::generate(style, mode, Some(last), &mut self.rng);
    }

    /// The pad: a new step of the phrase on its first beat, a return after a
    /// rest, or a pending program change on the next bar line.
    fn compose_pad(
        &mut self,
        harmony_changed: bool,
        on_beat: bool,
        at: Frame,
        out: &mut Vec<Event>,
    ) {
        let (index, starts) = self.phrase.at_beat(self.beat_in_phrase);
        let plays = self.texture != Texture::PianoAlone;
        if harmony_changed || (on_beat && starts) {
            self.chord = self.phrase.chord(index);
            if index == 0 {
                self.plan_from(0);
            }
            if plays {
                self.sound_chord(self.plan[index], at, out);
            }
            return;
        }
        if !on_beat {
            return;
        }
        let switch = self.params.pad_program.min(127) != self.pad_program;
        if !self.pad_sounding && switch {
            self.pad_program = self.params.pad_program.min(127);
            out.push(program(at, PAD_CHANNEL, self.pad_program));
        }
        let bar_line = self.beat_in_phrase.is_multiple_of(BEATS_PER_BAR);
        if plays && (!self.pad_sounding || (switch && bar_line)) {
            self.sound_chord(self.plan[index], at, out);
        } else if self.pad_sounding {
            self.breathe(at, out);
        }
    }

    /// Re-strikes one held voice of the pad (a different one each time)
    /// on the pad's own loop: the chord stays, its colour moves.
    fn breathe(&mut self, at: Frame, out: &mut Vec<Event>) {
        self.pad_beats = self.pad_beats.wrapping_add(1);
        let breath = self.style().pad_breath_beats;
        let Some(voicing) = self.voicing else {
            return;
        };
        if !self.pad_beats.is_multiple_of(breath) {
            return;
        }
        let key = voicing[(self.pad_beats / breath) as usize % voicing.len()];
        out.push(note_off(at, PAD_CHANNEL, key));
        let velocity = humanise(self.pad_velocity() - 6.0, 3, &mut self.rng);
        out.push(note_on(at, PAD_CHANNEL, key, velocity));
    }

    fn pad_velocity(&self) -> f32 {
        54.0 + 22.0 * self.intensity + ARC_PAD_VELOCITY * self.arc()[3]
    }

    /// Plans the pad from step `index` to the end of the phrase, starting
    /// with the current chord, and on through the whole next phrase, so the
    /// plan never paints itself into a corner at the join.
    fn plan_from(&mut self, index: usize) {
        let scale = self.scale;
        let chords: Vec<[u8; 4]> = std::iter::once(self.chord)
            .chain((index + 1..self.phrase.len()).map(|i| self.phrase.chord(i)))
            .chain((0..self.upcoming.len()).map(|i| self.upcoming.chord(i)))
            .map(|c| c.pitch_classes(scale))
            .collect();
        let path = voicing::plan(self.voicing.as_ref(), &chords);
        for (slot, v) in self.plan[index..].iter_mut().zip(path) {
            *slot = v;
        }
    }

    /// Moves the pad to `next`: tones that stay are held, not re-attacked,
    /// so the change is a crossfade of a voice or two. A pending program
    /// change happens here, after the old notes are released.
    fn sound_chord(&mut self, next: Voicing, at: Frame, out: &mut Vec<Event>) {
        let program_now = self.params.pad_program.min(127);
        let switch = program_now != self.pad_program;
        let sounding = self.voicing.filter(|_| self.pad_sounding);
        let keeps = |key: &u8| !switch && sounding.is_some_and(|old| old.contains(key));
        for &key in sounding.iter().flatten() {
            if !switch && next.contains(&key) {
                continue;
            }
            out.push(note_off(at, PAD_CHANNEL, key));
        }
        if switch {
            self.pad_program = program_now;
            out.push(program(at, PAD_CHANNEL, program_now));
        }
        let base = self.pad_velocity();
        for &key in next.iter().filter(|k| !keeps(k)) {
            let velocity = humanise(base, 3, &mut self.rng);
            out.push(note_on(at, PAD_CHANNEL, key, velocity));
        }
        self.voicing = Some(next);
        self.pad_sounding = true;
    }

    /// Silences the pad, keeping its voicing to lead the next chord from.
    fn release_pad(&mut self, at: Frame, out: &mut Vec<Event>) {
        if self.pad_sounding {
            self.pad_sounding = false;
            for &key in self.voicing.iter().flatten() {
                out.push(note_off(at, PAD_CHANNEL, key));
            }
        }
    }

    /// The piano's two loops, each on its own odd length in eighths: the
    /// motif and the bell. Both rest while the pad plays alone.
    fn compose_piano(&mut self, grid: Frame, jitter: Frame, beat_len: f64, out: &mut Vec<Event>) {
        let style = self.style();
        if self.motif_eighth >= style.motif_eighths {
            self.motif_eighth = 0;
        }
        if self.bell_eighth >= style.bell_eighths {
            self.bell_eighth = 0;
        }
        if self.motif_eighth == 0 {
            self.begin_statement();
        }
        let plays = self.texture != Texture::PadAlone;
        if plays {
            let density = f64::from(self.density());
            let len = self.motif.notes().len();
            let heard = ((len as f64 * (0.35 + 0.65 * density)).round() as usize).clamp(1, len);
            let (heard, stretch) = match self.statement.form {
                Form::Whole => (heard, 1),
                Form::Fragment => (heard.min(len.div_ceil(2)), 1),
                Form::Augmented => (heard, 2),
            };
            for i in 0..len {
                let note = self.motif.notes()[i];
                let at_eighth = u32::from(note.slot) * stretch;
                let kept = match self.statement.form {
                    Form::Fragment => i < heard,
                    _ => usize::from(note.rank) < heard,
                };
                if kept && at_eighth == self.motif_eighth {
                    self.play_motif_note(note, stretch, grid, jitter, beat_len, out);
                }
            }
            if self.bell_eighth == 0 {
                self.play_bell(grid, jitter, beat_len, out);
            }
        }
        self.motif_eighth += 1;
        self.bell_eighth += 1;
    }

    /// A statement keeps one transposition (the chord sounding as it
    /// begins) and one register for all its notes, so it is heard as the
    /// motif moved, not as notes re-chosen under each chord.
    fn begin_statement(&mut self) {
        self.statements = self.statements.wrapping_add(1);
        if self.statements.is_multiple_of(NEW_MOTIF_EVERY_STATEMENTS) {
            self.motif = Motif::generate(&mut self.rng);
        } else if self.statements.is_multiple_of(MUTATE_EVERY_STATEMENTS) {
            self.motif.mutate(&mut self.rng);
        }
        let augmented_fits = self
            .motif
            .notes()
            .last()
            .is_some_and(|n| u32::from(n.slot) * 2 < self.style().motif_eighths);
        let form = if !self.statements.is_multiple_of(TRANSFORM_EVERY_STATEMENTS) {
            Form::Whole
        } else if augmented_fits && self.rng.gen_bool(0.5) {
            Form::Augmented
        } else {
            Form::Fragment
        };
        self.statement = Statement {
            root: self.chord.degree,
            form,
            shift: (ARC_REGISTER * self.arc()[1]).round() as i32,
        };
    }

    /// The piano's register now: from the style's floor, moved by the arc,
    /// widening upwards with density.
    fn piano_range(&self) -> (i32, i32) {
        let low = self.style().piano_floor + self.statement.shift;
        let high = low + 19 + (12.0 * self.density()).round() as i32;
        (low, high)
    }

    /// Velocity of a piano note: intensity and the arc's brightness; a
    /// piano playing alone comes forward, so that a passage without the pad
    /// does not fall far below the rest of the piece in loudness.
    fn piano_velocity(&self) -> f32 {
        let solo = if self.texture == Texture::PianoAlone {
            SOLO_VELOCITY
        } else {
            0.0
        };
        35.0 + solo + 60.0 * unit(self.intensity + ARC_BRIGHTNESS * self.arc()[2])
    }

    /// One motif note; at high density sometimes doubled at the octave.
    fn play_motif_note(
        &mut self,
        note: MotifNote,
        stretch: u32,
        grid: Frame,
        max_jitter: Frame,
        beat_len: f64,
        out: &mut Vec<Event>,
    ) {
        let (low, high) = self.piano_range();
        let anchor = self.scale.tonic_at_or_above(low);
        let degree = i32::from(self.statement.root) + i32::from(note.step);
        let key = fold_into(self.scale.note(anchor, degree), low, high);
        let at = grid + self.rng.gen_range(0..=max_jitter);
        let beats = f64::from(note.beats) * f64::from(stretch);
        let off = at + (beats * beat_len).round() as Frame;
        let base = self.piano_velocity();
        let velocity = humanise(base, 8, &mut self.rng);
        self.strike(key, velocity, at, off, out);

        let density = f64::from(self.density());
        if self.rng.gen_bool(((density - 0.5) * 1.2).clamp(0.0, 0.6)) {
            let double = if key + 12 <= high { key + 12 } else { key - 12 };
            if double >= low {
                let velocity = humanise(base - 10.0, 8, &mut self.rng);
                self.strike(double, velocity, at, off, out);
            }
        }
    }

    /// The bell: one soft high note, the chord tone nearest its remembered
    /// degree, played on most of its loop's turns.
    fn play_bell(&mut self, grid: Frame, max_jitter: Frame, beat_len: f64, out: &mut Vec<Event>) {
        self.bells = self.bells.wrapping_add(1);
        if self.bells.is_multiple_of(MOVE_BELL_EVERY) {
            self.bell_degree = (self.bell_degree + [-2, 2][self.rng.gen_range(0..2)]).rem_euclid(7);
        }
        if !self.rng.gen_bool(0.4 + 0.5 * f64::from(self.density())) {
            return;
        }
        let tones = self.chord.pitch_classes(self.scale);
        let degree = [0, 1, -1, 2, -2]
            .iter()
            .map(|d| self.bell_degree + d)
            .find(|&d| tones.contains(&self.scale.pitch_class(d)))
            .unwrap_or(i32::from(self.chord.degree));
        let (low, _) = self.piano_range();
        let anchor = self.scale.tonic_at_or_above(low);
        let key = fold_into(
            self.scale.note(anchor, degree),
            low + BELL_RANGE.0,
            low + BELL_RANGE.1,
        );
        let at = grid + self.rng.gen_range(0..=max_jitter);
        let off = at + (BELL_BEATS * beat_len).round() as Frame;
        let velocity = humanise(self.piano_velocity() - 12.0, 5, &mut self.rng);
        self.strike(key, velocity, at, off, out);
    }

    /// Starts a piano note, first releasing the same key if it still sounds.
    /// When the motif and the bell meet on one key in the same eighth, the
    /// key already struck at or after `at` keeps sounding and this strike is
    /// dropped: releasing it before its own onset would be no note at all.
    fn strike(&mut self, key: i32, velocity: u8, at: Frame, off: Frame, out: &mut Vec<Event>) {
        let key = key.clamp(0, 127) as u8;
        let slot = &mut self.piano_offs[usize::from(key)];
        if let Some((on, pending)) = *slot {
            if on >= at {
                return;
            }
            out.push(note_off(pending.min(at), PIANO_CHANNEL, key));
        }
        *slot = Some((at, off));
        out.push(note_on(at, PIANO_CHANNEL, key, velocity));
    }

    fn release_piano_before(&mut self, end: Frame, out: &mut Vec<Event>) {
        for (key, off) in (0u8..).zip(self.piano_offs.iter_mut()) {
            if let Some((_, frame)) = off.filter(|&(_, f)| f < end) {
                *off = None;
                out.push(note_off(frame, PIANO_CHANNEL, key));
            }
        }
    }
}

/// Beat length in frames; a tempo outside the valid range is clamped (NaN
/// falls back to 60) so an unvalidated value cannot stall or flood the clock.
fn beat_frames(bpm: f32) -> f64 {
    let (min, max) = (*Params::BPM_RANGE.start(), *Params::BPM_RANGE.end());
    let bpm = if bpm.is_nan() {
        60.0
    } else {
        bpm.clamp(min, max)
    };
    60.0 / f64::from(bpm) * f64::from(SAMPLE_RATE)
}

fn unit(x: f32) -> f32 {
    if x.is_nan() {
        0.5
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Octave-shifts a note into `low..=high`; the pitch class, and so the
/// scale membership, is unchanged.
fn fold_into(mut key: i32, low: i32, high: i32) -> i32 {
    while key < low {
        key += 12;
    }
    while key > high {
        key -= 12;
    }
    key
}

fn humanise(base: f32, spread: i32, rng: &mut impl Rng) -> u8 {
    let v = base.round() as i32 + rng.gen_range(-spread..=spread);
    v.clamp(1, 127) as u8
}

fn program(frame: Frame, channel: u8, program: u8) -> Event {
    Event {
        frame,
        channel,
        kind: EventKind::Program { program },
    }
}

fn note_on(frame: Frame, channel: u8, key: u8, velocity: u8) -> Event {
    Event {
        frame,
        channel,
        kind: EventKind::NoteOn { key, velocity },
    }
}

fn note_off(frame: Frame, channel: u8, key: u8) -> Event {
    Event {
        frame,
        channel,
        kind: EventKind::NoteOff { key },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::theory::{Mode, PitchClass};
    use crate::music::voicing::{PAD_HIGH, PAD_LOW};
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    fn params(key: PitchClass, mode: Mode, seed: u64) -> Params {
        Params {
            key,
            mode,
            seed,
            ..Params::default()
        }
    }

    /// A note as heard: (on, off, channel, key, velocity).
    type Note = (Frame, Frame, u8, u8, u8);

    /// Pairs every NoteOn with its NoteOff, asserting the rules that make a
    /// stream playable: sorted, only our two channels, valid ranges, no
    /// overlapping notes on a key, nothing left sounding.
    fn notes(events: &[Event]) -> Vec<Note> {
        for w in events.windows(2) {
            assert!(w[0] <= w[1], "{w:?}");
        }
        let mut open: HashMap<(u8, u8), (Frame, u8)> = HashMap::new();
        let mut done = Vec::new();
        for e in events {
            assert!(
                e.channel == PIANO_CHANNEL || e.channel == PAD_CHANNEL,
                "{e:?}"
            );
            match e.kind {
                EventKind::NoteOn { key, velocity } => {
                    assert!(key <= 127 && (1..=127).contains(&velocity), "{e:?}");
                    let prev = open.insert((e.channel, key), (e.frame, velocity));
                    assert!(prev.is_none(), "overlapping note {e:?}");
                }
                EventKind::NoteOff { key } => {
                    let (on, vel) = open
                        .remove(&(e.channel, key))
                        .unwrap_or_else(|| panic!("NoteOff without NoteOn: {e:?}"));
                    assert!(on <= e.frame);
                    done.push((on, e.frame, e.channel, key, vel));
                }
                EventKind::Program { program } => assert!(program <= 127),
            }
        }
        assert!(open.is_empty(), "notes left sounding: {open:?}");
        done.sort_unstable();
        done
    }

    fn piano(notes: &[Note]) -> impl Iterator<Item = &Note> {
        notes.iter().filter(|n| n.2 == PIANO_CHANNEL)
    }

    /// The pad's successive chords, read back from its events.
    fn pad_chords(events: &[Event]) -> Vec<Vec<u8>> {
        let mut sounding = BTreeSet::new();
        let mut chords: Vec<Vec<u8>> = Vec::new();
        let pad: Vec<&Event> = events.iter().filter(|e| e.channel == PAD_CHANNEL).collect();
        for (i, e) in pad.iter().enumerate() {
            match e.kind {
                EventKind::NoteOn { key, .. } => {
                    sounding.insert(key);
                }
                EventKind::NoteOff { key } => {
                    sounding.remove(&key);
                }
                EventKind::Program { .. } => {}
            }
            let frame_done = pad.get(i + 1).is_none_or(|n| n.frame != e.frame);
            let chord: Vec<u8> = sounding.iter().copied().collect();
            if frame_done && !chord.is_empty() && chords.last() != Some(&chord) {
                chords.push(chord);
            }
        }
        chords
    }

    fn check_in_scale(notes: &[Note], scale: Scale) {
        for n in notes {
            assert!(
                scale.contains(n.3),
                "{n:?} not in {} {}",
                scale.key,
                scale.mode
            );
        }
    }

    #[test]
    fn starts_with_program_changes() {
        let events = Composer::new(Params {
            pad_program: 88,
            ..Params::default()
        })
        .compose_bars(1);
        let programs: Vec<_> = events
            .iter()
            .filter(|e| e.frame == 0 && matches!(e.kind, EventKind::Program { .. }))
            .collect();
        assert_eq!(programs.len(), 2);
        assert!(events[..2]
            .iter()
            .all(|e| matches!(e.kind, EventKind::Program { .. })));
        assert!(programs.contains(&&program(0, PIANO_CHANNEL, 0)));
        assert!(programs.contains(&&program(0, PAD_CHANNEL, 88)));
    }

    #[test]
    fn every_note_is_in_the_scale_for_every_key_and_mode() {
        for key in PitchClass::ALL {
            for mode in Mode::ALL {
                for seed in [0, 1, 0xDEAD_BEEF] {
                    let events = Composer::new(params(key, mode, seed)).compose_bars(16);
                    let notes = notes(&events);
                    assert!(piano(&notes).count() > 0);
                    check_in_scale(&notes, Scale::new(key, mode));
                }
            }
        }
    }

    #[test]
    fn registers_and_note_lengths() {
        for seed in 0..20 {
            for intensity in [0.0, 0.5, 1.0] {
                let p = Params {
                    seed,
                    intensity,
                    ..Params::default()
                };
                let mut c = Composer::new(p);
                let notes = notes(&c.compose_bars(16));
                let beat = 44_100;
                for &(on, off, ch, key, _) in &notes {
                    if ch == PAD_CHANNEL {
                        assert!((PAD_LOW..=PAD_HIGH).contains(&key), "pad {key}");
                    } else {
                        // Floor 65 moved by the arc (±4), up to 31 above it.
                        assert!((61..=100).contains(&key), "piano {key}");
                        // An augmented motif note is at most 8 beats.
                        assert!(off - on <= 8 * beat + MAX_JITTER, "{on} {off}");
                    }
                }
            }
        }
    }

    #[test]
    fn pads_are_voice_led_with_common_tones_and_clear_bass() {
        let (mut steps, mut wide) = (0usize, 0usize);
        for mode in Mode::ALL {
            for key in PitchClass::ALL {
                for seed in 0..25 {
                    // Chords are held for several bars: 48 bars hold at
                    // least two phrases and so at least one join.
                    let events = Composer::new(params(key, mode, seed)).compose_bars(48);
                    let chords = pad_chords(&events);
                    assert!(chords.len() >= 6, "{} chords", chords.len());
                    for chord in &chords {
                        assert!((3..=4).contains(&chord.len()), "{chord:?}");
                        assert!(voicing::is_clear(chord), "muddy {chord:?}");
                    }
                    // Across phrase joins and rests of the pad too.
                    for w in chords.windows(2) {
                        let moved: u32 = w[0]
                            .iter()
                            .zip(&w[1])
                            .map(|(a, b)| u32::from(a.abs_diff(*b)))
                            .sum();
                        // The pad sits low now, where the low-interval
                        // limits leave fewer voicings: a rare step moves up
                        // to 4 semitones per voice, 99 % stay within 2.
                        let mean = f64::from(moved) / w[0].len() as f64;
                        assert!(
                            mean <= 4.0,
                            "{mode} {key} seed {seed}: {:?} -> {:?}",
                            w[0],
                            w[1]
                        );
                        steps += 1;
                        wide += usize::from(mean > 2.0);
                        assert!(
                            w[0].iter().any(|k| w[1].contains(k)),
                            "no common tone {w:?}"
                        );
                    }
                }
            }
        }
        assert!(
            wide * 100 <= steps,
            "{wide} of {steps} steps move more than 2 per voice"
        );
    }

    #[test]
    fn pad_holds_common_tones_instead_of_reattacking() {
        let events = Composer::new(Params::default()).compose_bars(8);
        let mut sounding = BTreeSet::new();
        for e in events.iter().filter(|e| e.channel == PAD_CHANNEL) {
            match e.kind {
                EventKind::NoteOn { key, velocity } => {
                    assert!(sounding.insert(key));
                    assert!((50..=80).contains(&velocity), "pad velocity {velocity}");
                }
                EventKind::NoteOff { key } => assert!(sounding.remove(&key)),
                EventKind::Program { .. } => {}
            }
        }
        let ons = events
            .iter()
            .filter(|e| e.channel == PAD_CHANNEL && matches!(e.kind, EventKind::NoteOn { .. }));
        let chords = pad_chords(&events).len();
        assert!(ons.count() < 4 * chords, "every chord fully re-attacked");
    }

    #[test]
    fn intensity_drives_density_velocity_and_still_plays_at_zero() {
        let stats = |intensity: f32| {
            let (mut count, mut velocity) = (0usize, 0usize);
            for seed in 0..30 {
                let p = Params {
                    seed,
                    intensity,
                    ..Params::default()
                };
                let notes = notes(&Composer::new(p).compose_bars(16));
                let piano: Vec<_> = piano(&notes).collect();
                assert!(
                    !piano.is_empty(),
                    "silent piano at {intensity}, seed {seed}"
                );
                count += piano.len();
                velocity += piano.iter().map(|n| usize::from(n.4)).sum::<usize>();
            }
            (count, velocity as f64 / count as f64)
        };
        let (low_count, low_velocity) = stats(0.1);
        let (high_count, high_velocity) = stats(0.9);
        assert!(
            high_count * 2 > low_count * 3,
            "{low_count} vs {high_count} notes"
        );
        assert!(
            high_velocity > low_velocity + 30.0,
            "{low_velocity} vs {high_velocity}"
        );
        assert!((30.0..=50.0).contains(&stats(0.0).1));
        assert!((80.0..=100.0).contains(&stats(1.0).1));
    }

    #[test]
    fn piano_jitter_is_late_by_at_most_40_ms() {
        for bpm in [60.0, 120.0] {
            let p = Params {
                bpm,
                ..Params::default()
            };
            let notes = notes(&Composer::new(p).compose_bars(16));
            let half_beat = (beat_frames(bpm) / 2.0) as Frame;
            for n in piano(&notes) {
                assert!(n.0 % half_beat <= MAX_JITTER, "{n:?}");
            }
        }
    }

    #[test]
    fn motif_recurs_across_cycles() {
        // At full intensity every motif note plays, so the first two
        // statements (neither mutated nor transformed) share their onsets on
        // the eighth grid; only the bell may add one.
        let p = Params {
            intensity: 1.0,
            seed: 3,
            ..Params::default()
        };
        let notes = notes(&Composer::new(p).compose_bars(8));
        let cycle = Frame::from(Style::of(Mode::Dorian).motif_eighths) * 22_050;
        let slots = |c: Frame| -> BTreeSet<Frame> {
            piano(&notes)
                .filter(|n| n.0 / cycle == c)
                .map(|n| (n.0 % cycle) / 22_050)
                .collect()
        };
        let first = slots(0);
        let shared = slots(1).intersection(&first).count();
        assert!(
            !first.is_empty() && shared * 2 >= first.len(),
            "{first:?} vs {:?}",
            slots(1)
        );
    }

    #[test]
    fn deterministic_and_seed_sensitive() {
        let a = Composer::new(Params::default()).compose_bars(16);
        let b = Composer::new(Params::default()).compose_bars(16);
        assert_eq!(a, b);
        let c = Composer::new(Params {
            seed: 1,
            ..Params::default()
        })
        .compose_bars(16);
        assert_ne!(a, c);
    }

    #[test]
    fn beat_by_beat_matches_compose_bars() {
        let mut live = Composer::new(Params::default());
        let mut events = Vec::new();
        for _ in 0..32 {
            let horizon = live.horizon();
            let before = events.len();
            live.compose_beat(&mut events);
            assert!(events[before..].iter().all(|e| e.frame >= horizon));
        }
        let end = live.horizon();
        let mut offline = Composer::new(Params::default()).compose_bars(8);
        offline.retain(|e| e.frame < end);
        events.sort();
        let key = |e: &Event| (e.frame, e.channel, format!("{:?}", e.kind));
        let mut a: Vec<_> = events.iter().map(key).collect();
        let mut b: Vec<_> = offline.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn compose_bars_can_continue() {
        let mut c = Composer::new(Params::default());
        let mut all = c.compose_bars(5);
        all.extend(c.compose_bars(7));
        all.sort();
        notes(&all);
    }

    #[test]
    fn tempo_is_exact_and_changes_on_the_next_beat() {
        let mut c = Composer::new(Params::default());
        let mut out = Vec::new();
        for _ in 0..3 {
            let h = c.horizon();
            c.compose_beat(&mut out);
            assert_eq!(c.horizon() - h, 44_100);
        }
        assert_eq!(c.phrase_frames(), 32 * 44_100);
        c.set_params(Params {
            bpm: 90.0,
            ..Params::default()
        });
        assert_eq!(c.phrase_frames(), 32 * 29_400);
        let h = c.horizon();
        c.compose_beat(&mut out);
        assert_eq!(c.horizon() - h, 29_400);

        c.set_params(Params {
            bpm: 77.0,
            ..Params::default()
        });
        let start = c.horizon();
        for _ in 0..10_000 {
            let h = c.horizon();
            c.compose_beat(&mut out);
            assert!((34_363..=34_364).contains(&(c.horizon() - h)));
            out.clear();
        }
        let exact = start as f64 + 10_000.0 * 60.0 / 77.0 * 44_100.0;
        assert!(
            (c.horizon() as f64 - exact).abs() <= 1.0,
            "drift: {} vs {exact}",
            c.horizon()
        );
    }

    #[test]
    fn key_and_mode_changes_apply_from_the_next_beat() {
        for seed in 0..10 {
            let mut c = Composer::new(Params {
                seed,
                ..Params::default()
            });
            let mut out = Vec::new();
            for _ in 0..6 {
                c.compose_beat(&mut out);
            }
            let new = Params {
                key: PitchClass::FSharp,
                mode: Mode::Lydian,
                seed,
                ..Params::default()
            };
            c.set_params(new.clone());
            assert_eq!(c.params(), &new);
            let h = c.horizon();
            let before = out.len();
            for _ in 0..40 {
                c.compose_beat(&mut out);
            }
            let scale = Scale::new(PitchClass::FSharp, Mode::Lydian);
            let ons = out[before..].iter().filter_map(|e| match e.kind {
                EventKind::NoteOn { key, .. } => Some((e.frame, key)),
                _ => None,
            });
            let mut count = 0;
            for (frame, key) in ons {
                assert!(frame >= h);
                assert!(scale.contains(key), "{key} at {frame} after the change");
                count += 1;
            }
            assert!(count > 0);
            // The new tonic's pad starts on the very beat after the change.
            assert!(out[before..]
                .iter()
                .any(|e| e.frame == h && e.channel == PAD_CHANNEL));
        }
    }

    #[test]
    fn a_change_between_halves_is_heard_from_the_next_eighth() {
        let mut c = Composer::new(Params::default());
        let mut out = Vec::new();
        for _ in 0..9 {
            c.compose_half(&mut out);
        }
        let eighth = c.horizon();
        assert_eq!(eighth % 44_100, 22_050, "nine halves end mid-beat");
        let f_lydian = Params {
            key: "F#".parse().unwrap(),
            mode: Mode::Lydian,
            bpm: 120.0,
            ..Params::default()
        };
        c.set_params(f_lydian.clone());
        let mut after = Vec::new();
        c.compose_half(&mut after);
        assert_eq!(
            c.horizon() - eighth,
            44_100 / 4,
            "the new tempo holds from this eighth"
        );
        let scale = Scale::new(f_lydian.key, f_lydian.mode);
        let ons: Vec<u8> = after
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::NoteOn { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        assert!(!ons.is_empty(), "the new harmony starts on this eighth");
        assert!(ons.iter().all(|&k| scale.contains(k)), "{ons:?}");
        assert!(after.iter().all(|e| e.frame >= eighth));
    }

    #[test]
    fn intensity_glides() {
        let mut c = Composer::new(Params {
            intensity: 0.0,
            ..Params::default()
        });
        let mut out = Vec::new();
        c.compose_beat(&mut out);
        c.set_params(Params {
            intensity: 1.0,
            ..Params::default()
        });
        let mut seen = Vec::new();
        for _ in 0..4 {
            c.compose_beat(&mut out);
            seen.push(c.intensity);
        }
        assert!(seen[0] > 0.0 && seen[0] < 0.5, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(
            seen[1] < 1.0 && seen[2] == 1.0 && seen[3] == 1.0,
            "{seen:?}"
        );
    }

    #[test]
    fn pad_program_changes_at_the_next_chord_after_releasing() {
        let mut c = Composer::new(Params::default());
        let mut out = Vec::new();
        for _ in 0..5 {
            c.compose_beat(&mut out);
        }
        c.set_params(Params {
            pad_program: 88,
            ..Params::default()
        });
        let before = out.len();
        for _ in 0..16 {
            c.compose_beat(&mut out);
        }
        let mut events = out.clone();
        events.sort();
        let change = events[before..]
            .iter()
            .chain(&events[..before])
            .find(|e| e.kind == (EventKind::Program { program: 88 }))
            .expect("program change emitted");
        assert_eq!(change.channel, PAD_CHANNEL);
        assert!(
            change.frame > 5 * 44_100 && change.frame % (4 * 44_100) == 0,
            "{}",
            change.frame
        );
        // Everything sounding on the pad before is released at that frame and
        // the new chord is attacked in full.
        let mut sounding = BTreeSet::new();
        for e in events
            .iter()
            .filter(|e| e.channel == PAD_CHANNEL && e.frame < change.frame)
        {
            match e.kind {
                EventKind::NoteOn { key, .. } => {
                    sounding.insert(key);
                }
                EventKind::NoteOff { key } => {
                    sounding.remove(&key);
                }
                EventKind::Program { .. } => {}
            }
        }
        let at: Vec<_> = events
            .iter()
            .filter(|e| e.channel == PAD_CHANNEL && e.frame == change.frame)
            .collect();
        let offs: BTreeSet<u8> = at
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::NoteOff { key } => Some(key),
                _ => None,
            })
            .collect();
        let ons = at
            .iter()
            .filter(|e| matches!(e.kind, EventKind::NoteOn { .. }))
            .count();
        assert_eq!(offs, sounding);
        assert_eq!(ons, 4);
    }

    #[test]
    fn unvalidated_params_do_not_panic() {
        let p = Params {
            bpm: f32::NAN,
            intensity: 7.0,
            pad_program: 200,
            ..Params::default()
        };
        let mut c = Composer::new(p);
        notes(&c.compose_bars(2));
        c.set_params(Params {
            bpm: 1.0e9,
            intensity: f32::NAN,
            ..Params::default()
        });
        notes(&c.compose_bars(2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_valid_params_compose_cleanly(
            key in 0u8..12, mode in 0usize..7, bpm in 40.0f32..=120.0,
            intensity in 0.0f32..=1.0, seed: u64, pad in 88u8..=89,
            key2 in 0u8..12, mode2 in 0usize..7, bpm2 in 40.0f32..=120.0,
            intensity2 in 0.0f32..=1.0, switch_at in 0u32..40,
        ) {
            let first = Params {
                key: PitchClass::from_semitone(key), mode: Mode::ALL[mode], bpm, intensity, seed,
                pad_program: pad, ..Params::default()
            };
            prop_assert!(first.validate().is_ok());
            let events = Composer::new(first.clone()).compose_bars(9);
            check_in_scale(&notes(&events), Scale::new(first.key, first.mode));

            let mut c = Composer::new(first);
            let mut out = Vec::new();
            for _ in 0..switch_at {
                c.compose_beat(&mut out);
            }
            c.set_params(Params {
                key: PitchClass::from_semitone(key2), mode: Mode::ALL[mode2], bpm: bpm2,
                intensity: intensity2, seed: seed.wrapping_add(1), pad_program: 177 - pad,
                ..Params::default()
            });
            for _ in 0..20 {
                let h = c.horizon();
                let from = out.len();
                c.compose_beat(&mut out);
                prop_assert!(out[from..].iter().all(|e| e.frame >= h));
            }
        }
    }
}
