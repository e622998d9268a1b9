//! Diatonic chords and the phrase-long progressions made of them.
//!
//! Every chord has four distinct scale degrees. Two four-note subsets of a
//! seven-note scale always intersect, so any two of our chords share a pitch
//! class: that is what guarantees a common tone the pad can hold across every
//! change, the loop back included, whatever the progression.

use rand::Rng;

use super::style::Style;
use super::theory::{Mode, Scale};

/// The chord colours on offer; each is four distinct diatonic degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChordKind {
    /// Root, third, fifth, seventh: the default ambient colour.
    Seventh,
    /// Root, ninth, third, fifth: softer, no leading seventh. Only where the
    /// ninth is a whole step, since a minor ninth grates when sustained.
    AddNine,
    /// Root, fourth, fifth, seventh: no third, so neither major nor minor;
    /// only where the fourth is perfect.
    Sus4,
    /// Three stacked fourths above the root (root, 4th, 7th, 10th): open and
    /// hovering; only where the first two fourths are perfect.
    Quartal,
}

impl ChordKind {
    /// Whether this colour sounds as intended on `degree` of `mode`.
    pub fn fits(self, mode: Mode, degree: u8) -> bool {
        match self {
            ChordKind::Seventh => true,
            ChordKind::AddNine => mode.step(degree, 1) == 2,
            ChordKind::Sus4 => mode.step(degree, 3) == 5,
            ChordKind::Quartal => mode.step(degree, 3) == 5 && mode.step(degree + 3, 3) == 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChordSpec {
    /// Scale degree of the root, 0..7.
    pub degree: u8,
    pub kind: ChordKind,
}

impl ChordSpec {
    const TONIC: ChordSpec = ChordSpec {
        degree: 0,
        kind: ChordKind::Seventh,
    };

    /// Scale steps above the root of the four chord tones.
    fn steps(self) -> [u8; 4] {
        match self.kind {
            ChordKind::Seventh => [0, 2, 4, 6],
            ChordKind::AddNine => [0, 1, 2, 4],
            ChordKind::Sus4 => [0, 3, 4, 6],
            ChordKind::Quartal => [0, 3, 6, 9],
        }
    }

    /// Pitch classes (0..12) of the chord tones, root first.
    pub fn pitch_classes(self, scale: Scale) -> [u8; 4] {
        self.steps()
            .map(|s| scale.pitch_class(i32::from(self.degree) + i32::from(s)))
    }

    /// A colour from the style's vocabulary that fits the degree, else a
    /// seventh.
    fn random(style: &Style, mode: Mode, degree: u8, rng: &mut impl Rng) -> Self {
        let kind = style.vocabulary[rng.gen_range(0..style.vocabulary.len())];
        let kind = if kind.fits(mode, degree) {
            kind
        } else {
            ChordKind::Seventh
        };
        Self { degree, kind }
    }
}

/// Root motions by scale degree with weights: falling steps and rising
/// fourths dominate the modal-ambient idiom (i–VII–IV, i–IV, i–VI–VII).
const MOVES: [(u8, u32); 6] = [(6, 3), (3, 3), (5, 2), (1, 2), (4, 2), (2, 1)];

/// Where a phrase after the first may begin: mostly home, sometimes on the
/// IV or the VI, so that not every phrase announces itself.
const STARTS: [(u8, u32); 3] = [(0, 4), (3, 1), (5, 2)];

pub const MAX_CHORDS: usize = 6;
/// Each phrase has at most one suspension, which adds a step.
pub const MAX_STEPS: usize = MAX_CHORDS + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PhraseChord {
    spec: ChordSpec,
    bars: u8,
    /// Sounds as a sus4 for its first bar, then resolves to a seventh.
    suspended: bool,
}

/// One chord as the pad plays it, for a number of bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub chord: ChordSpec,
    pub bars: u8,
}

/// A phrase: a few chords, each held for its own number of bars, ending on
/// one of the mode's cadences. Fixed arrays, so its size never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    chords: [PhraseChord; MAX_CHORDS],
    len: u8,
    steps: [Step; MAX_STEPS],
    steps_len: u8,
}

impl Phrase {
    /// Walks by the mode's own degrees, never repeats a chord back to back
    /// (across the join with the previous phrase, whose last degree is
    /// `after`, included), skips diminished degrees, visits the mode's
    /// characteristic degree in phrases of three chords or more, and ends
    /// on a cadence degree. The very first phrase (`after` = None) starts on
    /// the tonic, so a listener hears where home is.
    pub fn generate(style: &Style, mode: Mode, after: Option<u8>, rng: &mut impl Rng) -> Self {
        let (lo, hi) = style.phrase_chords;
        let len = rng.gen_range(lo.max(2)..=hi.max(lo).min(MAX_CHORDS as u8));
        let mut degrees = [0u8; MAX_CHORDS];
        degrees[0] = match after {
            None => 0,
            Some(prev) => {
                let options = STARTS.map(|(d, w)| (d, allowed(mode, d, &[prev], w)));
                weighted(&options, rng).unwrap_or(0)
            }
        };
        let n = usize::from(len);
        for i in 1..n {
            let prev = degrees[i - 1];
            let last = i == n - 1;
            let cadence = last
                .then(|| {
                    let options: Vec<(u8, u32)> = style
                        .cadences
                        .iter()
                        .map(|&d| (d, allowed(mode, d, &[prev], 1)))
                        .collect();
                    weighted(&options, rng)
                })
                .flatten();
            degrees[i] = cadence.unwrap_or_else(|| {
                let options = MOVES.map(|(step, w)| {
                    let d = (prev + step) % 7;
                    (d, allowed(mode, d, &[prev], w))
                });
                weighted(&options, rng).unwrap_or(prev)
            });
        }
        ensure_characteristic(&mut degrees[..n], mode, rng);
        let mut chords = [PhraseChord {
            spec: ChordSpec::TONIC,
            bars: 1,
            suspended: false,
        }; MAX_CHORDS];
        for (i, c) in chords[..n].iter_mut().enumerate() {
            *c = PhraseChord::random(style, mode, degrees[i], i == n - 1, rng);
        }
        let mut phrase = Self {
            chords,
            len,
            steps: [Step {
                chord: ChordSpec::TONIC,
                bars: 1,
            }; MAX_STEPS],
            steps_len: 0,
        };
        phrase.expand();
        phrase
    }

    /// A varied return: one interior chord replaced (within the rules of
    /// [`Self::generate`]) and one chord's length redrawn, so the harmony is
    /// recognisable yet neither its chords nor its bar lines repeat.
    pub fn vary(&mut self, style: &Style, mode: Mode, rng: &mut impl Rng) {
        let n = usize::from(self.len);
        if n >= 3 {
            let i = rng.gen_range(1..n - 1);
            let neighbours = [
                self.chords[i - 1].spec.degree,
                self.chords[i + 1].spec.degree,
            ];
            let current = self.chords[i].spec.degree;
            let colour = mode.characteristic_degree();
            let sole_colour =
                current == colour && self.degrees().filter(|&d| d == colour).count() == 1;
            if !sole_colour {
                let options: [(u8, u32); 7] = std::array::from_fn(|d| {
                    let d = d as u8;
                    let w = if d == current { 0 } else { 1 };
                    (d, allowed(mode, d, &neighbours, w))
                });
                if let Some(d) = weighted(&options, rng) {
                    self.chords[i] = PhraseChord::random(style, mode, d, false, rng);
                }
            }
        }
        let j = rng.gen_range(0..n);
        let (lo, hi) = style.chord_bars;
        self.chords[j].bars = rng
            .gen_range(lo..=hi.max(lo))
            .max(1 + u8::from(self.chords[j].suspended));
        self.expand();
    }

    fn expand(&mut self) {
        let mut k = 0;
        for c in &self.chords[..usize::from(self.len)] {
            if c.suspended {
                self.steps[k] = Step {
                    chord: ChordSpec {
                        degree: c.spec.degree,
                        kind: ChordKind::Sus4,
                    },
                    bars: 1,
                };
                k += 1;
            }
            self.steps[k] = Step {
                chord: c.spec,
                bars: c.bars - u8::from(c.suspended),
            };
            k += 1;
        }
        self.steps_len = k as u8;
    }

    fn degrees(&self) -> impl Iterator<Item = u8> + '_ {
        self.chords[..usize::from(self.len)]
            .iter()
            .map(|c| c.spec.degree)
    }

    /// Number of steps (chords as played, a suspension counting twice).
    pub fn len(&self) -> usize {
        usize::from(self.steps_len)
    }

    pub fn step(&self, index: usize) -> Step {
        self.steps[index.min(self.len() - 1)]
    }

    pub fn chord(&self, index: usize) -> ChordSpec {
        self.step(index).chord
    }

    pub fn first(&self) -> ChordSpec {
        self.steps[0].chord
    }

    pub fn last_degree(&self) -> u8 {
        self.chord(self.len() - 1).degree
    }

    pub fn beats(&self) -> u32 {
        self.steps[..self.len()]
            .iter()
            .map(|s| 4 * u32::from(s.bars))
            .sum()
    }

    /// The step sounding at a beat of the phrase, and whether it starts on
    /// that beat.
    pub fn at_beat(&self, beat: u32) -> (usize, bool) {
        let mut start = 0;
        for (i, s) in self.steps[..self.len()].iter().enumerate() {
            let end = start + 4 * u32::from(s.bars);
            if beat < end {
                return (i, beat == start);
            }
            start = end;
        }
        (self.len() - 1, false)
    }
}

impl PhraseChord {
    fn random(style: &Style, mode: Mode, degree: u8, cadence: bool, rng: &mut impl Rng) -> Self {
        let (lo, hi) = style.chord_bars;
        let bars = rng.gen_range(lo..=hi.max(lo)).max(1);
        let mut spec = ChordSpec::random(style, mode, degree, rng);
        let suspended = cadence
            && bars >= 2
            && spec.kind != ChordKind::Sus4
            && ChordKind::Sus4.fits(mode, degree)
            && rng.gen_bool(style.suspension);
        if suspended {
            spec.kind = ChordKind::Seventh;
        }
        Self {
            spec,
            bars,
            suspended,
        }
    }
}

/// `weight` unless `degree` is diminished or equals one of its neighbours.
fn allowed(mode: Mode, degree: u8, neighbours: &[u8], weight: u32) -> u32 {
    if mode.is_diminished(degree) || neighbours.contains(&degree) {
        0
    } else {
        weight
    }
}

/// Puts the mode's colour degree into an interior slot whose neighbours
/// differ from it, if the phrase lacks it and is long enough to hold it.
fn ensure_characteristic(degrees: &mut [u8], mode: Mode, rng: &mut impl Rng) {
    let colour = mode.characteristic_degree();
    let n = degrees.len();
    if n < 3 || degrees.contains(&colour) {
        return;
    }
    let slots: Vec<usize> = (1..n - 1)
        .filter(|&i| degrees[i - 1] != colour && degrees[i + 1] != colour)
        .collect();
    if !slots.is_empty() {
        degrees[slots[rng.gen_range(0..slots.len())]] = colour;
    }
}

/// Draws one item by weight; `None` when every weight is zero.
fn weighted(options: &[(u8, u32)], rng: &mut impl Rng) -> Option<u8> {
    let total: u32 = options.iter().map(|&(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut pick = rng.gen_range(0..total);
    options.iter().find_map(|&(d, w)| {
        if pick < w {
            Some(d)
        } else {
            pick -= w;
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::theory::PitchClass;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn check(p: &Phrase, style: &Style, mode: Mode, after: Option<u8>) {
        let degrees: Vec<u8> = p.degrees().collect();
        let n = degrees.len();
        assert!(n >= usize::from(style.phrase_chords.0) && n <= usize::from(style.phrase_chords.1));
        match after {
            None => assert_eq!(degrees[0], 0),
            Some(prev) => assert_ne!(degrees[0], prev, "repeats across the join"),
        }
        for w in degrees.windows(2) {
            assert_ne!(w[0], w[1], "{degrees:?}");
        }
        if n >= 3 {
            let colour = mode.characteristic_degree();
            let room = (1..n - 1).any(|i| degrees[i - 1] != colour && degrees[i + 1] != colour);
            assert!(!room || degrees.contains(&colour), "{mode}: {degrees:?}");
        }
        // Locrian's tonic is diminished and still home.
        for &d in degrees.iter().filter(|&&d| d != 0) {
            assert!(!mode.is_diminished(d), "{mode}: {degrees:?}");
        }
        for i in 0..p.len() {
            let s = p.step(i);
            assert!(
                s.bars >= 1 && s.chord.kind.fits(mode, s.chord.degree),
                "{mode} {s:?}"
            );
        }
        let bars: u32 = p.chords[..n].iter().map(|c| u32::from(c.bars)).sum();
        assert_eq!(
            p.beats(),
            4 * bars,
            "a suspension borrows its bar from the cadence chord"
        );
    }

    #[test]
    fn phrases_follow_the_rules_through_variation() {
        for mode in Mode::ALL {
            let style = Style::of(mode);
            for seed in 0..200 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut p = Phrase::generate(style, mode, None, &mut rng);
                check(&p, style, mode, None);
                for _ in 0..10 {
                    let after = p.last_degree();
                    let fresh = Phrase::generate(style, mode, Some(after), &mut rng);
                    check(&fresh, style, mode, Some(after));
                    p.vary(style, mode, &mut rng);
                    check(&p, style, mode, None);
                }
            }
        }
    }

    #[test]
    fn phrases_vary_in_length_start_and_ending() {
        let mode = Mode::Dorian;
        let style = Style::of(mode);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut lengths = std::collections::BTreeSet::new();
        let mut starts = std::collections::BTreeSet::new();
        let mut suspensions = 0;
        let mut after = 0;
        for _ in 0..100 {
            let p = Phrase::generate(style, mode, Some(after), &mut rng);
            lengths.insert(p.beats());
            starts.insert(p.first().degree);
            suspensions += usize::from(p.len() > p.degrees().count());
            assert!(style.cadences.contains(&p.last_degree()) || p.len() < 2);
            after = p.last_degree();
        }
        assert!(lengths.len() >= 5, "{lengths:?}");
        assert!(starts.len() >= 2, "{starts:?}");
        assert!(suspensions >= 10, "{suspensions} suspensions");
    }

    #[test]
    fn at_beat_walks_the_steps() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let p = Phrase::generate(Style::of(Mode::Dorian), Mode::Dorian, None, &mut rng);
        let mut starts = 0;
        for beat in 0..p.beats() {
            let (i, starts_here) = p.at_beat(beat);
            starts += usize::from(starts_here);
            assert!(i < p.len());
        }
        assert_eq!(starts, p.len());
        assert_eq!(p.at_beat(0), (0, true));
    }

    #[test]
    fn any_two_chords_share_a_pitch_class() {
        let scale = Scale::new(PitchClass::D, Mode::Dorian);
        let kinds = [
            ChordKind::Seventh,
            ChordKind::AddNine,
            ChordKind::Sus4,
            ChordKind::Quartal,
        ];
        for a in 0..7 {
            for b in 0..7 {
                for ka in kinds {
                    for kb in kinds {
                        let x = ChordSpec {
                            degree: a,
                            kind: ka,
                        }
                        .pitch_classes(scale);
                        let y = ChordSpec {
                            degree: b,
                            kind: kb,
                        }
                        .pitch_classes(scale);
                        assert!(x.iter().any(|pc| y.contains(pc)), "{x:?} {y:?}");
                        let mut distinct = x.to_vec();
                        distinct.sort_unstable();
                        distinct.dedup();
                        assert_eq!(distinct.len(), 4, "{x:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn chord_tones_are_diatonic_and_distinct() {
        let scale = Scale::new(PitchClass::E, Mode::Phrygian);
        let pcs = ChordSpec {
            degree: 3,
            kind: ChordKind::Seventh,
        }
        .pitch_classes(scale);
        assert_eq!(pcs, [9, 0, 4, 7]); // A C E G: iv7 in E Phrygian
        let quartal = ChordSpec {
            degree: 0,
            kind: ChordKind::Quartal,
        }
        .pitch_classes(Scale::new(PitchClass::C, Mode::Mixolydian));
        assert_eq!(quartal, [0, 5, 10, 4]); // C F Bb E in C Mixolydian
    }
}
