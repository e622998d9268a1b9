//! Sessions and the hub driven directly, with a signal generator for an
//! engine and tokio's paused clock: pacing, fan-out, control changes, slow
//! listeners and limits are checked without sockets, fonts or wall time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, HubConfig, JoinError, Listener, Resume};
use super::session::{CloseReason, Outgoing, RESUME_GRACE};
use crate::audio::CHUNK_FRAMES;
use crate::music::change::ParamChange;
use crate::music::Params;
use crate::pipeline::EngineFactory;
use crate::soundfont::FontSet;
use crate::synth::{Engine, EngineKind, EngineSettings};

/// What the test engine saw, shared with the test.
#[derive(Default)]
pub(crate) struct Seen {
    pub frames: AtomicU64,
    pub notes: AtomicU64,
}

/// A 441 Hz square wave at a quarter of full scale, whatever is played: a
/// known signal through the real mix stage, at no synthesis cost.
struct Tone {
    phase: u64,
    seen: Arc<Seen>,
}

impl Engine for Tone {
    fn name(&self) -> &'static str {
        "tone"
    }
    fn program_change(&mut self, _channel: u8, _program: u8) {}
    fn note_on(&mut self, _channel: u8, _key: u8, _velocity: u8) {
        self.seen.notes.fetch_add(1, Ordering::Relaxed);
    }
    fn note_off(&mut self, _channel: u8, _key: u8) {}
    fn all_notes_off(&mut self) {}
    fn sound_off(&mut self) {}
    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let v = if (self.phase / 50).is_multiple_of(2) {
                0.25
            } else {
                -0.25
            };
            *l = v;
            *r = v;
            self.phase += 1;
        }
        self.seen
            .frames
            .fetch_add(left.len() as u64, Ordering::Relaxed);
    }
}

fn config(queue_chunks: usize, max_sessions: usize) -> HubConfig {
    static FONTS: OnceLock<FontSet> = OnceLock::new();
    HubConfig {
        fonts: FONTS.get_or_init(FontSet::builtin).clone(),
        engine: EngineSettings::default(),
        engine_kind: EngineKind::Rustysynth,
        max_listeners: 10,
        max_sessions,
        max_rooms: 2,
        queue_chunks,
        lead_chunks: super::DEFAULT_LEAD_CHUNKS,
        access: Default::default(),
    }
}

/// A hub whose sessions play [`Tone`].
pub(crate) fn tone_hub(queue_chunks: usize, max_sessions: usize) -> (Arc<Hub>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let for_engines = Arc::clone(&seen);
    let make: EngineFactory = Arc::new(move || {
        Box::new(Tone {
            phase: 0,
            seen: Arc::clone(&for_engines),
        })
    });
    let hub = Hub::with_engine(
        config(queue_chunks, max_sessions),
        1,
        CancellationToken::new(),
        make,
    );
    (hub, seen)
}

pub(crate) async fn join(hub: &Arc<Hub>, room: Option<&str>) -> Listener {
    hub.join(
        room.map(str::to_string),
        Params::default(),
        Some("focus".into()),
    )
    .await
    .expect("a free slot")
}

/// The next chunk in the listener's queue, skipping text messages.
async fn next_chunk(l: &mut Listener) -> Arc<super::chunk::Chunk> {
    loop {
        match l.queue.recv().await.expect("the session is running") {
            Outgoing::Chunk(c) => return c,
            Outgoing::Text(_) => {}
        }
    }
}

/// The next text message in the listener's queue, as JSON.
pub(crate) async fn next_text(l: &mut Listener) -> serde_json::Value {
    loop {
        if let Outgoing::Text(t) = l.queue.recv().await.expect("the session is running") {
            return serde_json::from_str(&t).expect("JSON");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn chunks_leave_on_an_absolute_schedule_two_ahead() {
    let (hub, seen) = tone_hub(20, 4);
    let start = Instant::now();
    let mut l = join(&hub, None).await;
    assert_eq!(l.info.next_seq, 0);
    let mut at = Vec::new();
    for seq in 0..8 {
        let c = next_chunk(&mut l).await;
        assert_eq!(c.seq, seq);
        assert_eq!(c.frames(), CHUNK_FRAMES);
        at.push((Instant::now() - start).as_millis());
    }
    // The lead leaves at once, then one chunk every 100 ms.
    assert_eq!(at, [0, 0, 0, 100, 200, 300, 400, 500]);
    // Each layer's engine renders every chunk (and a few seconds once, to
    // calibrate its level), in whole chunks.
    let frames = seen.frames.load(Ordering::Relaxed);
    assert!(frames >= 2 * 8 * CHUNK_FRAMES as u64, "{frames}");
    assert_eq!(frames % CHUNK_FRAMES as u64, 0, "whole chunks only");
    assert!(seen.notes.load(Ordering::Relaxed) > 0, "the composer plays");
    assert!(hub.metrics.chunks_rendered.load(Ordering::Relaxed) >= 8);
}

#[tokio::test(start_paused = true)]
async fn the_engines_signal_reaches_the_chunk_after_the_fade_in() {
    let (hub, _) = tone_hub(20, 4);
    let mut l = join(&hub, None).await;
    let mut last = Vec::new();
    // 2 s: past the 1.5 s fade-in.
    for _ in 0..20 {
        last = next_chunk(&mut l).await.pcm.to_vec();
    }
    let samples: Vec<i16> = last
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    for channel in 0..2 {
        let peak = samples
            .iter()
            .skip(channel)
            .step_by(2)
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!(
            peak > 2_000,
            "channel {channel} plays the square wave: peak {peak}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_room_fans_out_the_same_chunks_and_control_changes() {
    let (hub, _) = tone_hub(20, 4);
    let mut a = join(&hub, Some("lobby")).await;
    let first = next_chunk(&mut a).await;
    let mut b = join(&hub, Some("lobby")).await;
    assert_eq!(hub.sessions(), 1);
    assert_eq!(hub.rooms(), 1);
    assert_eq!(a.session.id, b.session.id);
    assert!(b.info.next_seq > first.seq);
    let change = ParamChange {
        bpm: Some(72.0),
        ..Default::default()
    };
    let ack = a.session.control(change, None).await.unwrap().unwrap();
    assert_eq!(ack.state.params.bpm, 72.0);
    for l in [&mut a, &mut b] {
        let msg = next_text(l).await;
        assert_eq!(msg["type"], "params");
        assert_eq!(msg["bpm"], 72.0);
        assert_eq!(msg["applies_at_seq"], ack.applies_at_seq);
    }
    let c = next_chunk(&mut b).await;
    let d = loop {
        let d = next_chunk(&mut a).await;
        if d.seq == c.seq {
            break d;
        }
    };
    assert!(Arc::ptr_eq(&c, &d), "one chunk, shared");
    let bad = ParamChange {
        bpm: Some(500.0),
        ..Default::default()
    };
    let err = a.session.control(bad, None).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(hub.metrics.control_changes.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_listener_that_stops_reading_is_kicked_and_the_others_play_on() {
    let (hub, _) = tone_hub(3, 4);
    let mut reader = join(&hub, Some("r")).await;
    let mut stalled = join(&hub, Some("r")).await;
    for _ in 0..10 {
        next_chunk(&mut reader).await;
    }
    assert_eq!((&mut stalled.kicked).await, Ok(CloseReason::TooSlow));
    assert_eq!(
        hub.metrics.listeners_dropped_slow.load(Ordering::Relaxed),
        1
    );
    next_chunk(&mut reader).await;
}

#[tokio::test(start_paused = true)]
async fn the_last_listener_leaving_ends_the_session_and_frees_the_room() {
    let (hub, _) = tone_hub(20, 1);
    let l = join(&hub, Some("r")).await;
    assert_eq!(
        hub.join(None, Params::default(), None).await.err(),
        Some(JoinError::TooManySessions { limit: 1 })
    );
    assert_eq!(hub.listeners(), 1);
    let session = l.session.clone();
    l.leave().await;
    assert_eq!(hub.listeners(), 0);
    // The task ends its session's bookkeeping in the same poll that closes
    // its command channel (a current-thread runtime: nothing runs between).
    session.closed().await;
    assert_eq!((hub.sessions(), hub.rooms()), (0, 0));
    let again = join(&hub, None).await;
    assert_eq!(hub.sessions(), 1);
    drop(again);
}

#[tokio::test(start_paused = true)]
async fn shutdown_kicks_every_listener() {
    let (hub, _) = tone_hub(20, 4);
    let mut a = join(&hub, None).await;
    next_chunk(&mut a).await;
    hub.shutdown.cancel();
    assert_eq!((&mut a.kicked).await, Ok(CloseReason::Shutdown));
    assert_eq!(hub.admit(None), Err(JoinError::ShuttingDown));
}

fn chunk_rms(c: &super::chunk::Chunk) -> f64 {
    let sum: f64 = c
        .pcm
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).powi(2))
        .sum();
    (sum / (c.pcm.len() / 2) as f64).sqrt()
}

#[tokio::test(start_paused = true)]
async fn a_timer_fades_the_last_ten_seconds_then_ends_the_stream() {
    let (hub, _) = tone_hub(20, 4);
    let mut l = join(&hub, None).await;
    let ack = l.session.set_timer(Some(0), 30.0).await.unwrap().unwrap();
    assert_eq!(ack.end_seq, 300);
    let mut rms = Vec::new();
    while let Some(out) = l.queue.recv().await {
        if let Outgoing::Chunk(c) = out {
            assert_eq!(c.seq, rms.len() as u64, "no chunk lost or repeated");
            rms.push(chunk_rms(&c));
        }
    }
    assert_eq!(rms.len(), 300, "exactly the 30 s asked for");
    assert_eq!((&mut l.kicked).await, Ok(CloseReason::Ended));
    // Full level until the fade-out, which begins 10 s before the end and
    // sinks, without a step, to silence.
    let full = rms[190];
    assert!(full > 2_000.0, "playing: {full}");
    assert!(rms[199] > full * 0.95, "no fade before the last 10 s");
    let fade = &rms[200..];
    assert!(fade.windows(2).all(|w| w[1] <= w[0] * 1.01), "{fade:?}");
    let last_second = rms[290..].iter().cloned().fold(0.0, f64::max);
    assert!(
        last_second < full / 30.0,
        "last second {last_second} against {full}"
    );
    assert!(rms[299] < 5.0, "ends in silence: {}", rms[299]);
}

#[tokio::test(start_paused = true)]
async fn a_room_refuses_a_timer_and_a_fading_stream_keeps_its_end() {
    let (hub, _) = tone_hub(20, 4);
    let a = join(&hub, Some("lobby")).await;
    let e = a.session.set_timer(None, 60.0).await.unwrap().unwrap_err();
    assert!(e.to_string().contains("shared"), "{e}");
    let b = join(&hub, None).await;
    for bad in [0.5, f64::NAN, 1e9] {
        let e = b.session.set_timer(None, bad).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("1 to 86400"), "{e}");
    }
    // A timer cancelled before its fade never ends the stream.
    b.session.set_timer(Some(0), 1.0).await.unwrap().unwrap();
    b.session.cancel_timer().await.unwrap().unwrap();
    let mut b = b;
    for _ in 0..15 {
        next_chunk(&mut b).await;
    }
    // 1 s fades from its middle on, and then cannot be moved.
    let ack = b.session.set_timer(None, 1.0).await.unwrap().unwrap();
    while next_chunk(&mut b).await.seq + 4 < ack.end_seq {}
    let e = b.session.set_timer(None, 600.0).await.unwrap().unwrap_err();
    assert!(e.to_string().contains("fading"), "{e}");
    let e = b.session.cancel_timer().await.unwrap().unwrap_err();
    assert!(e.to_string().contains("fading"), "{e}");
}

/// Until `n` sessions wait for their listener: the session task takes its
/// listener's departure in its own time (it may be rendering a chunk).
async fn waiting(hub: &Hub, n: usize) {
    for _ in 0..1000 {
        if hub.waiting_for_resume() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} sessions waiting, not {n}", hub.waiting_for_resume());
}

async fn resume(hub: &Arc<Hub>, token: &str, from: u64) -> Listener {
    let resume = Resume {
        token: token.to_string(),
        from,
    };
    hub.join_resuming(
        None,
        None,
        Params::default(),
        Some("focus".into()),
        Some(resume),
    )
    .await
    .expect("a free slot")
}

#[tokio::test(start_paused = true)]
async fn a_dropped_listener_resumes_its_session_where_it_left_off() {
    let (hub, seen) = tone_hub(20, 4);
    let mut l = join(&hub, None).await;
    let token = l
        .info
        .resume
        .clone()
        .expect("a session of its own has a token");
    for seq in 0..3 {
        assert_eq!(next_chunk(&mut l).await.seq, seq);
    }
    let session = l.session.id.clone();
    l.detach().await;
    waiting(&hub, 1).await;
    assert_eq!(hub.sessions(), 1);
    let rendered = seen.frames.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        seen.frames.load(Ordering::Relaxed),
        rendered,
        "a waiting session renders nothing"
    );
    let mut back = resume(&hub, &token, 3).await;
    assert_eq!(back.session.id, session, "the same session");
    assert_eq!(back.info.resume.as_deref(), Some(&*token));
    assert_eq!(back.info.next_seq, 3);
    for seq in 3..8 {
        assert_eq!(
            next_chunk(&mut back).await.seq,
            seq,
            "no chunk lost or repeated"
        );
    }
    assert_eq!((hub.sessions(), hub.waiting_for_resume()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn an_unclaimed_session_ends_after_the_grace_and_its_token_rebuilds_the_piece() {
    let (hub, _) = tone_hub(20, 4);
    let mut l = join(&hub, None).await;
    let token = l.info.resume.clone().unwrap();
    let seed = l.info.state.params.seed;
    next_chunk(&mut l).await;
    let session = l.session.clone();
    l.detach().await;
    tokio::time::sleep(RESUME_GRACE + Duration::from_secs(1)).await;
    session.closed().await;
    assert_eq!((hub.sessions(), hub.waiting_for_resume()), (0, 0));
    // As after a server restart: the token is unknown, the piece is rebuilt
    // at the chunk asked for, and keeps the token.
    let mut back = resume(&hub, &token, 600).await;
    assert_ne!(back.session.id, session.id);
    assert_eq!(back.info.next_seq, 600);
    assert_eq!(back.info.resume.as_deref(), Some(&*token));
    assert_eq!(back.info.state.params.seed, seed);
    assert_eq!(next_chunk(&mut back).await.seq, 600);
}

#[tokio::test(start_paused = true)]
async fn a_listener_that_leaves_by_choice_is_not_waited_for() {
    let (hub, _) = tone_hub(20, 4);
    let l = join(&hub, None).await;
    let session = l.session.clone();
    l.leave().await;
    session.closed().await;
    assert_eq!((hub.sessions(), hub.waiting_for_resume()), (0, 0));
}

/// On the real clock: the paused one leaps to the waiting session's deadline
/// whenever every task waits on a render thread.
#[tokio::test]
async fn few_sessions_wait_at_once_and_rooms_never() {
    // Four sessions allowed: one may wait. Queues long enough that nobody
    // is dropped as too slow while the test does not read them.
    let (hub, _) = tone_hub(600, 4);
    let a = join(&hub, None).await;
    let b = join(&hub, None).await;
    let r = join(&hub, Some("r")).await;
    assert_eq!(r.info.resume, None, "a room is rejoined by its name");
    let (sa, sb, sr) = (a.session.clone(), b.session.clone(), r.session.clone());
    a.detach().await;
    waiting(&hub, 1).await;
    b.detach().await;
    r.detach().await;
    sb.closed().await;
    sr.closed().await;
    assert!(!sa.is_closed());
    assert_eq!((hub.sessions(), hub.waiting_for_resume()), (1, 1));
}

/// Reads chunks until one past `seq`; returns the newest read.
async fn read_past(l: &mut Listener, seq: u64) -> u64 {
    loop {
        let c = next_chunk(l).await;
        if c.seq > seq {
            return c.seq;
        }
    }
}

/// Sets the tempo, telling the session which chunk the listener hears.
async fn set_bpm(l: &Listener, bpm: f32, playing: u64) -> super::session::ControlAck {
    let change = ParamChange {
        bpm: Some(bpm),
        ..Default::default()
    };
    l.session
        .control(change, Some(playing))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_change_told_what_the_listener_hears_replays_its_buffer_with_the_change() {
    let (hub, _) = tone_hub(64, 4);
    let mut a = join(&hub, None).await;
    // Play 5 s; the listener hears a chunk 4 behind the newest sent.
    let newest = read_past(&mut a, 49).await;
    let ack = set_bpm(&a, 72.0, newest - 4).await;
    let at = newest - 4 + super::session::SPLICE_AHEAD_CHUNKS;
    assert_eq!(ack.splice_seq, Some(at));
    assert_eq!(ack.applies_at_seq, at);
    let msg = next_text(&mut a).await;
    assert_eq!(msg["splice_seq"], at);
    assert_eq!(msg["applies_at_seq"], at);
    let again = next_chunk(&mut a).await;
    assert_eq!(again.seq, at, "the chunks from the splice come again");
    assert_eq!(next_chunk(&mut a).await.seq, at + 1);
    assert_eq!(hub.metrics.splices.load(Ordering::Relaxed), 1);
    // Two more at once are spliced too, then the budget is spent: a splice
    // costs a pre-roll.
    for (i, bpm) in [75.0, 78.0, 81.0].into_iter().enumerate() {
        let ack = set_bpm(&a, bpm, at).await;
        assert_eq!(ack.splice_seq.is_some(), i < 2, "change {i}: {ack:?}");
    }
    assert_eq!(hub.metrics.splices.load(Ordering::Relaxed), 3);

    // Nothing sent to replace (the listener hears the newest): applied from
    // the next chunk, no splice.
    let newest = read_past(&mut a, newest + 10).await;
    let ack = set_bpm(&a, 80.0, newest).await;
    assert_eq!(ack.splice_seq, None);
    assert_eq!(ack.applies_at_seq, newest + 1);
}

#[tokio::test(start_paused = true)]
async fn a_room_never_splices() {
    let (hub, _) = tone_hub(64, 4);
    let mut a = join(&hub, Some("lobby")).await;
    let newest = read_past(&mut a, 49).await;
    let ack = set_bpm(&a, 72.0, newest - 4).await;
    assert_eq!(
        ack.splice_seq, None,
        "a room's listeners hear different moments"
    );
    assert_eq!(ack.applies_at_seq, newest + 1);
}
