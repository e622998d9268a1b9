//! A partial change of parameters, as a listener or the command line states
//! it: "switch to the sleep preset", "key of F", "72 BPM". One type serves the
//! CLI flags, the stream's query string and the live control message, so all
//! three accept and reject exactly the same things.

use serde::Deserialize;

use super::params::{Params, ParamsError};
use super::presets::{preset, Preset, PRESETS};
use super::theory::{Mode, PitchClass};

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamChange {
    pub preset: Option<String>,
    pub key: Option<String>,
    pub mode: Option<String>,
    pub bpm: Option<f32>,
    pub intensity: Option<f32>,
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChangeError {
    #[error("unknown preset \"{name}\": expected one of {}", preset_names())]
    UnknownPreset { name: String },
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Mode(String),
    #[error(transparent)]
    Params(#[from] ParamsError),
}

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ParamChange {
    pub fn is_empty(&self) -> bool {
        *self == ParamChange::default()
    }

    /// The parameters that hold after this change: a named preset replaces
    /// key, mode, tempo, intensity and pad (the seed carries over unless given),
    /// then each explicit field overrides. Also returns the preset chosen, if
    /// any. Nothing is applied unless the whole result is valid.
    pub fn apply_to(
        &self,
        base: &Params,
    ) -> Result<(Params, Option<&'static Preset>), ChangeError> {
        let chosen = match &self.preset {
            Some(name) => Some(
                preset(name).ok_or_else(|| ChangeError::UnknownPreset { name: name.clone() })?,
            ),
            None => None,
        };
        let mut params = chosen.map_or_else(|| base.clone(), |p| p.params(base.seed));
        if let Some(key) = &self.key {
            params.key = key
                .parse::<PitchClass>()
                .map_err(|e| ChangeError::Key(e.to_string()))?;
        }
        if let Some(mode) = &self.mode {
            params.mode = mode
                .parse::<Mode>()
                .map_err(|e| ChangeError::Mode(e.to_string()))?;
        }
        if let Some(bpm) = self.bpm {
            params.bpm = bpm;
        }
        if let Some(intensity) = self.intensity {
            params.intensity = intensity;
        }
        if let Some(seed) = self.seed {
            params.seed = seed;
        }
        params.validate()?;
        Ok((params, chosen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_then_overrides() {
        let change = ParamChange {
            preset: Some("focus".into()),
            key: Some("F".into()),
            bpm: Some(72.0),
            ..Default::default()
        };
        let base = Params {
            seed: 9,
            ..Params::default()
        };
        let (p, chosen) = change.apply_to(&base).unwrap();
        assert_eq!(chosen.map(|p| p.name), Some("focus"));
        assert_eq!(p.key.to_string(), "F");
        assert_eq!(p.mode, Mode::Dorian);
        assert_eq!(p.bpm, 72.0);
        assert_eq!(p.seed, 9, "the seed carries over a preset change");
    }

    #[test]
    fn bad_values_say_what_is_allowed() {
        let base = Params::default();
        let bad_preset = ParamChange {
            preset: Some("disco".into()),
            ..Default::default()
        };
        let msg = bad_preset.apply_to(&base).unwrap_err().to_string();
        assert!(msg.contains("disco") && msg.contains("focus"), "{msg}");
        let bad_bpm = ParamChange {
            bpm: Some(300.0),
            ..Default::default()
        };
        let msg = bad_bpm.apply_to(&base).unwrap_err().to_string();
        assert!(msg.contains("300") && msg.contains("40"), "{msg}");
        let bad_key = ParamChange {
            key: Some("H".into()),
            ..Default::default()
        };
        assert!(matches!(bad_key.apply_to(&base), Err(ChangeError::Key(_))));
        let bad_mode = ParamChange {
            mode: Some("bebop".into()),
            ..Default::default()
        };
        assert!(matches!(
            bad_mode.apply_to(&base),
            Err(ChangeError::Mode(_))
        ));
    }
}
