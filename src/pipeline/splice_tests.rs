//! A control change is heard from the next frame rendered, and a renderer can
//! go back over audio it has sent and play it again with the change in it:
//! the two halves of a control heard within a fraction of a second.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::calibration::Role;
use super::{EngineFactory, EngineSource, Renderer};
use crate::audio::CHUNK_FRAMES;
use crate::music::theory::PitchClass;
use crate::music::{Params, PAD_CHANNEL, PIANO_CHANNEL};
use crate::soundfont::FontSet;
use crate::synth::{Engine, EngineKind};

const SECOND: u64 = 44_100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    On(u8),
    Off(u8),
}

/// (frame, channel, call): the frame is the count of frames the piano
/// layer's engine has rendered, which every block advances first.
type Log = Arc<Mutex<Vec<(u64, u8, Call)>>>;

/// The three layers' engines (piano, pad, spare pad) log their notes;
/// calibration's own engines, built later from the same factory, do not.
struct Recorder {
    id: usize,
    clock: Arc<AtomicU64>,
    log: Log,
}

impl Recorder {
    fn note(&self, channel: u8, call: Call) {
        if self.id < 3 {
            let at = self.clock.load(Ordering::Relaxed);
            self.log.lock().unwrap().push((at, channel, call));
        }
    }
}

impl Engine for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn program_change(&mut self, _channel: u8, _program: u8) {}
    fn note_on(&mut self, channel: u8, key: u8, _velocity: u8) {
        self.note(channel, Call::On(key));
    }
    fn note_off(&mut self, channel: u8, key: u8) {
        self.note(channel, Call::Off(key));
    }
    fn all_notes_off(&mut self) {}
    fn sound_off(&mut self) {}
    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        left.fill(0.0);
        right.fill(0.0);
        if self.id == 0 {
            self.clock.fetch_add(left.len() as u64, Ordering::Relaxed);
        }
    }
}

fn recording(params: &Params) -> (Renderer, Log, Arc<AtomicU64>) {
    let log: Log = Arc::default();
    let clock = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(AtomicUsize::new(0));
    let (l, c) = (Arc::clone(&log), Arc::clone(&clock));
    let make: EngineFactory = Arc::new(move || {
        Box::new(Recorder {
            id: ids.fetch_add(1, Ordering::Relaxed),
            clock: Arc::clone(&c),
            log: Arc::clone(&l),
        })
    });
    let source = EngineSource {
        custom: Some(make),
        ..EngineSource::new(EngineKind::Rustysynth, &FontSet::builtin())
    };
    (Renderer::new(params.clone(), &source).unwrap(), log, clock)
}

fn render_chunks(r: &mut Renderer, chunks: u64) {
    let mut out = Vec::new();
    for _ in 0..chunks {
        out.clear();
        r.render(CHUNK_FRAMES, &mut out);
    }
}

fn params() -> Params {
    Params {
        seed: 7,
        ..Params::default()
    }
}

fn in_g(p: &Params) -> Params {
    Params {
        key: PitchClass::G,
        ..p.clone()
    }
}

/// True if the pad was struck at `frame`.
fn pad_struck_at(log: &[(u64, u8, Call)], frame: u64) -> bool {
    log.iter()
        .any(|e| e.0 == frame && e.1 == PAD_CHANNEL && matches!(e.2, Call::On(_)))
}

/// Every piano note ends: a note struck before a change and taken back,
/// or its release dropped while its strike stayed, would hang.
fn assert_no_piano_note_hangs(log: &[(u64, u8, Call)], until: u64) {
    let mut open = [None::<u64>; 128];
    for &(at, channel, call) in log.iter().filter(|e| e.1 == PIANO_CHANNEL) {
        match call {
            Call::On(k) => open[usize::from(k)] = Some(at),
            Call::Off(k) => open[usize::from(k)] = None,
        }
        let _ = channel;
    }
    for (key, on) in open.iter().enumerate() {
        if let Some(on) = on {
            assert!(
                until - on < 12 * SECOND,
                "piano key {key} struck at {on} still held at {until}"
            );
        }
    }
}

#[test]
fn a_change_is_heard_from_the_next_frame_not_the_next_eighth() {
    let p = params();
    let (mut r, log, clock) = recording(&p);
    // 12.1 s: a tenth of a second into an eighth note of 500 ms.
    render_chunks(&mut r, 121);
    let at = r.position();
    assert_eq!(at, 121 * CHUNK_FRAMES as u64);
    r.set_params(in_g(&p));
    render_chunks(&mut r, 300);
    let log = log.lock().unwrap().clone();
    assert!(
        pad_struck_at(&log, at),
        "a key change restarts the harmony at the frame it is made: {:?}",
        log.iter()
            .filter(|e| e.0 >= at && e.0 < at + SECOND)
            .collect::<Vec<_>>()
    );
    assert_no_piano_note_hangs(&log, clock.load(Ordering::Relaxed));
}

#[test]
fn a_splice_plays_the_same_notes_again_then_the_change_from_its_frame() {
    let p = params();
    let (mut original, log, _) = recording(&p);
    render_chunks(&mut original, 200);
    let original_log = log.lock().unwrap().clone();

    let (mut r, log, clock) = recording(&p);
    render_chunks(&mut r, 100);
    let splice_at = 93 * CHUNK_FRAMES as u64;
    let before = clock.load(Ordering::Relaxed);
    assert!(r.splice(splice_at, in_g(&p)));
    assert_eq!(
        r.position(),
        splice_at,
        "nothing past the splice is rendered"
    );
    let preroll = clock.load(Ordering::Relaxed) - before;
    assert!(
        (2 * SECOND..3 * SECOND).contains(&preroll),
        "a pre-roll of 2 s from an eighth note: {preroll} frames"
    );
    let from = splice_at - preroll;
    render_chunks(&mut r, 200);
    let log = log.lock().unwrap().clone();
    let spliced: Vec<_> = log.iter().filter(|e| e.0 >= before).copied().collect();

    // The pre-roll: what sounded at its start struck again, then the notes
    // the piece played over those 2 s, at the same frames.
    let replayed: Vec<_> = spliced
        .iter()
        .filter(|e| e.0 > before && e.0 < before + preroll)
        .map(|e| (e.0 - before + from, e.1, e.2))
        .collect();
    let played: Vec<_> = original_log
        .iter()
        .filter(|e| e.0 > from && e.0 < splice_at)
        .copied()
        .collect();
    assert_eq!(replayed, played, "the pre-roll plays the piece again");
    assert!(
        pad_struck_at(&spliced, before),
        "the pad sounding at the pre-roll's start is struck there"
    );
    // From the splice on, the change: the harmony restarts at its frame.
    let at_splice = before + preroll;
    assert!(
        pad_struck_at(&spliced, at_splice),
        "the key change is heard from the splice"
    );
    assert_no_piano_note_hangs(&log, clock.load(Ordering::Relaxed));
}

#[test]
fn a_splice_refuses_what_it_cannot_reach() {
    let p = params();
    let (mut r, _, _) = recording(&p);
    render_chunks(&mut r, 15);
    assert!(
        !r.splice(5 * CHUNK_FRAMES as u64, in_g(&p)),
        "no checkpoint 2 s before 0.5 s"
    );
    render_chunks(&mut r, 85);
    assert!(!r.splice(101 * CHUNK_FRAMES as u64, in_g(&p)), "the future");
    assert!(
        !r.splice(70 * CHUNK_FRAMES as u64, in_g(&p)),
        "more than 2 s back"
    );
    assert_eq!(r.position(), 100 * CHUNK_FRAMES as u64);
    assert_eq!(r.params().key, p.key, "a refused splice changes nothing");
    r.release();
    assert!(!r.splice(95 * CHUNK_FRAMES as u64, in_g(&p)), "released");
}

/// What the stems hold per chunk: the piano and pad layers' RMS, and the
/// master gain at the chunk's start.
#[derive(Default)]
struct Stems {
    piano: Vec<f32>,
    pad: Vec<f32>,
    gain: Vec<f32>,
}

impl super::StemSink for Stems {
    fn layer(&mut self, role: Role, left: &[f32], _right: &[f32]) {
        match role {
            Role::Piano => self.piano.extend_from_slice(left),
            Role::Pad => self.pad.extend_from_slice(left),
        }
    }
    fn master_gain(&mut self, gains: &[f32]) {
        self.gain.extend_from_slice(gains);
    }
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn db(a: f64, b: f64) -> f64 {
    20.0 * (b / a).log10()
}

/// On the real synthesizer, a passage played again (the same parameters)
/// matches what first played: the piano, whose notes the pre-roll strikes at
/// their own frames, to a hair; the master stages' gain, restored from the
/// checkpoint, closely. The pad is struck again at the pre-roll's start,
/// while the first time its longest notes had sounded for many seconds: its
/// slow LFO is in another phase, so it may sit a few dB off, which the
/// player's crossfade at the splice turns into a short swell, not a step.
#[test]
fn a_spliced_passage_sounds_like_the_original() {
    let p = params();
    let source = EngineSource::new(EngineKind::Rustysynth, &FontSet::builtin());
    let mut original = Renderer::new(p.clone(), &source).unwrap();
    let mut spliced = Renderer::new(p.clone(), &source).unwrap();
    let mut out = Vec::new();
    for _ in 0..590 {
        original.render(CHUNK_FRAMES, &mut out);
        spliced.render(CHUNK_FRAMES, &mut out);
    }
    for _ in 0..10 {
        spliced.render(CHUNK_FRAMES, &mut out);
    }
    assert!(spliced.splice(590 * CHUNK_FRAMES as u64, p.clone()));
    let (mut a, mut b) = (Stems::default(), Stems::default());
    for _ in 0..10 {
        original.render_with(CHUNK_FRAMES, &mut out, Some(&mut a));
        spliced.render_with(CHUNK_FRAMES, &mut out, Some(&mut b));
    }
    for c in 0..10 {
        let r = c * CHUNK_FRAMES..(c + 1) * CHUNK_FRAMES;
        let piano = db(rms(&a.piano[r.clone()]), rms(&b.piano[r.clone()]));
        let pad = db(rms(&a.pad[r.clone()]), rms(&b.pad[r.clone()]));
        let gain = db(f64::from(a.gain[r.start]), f64::from(b.gain[r.start]));
        assert!(
            rms(&a.piano[r.clone()]) > 1e-3,
            "the piano plays in chunk {c}"
        );
        assert!(piano.abs() < 0.2, "chunk {c}: piano {piano:+.2} dB");
        assert!(pad.abs() < 4.0, "chunk {c}: pad {pad:+.2} dB");
        assert!(gain.abs() < 1.5, "chunk {c}: master gain {gain:+.2} dB");
    }
}
