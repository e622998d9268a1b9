//! The composer's output: MIDI-like events stamped with an absolute frame.

/// A frame is one stereo sample at [`crate::SAMPLE_RATE`]; counting from the
/// composer's start keeps every time exact and deterministic.
pub type Frame = u64;

/// MIDI channel of the piano line (General MIDI program 0).
pub const PIANO_CHANNEL: u8 = 0;
/// MIDI channel of the pad (General MIDI 88/89).
pub const PAD_CHANNEL: u8 = 1;

/// One timed message for the synthesizer. Absolute frames rather than MIDI
/// ticks, so rendering needs no tempo map even while the tempo changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    pub frame: Frame,
    pub channel: u8,
    pub kind: EventKind,
}

/// The three MIDI messages the composer needs; nothing continuous travels as
/// events, because glides are computed by the composer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    Program { program: u8 },
}
