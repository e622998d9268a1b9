//! The musical idea of a piece: how slowly the harmony moves, which chord
//! colours it uses, how it cadences, where the piano sits, how often each
//! layer rests and the lengths of the loops that drift against each other.
//!
//! The idea follows the mode, because each preset is built on its own mode
//! and the mode is what invites a cadence (Phrygian's bII, Mixolydian's bVII)
//! or a colour (sus and quartal chords for the hovering modes). A listener
//! who changes the mode of a preset therefore gets that mode's piece, which
//! keeps one fact in one place and leaves [`super::Params`] unchanged.

use super::chords::ChordKind;
use super::theory::Mode;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Bars a chord is held: drawn per chord from this range.
    pub chord_bars: (u8, u8),
    /// Chords per phrase, suspensions not counted.
    pub phrase_chords: (u8, u8),
    /// Chord colours drawn from (each only where the mode allows it).
    pub vocabulary: &'static [ChordKind],
    /// Degrees a phrase may end on before the next one: the mode's cadences.
    pub cadences: &'static [u8],
    /// Chance that a cadence chord first sounds as a sus4 that resolves.
    pub suspension: f64,
    /// Motif loop in eighth notes: odd, and no multiple of the bar, so the
    /// piano's statements fall on a different beat of the harmony each time.
    pub motif_eighths: u32,
    /// A single high piano note on its own, longer loop (eighths).
    pub bell_eighths: u32,
    /// The pad re-strikes one of its held voices every this many beats (odd,
    /// a third loop), so a chord held for bars keeps breathing instead of
    /// decaying (GM 88 on FluidR3 fades within seconds).
    pub pad_breath_beats: u32,
    /// Lowest key of the piano line: the pad is voiced below it.
    pub piano_floor: i32,
    /// Per phrase, the base chance that the pad plays alone, and that the
    /// piano does; the arc scales both.
    pub pad_alone: f32,
    pub piano_alone: f32,
    /// Periods in minutes of the density, register, brightness and
    /// pad-presence curves: unrelated, so the arc never repeats exactly.
    pub arc_minutes: [f64; 4],
}

use ChordKind::{AddNine, Quartal, Seventh, Sus4};

impl Style {
    pub fn of(mode: Mode) -> &'static Style {
        match mode {
            Mode::Dorian => &DORIAN,
            Mode::Ionian => &IONIAN,
            Mode::Aeolian => &AEOLIAN,
            Mode::Mixolydian => &MIXOLYDIAN,
            Mode::Lydian => &LYDIAN,
            Mode::Phrygian | Mode::Locrian => &PHRYGIAN,
        }
    }
}

/// focus: a steady walk of sevenths and sus chords, two or three bars each,
/// cadencing on the major IV or the VII; piano and pad mostly together.
const DORIAN: Style = Style {
    chord_bars: (2, 3),
    phrase_chords: (3, 5),
    vocabulary: &[Seventh, Seventh, AddNine, Sus4],
    cadences: &[3, 6],
    suspension: 0.5,
    motif_eighths: 23,
    bell_eighths: 37,
    pad_breath_beats: 11,
    piano_floor: 65,
    pad_alone: 0.12,
    piano_alone: 0.15,
    arc_minutes: [11.0, 17.0, 13.0, 9.0],
};

/// calm: plain major with added ninths, long chords, plagal and half
/// cadences; the piano often speaks alone.
const IONIAN: Style = Style {
    chord_bars: (2, 4),
    phrase_chords: (3, 5),
    vocabulary: &[AddNine, Seventh],
    cadences: &[3, 4],
    suspension: 0.4,
    motif_eighths: 27,
    bell_eighths: 41,
    pad_breath_beats: 13,
    piano_floor: 65,
    pad_alone: 0.1,
    piano_alone: 0.25,
    arc_minutes: [12.0, 19.0, 10.0, 15.0],
};

/// sleep: very long soft chords, few of them, mostly pad; the piano's
/// statements are far apart and low.
const AEOLIAN: Style = Style {
    chord_bars: (3, 5),
    phrase_chords: (2, 4),
    vocabulary: &[AddNine, Sus4, Seventh],
    cadences: &[3, 6],
    suspension: 0.6,
    motif_eighths: 31,
    bell_eighths: 53,
    pad_breath_beats: 17,
    piano_floor: 62,
    pad_alone: 0.35,
    piano_alone: 0.05,
    arc_minutes: [14.0, 20.0, 16.0, 11.0],
};

/// meditate: a near drone of quartal and sus colours held for many bars,
/// always returning by the flat seventh.
const MIXOLYDIAN: Style = Style {
    chord_bars: (4, 7),
    phrase_chords: (2, 3),
    vocabulary: &[Quartal, Sus4, Quartal],
    cadences: &[6],
    suspension: 0.3,
    motif_eighths: 29,
    bell_eighths: 47,
    pad_breath_beats: 9,
    piano_floor: 67,
    pad_alone: 0.25,
    piano_alone: 0.2,
    arc_minutes: [16.0, 11.0, 19.0, 13.0],
};

/// dawn: quicker harmony (one to three bars), bright ninths, lifted by the
/// major II; the piano is high and busy and often leads alone.
const LYDIAN: Style = Style {
    chord_bars: (1, 3),
    phrase_chords: (4, 6),
    vocabulary: &[AddNine, Seventh],
    cadences: &[1, 4],
    suspension: 0.3,
    motif_eighths: 19,
    bell_eighths: 31,
    pad_breath_beats: 15,
    piano_floor: 67,
    pad_alone: 0.08,
    piano_alone: 0.3,
    arc_minutes: [8.0, 13.0, 11.0, 17.0],
};

/// night: dark sevenths and open fourths, low piano, the flat II as the
/// cadence; long rests in both layers.
const PHRYGIAN: Style = Style {
    chord_bars: (2, 4),
    phrase_chords: (3, 4),
    vocabulary: &[Seventh, Quartal, Sus4],
    cadences: &[1, 6],
    suspension: 0.4,
    motif_eighths: 25,
    bell_eighths: 43,
    pad_breath_beats: 19,
    piano_floor: 62,
    pad_alone: 0.2,
    piano_alone: 0.2,
    arc_minutes: [13.0, 9.0, 17.0, 20.0],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_unrelated_and_ranges_sane() {
        for mode in Mode::ALL {
            let s = Style::of(mode);
            // Odd loops never line up with the bar (8 eighths) or each other
            // for long: their least common multiple is many minutes.
            assert!(
                s.motif_eighths % 2 == 1 && s.bell_eighths % 2 == 1,
                "{mode}"
            );
            assert_ne!(s.motif_eighths, s.bell_eighths);
            assert!(s.chord_bars.0 >= 1 && s.chord_bars.0 <= s.chord_bars.1);
            assert!(s.phrase_chords.0 >= 2 && s.phrase_chords.1 <= 6);
            assert!(s.pad_alone + s.piano_alone < 0.6);
            assert!(!s.vocabulary.is_empty() && !s.cadences.is_empty());
            assert!(s.arc_minutes.iter().all(|m| (8.0..=20.0).contains(m)));
        }
    }
}
