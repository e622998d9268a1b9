//! Diatonic chords and the phrase-long progressions made of them.
//!
//! Every chord has four distinct scale degrees. Two four-note subsets of a
//! seven-note scale always intersect, so any two of our chords share a pitch
//! class: that is what guarantees a common tone the pad can hold across every
//! change, the loop back included, whatever the progression.

use rand::Rng;

use super::theory::{Mode, Scale};

/// The chord colours on offer; both are four diatonic degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChordKind {
    /// Root, third, fifth, seventh: the default ambient colour.
    Seventh,
    /// Root, ninth, third, fifth: softer, no leading seventh. Only where the
    /// ninth is a whole step, since a minor ninth grates when sustained.
    AddNine,
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
        }
    }

    /// Pitch classes (0..12) of the chord tones, root first.
    pub fn pitch_classes(self, scale: Scale) -> [u8; 4] {
        self.steps()
            .map(|s| scale.pitch_class(i32::from(self.degree) + i32::from(s)))
    }

    fn random(mode: Mode, degree: u8, rng: &mut impl Rng) -> Self {
        let kind = if mode.step(degree, 1) == 2 && rng.gen_bool(0.4) {
            ChordKind::AddNine
        } else {
            ChordKind::Seventh
        };
        Self { degree, kind }
    }
}

/// Root motions by scale degree with weights: falling steps and rising
/// fourths dominate the modal-ambient idiom (i–VII–IV, i–IV, i–VI–VII).
const MOVES: [(u8, u32); 6] = [(6, 3), (3, 3), (5, 2), (1, 2), (4, 2), (2, 1)];

/// An 8-bar phrase of chords changing every bar or every two bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progression {
    chords: [ChordSpec; 8],
    len: u8,
    bars_per_chord: u8,
}

impl Progression {
    pub const BARS: u8 = 8;

    /// Starts on the tonic, walks by the mode's own degrees, never repeats a
    /// chord back to back (the loop back to the tonic included), skips the
    /// diminished degree, and visits the mode's characteristic degree.
    pub fn generate(mode: Mode, rng: &mut impl Rng) -> Self {
        let bars_per_chord = if rng.gen_bool(0.5) { 1 } else { 2 };
        let len = Self::BARS / bars_per_chord;
        let mut chords = [ChordSpec::TONIC; 8];
        chords[0] = ChordSpec::random(mode, 0, rng);
        for i in 1..usize::from(len) {
            let prev = chords[i - 1].degree;
            let last = i == usize::from(len) - 1;
            let options = MOVES.map(|(step, weight)| {
                let d = (prev + step) % 7;
                let ruled_out = mode.is_diminished(d) || (last && d == 0);
                (d, if ruled_out { 0 } else { weight })
            });
            let degree = weighted(&options, rng).unwrap_or(mode.characteristic_degree());
            chords[i] = ChordSpec::random(mode, degree, rng);
        }
        let mut progression = Self {
            chords,
            len,
            bars_per_chord,
        };
        progression.ensure_characteristic(mode, rng);
        progression
    }

    /// Changes one chord, keeping the rules of [`Self::generate`], so the
    /// harmony evolves slowly instead of being replaced.
    pub fn mutate(&mut self, mode: Mode, rng: &mut impl Rng) {
        let i = rng.gen_range(1..usize::from(self.len));
        let prev = self.chords[i - 1].degree;
        let next = self
            .chords
            .get(i + 1)
            .filter(|_| i + 1 < usize::from(self.len));
        let next = next.map_or(0, |c| c.degree);
        let current = self.chords[i].degree;
        let sole_colour = current == mode.characteristic_degree()
            && self.degrees().filter(|&d| d == current).count() == 1;
        let options: [(u8, u32); 7] = std::array::from_fn(|d| {
            let d = d as u8;
            let ok =
                d != prev && d != next && d != current && !mode.is_diminished(d) && !sole_colour;
            (d, u32::from(ok))
        });
        let degree = weighted(&options, rng).unwrap_or(current);
        self.chords[i] = ChordSpec::random(mode, degree, rng);
    }

    fn ensure_characteristic(&mut self, mode: Mode, rng: &mut impl Rng) {
        let colour = mode.characteristic_degree();
        if self.degrees().any(|d| d == colour) {
            return;
        }
        // The colour degree is never the tonic, and a neighbour equal to it
        // would have meant it was present, so any interior slot is safe.
        let i = rng.gen_range(1..usize::from(self.len));
        self.chords[i] = ChordSpec::random(mode, colour, rng);
    }

    fn degrees(&self) -> impl Iterator<Item = u8> + '_ {
        self.chords[..usize::from(self.len)]
            .iter()
            .map(|c| c.degree)
    }

    pub fn beats_per_chord(&self) -> u32 {
        u32::from(self.bars_per_chord) * 4
    }

    /// Number of chords in the phrase: 4 or 8.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Index of the chord sounding at a beat of the phrase (0..32).
    pub fn index_at_beat(&self, beat_in_phrase: u32) -> usize {
        let i = (beat_in_phrase / self.beats_per_chord()) as usize;
        i.min(self.len() - 1)
    }

    pub fn chord(&self, index: usize) -> ChordSpec {
        self.chords[index.min(self.len() - 1)]
    }

    pub fn first(&self) -> ChordSpec {
        self.chords[0]
    }
}

/// Draws one item by weight; `None` when every weight is zero.
fn weighted<const N: usize>(options: &[(u8, u32); N], rng: &mut impl Rng) -> Option<u8> {
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

    fn check(p: &Progression, mode: Mode) {
        let degrees: Vec<u8> = p.degrees().collect();
        assert_eq!(degrees.len() * usize::from(p.bars_per_chord), 8);
        assert_eq!(degrees[0], 0);
        assert_ne!(
            *degrees.last().unwrap(),
            0,
            "loop back would repeat the tonic"
        );
        for w in degrees.windows(2) {
            assert_ne!(w[0], w[1], "{degrees:?}");
        }
        assert!(
            degrees.contains(&mode.characteristic_degree()),
            "{mode}: {degrees:?}"
        );
        for &d in &degrees[1..] {
            assert!(!mode.is_diminished(d), "{mode}: {degrees:?}");
        }
        for c in &p.chords[..usize::from(p.len)] {
            if c.kind == ChordKind::AddNine {
                assert_eq!(mode.step(c.degree, 1), 2, "minor ninth in {mode}");
            }
        }
    }

    #[test]
    fn progressions_follow_the_rules_through_mutation() {
        for mode in Mode::ALL {
            for seed in 0..200 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut p = Progression::generate(mode, &mut rng);
                check(&p, mode);
                for _ in 0..10 {
                    p.mutate(mode, &mut rng);
                    check(&p, mode);
                }
            }
        }
    }

    #[test]
    fn progressions_vary_by_seed() {
        let distinct: std::collections::HashSet<Vec<u8>> = (0..50)
            .map(|seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                Progression::generate(Mode::Dorian, &mut rng)
                    .degrees()
                    .collect()
            })
            .collect();
        assert!(distinct.len() > 10, "only {} progressions", distinct.len());
    }

    #[test]
    fn any_two_chords_share_a_pitch_class() {
        let scale = Scale::new(PitchClass::D, Mode::Dorian);
        let kinds = [ChordKind::Seventh, ChordKind::AddNine];
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
    }
}
