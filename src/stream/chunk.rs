//! One 100 ms chunk of a session's audio and its two wire encodings. A chunk
//! is encoded at most once per format however many listeners receive it, so
//! a room of thousands costs one encode, not thousands.

use std::sync::OnceLock;

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use super::opus::OpusPage;

/// First bytes of every binary audio frame, so a client can tell our frames
/// from anything else and refuse a version it does not know.
pub const BINARY_MAGIC: [u8; 4] = *b"AURA";
pub const BINARY_VERSION: u16 = 1;
/// Header bytes before the PCM; even, so the PCM can be viewed as Int16Array
/// in place.
pub const BINARY_HEADER_LEN: usize = 32;

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
}

/// The brief's Appendix A.3 message, field for field.
#[derive(Serialize)]
struct AudioChunkMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    timestamp: f64,
    duration_ms: u32,
    sample_rate: u32,
    channels: u16,
    audio_data: &'a str,
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
        }
    }

    pub fn with_opus(mut self, pages: Vec<OpusPage>) -> Self {
        self.opus = pages;
        self
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

    /// The binary frame; layout (all little-endian):
    ///
    /// | offset | size | field                          |
    /// |-------:|-----:|--------------------------------|
    /// | 0      | 4    | magic `AURA`                   |
    /// | 4      | 2    | version (1)                    |
    /// | 6      | 2    | header length in bytes (32)    |
    /// | 8      | 8    | seq, u64                       |
    /// | 16     | 8    | timestamp, f64 Unix seconds    |
    /// | 24     | 4    | sample rate, u32               |
    /// | 28     | 2    | channels, u16                  |
    /// | 30     | 2    | frames in this chunk, u16      |
    /// | 32     | …    | PCM, i16 interleaved           |
    pub fn binary_frame(&self) -> Bytes {
        self.binary
            .get_or_init(|| {
                let mut b = Vec::with_capacity(BINARY_HEADER_LEN + self.pcm.len());
                b.extend_from_slice(&BINARY_MAGIC);
                b.extend_from_slice(&BINARY_VERSION.to_le_bytes());
                b.extend_from_slice(&(BINARY_HEADER_LEN as u16).to_le_bytes());
                b.extend_from_slice(&self.seq.to_le_bytes());
                b.extend_from_slice(&self.timestamp.to_le_bytes());
                b.extend_from_slice(&crate::SAMPLE_RATE.to_le_bytes());
                b.extend_from_slice(&crate::CHANNELS.to_le_bytes());
                b.extend_from_slice(&(self.frames() as u16).to_le_bytes());
                b.extend_from_slice(&self.pcm);
                Bytes::from(b)
            })
            .clone()
    }

    /// The JSON text frame (UTF-8 bytes), PCM as base64.
    pub fn json_frame(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let audio_data = base64::engine::general_purpose::STANDARD.encode(&self.pcm);
                let msg = AudioChunkMessage {
                    kind: "audio_chunk",
                    seq: self.seq,
                    timestamp: self.timestamp,
                    duration_ms: self.duration_ms(),
                    sample_rate: crate::SAMPLE_RATE,
                    channels: crate::CHANNELS,
                    audio_data: &audio_data,
                };
                Bytes::from(serde_json::to_vec(&msg).expect("plain fields always serialize"))
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
    fn binary_header_is_as_documented() {
        let c = chunk();
        let f = c.binary_frame();
        assert_eq!(f.len(), 32 + 17_640);
        assert_eq!(&f[0..4], b"AURA");
        assert_eq!(u16::from_le_bytes([f[4], f[5]]), 1);
        assert_eq!(u16::from_le_bytes([f[6], f[7]]), 32);
        assert_eq!(u64::from_le_bytes(f[8..16].try_into().unwrap()), 7);
        assert_eq!(
            f64::from_le_bytes(f[16..24].try_into().unwrap()),
            1_700_000_000.25
        );
        assert_eq!(u32::from_le_bytes(f[24..28].try_into().unwrap()), 44_100);
        assert_eq!(u16::from_le_bytes([f[28], f[29]]), 2);
        assert_eq!(u16::from_le_bytes([f[30], f[31]]), 4_410);
        assert_eq!(&f[32..], &c.pcm[..]);
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
