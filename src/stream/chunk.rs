//! One 100 ms chunk of a session's audio and its two wire encodings. A chunk
//! is encoded at most once per format however many listeners receive it, so
//! a room of thousands costs one encode, not thousands.

use std::sync::OnceLock;

use base64::Engine as _;
use bytes::Bytes;

use super::mp3::Mp3Frames;
use super::opus::OpusPage;
use crate::wire::{AudioChunk, BinaryHeader, ServerMessage};

#[derive(Debug)]
pub struct Chunk {
    pub seq: u64,
    /// Unix seconds when the chunk was generated.
    pub timestamp: f64,
    /// Interleaved stereo i16, little-endian.
    pub pcm: Bytes,
    binary: OnceLock<Bytes>,
    json: OnceLock<Bytes>,
    /// Ogg Opus pages, one per bitrate the session encodes for HTTP
    /// listeners (see `stream::opus`); made with the chunk, since Opus
    /// state runs from chunk to chunk and cannot be encoded lazily.
    opus: Vec<OpusPage>,
    /// MP3 frames, one run per bitrate in use (see `stream::mp3`).
    mp3: Vec<Mp3Frames>,
}

impl Chunk {
    pub fn new(seq: u64, timestamp: f64, pcm: Bytes) -> Self {
        Self {
            seq,
            timestamp,
            pcm,
            binary: OnceLock::new(),
            json: OnceLock::new(),
            opus: Vec::new(),
            mp3: Vec::new(),
        }
    }

    pub fn with_opus(mut self, pages: Vec<OpusPage>) -> Self {
        self.opus = pages;
        self
    }

    pub fn with_mp3(mut self, frames: Vec<Mp3Frames>) -> Self {
        self.mp3 = frames;
        self
    }

    /// This chunk's MP3 frames at `kbps`, if the session encoded that bitrate.
    pub fn mp3_frames(&self, kbps: u32) -> Option<&Bytes> {
        self.mp3.iter().find(|p| p.kbps == kbps).map(|p| &p.bytes)
    }

    /// This chunk's Ogg page at `kbps`, if the session encoded that bitrate.
    pub fn opus_page(&self, kbps: u32) -> Option<&Bytes> {
        self.opus.iter().find(|p| p.kbps == kbps).map(|p| &p.bytes)
    }

    pub fn frames(&self) -> usize {
        self.pcm.len() / (2 * crate::CHANNELS as usize)
    }

    pub fn duration_ms(&self) -> u32 {
        (self.frames() as u64 * 1000 / u64::from(crate::SAMPLE_RATE)) as u32
    }

    /// The binary frame: a [`BinaryHeader`], then the PCM.
    pub fn binary_frame(&self) -> Bytes {
        self.binary
            .get_or_init(|| {
                let header = BinaryHeader::for_pcm(self.seq, self.timestamp, self.pcm.len());
                Bytes::from(header.frame(&self.pcm))
            })
            .clone()
    }

    /// The JSON text frame (UTF-8 bytes), PCM as base64.
    pub fn json_frame(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let audio_data = base64::engine::general_purpose::STANDARD.encode(&self.pcm);
                let msg = ServerMessage::AudioChunk(AudioChunk {
                    seq: self.seq,
                    timestamp: self.timestamp,
                    duration_ms: self.duration_ms(),
                    sample_rate: crate::SAMPLE_RATE,
                    channels: crate::CHANNELS,
                    audio_data: &audio_data,
                });
                Bytes::from(msg.to_json())
            })
            .clone()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn chunk() -> Chunk {
        let pcm: Vec<u8> = (0..crate::audio::CHUNK_BYTES).map(|i| i as u8).collect();
        Chunk::new(7, 1_700_000_000.25, Bytes::from(pcm))
    }

    #[test]
    fn binary_frame_decodes_to_the_chunk() {
        let c = chunk();
        let f = c.binary_frame();
        let (header, pcm) = BinaryHeader::decode(&f).unwrap();
        assert_eq!(header.seq, 7);
        assert_eq!(header.timestamp, 1_700_000_000.25);
        assert_eq!(usize::from(header.frames), c.frames());
        assert_eq!(pcm, &c.pcm[..]);
    }

    #[test]
    fn json_has_exactly_the_briefs_fields() {
        let c = chunk();
        let v: serde_json::Value = serde_json::from_slice(&c.json_frame()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "audio_data",
                "channels",
                "duration_ms",
                "sample_rate",
                "seq",
                "timestamp",
                "type"
            ]
        );
        assert_eq!(v["type"], "audio_chunk");
        assert_eq!(v["duration_ms"], 100);
        let pcm = base64::engine::general_purpose::STANDARD
            .decode(v["audio_data"].as_str().unwrap())
            .unwrap();
        assert_eq!(pcm, c.pcm);
    }
}
