//! The listener-facing knobs of the composer and their limits, and the one
//! table of them ([`CONTROLS`]) from which the command-line flags, the stream's
//! query string, the live control message, /api/status and the web page's
//! controls all derive.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::journey::Journey;
use super::presets;
use super::theory::{Mode, PitchClass};

/// Everything that shapes the music. Key and mode travel as strings ("D",
/// "dorian") so the same JSON works in URLs, control messages and files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub key: PitchClass,
    pub mode: Mode,
    #[serde(serialize_with = "serialize_decimal")]
    pub bpm: f32,
    /// 0 = nearly still, 1 = as busy as ambient gets: note density, velocity
    /// and register spread of the piano.
    #[serde(serialize_with = "serialize_decimal")]
    pub intensity: f32,
    pub seed: u64,
    /// General MIDI program of the pad: 88 (new age) or 89 (warm).
    pub pad_program: u8,
    /// Whether and how the music travels by itself (see `music::journey`).
    #[serde(default)]
    pub journey: Journey,
    /// The listener's local hour (0 to 24) that `daylight` starts from; the
    /// page sends it, so the server needs no clock and stays deterministic.
    #[serde(default = "default_hour", serialize_with = "serialize_decimal")]
    pub hour: f32,
}

/// Noon: a journey that is not told the hour starts in daylight.
pub const DEFAULT_HOUR: f32 = 12.0;

fn default_hour() -> f32 {
    DEFAULT_HOUR
}

/// The f64 nearest to the decimal an f32 prints as: 0.35 stays 0.35 when
/// widened for JSON, instead of becoming 0.3499999940395355.
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

pub(crate) fn serialize_decimal<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(decimal(*v))
}

/// A rejected parameter. Each message names the field, the value received
/// and what is allowed, because it is shown to whoever sent it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParamsError {
    #[error("bpm must be {expected}, got {0}", expected = BPM.domain.expected())]
    Bpm(f32),
    #[error("intensity must be {expected}, got {0}", expected = INTENSITY.domain.expected())]
    Intensity(f32),
    #[error("pad_program must be 88 (new age pad) or 89 (warm pad), got {0}")]
    PadProgram(u8),
    #[error("hour must be {expected}, got {0}", expected = HOUR.domain.expected())]
    Hour(f32),
}

impl Params {
    /// Slower than 40 the pulse dissolves; faster than 120 it stops being ambient.
    pub const BPM_RANGE: RangeInclusive<f32> = 40.0..=120.0;
    pub const INTENSITY_RANGE: RangeInclusive<f32> = 0.0..=1.0;
    /// The two GM pads that sustain smoothly without rhythmic movement.
    pub const PAD_PROGRAMS: [u8; 2] = [88, 89];
    pub const HOUR_RANGE: RangeInclusive<f32> = 0.0..=24.0;

    /// `contains` is false for NaN, so NaN is refused without a special case.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if !Self::BPM_RANGE.contains(&self.bpm) {
            return Err(ParamsError::Bpm(self.bpm));
        }
        if !Self::INTENSITY_RANGE.contains(&self.intensity) {
            return Err(ParamsError::Intensity(self.intensity));
        }
        if !Self::PAD_PROGRAMS.contains(&self.pad_program) {
            return Err(ParamsError::PadProgram(self.pad_program));
        }
        if !Self::HOUR_RANGE.contains(&self.hour) {
            return Err(ParamsError::Hour(self.hour));
        }
        Ok(())
    }
}

/// What values a control takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Domain {
    /// A preset's name.
    Preset,
    /// A note name (C, F#, Bb, …); the page offers the twelve sharps.
    Key,
    /// A church mode's name.
    Mode,
    /// A number from `min` to `max`; `step` is the resolution a slider needs.
    /// In JSON as the decimals they were written as: a slider stepping by
    /// 0.009999999776 would land beside every value a listener means.
    Number {
        #[serde(serialize_with = "serialize_decimal")]
        min: f32,
        #[serde(serialize_with = "serialize_decimal")]
        max: f32,
        #[serde(serialize_with = "serialize_decimal")]
        step: f32,
    },
    /// A whole number from 0 to `u64::MAX`.
    Seed,
    /// A journey's name: off, drift, daylight.
    Journey,
}

impl Domain {
    /// What is allowed, as error messages and help texts say it.
    pub fn expected(&self) -> String {
        match self {
            Domain::Preset | Domain::Key | Domain::Mode => "a string".into(),
            Domain::Journey => "off, drift or daylight".into(),
            Domain::Number { min, max, .. } => format!("a number from {min} to {max}"),
            Domain::Seed => format!("a whole number from 0 to {}", u64::MAX),
        }
    }

    /// The names a choice offers (empty for numbers).
    pub fn choices(&self) -> Vec<String> {
        match self {
            Domain::Preset => presets::PRESETS
                .iter()
                .map(|p| p.name.to_string())
                .collect(),
            Domain::Key => PitchClass::ALL.iter().map(ToString::to_string).collect(),
            Domain::Mode => Mode::ALL.iter().map(ToString::to_string).collect(),
            Domain::Journey => Journey::ALL.iter().map(ToString::to_string).collect(),
            Domain::Number { .. } | Domain::Seed => Vec::new(),
        }
    }
}

/// One listener-facing parameter: its name everywhere (flag, query, JSON),
/// what it takes, and a line of help.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Control {
    pub name: &'static str,
    #[serde(flatten)]
    pub domain: Domain,
    pub help: &'static str,
}

const BPM: Control = Control {
    name: "bpm",
    domain: Domain::Number {
        min: *Params::BPM_RANGE.start(),
        max: *Params::BPM_RANGE.end(),
        step: 1.0,
    },
    help: "Tempo in beats per minute",
};

const INTENSITY: Control = Control {
    name: "intensity",
    domain: Domain::Number {
        min: *Params::INTENSITY_RANGE.start(),
        max: *Params::INTENSITY_RANGE.end(),
        step: 0.01,
    },
    help: "Note density, velocity and register spread of the piano",
};

const HOUR: Control = Control {
    name: "hour",
    domain: Domain::Number {
        min: *Params::HOUR_RANGE.start(),
        max: *Params::HOUR_RANGE.end(),
        step: 0.25,
    },
    help: "The listener's local hour, which journey=daylight follows",
};

/// Every parameter a listener or the command line may set, in the order a
/// change applies them: the preset first, then each explicit value.
pub const CONTROLS: [Control; 8] = [
    Control {
        name: "preset",
        domain: Domain::Preset,
        help: "Preset to start from; key, mode, tempo and intensity follow it unless given",
    },
    Control {
        name: "key",
        domain: Domain::Key,
        help: "Tonic, e.g. D, F#, Bb",
    },
    Control {
        name: "mode",
        domain: Domain::Mode,
        help: "Church mode, e.g. dorian, lydian, aeolian (also major, minor)",
    },
    BPM,
    INTENSITY,
    Control {
        name: "seed",
        domain: Domain::Seed,
        help: "Seed of the composer's choices: the same seed plays the same music",
    },
    Control {
        name: "journey",
        domain: Domain::Journey,
        help: "off; drift: key, mode, tempo and intensity wander every few minutes; daylight: they follow the hour",
    },
    HOUR,
];

/// The table's entry for `name`.
pub fn control(name: &str) -> Option<&'static Control> {
    CONTROLS.iter().find(|c| c.name == name)
}

/// The controls' names, comma-separated, for messages that list what is allowed.
pub fn control_names() -> String {
    CONTROLS.map(|c| c.name).join(", ")
}

impl Default for Params {
    /// The brief's default sound: the `focus` preset.
    fn default() -> Self {
        presets::FOCUS.params(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_focus_with_seed_zero() {
        let p = Params::default();
        assert_eq!(p.key, PitchClass::D);
        assert_eq!(p.mode, Mode::Dorian);
        assert_eq!(p.bpm, 60.0);
        assert_eq!(p.intensity, 0.5);
        assert_eq!(p.pad_program, 89);
        assert_eq!(p.seed, 0);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn validate_accepts_the_edges() {
        for bpm in [40.0, 120.0] {
            for intensity in [0.0, 1.0] {
                for pad_program in Params::PAD_PROGRAMS {
                    let p = Params {
                        bpm,
                        intensity,
                        pad_program,
                        ..Params::default()
                    };
                    assert_eq!(p.validate(), Ok(()));
                }
            }
        }
    }

    #[test]
    fn validate_rejects_out_of_range_and_nan() {
        let base = Params::default();
        for bpm in [39.9, 120.1, f32::NAN, f32::INFINITY] {
            let p = Params {
                bpm,
                ..base.clone()
            };
            assert!(matches!(p.validate(), Err(ParamsError::Bpm(_))), "{bpm}");
        }
        for intensity in [-0.01, 1.01, f32::NAN] {
            let p = Params {
                intensity,
                ..base.clone()
            };
            assert!(
                matches!(p.validate(), Err(ParamsError::Intensity(_))),
                "{intensity}"
            );
        }
        let p = Params {
            pad_program: 90,
            ..base
        };
        assert_eq!(p.validate(), Err(ParamsError::PadProgram(90)));
    }

    #[test]
    fn errors_name_field_value_and_range() {
        let msg = ParamsError::Bpm(130.0).to_string();
        assert!(
            msg.contains("bpm") && msg.contains("130") && msg.contains("40 to 120"),
            "{msg}"
        );
        let msg = ParamsError::Intensity(f32::NAN).to_string();
        assert!(
            msg.contains("intensity") && msg.contains("NaN") && msg.contains("0 to 1"),
            "{msg}"
        );
        let msg = ParamsError::PadProgram(7).to_string();
        assert!(
            msg.contains("pad_program") && msg.contains('7') && msg.contains("88"),
            "{msg}"
        );
    }

    #[test]
    fn the_table_matches_what_validate_allows() {
        assert_eq!(
            control_names(),
            "preset, key, mode, bpm, intensity, seed, journey, hour"
        );
        let Some(Domain::Number { min, max, .. }) = control("bpm").map(|c| c.domain) else {
            panic!("bpm is a number")
        };
        for (bpm, ok) in [
            (min, true),
            (max, true),
            (min - 0.1, false),
            (max + 0.1, false),
        ] {
            let p = Params {
                bpm,
                ..Params::default()
            };
            assert_eq!(p.validate().is_ok(), ok, "{bpm}");
        }
        assert_eq!(control("key").unwrap().domain.choices().len(), 12);
        assert!(control("preset")
            .unwrap()
            .domain
            .choices()
            .contains(&"focus".to_string()));
        let json = serde_json::to_value(control("intensity").unwrap()).unwrap();
        assert_eq!(json["type"], "number");
        assert_eq!(json["max"], 1.0);
        assert_eq!(json["step"], 0.01, "decimal, not 0.009999999776");
    }

    #[test]
    fn serde_round_trip_uses_names() {
        let p = Params::default();
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.contains(r#""key":"D""#) && json.contains(r#""mode":"dorian""#),
            "{json}"
        );
        let back: Params = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
