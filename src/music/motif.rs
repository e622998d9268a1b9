//! The piano's remembered idea: a few notes on an eighth-note grid, written in
//! scale steps above the chord root so that it follows the harmony by itself,
//! and changed one note at a time so the ear can follow it evolving.

use std::ops::RangeInclusive;

use rand::seq::index;
use rand::Rng;

/// Eighth notes in one motif cycle of two bars.
pub const SLOTS: u8 = 16;

const MAX_NOTES: usize = 6;

/// Scale steps above the chord root: from a fourth below to two octaves up,
/// so contours can dip under the root without leaving the piano's register.
const STEP_RANGE: RangeInclusive<i8> = -3..=11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotifNote {
    /// Eighth-note position in the two-bar cycle, 0..16.
    pub slot: u8,
    /// Scale steps above the chord root.
    pub step: i8,
    /// Length in beats; long, because the piano is a colour, not a pulse.
    pub beats: u8,
    /// Order in which notes drop out when the piano thins: a sparse
    /// statement keeps the same notes every time (rank 0, the head, always
    /// plays), so it is still recognisably the motif.
    pub rank: u8,
}

/// 3 to 6 notes; a fixed array so the composer's memory does not depend on
/// how long it has been playing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Motif {
    notes: [MotifNote; MAX_NOTES],
    len: usize,
}

impl Motif {
    /// A stepwise contour starting on a chord tone: leaps sound random when
    /// repeated, steps sound like a tune.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let len = rng.gen_range(3..=MAX_NOTES);
        let mut slots = index::sample(rng, usize::from(SLOTS), len).into_vec();
        slots.sort_unstable();
        let mut notes = [MotifNote {
            slot: 0,
            step: 0,
            beats: 1,
            rank: 0,
        }; MAX_NOTES];
        let ranks = std::iter::once(0).chain(
            index::sample(rng, len - 1, len - 1)
                .into_iter()
                .map(|r| r + 1),
        );
        let mut step = [0, 2, 4, 7][rng.gen_range(0..4)];
        for ((note, slot), rank) in notes.iter_mut().zip(slots).zip(ranks) {
            *note = MotifNote {
                slot: slot as u8,
                step,
                beats: rng.gen_range(1..=4),
                rank: rank as u8,
            };
            step = (step + rng.gen_range(-2..=3)).clamp(*STEP_RANGE.start(), *STEP_RANGE.end());
        }
        Self { notes, len }
    }

    pub fn notes(&self) -> &[MotifNote] {
        &self.notes[..self.len]
    }

    /// Changes exactly one note in one respect: its pitch, its place in the
    /// bar, or its length.
    pub fn mutate(&mut self, rng: &mut impl Rng) {
        let i = rng.gen_range(0..self.len);
        match rng.gen_range(0..3) {
            0 => self.nudge_step(i, rng),
            1 => {
                let taken = |s: u8| self.notes().iter().any(|n| n.slot == s);
                let old = self.notes[i].slot;
                let free: Vec<u8> = [-2i8, -1, 1, 2]
                    .iter()
                    .filter_map(|&d| old.checked_add_signed(d))
                    .filter(|&s| s < SLOTS && !taken(s))
                    .collect();
                if free.is_empty() {
                    self.nudge_step(i, rng);
                } else {
                    self.notes[i].slot = free[rng.gen_range(0..free.len())];
                    self.notes[..self.len].sort_unstable_by_key(|n| n.slot);
                }
            }
            _ => {
                let old = self.notes[i].beats;
                let new = rng.gen_range(1..=3);
                self.notes[i].beats = if new >= old { new + 1 } else { new };
            }
        }
    }

    fn nudge_step(&mut self, i: usize, rng: &mut impl Rng) {
        let old = self.notes[i].step;
        let delta = [-2, -1, 1, 2][rng.gen_range(0..4)];
        let clamp = |s: i8| s.clamp(*STEP_RANGE.start(), *STEP_RANGE.end());
        let new = clamp(old + delta);
        self.notes[i].step = if new == old { clamp(old - delta) } else { new };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn check(m: &Motif) {
        let notes = m.notes();
        assert!((3..=MAX_NOTES).contains(&notes.len()));
        for w in notes.windows(2) {
            assert!(
                w[0].slot < w[1].slot,
                "slots sorted and distinct: {notes:?}"
            );
        }
        for n in notes {
            assert!(n.slot < SLOTS && STEP_RANGE.contains(&n.step) && (1..=4).contains(&n.beats));
        }
        let mut ranks: Vec<u8> = notes.iter().map(|n| n.rank).collect();
        ranks.sort_unstable();
        assert!(ranks.iter().copied().eq(0..notes.len() as u8), "{notes:?}");
    }

    #[test]
    fn generated_motifs_are_well_formed() {
        for seed in 0..500 {
            check(&Motif::generate(&mut ChaCha8Rng::seed_from_u64(seed)));
        }
    }

    #[test]
    fn mutation_changes_exactly_one_note() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut m = Motif::generate(&mut rng);
            for _ in 0..20 {
                let before = m.clone();
                m.mutate(&mut rng);
                check(&m);
                let changed = m
                    .notes()
                    .iter()
                    .filter(|n| !before.notes().contains(n))
                    .count();
                assert_eq!(changed, 1, "{before:?} -> {m:?}");
            }
        }
    }
}
