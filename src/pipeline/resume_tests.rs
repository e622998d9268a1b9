//! `Renderer::skip_to`: a piece rebuilt at a position plays on exactly as the
//! piece that played all the way there, which is what lets a restarted
//! server resume a listener's music rather than start it over.

use std::sync::{Arc, Mutex};

use super::{EngineFactory, EngineSource, Renderer};
use crate::music::journey::Journey;
use crate::music::Params;
use crate::soundfont::FontSet;
use crate::synth::{Engine, EngineKind};

/// (frame, channel, key) of every note-on heard.
type Heard = Arc<Mutex<Vec<(u64, u8, u8)>>>;

/// Records each note-on with the frame (counted from its first render) at
/// which the renderer applied it. Calibration builds engines from the same
/// factory and plays test notes on them early in a render (see
/// `calibration::gain_db`); those are told apart by when they happen.
struct Recorder {
    frames: u64,
    notes: Heard,
}

impl Engine for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn program_change(&mut self, _channel: u8, _program: u8) {}
    fn note_on(&mut self, channel: u8, key: u8, _velocity: u8) {
        let mut notes = self.notes.lock().unwrap();
        notes.push((self.frames, channel, key));
    }
    fn note_off(&mut self, _channel: u8, _key: u8) {}
    fn all_notes_off(&mut self) {}
    fn sound_off(&mut self) {}
    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        left.fill(0.0);
        right.fill(0.0);
        self.frames += left.len() as u64;
    }
}

/// A renderer whose two layers record into one list (each layer counts its
/// own frames; both render every block, so the counts agree).
fn recording(params: &Params) -> (Renderer, Heard) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&notes);
    let make: EngineFactory = Arc::new(move || {
        Box::new(Recorder {
            frames: 0,
            notes: Arc::clone(&shared),
        })
    });
    let source = EngineSource {
        custom: Some(make),
        ..EngineSource::new(EngineKind::Rustysynth, &FontSet::builtin())
    };
    (Renderer::new(params.clone(), &source).unwrap(), notes)
}

#[test]
fn a_piece_rebuilt_at_a_position_plays_on_as_the_original() {
    let params = Params {
        seed: 99,
        ..Params::default()
    };
    rebuilt_at(&params, 37 * 44_100 + 1_234);
}

/// A journey's steps are part of the piece: one rebuilt past its second
/// step (4 min) is in the key and tempo the journey had reached.
#[test]
fn a_journey_rebuilt_past_its_steps_plays_on_as_the_original() {
    let params = Params {
        seed: 1,
        journey: Journey::Drift,
        ..Params::default()
    };
    rebuilt_at(&params, 250 * 44_100);
}

fn rebuilt_at(params: &Params, at: u64) {
    let more: usize = 20 * 44_100;
    let (mut whole, heard) = recording(params);
    let mut out = Vec::new();
    for _ in 0..(at as usize + more) / 4_410 {
        out.clear();
        whole.render(4_410, &mut out);
    }
    let end = (at as usize + more) / 4_410 * 4_410;

    let (mut resumed, heard_resumed) = recording(params);
    resumed.skip_to(at);
    assert_eq!(resumed.position(), at);
    // The programs set on the way were calibrated by playing a few notes on
    // engines of their own: not the piece.
    heard_resumed.lock().unwrap().clear();
    out.clear();
    resumed.render(end - at as usize, &mut out);
    let resumed_notes: Vec<_> = heard_resumed.lock().unwrap().clone();

    let original: Vec<_> = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|(f, _, _)| *f > at)
        .map(|&(f, c, k)| (f - at, c, k))
        .collect();
    let later: Vec<_> = resumed_notes
        .iter()
        .filter(|(f, _, _)| *f > 0)
        .copied()
        .collect();
    assert!(
        original.len() >= 8,
        "{} notes after the position",
        original.len()
    );
    assert_eq!(later, original, "the same notes at the same frames");
    let struck: Vec<_> = resumed_notes.iter().filter(|(f, _, _)| *f == 0).collect();
    assert!(
        !struck.is_empty(),
        "the notes held at the position sound again"
    );
    assert!(struck.len() <= 16, "only what was held: {struck:?}");
}
