//! Turning note events into samples: the [`Engine`] trait, its SoundFont
//! backends, where SoundFonts come from, and the font Auralis builds itself.

pub mod backend;
pub mod builtin_font;
pub mod engine;
#[cfg(feature = "fluidsynth")]
pub mod fluid;
pub mod fluidsynth_check;
pub mod rusty;
pub mod salamander;
pub mod sf2_writer;
pub mod soundfonts;
pub mod voices;

pub use backend::{build_engine, EngineError, EngineKind};
pub use engine::{Engine, EngineSettings};
#[cfg(feature = "fluidsynth")]
pub use fluid::{FluidEngine, FluidError};
pub use rusty::RustyEngine;
pub use soundfonts::{FontSet, FontSource, LoadedFont, SoundFontError};
pub use voices::VoicesEngine;
