//! The listener-facing knobs of the composer and their limits.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
}

/// The f64 nearest to the decimal an f32 prints as: 0.35 stays 0.35 when
/// widened for JSON, instead of becoming 0.3499999940395355.
pub fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

fn serialize_decimal<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(decimal(*v))
}

/// A rejected parameter. Each message names the field, the value received
/// and what is allowed, because it is shown to whoever sent it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParamsError {
    #[error("bpm must be a number from 40 to 120, got {0}")]
    Bpm(f32),
    #[error("intensity must be a number from 0 to 1, got {0}")]
    Intensity(f32),
    #[error("pad_program must be 88 (new age pad) or 89 (warm pad), got {0}")]
    PadProgram(u8),
}

impl Params {
    /// Slower than 40 the pulse dissolves; faster than 120 it stops being ambient.
    pub const BPM_RANGE: RangeInclusive<f32> = 40.0..=120.0;
    pub const INTENSITY_RANGE: RangeInclusive<f32> = 0.0..=1.0;
    /// The two GM pads that sustain smoothly without rhythmic movement.
    pub const PAD_PROGRAMS: [u8; 2] = [88, 89];

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
        Ok(())
    }
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
