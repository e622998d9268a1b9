//! Turning note events into samples: the [`Engine`] trait and its SoundFont
//! backends. Where the fonts come from is [`crate::soundfont`].

pub mod backend;
pub mod engine;
#[cfg(feature = "fluidsynth")]
pub mod fluid;
pub mod rusty;
pub mod voices;

pub use backend::{build_engine, EngineError, EngineKind};
pub use engine::{Engine, EngineSettings};
#[cfg(feature = "fluidsynth")]
pub use fluid::{FluidEngine, FluidError};
pub use rusty::RustyEngine;
pub use voices::VoicesEngine;
