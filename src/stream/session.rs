//! A session: one renderer, paced to the wall clock, fanned out to one or more
//! listeners. The session task owns the renderer outright (no lock): it lends
//! it to the render pool for one chunk at a time and applies control changes
//! between chunks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::access::RoomControl;
use super::chunk::Chunk;
use super::metrics::Metrics;
use super::mp3::{Mp3Lanes, Mp3SubscribeError, Mp3Subscription};
use super::opus::{OpusLanes, OpusSubscription, SubscribeError};
use super::pool::RenderPool;
use crate::audio::{pcm, CHUNK_FRAMES};
use crate::music::change::{ChangeError, ParamChange};
use crate::music::Params;
use crate::pipeline::{Renderer, MAX_SPLICE_FRAMES};
use crate::wire::{ParamsState, ServerMessage};

pub const CHUNK_DURATION: Duration = Duration::from_millis(crate::audio::CHUNK_MS as u64);

/// What a listener's queue carries: audio, or a text message for everyone in
/// the session (e.g. the parameters after a control change).
#[derive(Debug, Clone)]
pub enum Outgoing {
    Chunk(Arc<Chunk>),
    Text(Arc<str>),
}

/// Why the server ends a listener's stream; sent as the WebSocket close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The listener's queue filled: it is not reading fast enough.
    TooSlow,
    Shutdown,
    /// The listener's timer ran out and the music has faded to silence.
    Ended,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            CloseReason::TooSlow => 1008,
            CloseReason::Shutdown => 1001,
            CloseReason::Ended => 1000,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            CloseReason::TooSlow => "listener too slow: its queue of unsent audio is full",
            CloseReason::Shutdown => "server shutting down",
            CloseReason::Ended => "timer ended: the requested duration has played",
        }
    }
}

/// Answer to a control change: what now holds, and the first chunk whose
/// music follows it. When `splice_seq` is set, the chunks from there on are
/// sent again, replacing what the listener has buffered (see
/// [`SPLICE_AHEAD_CHUNKS`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ControlAck {
    pub state: ParamsState,
    pub applies_at_seq: u64,
    pub splice_seq: Option<u64>,
}

/// A change is spliced in this many chunks after the one the listener
/// reports hearing: the splice must reach it before its playhead does, over
/// one network trip and the pre-roll's render (tens of ms), and what it
/// already hears it keeps. Over a longer trip the player names a later
/// chunk (web/splice.js); a splice that still lands late goes in where its
/// playhead is when the chunks arrive.
pub const SPLICE_AHEAD_CHUNKS: u64 = 2;
/// A splice renders a pre-roll of 2–3 s (tens of ms of a core), so a
/// session may splice a burst of this many changes (a key and a tempo set
/// together), then one a second; a change beyond that (a slider dragged) is
/// heard after the buffer, as without a splice.
const SPLICE_BURST: f64 = 3.0;
const SPLICES_PER_SECOND: f64 = 1.0;

/// Longest timer: a day. Longer is no timer at all.
pub const MAX_TIMER_SECONDS: f64 = 86_400.0;
/// How long before its end a timed stream starts to fade (half a shorter
/// timer): every note is released, as at the end of `render --tail`, and
/// the level sinks to silence while the reverb rings out.
pub const TIMER_FADE_SECONDS: f64 = 10.0;

/// Answer to a timer: the chunk after the stream's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerAck {
    pub end_seq: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimerError {
    #[error("duration must be a number of seconds from 1 to {MAX_TIMER_SECONDS}, got {0}")]
    Seconds(f64),
    #[error("a room's music is shared: a timer would end it for everyone; listen without a room to use one")]
    Room,
    #[error("the music is already fading out to its end")]
    Fading,
}

/// When a timed stream releases its notes and when it ends, in chunks.
#[derive(Debug, Clone, Copy)]
struct Timer {
    release_seq: u64,
    end_seq: u64,
    released: bool,
}

/// What a new listener learns when it joins.
#[derive(Debug, Clone)]
pub struct JoinInfo {
    pub state: ParamsState,
    pub next_seq: u64,
    /// The token that brings a dropped listener back to this session (see
    /// `RESUME_GRACE`); None for a room, which is rejoined by its name.
    pub resume: Option<Arc<str>>,
}

/// How long a session whose listener dropped (rather than left) waits for
/// it to come back with its resume token before it ends.
pub const RESUME_GRACE: Duration = Duration::from_secs(30);
/// Chunks a session keeps after sending them, so a listener that comes back
/// gets what was in flight when its connection died and the music goes on
/// without a gap: 1 s covers the render lead, a backlog and the kernel's
/// buffers on a healthy link; a fixed ring, shared with the listeners' queues.
const REPLAY_CHUNKS: usize = 10;

/// How many sessions may wait for their listener at once, across the hub:
/// a waiting session holds its synthesizers, so the count is bounded.
pub(super) struct Parking {
    pub waiting: Arc<AtomicUsize>,
    pub max: usize,
}

pub struct ListenerEntry {
    pub id: u64,
    pub queue: mpsc::Sender<Outgoing>,
    pub kick: oneshot::Sender<CloseReason>,
}

pub(super) enum Command {
    Join {
        entry: ListenerEntry,
        /// The first chunk the listener still needs, when it comes back.
        from: Option<u64>,
        reply: oneshot::Sender<JoinInfo>,
    },
    Leave {
        id: u64,
    },
    /// The listener's connection died: it may come back (see `RESUME_GRACE`).
    Detach {
        id: u64,
    },
    Control {
        change: ParamChange,
        /// The chunk the listener hears now, if it said.
        playing: Option<u64>,
        reply: oneshot::Sender<Result<ControlAck, ChangeError>>,
    },
    Opus {
        kbps: u32,
        reply: oneshot::Sender<Result<OpusSubscription, SubscribeError>>,
    },
    Timer {
        from_seq: Option<u64>,
        seconds: f64,
        reply: oneshot::Sender<Result<TimerAck, TimerError>>,
    },
    CancelTimer {
        reply: oneshot::Sender<Result<(), TimerError>>,
    },
    Mp3 {
        kbps: u32,
        reply: oneshot::Sender<Result<Mp3Subscription, Mp3SubscribeError>>,
    },
}

/// A cheap handle to a running session.
#[derive(Clone)]
pub struct SessionHandle {
    pub id: Arc<str>,
    pub room: Option<Arc<str>>,
    /// Who may send it controls.
    pub control: RoomControl,
    commands: mpsc::Sender<Command>,
}

#[derive(Debug, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionEnded;

impl SessionHandle {
    /// Sends a command carrying a reply channel and waits for the answer.
    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SessionEnded> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SessionEnded)?;
        rx.await.map_err(|_| SessionEnded)
    }

    pub(super) async fn join(
        &self,
        entry: ListenerEntry,
        from: Option<u64>,
    ) -> Result<JoinInfo, SessionEnded> {
        self.request(|reply| Command::Join { entry, from, reply })
            .await
    }

    pub async fn leave(&self, id: u64) {
        let _ = self.commands.send(Command::Leave { id }).await;
    }

    /// Leaves because the connection died, not by choice: a session of its
    /// own then waits a while for the listener to resume it.
    pub async fn detach(&self, id: u64) {
        let _ = self.commands.send(Command::Detach { id }).await;
    }

    /// Applies a change from the next chunk; given the chunk the listener
    /// hears now (`playing`), from shortly after it instead, by playing the
    /// buffered part again (see [`ControlAck::splice_seq`]).
    pub async fn control(
        &self,
        change: ParamChange,
        playing: Option<u64>,
    ) -> Result<Result<ControlAck, ChangeError>, SessionEnded> {
        self.request(|reply| Command::Control {
            change,
            playing,
            reply,
        })
        .await
    }

    /// Asks the session to encode Opus at `kbps` for this listener too
    /// (see `stream::opus`).
    pub async fn opus(
        &self,
        kbps: u32,
    ) -> Result<Result<OpusSubscription, SubscribeError>, SessionEnded> {
        self.request(|reply| Command::Opus { kbps, reply }).await
    }

    /// Ends the stream `seconds` after chunk `from_seq` (or the next chunk):
    /// the last [`TIMER_FADE_SECONDS`] fade out on the music's tail, then
    /// every listener is closed with [`CloseReason::Ended`]. A new timer
    /// replaces the old one until the fade has begun.
    pub async fn set_timer(
        &self,
        from_seq: Option<u64>,
        seconds: f64,
    ) -> Result<Result<TimerAck, TimerError>, SessionEnded> {
        self.request(|reply| Command::Timer {
            from_seq,
            seconds,
            reply,
        })
        .await
    }

    /// Removes the timer, unless the fade has begun.
    pub async fn cancel_timer(&self) -> Result<Result<(), TimerError>, SessionEnded> {
        self.request(|reply| Command::CancelTimer { reply }).await
    }

    /// Asks the session to encode MP3 at `kbps` for this listener too
    /// (see `stream::mp3`).
    pub async fn mp3(
        &self,
        kbps: u32,
    ) -> Result<Result<Mp3Subscription, Mp3SubscribeError>, SessionEnded> {
        self.request(|reply| Command::Mp3 { kbps, reply }).await
    }

    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Resolves once the session task has ended.
    pub async fn closed(&self) {
        self.commands.closed().await;
    }
}

pub(super) struct SessionSpec {
    pub id: Arc<str>,
    pub room: Option<Arc<str>>,
    pub control: RoomControl,
    pub renderer: Renderer,
    pub preset: Option<String>,
    /// The first chunk's seq: 0, or where a resumed piece goes on.
    pub first_seq: u64,
    pub resume: Option<Arc<str>>,
    /// None for a room: it is not kept for anyone.
    pub parking: Option<Parking>,
    pub lead_chunks: u64,
    pub pool: Arc<RenderPool>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
}

/// Commands waiting per session; joins and controls are rare, so a small
/// bound is plenty and keeps a flood from growing memory.
const COMMAND_QUEUE: usize = 64;

/// Starts a session task with its first listener already in it, so a session
/// is never empty at birth. Returns the handle and the first listener's info;
/// `on_end` runs when the last listener has left (after the task stopped
/// taking commands).
pub(super) fn spawn(
    spec: SessionSpec,
    first: ListenerEntry,
    on_end: impl FnOnce() + Send + 'static,
) -> (SessionHandle, JoinInfo) {
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = SessionHandle {
        id: spec.id.clone(),
        room: spec.room.clone(),
        control: spec.control.clone(),
        commands,
    };
    let info = JoinInfo {
        state: ParamsState {
            preset: spec.preset.clone(),
            params: spec.renderer.params().clone(),
        },
        next_seq: spec.first_seq,
        resume: spec.resume.clone(),
    };
    let task = SessionTask {
        renderer: Some(spec.renderer),
        preset: spec.preset,
        listeners: vec![first],
        seq: spec.first_seq,
        resume: spec.resume,
        parking: spec.parking,
        history: VecDeque::with_capacity(REPLAY_CHUNKS),
        detached: false,
        lead_chunks: spec.lead_chunks,
        pool: spec.pool,
        metrics: spec.metrics,
        opus: Some(OpusLanes::default()),
        shared: spec.room.is_some(),
        timer: None,
        mp3: Some(Mp3Lanes::default()),
        splice_budget: SPLICE_BURST,
        budget_at: Instant::now(),
    };
    tokio::spawn(async move {
        task.run(rx, spec.shutdown).await;
        on_end();
    });
    (handle, info)
}

struct SessionTask {
    /// `None` only while lent to a render thread.
    renderer: Option<Renderer>,
    preset: Option<String>,
    listeners: Vec<ListenerEntry>,
    seq: u64,
    resume: Option<Arc<str>>,
    parking: Option<Parking>,
    /// The last chunks sent, oldest first, for a listener that resumes.
    history: VecDeque<Arc<Chunk>>,
    /// The last listener to go dropped rather than left.
    detached: bool,
    lead_chunks: u64,
    pool: Arc<RenderPool>,
    metrics: Arc<Metrics>,
    /// Encoders for HTTP Opus listeners; `None` only while lent to a render
    /// thread with the renderer.
    opus: Option<OpusLanes>,
    /// A room's session: no timer, its music is everyone's.
    shared: bool,
    timer: Option<Timer>,
    /// Encoders for HTTP MP3 listeners, lent like `opus`.
    mp3: Option<Mp3Lanes>,
    /// Splices this session may make now, refilled over time (see
    /// [`SPLICE_BURST`]), and when they were last counted.
    splice_budget: f64,
    budget_at: Instant,
}

/// How long the fade is when the server shuts down (300 ms): a fade, not a
/// cut, yet short enough not to hold up a restart.
const SHUTDOWN_FADE_CHUNKS: u64 = 3;

impl SessionTask {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let mut start = Instant::now();
        let mut start_seq = self.seq;
        loop {
            if self.listeners.is_empty() {
                if !self.wait_for_resume(&mut commands, &shutdown).await {
                    break;
                }
                // Back from a pause: a new schedule, `lead` chunks ahead again.
                start = Instant::now();
                start_seq = self.seq;
            }
            // Chunk n leaves at start + (n - lead) × 100 ms: an absolute
            // schedule, so repeated sleeps never accumulate drift, and the
            // stream runs exactly `lead` chunks ahead of the wall clock.
            let ahead = self
                .seq
                .saturating_sub(start_seq)
                .saturating_sub(self.lead_chunks);
            let due = start + CHUNK_DURATION * ahead as u32;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.fade_out_now().await;
                    for l in self.listeners.drain(..) {
                        let _ = l.kick.send(CloseReason::Shutdown);
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                () = tokio::time::sleep_until(due) => {
                    if !self.render_and_send(due).await {
                        break;
                    }
                    if self.timer.is_some_and(|t| self.seq >= t.end_seq) {
                        for l in self.listeners.drain(..) {
                            let _ = l.kick.send(CloseReason::Ended);
                        }
                    }
                }
            }
        }
        // Refuse whatever is still queued: a join that raced with the end is
        // answered by a closed channel, and the joiner starts a new session.
        commands.close();
    }

    /// The last listener dropped: paused (nothing renders), the session
    /// waits up to `RESUME_GRACE` for a listener to come back. Returns true
    /// if one did. A listener that left by choice, a room, a full parking
    /// or a shutdown ends the session at once.
    async fn wait_for_resume(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        shutdown: &CancellationToken,
    ) -> bool {
        // A listener's connection sends why it goes (leave or detach) before
        // its queue closes, so a departure first seen as a closed queue has
        // its reason waiting here.
        while let Ok(cmd) = commands.try_recv() {
            self.handle(cmd).await;
            if !self.listeners.is_empty() {
                return true;
            }
        }
        let Some(parking) = self.parking.as_ref().filter(|_| self.detached) else {
            return false;
        };
        let waiting = Arc::clone(&parking.waiting);
        if waiting.fetch_add(1, Ordering::Relaxed) >= parking.max {
            waiting.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let deadline = Instant::now() + RESUME_GRACE;
        let resumed = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break false,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        self.handle(cmd).await;
                        if !self.listeners.is_empty() {
                            break true;
                        }
                    }
                    None => break false,
                },
                () = tokio::time::sleep_until(deadline) => break false,
            }
        };
        waiting.fetch_sub(1, Ordering::Relaxed);
        self.detached = false;
        resumed
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join { entry, from, reply } => {
                let replay = from.map_or(0, |f| self.replay_start(f, &entry));
                let info = JoinInfo {
                    state: self.state(),
                    next_seq: self.seq - replay as u64,
                    resume: self.resume.clone(),
                };
                if reply.send(info).is_ok() {
                    let skip = self.history.len() - replay;
                    for c in self.history.iter().skip(skip) {
                        let _ = entry.queue.try_send(Outgoing::Chunk(Arc::clone(c)));
                    }
                    self.listeners.push(entry);
                }
            }
            Command::Leave { id } => self.listeners.retain(|l| l.id != id),
            Command::Detach { id } => {
                self.listeners.retain(|l| l.id != id);
                self.detached = self.listeners.is_empty();
            }
            Command::Control {
                change,
                playing,
                reply,
            } => {
                let _ = reply.send(self.apply_control(&change, playing).await);
            }
            Command::Opus { kbps, reply } => {
                let opus = self
                    .opus
                    .as_mut()
                    .expect("encoders are home between chunks");
                let _ = reply.send(opus.subscribe(kbps, self.seq));
            }
            Command::Timer {
                from_seq,
                seconds,
                reply,
            } => {
                let _ = reply.send(self.set_timer(from_seq, seconds));
            }
            Command::CancelTimer { reply } => {
                let fading = self.timer.is_some_and(|t| t.released);
                if !fading {
                    self.timer = None;
                }
                let _ = reply.send(if fading {
                    Err(TimerError::Fading)
                } else {
                    Ok(())
                });
            }
            Command::Mp3 { kbps, reply } => {
                let mp3 = self.mp3.as_mut().expect("encoders are home between chunks");
                let _ = reply.send(mp3.subscribe(kbps, self.seq));
            }
        }
    }

    fn set_timer(&mut self, from_seq: Option<u64>, seconds: f64) -> Result<TimerAck, TimerError> {
        if !(1.0..=MAX_TIMER_SECONDS).contains(&seconds) {
            return Err(TimerError::Seconds(seconds));
        }
        if self.shared {
            return Err(TimerError::Room);
        }
        if self.timer.is_some_and(|t| t.released) {
            return Err(TimerError::Fading);
        }
        let chunk_secs = CHUNK_DURATION.as_secs_f64();
        let length = (seconds / chunk_secs).round() as u64;
        let end_seq = (from_seq.unwrap_or(self.seq) + length).max(self.seq + 1);
        // A short timer plays its first half before fading: released from
        // the start, nothing would be heard.
        let fade = ((TIMER_FADE_SECONDS / chunk_secs).round() as u64).min(length / 2);
        self.timer = Some(Timer {
            release_seq: end_seq.saturating_sub(fade).max(self.seq),
            end_seq,
            released: false,
        });
        Ok(TimerAck { end_seq })
    }

    /// How many of the kept chunks a listener resuming at `from` gets
    /// again: from `from` on, as many as its queue takes with room to spare.
    fn replay_start(&self, from: u64, entry: &ListenerEntry) -> usize {
        let missed = self.seq.saturating_sub(from) as usize;
        missed
            .min(self.history.len())
            .min(entry.queue.max_capacity().saturating_sub(2))
    }

    fn state(&self) -> ParamsState {
        let renderer = self
            .renderer
            .as_ref()
            .expect("renderer is home between chunks");
        ParamsState {
            preset: self.preset.clone(),
            params: renderer.params().clone(),
        }
    }

    async fn apply_control(
        &mut self,
        change: &ParamChange,
        playing: Option<u64>,
    ) -> Result<ControlAck, ChangeError> {
        let renderer = self
            .renderer
            .as_mut()
            .expect("renderer is home between chunks");
        let (params, preset) = change.apply_to(renderer.params())?;
        let splice_seq = match playing.and_then(|p| self.splice_target(p)) {
            Some(seq) => self.splice(seq, params.clone()).await.then_some(seq),
            None => None,
        };
        // A splice that found the pool closed (shutdown) took the renderer
        // with it: the session ends at its next chunk, and the answer is
        // built from `params`, not from a renderer that is gone.
        if splice_seq.is_none() {
            if let Some(renderer) = self.renderer.as_mut() {
                renderer.set_params(params.clone());
            }
        }
        if let Some(p) = preset {
            self.preset = Some(p.name.to_string());
        }
        let state = ParamsState {
            preset: self.preset.clone(),
            params,
        };
        let applies_at_seq = self.seq;
        tracing::debug!(
            playing,
            applies_at_seq,
            spliced = splice_seq.is_some(),
            "control change"
        );
        self.metrics
            .control_changes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ack = ControlAck {
            state,
            applies_at_seq,
            splice_seq,
        };
        let text: Arc<str> = params_message(&ack).into();
        self.broadcast(Outgoing::Text(text));
        Ok(ack)
    }

    /// Where a change may replace audio already sent, given the chunk the
    /// listener hears: [`SPLICE_AHEAD_CHUNKS`] later, and no further back than
    /// the renderer can go. Only a session of one WebSocket listener splices:
    /// a room's listeners hear different moments, and an HTTP stream cannot
    /// take audio back. None when there is nothing sent to replace.
    fn splice_target(&mut self, playing: u64) -> Option<u64> {
        let opus_in_use = self.opus.as_mut().is_some_and(|o| o.in_use());
        let mp3_in_use = self.mp3.as_mut().is_some_and(|m| m.in_use());
        let now = Instant::now();
        let refill = now.duration_since(self.budget_at).as_secs_f64() * SPLICES_PER_SECOND;
        self.splice_budget = (self.splice_budget + refill).min(SPLICE_BURST);
        self.budget_at = now;
        let spent = self.splice_budget < 1.0;
        if self.shared || self.listeners.len() != 1 || opus_in_use || mp3_in_use || spent {
            return None;
        }
        let furthest = MAX_SPLICE_FRAMES / CHUNK_FRAMES as u64;
        let seq = playing
            .saturating_add(SPLICE_AHEAD_CHUNKS)
            .max(self.seq.saturating_sub(furthest));
        (seq < self.seq).then_some(seq)
    }

    /// Plays the music again from chunk `seq` with `params` (on the pool: it
    /// renders a pre-roll) and moves the stream back there, so the chunks
    /// from `seq` go out again at once. False if the renderer could not.
    async fn splice(&mut self, seq: u64, params: Params) -> bool {
        let Some(mut renderer) = self.renderer.take() else {
            return false;
        };
        let frame = seq * CHUNK_FRAMES as u64;
        let job = move || {
            let spliced = renderer.splice(frame, params);
            (renderer, spliced)
        };
        let Ok((renderer, spliced)) = self.pool.run(std::time::Instant::now(), job).await else {
            return false;
        };
        self.renderer = Some(renderer);
        if spliced {
            self.splice_budget -= 1.0;
            self.seq = seq;
            self.history.retain(|c| c.seq < seq);
            self.metrics.splices.fetch_add(1, Ordering::Relaxed);
        }
        spliced
    }

    /// Ends the music on a fade rather than a cut: the next chunks fade to
    /// silence and go out at once, ahead of the close (the listener's own
    /// buffer then plays them out).
    async fn fade_out_now(&mut self) {
        let Some(renderer) = self.renderer.as_mut() else {
            return;
        };
        renderer.fade_out(SHUTDOWN_FADE_CHUNKS * CHUNK_FRAMES as u64);
        for _ in 0..SHUTDOWN_FADE_CHUNKS {
            if !self.render_and_send(Instant::now()).await {
                break;
            }
        }
    }

    /// Renders the next chunk on the pool and hands it to every listener.
    /// Returns false if the pool has shut down.
    async fn render_and_send(&mut self, due: Instant) -> bool {
        let (Some(mut renderer), Some(mut opus), Some(mut mp3)) =
            (self.renderer.take(), self.opus.take(), self.mp3.take())
        else {
            return false;
        };
        let mut last = false;
        if let Some(t) = self.timer.as_mut() {
            if !t.released && self.seq >= t.release_seq {
                t.released = true;
                renderer.release();
                renderer.fade_out((t.end_seq - self.seq) * CHUNK_FRAMES as u64);
            }
            last = self.seq + 1 >= t.end_seq;
        }
        let job = move || {
            let started = std::time::Instant::now();
            let mut samples = Vec::with_capacity(CHUNK_FRAMES * 2);
            renderer.render(CHUNK_FRAMES, &mut samples);
            let mut bytes = Vec::with_capacity(samples.len() * 2);
            pcm::to_le_bytes(&samples, &mut bytes);
            let took = started.elapsed();
            let pages = if last {
                opus.encode_last(&samples)
            } else {
                opus.encode(&samples)
            };
            let frames = mp3.encode(&samples);
            (renderer, (opus, mp3), bytes, (pages, frames), took)
        };
        let Ok((renderer, (opus, mp3), bytes, (pages, frames), took)) =
            self.pool.run(due.into_std(), job).await
        else {
            return false;
        };
        self.renderer = Some(renderer);
        self.opus = Some(opus);
        self.mp3 = Some(mp3);
        self.metrics.record_synth_ms(took.as_secs_f64() * 1e3);
        let chunk = Chunk::new(self.seq, unix_now(), Bytes::from(bytes))
            .with_opus(pages)
            .with_mp3(frames);
        let chunk = Arc::new(chunk);
        self.seq += 1;
        if self.parking.is_some() {
            if self.history.len() == REPLAY_CHUNKS {
                self.history.pop_front();
            }
            self.history.push_back(Arc::clone(&chunk));
        }
        self.broadcast(Outgoing::Chunk(chunk));
        true
    }

    /// Offers a message to every listener without waiting: a listener whose
    /// queue is full is dropped, so one stalled reader never delays the rest.
    fn broadcast(&mut self, msg: Outgoing) {
        let all = std::mem::take(&mut self.listeners);
        let mut deepest = 0;
        let mut kicked = false;
        for l in all {
            match l.queue.try_send(msg.clone()) {
                Ok(()) => {
                    deepest = deepest.max(l.queue.max_capacity() - l.queue.capacity());
                    self.listeners.push(l);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics
                        .listeners_dropped_slow
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = l.kick.send(CloseReason::TooSlow);
                    kicked = true;
                }
            }
        }
        // A listener too slow for a while (a stalled link) reconnects and
        // resumes, as after any other drop.
        if kicked && self.listeners.is_empty() {
            self.detached = true;
        }
        if matches!(msg, Outgoing::Chunk(_)) {
            self.metrics.record_queue_depth(deepest as f64);
        }
    }
}

/// The `params` message sent to every listener of a session after a change.
pub fn params_message(ack: &ControlAck) -> String {
    ServerMessage::Params {
        state: &ack.state,
        applies_at_seq: ack.applies_at_seq,
        splice_seq: ack.splice_seq,
    }
    .to_json()
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
