//! Turning note events into samples: the [`Engine`] trait, its SoundFont
//! backends, where SoundFonts come from, and the font Auralis builds itself.

pub mod builtin_font;
pub mod engine;
pub mod rusty;
pub mod sf2_writer;
pub mod soundfonts;

pub use engine::{Engine, EngineSettings};
pub use rusty::RustyEngine;
pub use soundfonts::{FontSet, FontSource, LoadedFont, SoundFontError};
