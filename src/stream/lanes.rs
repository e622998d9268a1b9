//! A session's encoded lanes, for its HTTP listeners: one encoder per bitrate
//! in use, each fed every chunk in the session's own order (encoders carry
//! state from chunk to chunk, so no single listener's pace may drive them),
//! each keeping its last few outputs for listeners who join late. Opus and MP3
//! share this; what differs (Ogg headers, resampling to 48 kHz) stays in
//! `stream::opus` and `stream::mp3`.

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::{Arc, Weak};

/// Distinct bitrates one session encodes at once per format: each costs an
/// encoder's CPU on every chunk, so a room cannot be made to encode dozens.
pub const MAX_LANES: usize = 3;
/// Recent outputs a lane keeps, so a listener joining a running session
/// starts with a burst of this many chunks (800 ms) and its player's buffer
/// fills at once instead of at real time.
pub const BACKLOG_CHUNKS: usize = 8;

/// Held by each listener of a lane; only its count matters: the first chunk
/// after the last one is dropped stops the encoding.
#[derive(Debug)]
pub struct LaneUse;

#[derive(Debug, thiserror::Error)]
#[error(
    "this room already streams {format} at {in_use} kbit/s (at most {MAX_LANES} bitrates per room); \
     ask for one of those"
)]
pub struct TooManyBitrates {
    format: &'static str,
    in_use: String,
}

/// An encoder as a lane sees it: it runs at one bitrate.
pub trait LaneEncoder {
    fn bitrate_kbps(&self) -> u32;
}

pub struct Lane<E, R> {
    pub encoder: E,
    users: Weak<LaneUse>,
    /// The last [`BACKLOG_CHUNKS`] outputs, oldest first.
    pub recent: VecDeque<R>,
}

pub struct Lanes<E, R> {
    format: &'static str,
    lanes: Vec<Lane<E, R>>,
}

impl<E: LaneEncoder, R> Lanes<E, R> {
    /// `format` names the encoding in errors and logs ("Opus", "MP3").
    pub fn new(format: &'static str) -> Self {
        Self {
            format,
            lanes: Vec::new(),
        }
    }

    /// True while someone listens to a lane.
    pub fn in_use(&mut self) -> bool {
        !self.prune()
    }

    /// Drops the lanes nobody listens to; true when none is left.
    pub fn prune(&mut self) -> bool {
        self.lanes.retain(|l| l.users.strong_count() > 0);
        self.lanes.is_empty()
    }

    /// The running lane at `kbps`, if any, and one more listener's use of it.
    pub fn join(&mut self, kbps: u32) -> Option<(&mut Lane<E, R>, Arc<LaneUse>)> {
        let lane = self
            .lanes
            .iter_mut()
            .find(|l| l.encoder.bitrate_kbps() == kbps)?;
        let use_ = lane.users.upgrade().unwrap_or_else(|| Arc::new(LaneUse));
        lane.users = Arc::downgrade(&use_);
        Some((lane, use_))
    }

    /// Whether a lane may be added, or which bitrates a listener may ask for.
    pub fn check_room(&self) -> Result<(), TooManyBitrates> {
        if self.lanes.len() < MAX_LANES {
            return Ok(());
        }
        let in_use: Vec<String> = self
            .lanes
            .iter()
            .map(|l| l.encoder.bitrate_kbps().to_string())
            .collect();
        Err(TooManyBitrates {
            format: self.format,
            in_use: in_use.join(", "),
        })
    }

    /// Adds a lane (after [`Lanes::check_room`]); the use returned keeps it.
    pub fn start(&mut self, encoder: E) -> Arc<LaneUse> {
        let use_ = Arc::new(LaneUse);
        self.lanes.push(Lane {
            encoder,
            users: Arc::downgrade(&use_),
            recent: VecDeque::with_capacity(BACKLOG_CHUNKS),
        });
        use_
    }

    /// Encodes one chunk on every lane with `encode`, keeps each output in
    /// the lane's backlog and returns what `emit` makes of it. A lane whose
    /// encoder fails is closed, so its listeners find nothing and end their
    /// streams; the session itself goes on.
    pub fn encode_each<T, X: Display>(
        &mut self,
        mut encode: impl FnMut(&mut E) -> Result<R, X>,
        emit: impl Fn(u32, &R) -> T,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(self.lanes.len());
        let format = self.format;
        self.lanes.retain_mut(|lane| {
            let kbps = lane.encoder.bitrate_kbps();
            match encode(&mut lane.encoder) {
                Ok(r) => {
                    out.push(emit(kbps, &r));
                    if lane.recent.len() == BACKLOG_CHUNKS {
                        lane.recent.pop_front();
                    }
                    lane.recent.push_back(r);
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, kbps, "{format} encoding failed; closing that stream");
                    false
                }
            }
        });
        out
    }

    /// Closes every lane (the input they share failed).
    pub fn clear(&mut self) {
        self.lanes.clear();
    }
}
