//! Pitch classes, church modes and the diatonic scale they make together.
//!
//! Everything the composer plays is derived from scale degrees, never from
//! raw semitones, so a note cannot leave the key by construction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a key name was refused; the message lists what would have been accepted
/// because it goes straight back to a listener who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown key {0:?}: expected a note name such as C, F#, Bb")]
pub struct ParseKeyError(pub String);

/// Why a mode name was refused, with the accepted spellings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown mode {0:?}: expected one of ionian, dorian, phrygian, lydian, mixolydian, aeolian, locrian (or major, minor)"
)]
pub struct ParseModeError(pub String);

/// One of the twelve pitch classes. Spelled with sharps when printed so that a
/// value round-trips through its string form unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PitchClass {
    C,
    CSharp,
    D,
    DSharp,
    E,
    F,
    FSharp,
    G,
    GSharp,
    A,
    ASharp,
    B,
}

impl PitchClass {
    pub const ALL: [PitchClass; 12] = [
        PitchClass::C,
        PitchClass::CSharp,
        PitchClass::D,
        PitchClass::DSharp,
        PitchClass::E,
        PitchClass::F,
        PitchClass::FSharp,
        PitchClass::G,
        PitchClass::GSharp,
        PitchClass::A,
        PitchClass::ASharp,
        PitchClass::B,
    ];

    const NAMES: [&'static str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];

    /// Semitones above C, 0..12.
    pub const fn semitone(self) -> u8 {
        self as u8
    }

    /// The pitch class `semitones` above C, wrapping at the octave.
    pub const fn from_semitone(semitones: u8) -> Self {
        Self::ALL[(semitones % 12) as usize]
    }
}

impl fmt::Display for PitchClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::NAMES[self.semitone() as usize])
    }
}

impl FromStr for PitchClass {
    type Err = ParseKeyError;

    /// Only the letter is case-insensitive: after it, a lone `b` must mean flat,
    /// which is what makes "bb" read as B-flat.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseKeyError(s.to_owned());
        let mut chars = s.trim().chars();
        let natural: u8 = match chars.next().map(|c| c.to_ascii_uppercase()) {
            Some('C') => 0,
            Some('D') => 2,
            Some('E') => 4,
            Some('F') => 5,
            Some('G') => 7,
            Some('A') => 9,
            Some('B') => 11,
            _ => return Err(err()),
        };
        let shifted = match chars.next() {
            None => natural,
            Some('#' | '♯') => natural + 1,
            Some('b' | 'B' | '♭') => natural + 11,
            Some(_) => return Err(err()),
        };
        if chars.next().is_some() {
            return Err(err());
        }
        Ok(Self::from_semitone(shifted))
    }
}

impl TryFrom<String> for PitchClass {
    type Error = ParseKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PitchClass> for String {
    fn from(pc: PitchClass) -> Self {
        pc.to_string()
    }
}

/// The seven church modes: rotations of the major scale, which is what lets
/// one chord and voicing algorithm serve all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Mode {
    Ionian,
    Dorian,
    Phrygian,
    Lydian,
    Mixolydian,
    Aeolian,
    Locrian,
}

impl Mode {
    pub const ALL: [Mode; 7] = [
        Mode::Ionian,
        Mode::Dorian,
        Mode::Phrygian,
        Mode::Lydian,
        Mode::Mixolydian,
        Mode::Aeolian,
        Mode::Locrian,
    ];

    const MAJOR_STEPS: [u8; 7] = [0, 2, 4, 5, 7, 9, 11];

    /// Semitones above the tonic of the seven degrees, ascending.
    pub fn intervals(self) -> [u8; 7] {
        let rotation = self as usize;
        let base = Self::MAJOR_STEPS[rotation];
        std::array::from_fn(|i| (Self::MAJOR_STEPS[(i + rotation) % 7] + 12 - base) % 12)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Mode::Ionian => "ionian",
            Mode::Dorian => "dorian",
            Mode::Phrygian => "phrygian",
            Mode::Lydian => "lydian",
            Mode::Mixolydian => "mixolydian",
            Mode::Aeolian => "aeolian",
            Mode::Locrian => "locrian",
        }
    }

    /// The degree (0-based) whose chord gives the mode its colour: Dorian's
    /// major IV, Lydian's major II, Mixolydian's bVII and so on. Progressions
    /// visit it so that a mode change is actually heard.
    pub const fn characteristic_degree(self) -> u8 {
        match self {
            Mode::Ionian | Mode::Dorian => 3,
            Mode::Phrygian | Mode::Lydian | Mode::Locrian => 1,
            Mode::Mixolydian => 6,
            Mode::Aeolian => 5,
        }
    }
    /// True when the triad on this degree has a diminished fifth; such chords
    /// sound unresolved in a static ambient texture, so progressions avoid
    /// them except as Locrian's unavoidable tonic.
    pub fn is_diminished(self, degree: u8) -> bool {
        self.step(degree, 4) == 6
    }

    /// Semitones from `degree` up `steps` scale steps (steps < 7).
    pub fn step(self, degree: u8, steps: u8) -> u8 {
        let iv = self.intervals();
        let from = iv[usize::from(degree % 7)];
        let to = iv[usize::from((degree + steps) % 7)];
        (to + 12 - from) % 12
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "major" => return Ok(Mode::Ionian),
            "minor" => return Ok(Mode::Aeolian),
            _ => {}
        }
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == lower)
            .ok_or_else(|| ParseModeError(s.to_owned()))
    }
}

impl TryFrom<String> for Mode {
    type Error = ParseModeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Mode> for String {
    fn from(mode: Mode) -> Self {
        mode.to_string()
    }
}

/// A key and a mode together: the set of notes the composer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub key: PitchClass,
    pub mode: Mode,
}

impl Scale {
    pub const fn new(key: PitchClass, mode: Mode) -> Self {
        Self { key, mode }
    }

    /// Pitch class (0..12) of a scale degree; degrees wrap, so negative and
    /// large degrees name the same seven classes.
    pub fn pitch_class(self, degree: i32) -> u8 {
        let d = degree.rem_euclid(7) as usize;
        (self.key.semitone() + self.mode.intervals()[d]) % 12
    }

    /// MIDI note of `degree` counted from `tonic_midi` (a tonic), stepping
    /// through octaves as the degree leaves 0..7.
    pub fn note(self, tonic_midi: i32, degree: i32) -> i32 {
        let octave = degree.div_euclid(7);
        let d = degree.rem_euclid(7) as usize;
        tonic_midi + 12 * octave + i32::from(self.mode.intervals()[d])
    }

    /// Whether a MIDI note belongs to the scale.
    pub fn contains(self, midi: u8) -> bool {
        let offset = (midi % 12 + 12 - self.key.semitone()) % 12;
        self.mode.intervals().contains(&offset)
    }

    /// The lowest MIDI note of the tonic at or above `floor`.
    pub fn tonic_at_or_above(self, floor: i32) -> i32 {
        floor + (i32::from(self.key.semitone()) - floor).rem_euclid(12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_note_names() {
        let cases = [
            ("C", PitchClass::C),
            ("c", PitchClass::C),
            ("C#", PitchClass::CSharp),
            ("Db", PitchClass::CSharp),
            ("d", PitchClass::D),
            ("F#", PitchClass::FSharp),
            ("f♯", PitchClass::FSharp),
            ("Bb", PitchClass::ASharp),
            ("bb", PitchClass::ASharp),
            ("B♭", PitchClass::ASharp),
            ("Cb", PitchClass::B),
            ("E#", PitchClass::F),
            (" G ", PitchClass::G),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<PitchClass>(), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_bad_note_names_with_a_helpful_message() {
        for bad in ["H", "", "C##", "Dx", "Bbb", "do"] {
            assert!(bad.parse::<PitchClass>().is_err(), "{bad}");
        }
        let msg = "H".parse::<PitchClass>().unwrap_err().to_string();
        assert_eq!(
            msg,
            r#"unknown key "H": expected a note name such as C, F#, Bb"#
        );
    }

    #[test]
    fn pitch_class_display_round_trips() {
        for pc in PitchClass::ALL {
            assert_eq!(pc.to_string().parse::<PitchClass>(), Ok(pc));
        }
        assert_eq!(PitchClass::CSharp.to_string(), "C#");
    }

    #[test]
    fn pitch_class_serde_is_the_name() {
        let json = serde_json::to_string(&PitchClass::ASharp).unwrap();
        assert_eq!(json, r#""A#""#);
        let back: PitchClass = serde_json::from_str(r#""Bb""#).unwrap();
        assert_eq!(back, PitchClass::ASharp);
        assert!(serde_json::from_str::<PitchClass>(r#""H""#).is_err());
    }

    #[test]
    fn parses_modes() {
        assert_eq!("Dorian".parse(), Ok(Mode::Dorian));
        assert_eq!("MAJOR".parse(), Ok(Mode::Ionian));
        assert_eq!("minor".parse(), Ok(Mode::Aeolian));
        for m in Mode::ALL {
            assert_eq!(m.to_string().parse(), Ok(m));
        }
        let msg = "blues".parse::<Mode>().unwrap_err().to_string();
        assert!(msg.contains("\"blues\"") && msg.contains("dorian"), "{msg}");
    }

    #[test]
    fn mode_serde_is_lowercase_name() {
        assert_eq!(
            serde_json::to_string(&Mode::Mixolydian).unwrap(),
            r#""mixolydian""#
        );
        let m: Mode = serde_json::from_str(r#""Lydian""#).unwrap();
        assert_eq!(m, Mode::Lydian);
    }

    #[test]
    fn mode_intervals() {
        assert_eq!(Mode::Ionian.intervals(), [0, 2, 4, 5, 7, 9, 11]);
        assert_eq!(Mode::Dorian.intervals(), [0, 2, 3, 5, 7, 9, 10]);
        assert_eq!(Mode::Phrygian.intervals(), [0, 1, 3, 5, 7, 8, 10]);
        assert_eq!(Mode::Lydian.intervals(), [0, 2, 4, 6, 7, 9, 11]);
        assert_eq!(Mode::Mixolydian.intervals(), [0, 2, 4, 5, 7, 9, 10]);
        assert_eq!(Mode::Aeolian.intervals(), [0, 2, 3, 5, 7, 8, 10]);
        assert_eq!(Mode::Locrian.intervals(), [0, 1, 3, 5, 6, 8, 10]);
    }

    #[test]
    fn scale_membership_and_degrees() {
        let d_dorian = Scale::new(PitchClass::D, Mode::Dorian);
        assert!(d_dorian.contains(62) && d_dorian.contains(71) && !d_dorian.contains(66));
        assert_eq!(d_dorian.note(62, 7), 74);
        assert_eq!(d_dorian.note(62, -1), 60);
        assert_eq!(d_dorian.pitch_class(3), 7);
        assert_eq!(d_dorian.tonic_at_or_above(55), 62);
        for mode in Mode::ALL {
            let dims: Vec<u8> = (0..7).filter(|&d| mode.is_diminished(d)).collect();
            assert_eq!(dims.len(), 1, "{mode}");
            assert_ne!(dims[0], mode.characteristic_degree(), "{mode}");
        }
    }
}
