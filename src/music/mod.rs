//! Composition: turns [`Params`] into an endless, deterministic stream of
//! note events for a piano (channel 0) and a pad (channel 1).

pub mod analysis;
pub mod change;
mod chords;
pub mod composer;
pub mod event;
pub mod journey;
mod motif;
pub mod params;
pub mod presets;
pub mod style;
pub mod theory;
mod voicing;

pub use composer::{Composer, PIANO_PROGRAM};
pub use event::{Event, EventKind, Frame, PAD_CHANNEL, PIANO_CHANNEL};
pub use params::{Params, ParamsError};
pub use presets::{preset, Preset, PRESETS};
pub use theory::{Mode, PitchClass};
