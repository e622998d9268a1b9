//! SoundFonts: where they come from (a path, a system font, the Salamander
//! piano, the font Auralis builds itself), the SF2 writer the built fonts go
//! through, and the `fluidsynth` command as a second reader of what it writes.

pub mod builtin_font;
pub mod discovery;
pub mod fluidsynth_check;
pub mod salamander;
pub mod sf2_writer;

pub use discovery::{FontSet, FontSource, LoadedFont, SoundFontError};
