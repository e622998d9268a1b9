//! Opus for a session's HTTP listeners, encoded once per session rather than
//! once per listener.
//!
//! Opus and the resampler carry state from chunk to chunk, so the encoding
//! has to follow the session's own sequence, not any one listener's (a
//! listener may lag or join late). The session therefore owns an
//! [`OpusLanes`]: one 48 kHz resampler and one encoder per bitrate in use (a
//! "lane"), lent to the render thread with the renderer, and the resulting
//! Ogg page rides on the shared [`Chunk`](super::chunk::Chunk) to every
//! listener. A lane lives as long as someone holds its [`OpusSubscription`];
//! the first chunk after the last one is dropped stops the encoding.

use std::sync::Arc;

use bytes::Bytes;

use super::lanes::{LaneEncoder, LaneUse, Lanes, TooManyBitrates};
use crate::audio::opus::{AudioPage, OggOpusEncoder, OpusError};
use crate::audio::resample::{ResampleError, To48k};

/// One chunk's Ogg page at one bitrate.
#[derive(Debug, Clone)]
pub struct OpusPage {
    pub kbps: u32,
    pub bytes: Bytes,
}

/// What an Opus listener needs to start: its own header pages, the lane's
/// recent pages, and from which chunk on it reads pages off its queue.
#[derive(Debug)]
pub struct OpusSubscription {
    pub kbps: u32,
    /// OpusHead and OpusTags, numbered to precede `backlog` (or the page of
    /// chunk `first_seq` when there is no backlog).
    pub header: Bytes,
    pub backlog: Vec<Bytes>,
    /// Chunks before this are covered by the backlog or were never encoded
    /// for this lane; the listener skips them in its queue.
    pub first_seq: u64,
    /// Keeps the lane encoding while this listener is there.
    pub lane: Arc<LaneUse>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    TooManyBitrates(#[from] TooManyBitrates),
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

impl LaneEncoder for OggOpusEncoder {
    fn bitrate_kbps(&self) -> u32 {
        OggOpusEncoder::bitrate_kbps(self)
    }
}

pub struct OpusLanes {
    resampler: Option<To48k>,
    lanes: Lanes<OggOpusEncoder, AudioPage>,
    pcm48: Vec<f32>,
}

impl Default for OpusLanes {
    fn default() -> Self {
        Self {
            resampler: None,
            lanes: Lanes::new("Opus"),
            pcm48: Vec::new(),
        }
    }
}

impl OpusLanes {
    /// True while an HTTP listener takes this stream: what it has been sent
    /// cannot be replaced, so the session does not splice.
    pub fn in_use(&mut self) -> bool {
        self.lanes.in_use()
    }

    /// Joins the lane at `kbps`, starting it if needed. `next_seq` is the
    /// session's next chunk: the first one this lane is sure to encode.
    pub fn subscribe(
        &mut self,
        kbps: u32,
        next_seq: u64,
    ) -> Result<OpusSubscription, SubscribeError> {
        self.prune();
        if let Some((lane, use_)) = self.lanes.join(kbps) {
            let first_page = lane
                .recent
                .front()
                .map_or(lane.encoder.next_page_seq(), |p| p.seq);
            return Ok(OpusSubscription {
                kbps,
                header: lane.encoder.header_pages(first_page)?,
                backlog: lane.recent.iter().map(|p| p.bytes.clone()).collect(),
                first_seq: next_seq,
                lane: use_,
            });
        }
        self.lanes.check_room()?;
        if self.resampler.is_none() {
            self.resampler = Some(To48k::new()?);
        }
        let encoder = OggOpusEncoder::new(kbps, rand::random())?;
        let header = encoder.header_pages(encoder.next_page_seq())?;
        let lane = self.lanes.start(encoder);
        Ok(OpusSubscription {
            kbps,
            header,
            backlog: Vec::new(),
            first_seq: next_seq,
            lane,
        })
    }

    /// Encodes one chunk (interleaved stereo i16 at 44.1 kHz) for every lane
    /// still in use. A lane whose encoder fails is closed, so its listeners
    /// find no page and end their streams; the session itself goes on.
    pub fn encode(&mut self, pcm: &[i16]) -> Vec<OpusPage> {
        self.encode_with(pcm, false)
    }

    /// As [`OpusLanes::encode`], for a stream's last chunk: its pages carry
    /// Ogg's end-of-stream flag, so a player knows the ending is meant.
    pub fn encode_last(&mut self, pcm: &[i16]) -> Vec<OpusPage> {
        self.encode_with(pcm, true)
    }

    fn encode_with(&mut self, pcm: &[i16], last: bool) -> Vec<OpusPage> {
        self.prune();
        let Some(resampler) = self.resampler.as_mut() else {
            return Vec::new();
        };
        if let Err(e) = resampler.process(pcm, &mut self.pcm48) {
            tracing::error!(error = %e, "resampling for Opus failed; closing the Opus streams");
            self.lanes.clear();
            self.resampler = None;
            return Vec::new();
        }
        let pcm48 = &self.pcm48;
        self.lanes.encode_each(
            |encoder| encoder.encode_chunk_with(pcm48, last),
            |kbps, page| OpusPage {
                kbps,
                bytes: page.bytes.clone(),
            },
        )
    }

    /// Drops lanes nobody listens to, and the resampler with the last one.
    fn prune(&mut self) {
        if self.lanes.prune() {
            self.resampler = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::CHUNK_FRAMES;
    use crate::stream::lanes::BACKLOG_CHUNKS;

    fn chunk() -> Vec<i16> {
        (0..CHUNK_FRAMES * 2)
            .map(|i| ((i % 200) as i16 - 100) * 50)
            .collect()
    }

    #[test]
    fn one_encoder_per_bitrate_and_it_stops_with_its_last_listener() {
        let mut lanes = OpusLanes::default();
        assert!(lanes.encode(&chunk()).is_empty(), "no lanes, no work");
        let a = lanes.subscribe(96, 0).unwrap();
        let b = lanes.subscribe(96, 0).unwrap();
        let c = lanes.subscribe(128, 0).unwrap();
        let pages = lanes.encode(&chunk());
        assert_eq!(
            pages.len(),
            2,
            "two bitrates, two encodes for three listeners"
        );
        drop((a, b));
        assert_eq!(lanes.encode(&chunk()).len(), 1);
        drop(c);
        assert!(lanes.encode(&chunk()).is_empty());
        assert!(lanes.resampler.is_none());
    }

    #[test]
    fn a_late_joiner_gets_the_backlog_and_headers_that_lead_into_it() {
        let mut lanes = OpusLanes::default();
        let first = lanes.subscribe(96, 0).unwrap();
        for _ in 0..BACKLOG_CHUNKS + 3 {
            lanes.encode(&chunk());
        }
        let late = lanes.subscribe(96, 11).unwrap();
        assert_eq!(late.backlog.len(), BACKLOG_CHUNKS);
        assert_eq!(late.first_seq, 11);
        let page_seq = |p: &[u8]| u32::from_le_bytes(p[18..22].try_into().unwrap());
        let first_backlog = page_seq(&late.backlog[0]);
        assert_eq!(first_backlog, 2 + 3, "the oldest kept page");
        let tags_at = 27 + 1 + 19;
        assert_eq!(page_seq(&late.header[..]), first_backlog - 2);
        assert_eq!(page_seq(&late.header[tags_at..]), first_backlog - 1);
        drop(first);
    }

    #[test]
    fn at_most_max_lanes_bitrates() {
        let mut lanes = OpusLanes::default();
        let _held: Vec<_> = [64, 96, 128]
            .into_iter()
            .map(|k| lanes.subscribe(k, 0).unwrap())
            .collect();
        let e = lanes.subscribe(192, 0).unwrap_err().to_string();
        assert!(e.contains("64, 96, 128"), "{e}");
    }
}
