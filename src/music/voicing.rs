//! Pad voicings: where each chord tone sits, chosen so that the pad moves as
//! little as possible and never turns muddy in the low register.
//!
//! A chord has four pitch classes and the pad register spans a little over two
//! octaves, so there are at most 3^4 placements: small enough to search all of
//! them for every chord change instead of relying on inversion rules.

/// Pad register, G2..G4: under the piano (whose line starts around F4..G4)
/// rather than on top of its notes, so the two stay apart in register; the
/// low-interval limits keep the bottom open (a fifth or wider under C3).
pub const PAD_LOW: u8 = 43;
pub const PAD_HIGH: u8 = 67;

/// Wider than two octaves and the pad stops sounding like one instrument.
const MAX_SPAN: u8 = 24;

/// Pull towards the middle of the register so that always taking the smallest
/// motion cannot walk the pad to an edge over many phrases.
const CENTRE: i32 = 55;

/// Four notes, ascending.
pub type Voicing = [u8; 4];

/// Lowest allowed bottom note per interval in semitones (felixroos/harmonical
/// `lowIntervalLimits`, as in DESIGN §5): close intervals below these pitches
/// blur into a rumble.
fn low_limit(interval: u8) -> u8 {
    match interval {
        1 => 52,     // minor 2nd: E3
        2 => 51,     // major 2nd: Eb3
        3 => 48,     // minor 3rd: C3
        4..=6 => 46, // major 3rd, 4th, tritone: Bb2
        7 => 34,     // 5th: Bb1
        _ => 0,
    }
}

/// True when every adjacent pair respects its low limit and the two lowest
/// notes are at least a minor third apart.
pub fn is_clear(v: &[u8]) -> bool {
    let bass_gap_ok = v.len() < 2 || v[1] - v[0] >= 3;
    bass_gap_ok && v.windows(2).all(|w| w[0] >= low_limit(w[1] - w[0]))
}

/// Sum of absolute motion when voices are matched bottom to top.
pub fn motion(a: &Voicing, b: &Voicing) -> u32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| u32::from(x.abs_diff(y)))
        .sum()
}

/// Every placement of the pitch classes inside the register that passes the
/// spacing rules.
fn candidates(pcs: [u8; 4]) -> impl Iterator<Item = Voicing> {
    let placements = pcs.map(|pc| {
        let first = PAD_LOW + (pc + 12 - PAD_LOW % 12) % 12;
        (first..=PAD_HIGH).step_by(12)
    });
    let [a, b, c, d] = placements;
    a.flat_map(move |w| {
        let (b, c, d) = (b.clone(), c.clone(), d.clone());
        b.flat_map(move |x| {
            let (c, d) = (c.clone(), d.clone());
            c.flat_map(move |y| d.clone().map(move |z| [w, x, y, z]))
        })
    })
    .map(|mut v| {
        v.sort_unstable();
        v
    })
    .filter(|v| v[3] - v[0] <= MAX_SPAN && is_clear(v))
}

fn centre_cost(v: &Voicing) -> u32 {
    let sum: i32 = v.iter().map(|&n| i32::from(n)).sum();
    (sum - 4 * CENTRE).unsigned_abs()
}

/// A root-position bass anchors the modal colour; inversions are allowed
/// but cost a little.
fn inversion_cost(v: &Voicing, root_pc: u8) -> u32 {
    if v[0] % 12 == root_pc {
        0
    } else {
        6
    }
}

/// Stacked root position from middle C: a safe voicing used only if the
/// search finds nothing, which the tests show never happens.
fn close_position(pcs: [u8; 4]) -> Voicing {
    let mut v = [0; 4];
    let mut floor = 60 + pcs[0];
    for (slot, pc) in v.iter_mut().zip(pcs) {
        let note = floor + (pc + 12 - floor % 12) % 12;
        *slot = note;
        floor = note + 1;
    }
    v
}

/// Outweighs any amount of ordinary cost: a step that drops every common
/// tone (twice), or moves more than two semitones per voice on average.
const BROKEN_RULE: u32 = 100_000;

/// Cost of moving the pad from `prev` to `v`. `urgency` weighs broken
/// rules: a break planned far ahead may never happen, because the plan is
/// redone before it is reached, so near ones count more.
fn step_cost(prev: &Voicing, v: &Voicing, urgency: u32) -> u32 {
    let moved = motion(prev, v);
    let holds = v.iter().any(|n| prev.contains(n));
    // Losing every common tone is worse than a wide step: with long
    // releases the held tone is what makes the change a crossfade.
    let broken = 2 * u32::from(!holds) + u32::from(moved > 8);
    broken * urgency * BROKEN_RULE + 10 * moved
}

/// Voicings for a run of chords, chosen together rather than one at a time:
/// greedy choices can walk into a shape from which the next chord needs a
/// leap, so this finds the cheapest path through every chord's candidates
/// (a Viterbi search; at most 81 candidates per chord). `prev` is what the
/// pad sounds now; without it the first chord is centred in root position.
/// Callers end the run with the chord that follows it, so that the last
/// step (the loop back to bar 1 included) is planned too.
pub fn plan(prev: Option<&Voicing>, chords: &[[u8; 4]]) -> Vec<Voicing> {
    let layers: Vec<Vec<Voicing>> = chords
        .iter()
        .map(|&pcs| {
            let found: Vec<Voicing> = candidates(pcs).collect();
            if found.is_empty() {
                vec![close_position(pcs)]
            } else {
                found
            }
        })
        .collect();
    let own = |layer: usize, v: &Voicing| centre_cost(v) + inversion_cost(v, chords[layer][0]);

    let urgency = |layer: usize| (layers.len() - layer) as u32;

    let Some(first_layer) = layers.first() else {
        return Vec::new();
    };
    let mut costs: Vec<u32> = first_layer
        .iter()
        .map(|v| match prev {
            Some(p) => step_cost(p, v, urgency(0)) + own(0, v),
            None => 100 * inversion_cost(v, chords[0][0]) + centre_cost(v),
        })
        .collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(layers.len());
    for (k, pair) in layers.windows(2).enumerate() {
        let (from, to) = (&pair[0], &pair[1]);
        let mut next_costs = Vec::with_capacity(to.len());
        let mut pointers = Vec::with_capacity(to.len());
        for v in to {
            let (best, cost) = from
                .iter()
                .zip(&costs)
                .map(|(u, &c)| c + step_cost(u, v, urgency(k + 1)))
                .enumerate()
                .min_by_key(|&(_, c)| c)
                .unwrap_or((0, 0));
            next_costs.push(cost + own(k + 1, v));
            pointers.push(best);
        }
        costs = next_costs;
        back.push(pointers);
    }

    let mut index = (0..costs.len()).min_by_key(|&i| costs[i]).unwrap_or(0);
    let mut path = vec![layers[layers.len() - 1][index]];
    for (k, pointers) in back.iter().enumerate().rev() {
        index = pointers[index];
        path.push(layers[k][index]);
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::chords::{ChordKind, ChordSpec};
    use crate::music::theory::{Mode, PitchClass, Scale};

    fn all_chords() -> impl Iterator<Item = [u8; 4]> {
        PitchClass::ALL.into_iter().flat_map(|key| {
            Mode::ALL.into_iter().flat_map(move |mode| {
                (0..7).flat_map(move |degree| {
                    [ChordKind::Seventh, ChordKind::AddNine].map(move |kind| {
                        ChordSpec { degree, kind }.pitch_classes(Scale::new(key, mode))
                    })
                })
            })
        })
    }

    #[test]
    fn every_chord_has_a_clear_voicing() {
        for pcs in all_chords() {
            assert!(candidates(pcs).next().is_some(), "{pcs:?}");
        }
    }

    #[test]
    fn voicings_keep_the_chord_and_the_register() {
        for pcs in all_chords() {
            let v = plan(None, &[pcs])[0];
            let mut got: Vec<u8> = v.iter().map(|n| n % 12).collect();
            let mut want = pcs.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want);
            assert!(v.iter().all(|n| (PAD_LOW..=PAD_HIGH).contains(n)), "{v:?}");
            assert!(is_clear(&v), "{v:?}");
            // Root position whenever the register has a clear one.
            let root_position = candidates(pcs).any(|c| c[0] % 12 == pcs[0]);
            assert_eq!(v[0] % 12 == pcs[0], root_position, "{pcs:?}: {v:?}");
        }
    }

    #[test]
    fn low_interval_limits() {
        assert!(!is_clear(&[48, 50, 55, 60]), "bass gap of a tone");
        assert!(is_clear(&[48, 52, 55, 59]));
        assert!(!is_clear(&[45, 48, 52, 55]), "minor 3rd on A2");
        assert!(is_clear(&[52, 55, 56, 60]), "minor 2nd from G3 is above E3");
        assert!(
            !is_clear(&[48, 51, 52, 60]),
            "minor 2nd from Eb3 is below E3"
        );
        assert!(
            !is_clear(&[44, 48, 55, 60]),
            "major 3rd from Ab2 is below Bb2"
        );
    }

    #[test]
    fn planned_steps_hold_a_common_tone_and_move_little() {
        let scale = Scale::new(PitchClass::D, Mode::Dorian);
        let chord = |degree| {
            ChordSpec {
                degree,
                kind: ChordKind::Seventh,
            }
            .pitch_classes(scale)
        };
        let chords: Vec<[u8; 4]> = [0, 6, 3, 5, 1, 4, 2, 6, 0].map(chord).to_vec();
        let mut start = plan(None, &chords[..1])[0];
        for _ in 0..3 {
            let path = plan(Some(&start), &chords);
            assert_eq!(path.len(), chords.len());
            for w in std::iter::once(&start)
                .chain(&path)
                .collect::<Vec<_>>()
                .windows(2)
            {
                assert!(w[1].iter().any(|n| w[0].contains(n)), "{w:?}");
                assert!(motion(w[0], w[1]) <= 8, "{w:?}");
            }
            start = path[path.len() - 1];
        }
        assert!(plan(None, &[]).is_empty());
    }
}
