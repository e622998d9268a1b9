//! A partial change of parameters, as a listener or the command line states
//! it: "switch to the sleep preset", "key of F", "72 BPM". One type serves the
//! CLI flags, the stream's query string and the live control message, so all
//! three accept and reject exactly the same things, field by field through
//! [`ParamChange::set`] and the table in [`super::params::CONTROLS`].

use super::params::{control, control_names, Domain, Params, ParamsError};
use super::presets::{preset, Preset, PRESETS};
use super::theory::{Mode, PitchClass};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParamChange {
    pub preset: Option<String>,
    pub key: Option<String>,
    pub mode: Option<String>,
    pub bpm: Option<f32>,
    pub intensity: Option<f32>,
    pub seed: Option<u64>,
    pub journey: Option<String>,
    pub hour: Option<f32>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChangeError {
    #[error("unknown preset \"{name}\": expected one of {}", preset_names())]
    UnknownPreset { name: String },
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Mode(String),
    #[error("{0}")]
    Journey(String),
    #[error(transparent)]
    Params(#[from] ParamsError),
}

/// A value as it arrives: text from a URL or a flag, or a JSON value from a
/// control message (where a number must be a JSON number).
#[derive(Debug, Clone, Copy)]
pub enum RawValue<'a> {
    Text(&'a str),
    Json(&'a serde_json::Value),
}

impl RawValue<'_> {
    fn text(&self) -> Option<String> {
        match self {
            RawValue::Text(s) => Some((*s).to_string()),
            RawValue::Json(v) => v.as_str().map(str::to_string),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            RawValue::Text(s) => s.parse().ok(),
            RawValue::Json(v) => v.as_f64(),
        }
        .filter(|x: &f64| x.is_finite())
    }

    fn whole(&self) -> Option<u64> {
        match self {
            RawValue::Text(s) => s.parse().ok(),
            RawValue::Json(v) => v.as_u64(),
        }
    }

    /// The value as the error message quotes it; echoing a client's string
    /// back is useful, echoing a megabyte is not.
    fn quoted(&self) -> String {
        let shown = match self {
            RawValue::Text(s) => format!("\"{s}\""),
            RawValue::Json(v) => v.to_string(),
        };
        shown.chars().take(42).collect()
    }
}

/// A field that is not a control, or a value of the wrong kind.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum FieldError {
    #[error("unknown parameter \"{name}\": allowed are {}", control_names())]
    Unknown { name: String },
    #[error("{name} must be {expected}, got {got}")]
    Invalid {
        name: &'static str,
        expected: String,
        got: String,
    },
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

    /// Sets the control `name` from a raw value. Only the kind is checked
    /// here (a number, a whole number, a string); ranges and names are
    /// checked by [`ParamChange::apply_to`], against the whole result.
    pub fn set(&mut self, name: &str, value: RawValue) -> Result<(), FieldError> {
        let Some(c) = control(name) else {
            return Err(FieldError::Unknown {
                name: name.chars().take(40).collect(),
            });
        };
        let invalid = || FieldError::Invalid {
            name: c.name,
            expected: c.domain.expected(),
            got: value.quoted(),
        };
        match c.domain {
            Domain::Preset => self.preset = Some(value.text().ok_or_else(invalid)?),
            Domain::Key => self.key = Some(value.text().ok_or_else(invalid)?),
            Domain::Mode => self.mode = Some(value.text().ok_or_else(invalid)?),
            Domain::Number { .. } => {
                let v = Some(value.number().ok_or_else(invalid)? as f32);
                match c.name {
                    "bpm" => self.bpm = v,
                    "intensity" => self.intensity = v,
                    _ => self.hour = v,
                }
            }
            Domain::Seed => self.seed = Some(value.whole().ok_or_else(invalid)?),
            Domain::Journey => self.journey = Some(value.text().ok_or_else(invalid)?),
        }
        Ok(())
    }

    /// The parameters a new stream starts with: the `focus` preset unless
    /// another is named, then each explicit value.
    pub fn resolve(mut self) -> Result<(Params, Option<&'static Preset>), ChangeError> {
        if self.preset.is_none() {
            self.preset = Some(super::presets::FOCUS.name.into());
        }
        self.apply_to(&Params::default())
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
        // A journey, like the seed, goes on across a preset change.
        params.journey = base.journey;
        params.hour = base.hour;
        if let Some(journey) = &self.journey {
            params.journey = journey.parse().map_err(ChangeError::Journey)?;
        }
        if let Some(hour) = self.hour {
            params.hour = hour;
        }
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
    fn set_reads_text_and_json_alike() {
        let mut from_text = ParamChange::default();
        let mut from_json = ParamChange::default();
        for (name, text, json) in [
            ("preset", "calm", serde_json::json!("calm")),
            ("key", "F#", serde_json::json!("F#")),
            ("bpm", "72", serde_json::json!(72)),
            ("intensity", "0.25", serde_json::json!(0.25)),
            ("seed", "42", serde_json::json!(42)),
        ] {
            from_text.set(name, RawValue::Text(text)).unwrap();
            from_json.set(name, RawValue::Json(&json)).unwrap();
        }
        assert_eq!(from_text, from_json);
        assert_eq!(from_text.bpm, Some(72.0));
        let e = from_text
            .set("tempo", RawValue::Text("60"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tempo") && e.contains("allowed are preset"),
            "{e}"
        );
        let e = from_text
            .set("bpm", RawValue::Json(&serde_json::json!("fast")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"fast\"") && e.contains("40 to 120"), "{e}");
        let e = from_text
            .set("seed", RawValue::Text("-1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn resolve_starts_from_focus() {
        let (p, chosen) = ParamChange::default().resolve().unwrap();
        assert_eq!(chosen.map(|p| p.name), Some("focus"));
        assert_eq!(p, Params::default());
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
