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
/// Sorting events puts them in the order a synthesizer must apply them (see
/// the `Ord` impl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    pub frame: Frame,
    pub channel: u8,
    pub kind: EventKind,
}

/// The three MIDI messages the composer needs; nothing continuous travels as
/// events, because glides are computed by the composer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    Program { program: u8 },
}

impl EventKind {
    /// At one frame, programs are set before notes, and a note is released
    /// before the same key is struck again.
    fn rank(&self) -> u8 {
        match self {
            EventKind::Program { .. } => 0,
            EventKind::NoteOff { .. } => 1,
            EventKind::NoteOn { .. } => 2,
        }
    }
}

/// By frame, then [`EventKind::rank`]; the remaining fields only break ties,
/// so the order agrees with `Eq` and every sort of the same events is the same.
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.frame, self.kind.rank(), self.channel, self.kind).cmp(&(
            other.frame,
            other.kind.rank(),
            other.channel,
            other.kind,
        ))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(frame: Frame, kind: EventKind) -> Event {
        Event {
            frame,
            channel: PAD_CHANNEL,
            kind,
        }
    }

    #[test]
    fn at_one_frame_program_then_release_then_strike() {
        let on = at(
            10,
            EventKind::NoteOn {
                key: 60,
                velocity: 90,
            },
        );
        let off = at(10, EventKind::NoteOff { key: 60 });
        let program = at(10, EventKind::Program { program: 89 });
        let earlier_on = at(
            9,
            EventKind::NoteOn {
                key: 61,
                velocity: 90,
            },
        );
        let mut events = vec![on, off, earlier_on, program];
        events.sort();
        assert_eq!(events, vec![earlier_on, program, off, on]);
    }

    #[test]
    fn only_equal_events_compare_equal() {
        let a = at(
            10,
            EventKind::NoteOn {
                key: 60,
                velocity: 90,
            },
        );
        let b = at(
            10,
            EventKind::NoteOn {
                key: 64,
                velocity: 90,
            },
        );
        let c = Event {
            channel: PIANO_CHANNEL,
            ..a
        };
        assert_ne!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert_ne!(a.cmp(&c), std::cmp::Ordering::Equal);
        assert_eq!(a.cmp(&a), std::cmp::Ordering::Equal);
    }
}
