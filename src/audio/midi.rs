//! Standard MIDI files of what the composer wrote, so a render can be checked
//! in a DAW or played through another synthesizer (e.g. the `fluidsynth`
//! command) on exactly the same notes.

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::music::{Event, EventKind};

/// Ticks per quarter note: fine enough for the composer's humanised timing
/// (about 2 ms at 60 BPM).
pub const TICKS_PER_BEAT: u16 = 480;

#[derive(Debug, thiserror::Error)]
#[error("cannot write MIDI: {0}")]
pub struct MidiError(#[from] std::io::Error);

/// Encodes events (sorted by frame, constant tempo `bpm`) as a format-0 file.
pub fn midi_bytes(events: &[Event], bpm: f32) -> Result<Vec<u8>, MidiError> {
    let frames_per_tick =
        f64::from(crate::SAMPLE_RATE) * 60.0 / f64::from(bpm) / f64::from(TICKS_PER_BEAT);
    let micros_per_beat = (60_000_000.0 / f64::from(bpm)).round() as u32;
    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros_per_beat))),
    }];
    let mut last_tick = 0u64;
    for e in events {
        let tick = (e.frame as f64 / frames_per_tick).round() as u64;
        let delta = tick.saturating_sub(last_tick);
        last_tick = last_tick.max(tick);
        let message = match e.kind {
            EventKind::NoteOn { key, velocity } => MidiMessage::NoteOn {
                key: u7::new(key.min(127)),
                vel: u7::new(velocity.min(127)),
            },
            EventKind::NoteOff { key } => MidiMessage::NoteOff {
                key: u7::new(key.min(127)),
                vel: u7::new(0),
            },
            EventKind::Program { program } => MidiMessage::ProgramChange {
                program: u7::new(program.min(127)),
            },
        };
        track.push(TrackEvent {
            delta: u28::new(delta.min(u64::from(u32::MAX >> 4)) as u32),
            kind: TrackEventKind::Midi {
                channel: u4::new(e.channel.min(15)),
                message,
            },
        });
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let smf = Smf {
        header: Header::new(
            Format::SingleTrack,
            Timing::Metrical(u15::new(TICKS_PER_BEAT)),
        ),
        tracks: vec![track],
    };
    let mut out = Vec::new();
    smf.write_std(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_land_on_the_right_ticks() {
        let beat = u64::from(crate::SAMPLE_RATE); // one beat at 60 BPM
        let events = [
            Event {
                frame: 0,
                channel: 1,
                kind: EventKind::Program { program: 89 },
            },
            Event {
                frame: beat,
                channel: 0,
                kind: EventKind::NoteOn {
                    key: 62,
                    velocity: 70,
                },
            },
            Event {
                frame: 3 * beat,
                channel: 0,
                kind: EventKind::NoteOff { key: 62 },
            },
        ];
        let bytes = midi_bytes(&events, 60.0).unwrap();
        let smf = Smf::parse(&bytes).unwrap();
        let mut tick = 0u32;
        let mut seen = Vec::new();
        for ev in &smf.tracks[0] {
            tick += ev.delta.as_int();
            if let TrackEventKind::Midi { channel, message } = ev.kind {
                seen.push((tick, channel.as_int(), message));
            }
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].0, 480);
        assert_eq!(seen[2].0, 1440);
        assert_eq!(seen[0].1, 1);
        assert!(matches!(seen[1].2, MidiMessage::NoteOn { key, .. } if key == 62));
    }
}
