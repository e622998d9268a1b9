//! The synthesizer seam: everything above it speaks MIDI-like events, everything
//! below it is a particular SoundFont implementation.

use crate::music::{Event, EventKind};

/// Settings shared by every backend, fixed when an engine is built so the
/// audio path never re-validates them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineSettings {
    /// Voices per synthesizer; ambient textures rarely need more than 16, and
    /// the cap bounds the worst-case render cost of one session.
    pub polyphony: usize,
    /// Linear gain applied inside the synthesizer, before the mix stage.
    pub gain: f32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            polyphony: 32,
            gain: 0.5,
        }
    }
}

/// A SoundFont synthesizer driven by channel messages and pulled for audio.
///
/// Engines are `Send` so a session can move between render threads; they are
/// not shared, because a synthesizer's voice state belongs to one stream.
pub trait Engine: Send {
    /// Short backend name for status pages and benchmarks.
    fn name(&self) -> &'static str;
    fn program_change(&mut self, channel: u8, program: u8);
    fn note_on(&mut self, channel: u8, key: u8, velocity: u8);
    fn note_off(&mut self, channel: u8, key: u8);
    /// Releases every sounding note (with its release envelope, not a cut).
    fn all_notes_off(&mut self);
    /// Stops every voice at once, release tails included. Only for a layer
    /// whose fader has already reached silence, where a cut is inaudible:
    /// it leaves the synthesizer as good as new for its next program.
    fn sound_off(&mut self);
    /// Renders `left.len()` frames of dry stereo audio; both slices have the
    /// same length.
    fn render(&mut self, left: &mut [f32], right: &mut [f32]);

    fn apply(&mut self, event: &Event) {
        match event.kind {
            EventKind::NoteOn { key, velocity } => self.note_on(event.channel, key, velocity),
            EventKind::NoteOff { key } => self.note_off(event.channel, key),
            EventKind::Program { program } => self.program_change(event.channel, program),
        }
    }
}
