//! MP3 for a session's HTTP listeners, encoded once per session and bitrate
//! like Opus (see `stream::opus`): a lane per bitrate in use, living while
//! someone holds its [`LaneUse`], its frames riding on the shared chunk.
//! MP3 needs no stream headers and no resampling, so a lane is just an
//! encoder and its recent chunks.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::opus::{LaneUse, BACKLOG_CHUNKS, MAX_LANES};
use crate::audio::mp3::{Mp3Encoder, Mp3Error};

/// One chunk's MP3 frames at one bitrate.
#[derive(Debug, Clone)]
pub struct Mp3Frames {
    pub kbps: u32,
    pub bytes: Bytes,
}

/// What an MP3 listener needs to start: the lane's recent frames (a burst
/// that fills the player's buffer at once) and from which chunk on it reads
/// its queue.
#[derive(Debug)]
pub struct Mp3Subscription {
    pub backlog: Vec<Bytes>,
    pub first_seq: u64,
    pub lane: Arc<LaneUse>,
}

#[derive(Debug, thiserror::Error)]
pub enum Mp3SubscribeError {
    #[error(
        "this room already streams MP3 at {in_use} kbit/s (at most {MAX_LANES} bitrates per room); \
         ask for one of those"
    )]
    TooManyBitrates { in_use: String },
    #[error(transparent)]
    Mp3(#[from] Mp3Error),
}

struct Lane {
    encoder: Mp3Encoder,
    users: Weak<LaneUse>,
    recent: VecDeque<Bytes>,
}

#[derive(Default)]
pub struct Mp3Lanes {
    lanes: Vec<Lane>,
}

impl Mp3Lanes {
    /// Joins the lane at `kbps`, starting it if needed; `next_seq` is the
    /// session's next chunk.
    pub fn subscribe(
        &mut self,
        kbps: u32,
        next_seq: u64,
    ) -> Result<Mp3Subscription, Mp3SubscribeError> {
        self.lanes.retain(|l| l.users.strong_count() > 0);
        if let Some(lane) = self
            .lanes
            .iter_mut()
            .find(|l| l.encoder.bitrate_kbps() == kbps)
        {
            let use_ = lane.users.upgrade().unwrap_or_else(|| Arc::new(LaneUse));
            lane.users = Arc::downgrade(&use_);
            return Ok(Mp3Subscription {
                backlog: lane.recent.iter().cloned().collect(),
                first_seq: next_seq,
                lane: use_,
            });
        }
        if self.lanes.len() >= MAX_LANES {
            let in_use: Vec<String> = self
                .lanes
                .iter()
                .map(|l| l.encoder.bitrate_kbps().to_string())
                .collect();
            return Err(Mp3SubscribeError::TooManyBitrates {
                in_use: in_use.join(", "),
            });
        }
        let use_ = Arc::new(LaneUse);
        self.lanes.push(Lane {
            encoder: Mp3Encoder::new(kbps)?,
            users: Arc::downgrade(&use_),
            recent: VecDeque::with_capacity(BACKLOG_CHUNKS),
        });
        Ok(Mp3Subscription {
            backlog: Vec::new(),
            first_seq: next_seq,
            lane: use_,
        })
    }

    /// Encodes one chunk (interleaved stereo i16 at 44.1 kHz) for every
    /// lane still in use; a lane whose encoder fails is closed, and its
    /// listeners' streams end.
    pub fn encode(&mut self, pcm: &[i16]) -> Vec<Mp3Frames> {
        self.lanes.retain(|l| l.users.strong_count() > 0);
        let mut out = Vec::with_capacity(self.lanes.len());
        self.lanes.retain_mut(|lane| match lane.encoder.encode(pcm) {
            Ok(bytes) => {
                if lane.recent.len() == BACKLOG_CHUNKS {
                    lane.recent.pop_front();
                }
                lane.recent.push_back(bytes.clone());
                out.push(Mp3Frames {
                    kbps: lane.encoder.bitrate_kbps(),
                    bytes,
                });
                true
            }
            Err(e) => {
                tracing::error!(error = %e, kbps = lane.encoder.bitrate_kbps(), "MP3 encoding failed; closing that stream");
                false
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::CHUNK_FRAMES;

    #[test]
    fn one_encoder_per_bitrate_with_a_backlog_for_late_joiners() {
        let mut lanes = Mp3Lanes::default();
        let chunk: Vec<i16> = (0..CHUNK_FRAMES * 2)
            .map(|i| (i % 300) as i16 * 40)
            .collect();
        let a = lanes.subscribe(128, 0).unwrap();
        let b = lanes.subscribe(128, 0).unwrap();
        for _ in 0..BACKLOG_CHUNKS + 2 {
            assert_eq!(lanes.encode(&chunk).len(), 1, "two listeners, one encode");
        }
        let late = lanes.subscribe(128, 10).unwrap();
        assert_eq!(late.backlog.len(), BACKLOG_CHUNKS);
        assert_eq!(late.first_seq, 10);
        let _more: Vec<_> = [64, 96]
            .into_iter()
            .map(|k| lanes.subscribe(k, 10).unwrap())
            .collect();
        let e = lanes.subscribe(320, 10).unwrap_err().to_string();
        assert!(e.contains("128, 64, 96"), "{e}");
        drop((a, b, late, _more));
        assert!(
            lanes.encode(&chunk).is_empty(),
            "the last listener stops it"
        );
    }
}
