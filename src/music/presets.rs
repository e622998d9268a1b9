//! Named starting points. Each is a mood chosen by ear from four levers: the
//! mode sets the colour, the tempo the breathing rate, intensity how much the
//! piano says, and the pad program warm (89) or airy (88).

use serde::Serialize;

use super::params::{serialize_decimal, Params};
use super::theory::{Mode, PitchClass};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub key: PitchClass,
    pub mode: Mode,
    #[serde(serialize_with = "serialize_decimal")]
    pub bpm: f32,
    #[serde(serialize_with = "serialize_decimal")]
    pub intensity: f32,
    pub pad_program: u8,
}

/// One line of `auralis presets`.
impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<10} {:<3} {:<11} {:>4} BPM  intensity {:.2}  pad {}  {}",
            self.name,
            self.key.to_string(),
            self.mode.to_string(),
            self.bpm,
            self.intensity,
            self.pad_program,
            self.description
        )
    }
}

impl Preset {
    pub fn params(&self, seed: u64) -> Params {
        Params {
            key: self.key,
            mode: self.mode,
            bpm: self.bpm,
            intensity: self.intensity,
            seed,
            pad_program: self.pad_program,
            journey: super::journey::Journey::Off,
            hour: super::params::DEFAULT_HOUR,
        }
    }
}

/// The brief's default: minor enough to be calm, Dorian's major sixth keeps it
/// from turning sad while you work.
pub const FOCUS: Preset = Preset {
    name: "focus",
    description: "Warm D Dorian at a resting pulse: present, never demanding",
    key: PitchClass::D,
    mode: Mode::Dorian,
    bpm: 60.0,
    intensity: 0.5,
    pad_program: 89,
};

pub static PRESETS: &[Preset] = &[
    FOCUS,
    // Plain major, nothing to resolve, and a piano that mostly listens.
    Preset {
        name: "calm",
        description: "Unhurried F major warmth for winding down",
        key: PitchClass::F,
        mode: Mode::Ionian,
        bpm: 54.0,
        intensity: 0.3,
        pad_program: 89,
    },
    // Near the slowest tempo and nearly silent piano: nothing to follow.
    Preset {
        name: "sleep",
        description: "Slow, soft A minor with a piano that barely speaks",
        key: PitchClass::A,
        mode: Mode::Aeolian,
        bpm: 42.0,
        intensity: 0.1,
        pad_program: 89,
    },
    // Mixolydian's flat seventh never pulls home, so the harmony just hovers;
    // the airy pad reads as a drone.
    Preset {
        name: "meditate",
        description: "Hovering C Mixolydian drone, airy and unresolved but at ease",
        key: PitchClass::C,
        mode: Mode::Mixolydian,
        bpm: 48.0,
        intensity: 0.2,
        pad_program: 88,
    },
    // Lydian's raised fourth is the brightest colour available; a quicker
    // pulse and a busier piano lift it further.
    Preset {
        name: "dawn",
        description: "Bright, lifting G Lydian with a livelier piano",
        key: PitchClass::G,
        mode: Mode::Lydian,
        bpm: 72.0,
        intensity: 0.6,
        pad_program: 88,
    },
    // Phrygian's flat second is the darkest colour short of Locrian's
    // instability; kept slow and sparse so it stays quiet rather than tense.
    Preset {
        name: "night",
        description: "Dark, close E Phrygian, slow and low",
        key: PitchClass::E,
        mode: Mode::Phrygian,
        bpm: 50.0,
        intensity: 0.3,
        pad_program: 89,
    },
];

/// Looks a preset up by name, ignoring case, as typed in a URL or CLI.
pub fn preset(name: &str) -> Option<&'static Preset> {
    let name = name.trim();
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /api/status lists presets as this JSON; the page reads key and mode as
    /// names and tempo and intensity as the decimals they were written as.
    #[test]
    fn a_preset_serializes_with_names_and_decimals() {
        let json = serde_json::to_value(FOCUS).unwrap();
        assert_eq!(json["key"], FOCUS.key.to_string());
        assert_eq!(json["mode"], FOCUS.mode.to_string());
        assert_eq!(
            json["bpm"].as_f64().unwrap().to_string(),
            FOCUS.bpm.to_string()
        );
        assert_eq!(
            json["intensity"].as_f64().unwrap().to_string(),
            FOCUS.intensity.to_string()
        );
        assert_eq!(json["pad_program"], FOCUS.pad_program);
        assert_eq!(json["name"], FOCUS.name);
        assert_eq!(json["description"], FOCUS.description);
    }

    #[test]
    fn focus_matches_the_brief() {
        let focus = preset("focus").expect("focus exists");
        assert_eq!((focus.key, focus.mode), (PitchClass::D, Mode::Dorian));
        assert_eq!(
            (focus.bpm, focus.intensity, focus.pad_program),
            (60.0, 0.5, 89)
        );
    }

    #[test]
    fn required_presets_exist_and_are_valid() {
        for name in ["focus", "calm", "sleep", "meditate", "dawn", "night"] {
            let p = preset(name).unwrap_or_else(|| panic!("missing preset {name}"));
            assert!(!p.description.is_empty());
            assert_eq!(p.params(7).validate(), Ok(()), "{name}");
            assert_eq!(p.params(7).seed, 7);
        }
    }

    #[test]
    fn lookup_ignores_case_and_rejects_unknown() {
        assert_eq!(preset("Sleep").map(|p| p.name), Some("sleep"));
        assert_eq!(preset("NIGHT").map(|p| p.name), Some("night"));
        assert!(preset("party").is_none());
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in PRESETS.iter().enumerate() {
            assert!(
                PRESETS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
