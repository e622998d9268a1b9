//! MP3 for a session's HTTP listeners, encoded once per session and bitrate
//! like Opus (see `stream::opus`): a lane per bitrate in use, living while
//! someone holds its [`LaneUse`], its frames riding on the shared chunk.
//! MP3 needs no stream headers and no resampling, so a lane is just an
//! encoder and its recent chunks.

use std::sync::Arc;

use bytes::Bytes;

use super::lanes::{LaneEncoder, LaneUse, Lanes, TooManyBitrates};
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
    #[error(transparent)]
    TooManyBitrates(#[from] TooManyBitrates),
    #[error(transparent)]
    Mp3(#[from] Mp3Error),
}

impl LaneEncoder for Mp3Encoder {
    fn bitrate_kbps(&self) -> u32 {
        Mp3Encoder::bitrate_kbps(self)
    }
}

pub struct Mp3Lanes {
    lanes: Lanes<Mp3Encoder, Bytes>,
}

impl Default for Mp3Lanes {
    fn default() -> Self {
        Self {
            lanes: Lanes::new("MP3"),
        }
    }
}

impl Mp3Lanes {
    /// True while an HTTP listener takes this stream: what it has been sent
    /// cannot be replaced, so the session does not splice.
    pub fn in_use(&mut self) -> bool {
        self.lanes.in_use()
    }

    /// Joins the lane at `kbps`, starting it if needed; `next_seq` is the
    /// session's next chunk.
    pub fn subscribe(
        &mut self,
        kbps: u32,
        next_seq: u64,
    ) -> Result<Mp3Subscription, Mp3SubscribeError> {
        self.lanes.prune();
        if let Some((lane, use_)) = self.lanes.join(kbps) {
            return Ok(Mp3Subscription {
                backlog: lane.recent.iter().cloned().collect(),
                first_seq: next_seq,
                lane: use_,
            });
        }
        self.lanes.check_room()?;
        let lane = self.lanes.start(Mp3Encoder::new(kbps)?);
        Ok(Mp3Subscription {
            backlog: Vec::new(),
            first_seq: next_seq,
            lane,
        })
    }

    /// Encodes one chunk (interleaved stereo i16 at 44.1 kHz) for every
    /// lane still in use; a lane whose encoder fails is closed, and its
    /// listeners' streams end.
    pub fn encode(&mut self, pcm: &[i16]) -> Vec<Mp3Frames> {
        self.lanes.prune();
        self.lanes.encode_each(
            |encoder| encoder.encode(pcm),
            |kbps, bytes| Mp3Frames {
                kbps,
                bytes: bytes.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::CHUNK_FRAMES;
    use crate::stream::lanes::BACKLOG_CHUNKS;

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
