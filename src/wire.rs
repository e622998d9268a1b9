//! Every message the server puts on the wire, typed: the JSON text messages
//! (hello, params, pong, error, audio_chunk), the error codes, and the header
//! of a binary audio frame. The server, the load test and the tests all encode
//! and decode through these types, so a field or an offset is written once;
//! `web/wire.js` is checked against the Rust encoder by `tests/wire.rs`.
//!
//! This module sits below `stream/` and `server/`: it knows messages, not
//! sessions or sockets.

use serde::Serialize;

use crate::music::Params;

/// First bytes of every binary audio frame, so a client can tell our frames
/// from anything else and refuse a version it does not know.
pub const BINARY_MAGIC: [u8; 4] = *b"AURA";
pub const BINARY_VERSION: u16 = 1;
/// Header bytes before the PCM; even, so the PCM can be viewed as Int16Array
/// in place.
pub const BINARY_HEADER_LEN: usize = 32;

/// How a /ws/stream listener receives audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// Binary frames: a 32-byte header then PCM; our web client's default.
    Binary,
    /// The brief's JSON messages with base64 PCM.
    Json,
}

/// The header of a binary audio frame; layout (all little-endian):
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryHeader {
    pub seq: u64,
    /// Unix seconds when the chunk was generated.
    pub timestamp: f64,
    pub sample_rate: u32,
    pub channels: u16,
    pub frames: u16,
}

/// Why a binary frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a binary frame needs at least {BINARY_HEADER_LEN} bytes, got {0}")]
    TooShort(usize),
    #[error("a binary frame starts with the magic \"AURA\", got {0:?}")]
    Magic([u8; 4]),
    #[error(
        "binary frame version {0} is not supported: this reader knows version {BINARY_VERSION}"
    )]
    Version(u16),
    #[error("header length {0} is odd or shorter than {BINARY_HEADER_LEN}")]
    HeaderLen(u16),
    #[error("the header announces {expected} bytes of PCM, the frame holds {got}")]
    Truncated { expected: usize, got: usize },
}

impl BinaryHeader {
    /// The header for a chunk of interleaved 16-bit PCM at the stream's rate.
    pub fn for_pcm(seq: u64, timestamp: f64, pcm_bytes: usize) -> Self {
        let channels = crate::CHANNELS;
        Self {
            seq,
            timestamp,
            sample_rate: crate::SAMPLE_RATE,
            channels,
            frames: (pcm_bytes / (2 * usize::from(channels))) as u16,
        }
    }

    /// Appends the 32 header bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&BINARY_MAGIC);
        out.extend_from_slice(&BINARY_VERSION.to_le_bytes());
        out.extend_from_slice(&(BINARY_HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        out.extend_from_slice(&self.channels.to_le_bytes());
        out.extend_from_slice(&self.frames.to_le_bytes());
    }

    /// A whole frame: this header, then `pcm`.
    pub fn frame(&self, pcm: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(BINARY_HEADER_LEN + pcm.len());
        self.encode(&mut b);
        b.extend_from_slice(pcm);
        b
    }

    /// Reads a frame into its header and its PCM, refusing anything a player
    /// would turn into noise (another magic, another version, a short body).
    pub fn decode(frame: &[u8]) -> Result<(Self, &[u8]), FrameError> {
        if frame.len() < BINARY_HEADER_LEN {
            return Err(FrameError::TooShort(frame.len()));
        }
        let u16_at = |i: usize| u16::from_le_bytes([frame[i], frame[i + 1]]);
        let bytes8 = |i: usize| -> [u8; 8] {
            let mut b = [0; 8];
            b.copy_from_slice(&frame[i..i + 8]);
            b
        };
        let magic = [frame[0], frame[1], frame[2], frame[3]];
        if magic != BINARY_MAGIC {
            return Err(FrameError::Magic(magic));
        }
        let version = u16_at(4);
        if version != BINARY_VERSION {
            return Err(FrameError::Version(version));
        }
        let header_len = u16_at(6);
        if usize::from(header_len) < BINARY_HEADER_LEN || header_len % 2 != 0 {
            return Err(FrameError::HeaderLen(header_len));
        }
        let header = Self {
            seq: u64::from_le_bytes(bytes8(8)),
            timestamp: f64::from_le_bytes(bytes8(16)),
            sample_rate: u32::from_le_bytes([frame[24], frame[25], frame[26], frame[27]]),
            channels: u16_at(28),
            frames: u16_at(30),
        };
        let expected = usize::from(header.frames) * usize::from(header.channels) * 2;
        let pcm = frame
            .get(usize::from(header_len)..usize::from(header_len) + expected)
            .ok_or(FrameError::Truncated {
                expected,
                got: frame.len().saturating_sub(usize::from(header_len)),
            })?;
        Ok((header, pcm))
    }
}

/// What a client gets back for a message it should not have sent; the
/// strings are part of the protocol (clients switch on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidMessage,
    UnknownType,
    InvalidParams,
    InvalidStats,
    BinaryNotSupported,
    RateLimited,
    /// A control for a shared room without its key (or with a wrong one).
    Forbidden,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::InvalidStats => "invalid_stats",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parameters in force, with the preset they started from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParamsState {
    pub preset: Option<String>,
    #[serde(flatten)]
    pub params: Params,
}

/// The first message of every /ws/stream connection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hello<'a> {
    pub session_id: &'a str,
    pub room: Option<&'a str>,
    pub sample_rate: u32,
    pub channels: u16,
    pub chunk_ms: u32,
    pub format: WireFormat,
    pub preset: Option<&'a str>,
    pub params: &'a Params,
    pub next_seq: u64,
    /// Sent back as `resume` (with `from`) by a listener that reconnects,
    /// to hear the same piece go on; absent in a room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<&'a str>,
    pub server_version: &'static str,
    /// For the listener that created a room: the key its controls must
    /// carry (`"key"`). Absent for everyone else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_key: Option<&'a str>,
}

/// The brief's Appendix A.3 message, field for field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AudioChunk<'a> {
    pub seq: u64,
    pub timestamp: f64,
    pub duration_ms: u32,
    pub sample_rate: u32,
    pub channels: u16,
    /// Base64 of the interleaved 16-bit PCM.
    pub audio_data: &'a str,
}

/// A JSON text message from the server, tagged by `type`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Hello(Hello<'a>),
    /// What now holds after a control change, sent to every listener of the
    /// session, and the first chunk whose music follows it.
    Params {
        #[serde(flatten)]
        state: &'a ParamsState,
        applies_at_seq: u64,
        /// Set when the chunks from this seq on are sent again with the
        /// change in them: the player replaces what it buffered from there.
        #[serde(skip_serializing_if = "Option::is_none")]
        splice_seq: Option<u64>,
    },
    /// The answer to a ping: the client's own `t` back, and the server's clock.
    Pong {
        t: f64,
        server_time: f64,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
    },
    AudioChunk(AudioChunk<'a>),
}

impl ServerMessage<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages hold only plain fields")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(m: &ServerMessage) -> Value {
        serde_json::from_str(&m.to_json()).unwrap()
    }

    #[test]
    fn header_round_trips_and_matches_the_documented_offsets() {
        let h = BinaryHeader::for_pcm(7, 1_700_000_000.25, crate::audio::CHUNK_BYTES);
        let pcm: Vec<u8> = (0..crate::audio::CHUNK_BYTES).map(|i| i as u8).collect();
        let f = h.frame(&pcm);
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
        let (back, body) = BinaryHeader::decode(&f).unwrap();
        assert_eq!(back, h);
        assert_eq!(body, &pcm[..]);
    }

    #[test]
    fn decode_refuses_what_would_play_as_noise() {
        let good = BinaryHeader::for_pcm(1, 0.0, 8).frame(&[0; 8]);
        assert_eq!(
            BinaryHeader::decode(&good[..10]),
            Err(FrameError::TooShort(10))
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            BinaryHeader::decode(&bad),
            Err(FrameError::Magic(_))
        ));
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(BinaryHeader::decode(&bad), Err(FrameError::Version(2)));
        let mut bad = good.clone();
        bad[6] = 31;
        assert_eq!(BinaryHeader::decode(&bad), Err(FrameError::HeaderLen(31)));
        assert_eq!(
            BinaryHeader::decode(&good[..36]),
            Err(FrameError::Truncated {
                expected: 8,
                got: 4
            })
        );
    }

    #[test]
    fn error_codes_keep_their_strings() {
        for (code, s) in [
            (ErrorCode::InvalidJson, "invalid_json"),
            (ErrorCode::InvalidMessage, "invalid_message"),
            (ErrorCode::UnknownType, "unknown_type"),
            (ErrorCode::InvalidParams, "invalid_params"),
            (ErrorCode::InvalidStats, "invalid_stats"),
            (ErrorCode::BinaryNotSupported, "binary_not_supported"),
            (ErrorCode::RateLimited, "rate_limited"),
            (ErrorCode::Forbidden, "forbidden"),
        ] {
            assert_eq!(code.as_str(), s);
            assert_eq!(serde_json::to_value(code).unwrap(), s);
        }
    }

    #[test]
    fn messages_carry_their_type_and_fields() {
        let v = json(&ServerMessage::Pong {
            t: 12.5,
            server_time: 3.0,
        });
        assert_eq!(
            v,
            serde_json::json!({"type":"pong","t":12.5,"server_time":3.0})
        );
        let v = json(&ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down",
        });
        assert_eq!(
            v,
            serde_json::json!({"type":"error","code":"rate_limited","message":"slow down"})
        );
        let state = ParamsState {
            preset: Some("focus".into()),
            params: Params::default(),
        };
        let v = json(&ServerMessage::Params {
            state: &state,
            applies_at_seq: 4,
            splice_seq: None,
        });
        assert_eq!(v["type"], "params");
        assert_eq!(v["preset"], "focus");
        assert_eq!(v["key"], "D");
        assert_eq!(v["bpm"], 60.0);
        assert_eq!(v["applies_at_seq"], 4);
        assert!(v.get("splice_seq").is_none(), "absent unless spliced: {v}");
        let params = Params::default();
        let v = json(&ServerMessage::Hello(Hello {
            session_id: "s1",
            room: None,
            sample_rate: 44_100,
            channels: 2,
            chunk_ms: 100,
            format: WireFormat::Json,
            preset: Some("focus"),
            params: &params,
            next_seq: 0,
            resume: Some("00ff"),
            server_version: "0.1.0",
            control_key: None,
        }));
        assert_eq!(v["type"], "hello");
        assert_eq!(v["format"], "json");
        assert_eq!(v["params"]["mode"], "dorian");
        assert!(v["room"].is_null());
        assert!(v.get("control_key").is_none(), "no key, no field");
    }
}
