//! A pad program change is a crossfade between the pad's two synthesizers:
//! the old one keeps its chord and fades out, the new one takes the program
//! and the new notes, and the old one is stopped only once it is silent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{EngineFactory, EngineSource, Renderer, CROSSFADE_FRAMES, MAX_BLOCK};
use crate::music::{Params, PAD_CHANNEL, PIANO_CHANNEL};
use crate::soundfont::FontSet;
use crate::synth::{Engine, EngineKind};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    On(u8),
    Off(u8),
    Program(u8),
    SoundOff,
}

/// (engine, frame, call) on the pad channel, the frame read from the piano
/// engine's count: the piano renders every block first, so at the moment an
/// event is applied it holds the renderer's position.
type Log = Arc<Mutex<Vec<(usize, u64, Call)>>>;

struct Logger {
    id: usize,
    clock: Arc<AtomicU64>,
    log: Log,
}

impl Logger {
    fn note(&self, channel: u8, call: Call) {
        if channel == PAD_CHANNEL || call == Call::SoundOff {
            let at = self.clock.load(Ordering::Relaxed);
            self.log.lock().unwrap().push((self.id, at, call));
        }
    }
}

impl Engine for Logger {
    fn name(&self) -> &'static str {
        "logger"
    }
    fn program_change(&mut self, channel: u8, program: u8) {
        self.note(channel, Call::Program(program));
    }
    fn note_on(&mut self, channel: u8, key: u8, _velocity: u8) {
        self.note(channel, Call::On(key));
    }
    fn note_off(&mut self, channel: u8, key: u8) {
        self.note(channel, Call::Off(key));
    }
    fn all_notes_off(&mut self) {}
    fn sound_off(&mut self) {
        self.note(PIANO_CHANNEL, Call::SoundOff);
    }
    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        left.fill(0.0);
        right.fill(0.0);
        if self.id == 0 {
            self.clock.fetch_add(left.len() as u64, Ordering::Relaxed);
        }
    }
}

/// A renderer whose engines log, numbered as built: 0 the piano, 1 the pad,
/// 2 the spare pad (calibration builds more, numbered after them).
fn logging(params: &Params) -> (Renderer, Log) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let (shared, clock, next) = (
        Arc::clone(&log),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let make: EngineFactory = Arc::new(move || {
        Box::new(Logger {
            id: next.fetch_add(1, Ordering::Relaxed),
            clock: Arc::clone(&clock),
            log: Arc::clone(&shared),
        })
    });
    let source = EngineSource {
        custom: Some(make),
        ..EngineSource::new(EngineKind::Rustysynth, &FontSet::builtin())
    };
    (Renderer::new(params.clone(), &source).unwrap(), log)
}

fn render_seconds(r: &mut Renderer, seconds: usize) {
    let mut out = Vec::new();
    for _ in 0..seconds * 10 {
        out.clear();
        r.render(4_410, &mut out);
    }
}

/// The keys engine `id` holds after all its calls up to frame `at`.
fn held(log: &[(usize, u64, Call)], id: usize, at: u64) -> Vec<u8> {
    let mut keys = Vec::new();
    for &(_, _, call) in log.iter().filter(|(e, t, _)| *e == id && *t < at) {
        match call {
            Call::On(k) => keys.push(k),
            Call::Off(k) => keys.retain(|&h| h != k),
            Call::SoundOff => keys.clear(),
            Call::Program(_) => {}
        }
    }
    keys
}

/// 20 s of a piece, then 12 s after its pad program changed: the renderer
/// (to go on with), the piece's parameters, and the program it changed to.
fn changed_pad() -> (Renderer, Log, Params, u8) {
    let params = Params {
        seed: 7,
        ..Params::default()
    };
    let other = if params.pad_program == 88 { 89 } else { 88 };
    let (mut r, log) = logging(&params);
    render_seconds(&mut r, 20);
    r.set_params(Params {
        pad_program: other,
        ..params.clone()
    });
    render_seconds(&mut r, 12);
    (r, log, params, other)
}

#[test]
fn the_old_pad_holds_its_chord_and_fades_out_under_the_new_one() {
    let (_, log, _, other) = changed_pad();
    let log = log.lock().unwrap().clone();
    let (_, change, _) = *log
        .iter()
        .find(|(e, _, c)| *e < 3 && *c == Call::Program(other))
        .expect("the new program was set");
    let switched = log
        .iter()
        .filter(|(e, t, c)| *e < 3 && *t == change && *c == Call::Program(other))
        .map(|(e, _, _)| *e)
        .collect::<Vec<_>>();
    assert_eq!(switched, [2], "the spare pad takes the new program");

    let chord = held(&log, 1, change);
    assert!(!chord.is_empty(), "the old pad sounded at the change");
    let stopped = log
        .iter()
        .find(|(e, _, c)| *e == 1 && *c == Call::SoundOff)
        .map(|&(_, t, _)| t)
        .expect("the old pad is stopped once faded");
    let fade = u64::from(CROSSFADE_FRAMES);
    assert!(
        (change + fade..=change + fade + MAX_BLOCK as u64).contains(&stopped),
        "stopped {} frames after the change, the fade lasts {fade}",
        stopped - change
    );
    // Until then it held its chord: no note of it was released.
    assert_eq!(held(&log, 1, stopped), chord);
    // The new notes went to the new pad, from the change on.
    assert!(log
        .iter()
        .any(|&(e, t, c)| e == 2 && t == change && matches!(c, Call::On(_))));
    assert!(!log
        .iter()
        .any(|&(e, t, c)| e == 1 && t >= change && matches!(c, Call::On(_))));
}

#[test]
fn a_later_change_crossfades_back_through_the_first_synthesizer() {
    let (mut r, log, params, _) = changed_pad();
    r.set_params(params.clone());
    render_seconds(&mut r, 12);

    let log = log.lock().unwrap().clone();
    let back = log
        .iter()
        .filter(|(e, _, c)| *e < 3 && *c == Call::Program(params.pad_program))
        .map(|&(e, _, _)| e)
        .collect::<Vec<_>>();
    // The first program went to the pad at the start, the return to it
    // to the same synthesizer, idle again since the first fade ended.
    assert_eq!(back, [1, 1]);
    assert!(log.iter().any(|&(e, _, c)| e == 2 && c == Call::SoundOff));
}
