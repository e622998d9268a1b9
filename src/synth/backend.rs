//! Choosing a synthesizer backend at run time, so the CLI (and later the
//! server) can pick one by name while the rest of the pipeline only ever sees
//! `Box<dyn Engine>`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::engine::{Engine, EngineSettings};
use super::rusty::RustyEngine;
use super::voices::VoicesEngine;
use crate::soundfont::FontSet;

/// The backends Auralis knows. `Fluidsynth` exists even in builds without the
/// `fluidsynth` feature so that asking for it gives a message about how to
/// get it rather than "unknown engine".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// The pure-Rust crate, kept as the reference our renderer is checked
    /// against.
    Rustysynth,
    Fluidsynth,
    /// Our own SoundFont renderer (`synth::voices`): the default, as it is
    /// the fastest (about 2× rustysynth and libfluidsynth per phrase).
    #[default]
    Voices,
}

impl EngineKind {
    pub const ALL: [EngineKind; 3] = [
        EngineKind::Rustysynth,
        EngineKind::Fluidsynth,
        EngineKind::Voices,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Rustysynth => "rustysynth",
            EngineKind::Fluidsynth => "fluidsynth",
            EngineKind::Voices => "voices",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {0:?}: expected rustysynth, fluidsynth or voices")]
pub struct UnknownEngine(String);

impl FromStr for EngineKind {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EngineKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEngine(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("this auralis was built without libfluidsynth; rebuild with `cargo build --release --features fluidsynth` (needs libfluidsynth-dev)")]
    NotBuilt,
    #[cfg(feature = "fluidsynth")]
    #[error(transparent)]
    Fluid(#[from] super::fluid::FluidError),
}

/// Builds one synthesizer of the given kind over `fonts`. Only the
/// libfluidsynth backend can fail: it loads the fonts itself, from disk.
pub fn build_engine(
    kind: EngineKind,
    fonts: &FontSet,
    settings: EngineSettings,
) -> Result<Box<dyn Engine>, EngineError> {
    match kind {
        EngineKind::Rustysynth => Ok(Box::new(RustyEngine::new(fonts, settings))),
        EngineKind::Voices => Ok(Box::new(VoicesEngine::new(fonts, settings))),
        #[cfg(feature = "fluidsynth")]
        EngineKind::Fluidsynth => Ok(Box::new(super::fluid::FluidEngine::new(fonts, settings)?)),
        #[cfg(not(feature = "fluidsynth"))]
        EngineKind::Fluidsynth => Err(EngineError::NotBuilt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in EngineKind::ALL {
            assert_eq!(k.to_string().parse::<EngineKind>(), Ok(k));
        }
        assert!("FluidSynth".parse::<EngineKind>().is_ok());
        assert!("timidity".parse::<EngineKind>().is_err());
    }

    #[cfg(not(feature = "fluidsynth"))]
    #[test]
    fn fluidsynth_without_the_feature_says_how_to_get_it() {
        let err = build_engine(
            EngineKind::Fluidsynth,
            &FontSet::builtin(),
            EngineSettings::default(),
        )
        .err()
        .expect("no fluidsynth in this build");
        assert!(err.to_string().contains("--features fluidsynth"), "{err}");
    }
}
