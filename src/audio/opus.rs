//! Ogg Opus (RFC 7845) for /listen.opus: libopus does the coding, the `ogg`
//! crate the paging; this module only decides what goes on which page.
//!
//! One encoder serves every listener of a session at one bitrate, so its
//! audio pages are shared byte for byte. A listener who joins late gets its
//! own OpusHead and OpusTags pages, numbered to sit right before the first
//! audio page it receives: page sequence numbers then run without a gap, so
//! libogg-based players (VLC) see no hole, and ffmpeg (also inside Chromium)
//! reads the stream as a live one that began at a later granule position,
//! which RFC 7845 §4 allows.

use std::io;

use bytes::Bytes;
use ogg::{PacketWriteEndInfo, PacketWriter};

use super::resample::{CHUNK_FRAMES_48K, OPUS_RATE};

/// 20 ms at 48 kHz: the frame size music encoders use; shorter frames cost
/// quality per bit, longer ones add latency for nothing here.
pub const FRAME_SAMPLES: usize = 960;
/// Frames per 100 ms chunk; each chunk becomes one Ogg page of five packets.
pub const FRAMES_PER_CHUNK: usize = CHUNK_FRAMES_48K / FRAME_SAMPLES;
/// Bitrates a listener may ask for, in kbit/s: below 32 stereo music turns
/// watery; above 256 Opus adds nothing audible.
pub const MIN_KBPS: u32 = 32;
pub const MAX_KBPS: u32 = 256;
/// The default: transparent for ambient material and, with Ogg framing,
/// still under the 128 kbit/s budget of DESIGN.md §6.
pub const DEFAULT_KBPS: u32 = 96;
/// libopus's recommended output buffer for one packet.
const MAX_PACKET: usize = 4_000;
/// Byte offsets inside an Ogg page header (RFC 3533 §6).
const PAGE_SEQ: std::ops::Range<usize> = 18..22;
const PAGE_CRC: std::ops::Range<usize> = 22..26;
const PAGE_HEADER: usize = 27;
/// The Ogg CRC: polynomial 0x04c11db7, no reflection, zero init and xor.
const OGG_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::Algorithm {
    width: 32,
    poly: 0x04c1_1db7,
    init: 0,
    refin: false,
    refout: false,
    xorout: 0,
    check: 0x89a1_897f,
    residue: 0,
});

#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    #[error("libopus: {0}")]
    Codec(#[from] opus::Error),
    #[error("Ogg paging: {0}")]
    Paging(#[from] io::Error),
    #[error("a chunk must be {expected} interleaved stereo samples at 48 kHz, got {got}")]
    ChunkSize { expected: usize, got: usize },
    #[error("libopus reports an encoder delay of {0} samples, outside an Ogg Opus pre-skip")]
    Lookahead(i32),
}

/// One chunk's Ogg page and its page sequence number.
#[derive(Debug, Clone)]
pub struct AudioPage {
    pub seq: u32,
    pub bytes: Bytes,
}

pub struct OggOpusEncoder {
    encoder: opus::Encoder,
    pages: PacketWriter<Vec<u8>>,
    serial: u32,
    bitrate_kbps: u32,
    pre_skip: u16,
    /// 48 kHz samples encoded so far, pre-skip included (RFC 7845 §4).
    granule: u64,
    next_page: u32,
    packet: Vec<u8>,
}

impl OggOpusEncoder {
    /// A stereo music encoder at `bitrate_kbps` (VBR), writing logical
    /// stream `serial`.
    pub fn new(bitrate_kbps: u32, serial: u32) -> Result<Self, OpusError> {
        let mut encoder =
            opus::Encoder::new(OPUS_RATE, opus::Channels::Stereo, opus::Application::Audio)?;
        encoder.set_bitrate(opus::Bitrate::Bits((bitrate_kbps * 1000) as i32))?;
        let lookahead = encoder.get_lookahead()?;
        let pre_skip = u16::try_from(lookahead).map_err(|_| OpusError::Lookahead(lookahead))?;
        let mut this = Self {
            encoder,
            pages: PacketWriter::new(Vec::new()),
            serial,
            bitrate_kbps,
            pre_skip,
            granule: 0,
            next_page: 0,
            packet: vec![0; MAX_PACKET],
        };
        // The shared writer pages the headers too, so its first audio page
        // is page 2 without the beginning-of-stream flag; the bytes
        // themselves go to each listener through `header_pages`.
        write_header_packets(&mut this.pages, serial, pre_skip)?;
        this.pages.inner_mut().clear();
        this.next_page = 2;
        Ok(this)
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps
    }

    /// The sequence number the next audio page will carry.
    pub fn next_page_seq(&self) -> u32 {
        self.next_page
    }

    /// OpusHead and OpusTags, paged as sequence numbers `first_audio_page - 2`
    /// and `- 1`, so they lead without a gap into the listener's first audio
    /// page (which must be 2 or later: pages 0 and 1 are the headers).
    pub fn header_pages(&self, first_audio_page: u32) -> Result<Bytes, OpusError> {
        let mut fresh = PacketWriter::new(Vec::new());
        write_header_packets(&mut fresh, self.serial, self.pre_skip)?;
        let mut bytes = fresh.into_inner();
        let base = first_audio_page.saturating_sub(2);
        if base > 0 {
            let first_len = page_len(&bytes).ok_or_else(bad_page)?;
            let (head, tags) = bytes.split_at_mut(first_len);
            renumber(head, base);
            renumber(tags, base + 1);
        }
        Ok(Bytes::from(bytes))
    }

    /// Encodes one 100 ms chunk (4,800 interleaved stereo frames at 48 kHz)
    /// into one page of five 20 ms packets.
    pub fn encode_chunk(&mut self, pcm: &[f32]) -> Result<AudioPage, OpusError> {
        self.encode_chunk_with(pcm, false)
    }

    /// As [`OggOpusEncoder::encode_chunk`]; with `last`, the page ends the
    /// logical stream (RFC 3533's end-of-stream flag).
    pub fn encode_chunk_with(&mut self, pcm: &[f32], last: bool) -> Result<AudioPage, OpusError> {
        if pcm.len() != CHUNK_FRAMES_48K * 2 {
            return Err(OpusError::ChunkSize {
                expected: CHUNK_FRAMES_48K * 2,
                got: pcm.len(),
            });
        }
        for (i, frame) in pcm.chunks_exact(FRAME_SAMPLES * 2).enumerate() {
            let len = self.encoder.encode_float(frame, &mut self.packet)?;
            self.granule += FRAME_SAMPLES as u64;
            let end = if i + 1 == FRAMES_PER_CHUNK && last {
                PacketWriteEndInfo::EndStream
            } else if i + 1 == FRAMES_PER_CHUNK {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.pages.write_packet(
                self.packet[..len].to_vec().into_boxed_slice(),
                self.serial,
                end,
                self.granule,
            )?;
        }
        let bytes = std::mem::take(self.pages.inner_mut());
        // Five packets of at most 1,275 bytes need at most 30 lacing values,
        // so a chunk always fits one page; check rather than assume.
        if page_len(&bytes) != Some(bytes.len()) {
            return Err(bad_page());
        }
        let seq = self.next_page;
        self.next_page += 1;
        Ok(AudioPage {
            seq,
            bytes: Bytes::from(bytes),
        })
    }
}

fn write_header_packets(
    w: &mut PacketWriter<Vec<u8>>,
    serial: u32,
    pre_skip: u16,
) -> Result<(), OpusError> {
    // RFC 7845 §5.1: identification header, alone on the first page.
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(crate::CHANNELS as u8);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&crate::SAMPLE_RATE.to_le_bytes()); // the source's rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family 0: mono or stereo, no table
    w.write_packet(
        head.into_boxed_slice(),
        serial,
        PacketWriteEndInfo::EndPage,
        0,
    )?;
    // §5.2: comment header on its own page(s).
    let vendor = opus::version();
    let comments = [
        format!("ENCODER=Auralis {}", env!("CARGO_PKG_VERSION")),
        "TITLE=Auralis".to_string(),
    ];
    let mut tags = Vec::new();
    tags.extend_from_slice(b"OpusTags");
    push_string(&mut tags, vendor);
    tags.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in &comments {
        push_string(&mut tags, c);
    }
    w.write_packet(
        tags.into_boxed_slice(),
        serial,
        PacketWriteEndInfo::EndPage,
        0,
    )?;
    Ok(())
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Length of the Ogg page at the start of `bytes`, if a whole one is there.
fn page_len(bytes: &[u8]) -> Option<usize> {
    let segments = usize::from(*bytes.get(PAGE_HEADER - 1)?);
    let lacing = bytes.get(PAGE_HEADER..PAGE_HEADER + segments)?;
    let len = PAGE_HEADER + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
    (bytes.len() >= len).then_some(len)
}

/// Gives a whole page a new sequence number and re-seals its checksum.
fn renumber(page: &mut [u8], seq: u32) {
    page[PAGE_SEQ].copy_from_slice(&seq.to_le_bytes());
    page[PAGE_CRC].fill(0);
    let crc = OGG_CRC.checksum(page);
    page[PAGE_CRC].copy_from_slice(&crc.to_le_bytes());
}

fn bad_page() -> OpusError {
    OpusError::Paging(io::Error::other("the Ogg writer produced a malformed page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(mut bytes: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while let Some(len) = page_len(bytes) {
            out.push(&bytes[..len]);
            bytes = &bytes[len..];
        }
        assert!(bytes.is_empty(), "trailing partial page");
        out
    }

    fn seq(page: &[u8]) -> u32 {
        u32::from_le_bytes(page[PAGE_SEQ].try_into().unwrap())
    }

    fn granule(page: &[u8]) -> u64 {
        u64::from_le_bytes(page[6..14].try_into().unwrap())
    }

    fn tone(chunk: usize) -> Vec<f32> {
        (0..CHUNK_FRAMES_48K)
            .flat_map(|i| {
                let t = (chunk * CHUNK_FRAMES_48K + i) as f32 / 48_000.0;
                let s = (t * 440.0 * std::f32::consts::TAU).sin() * 0.3;
                [s, s]
            })
            .collect()
    }

    #[test]
    fn renumbering_to_the_same_number_reproduces_the_writers_crc() {
        let enc = OggOpusEncoder::new(96, 7).unwrap();
        let original = enc.header_pages(2).unwrap();
        let mut copy = original.to_vec();
        let first = page_len(&copy).unwrap();
        renumber(&mut copy[..first], 0);
        assert_eq!(copy, original.to_vec());
    }

    #[test]
    fn headers_then_pages_follow_rfc_7845() {
        let mut enc = OggOpusEncoder::new(96, 0x1234_5678).unwrap();
        let head = enc.header_pages(enc.next_page_seq()).unwrap();
        let hp = pages(&head);
        assert_eq!(hp.len(), 2);
        assert_eq!((seq(hp[0]), seq(hp[1])), (0, 1));
        assert_eq!(hp[0][5], 0x02, "beginning of stream on OpusHead only");
        assert_eq!(hp[1][5], 0x00);
        assert_eq!(&hp[0][28..36], b"OpusHead");
        assert_eq!(&hp[1][28..36], b"OpusTags");
        let pre_skip = u16::from_le_bytes([hp[0][38], hp[0][39]]);
        assert!(pre_skip > 0);
        for c in 0..3 {
            let page = enc.encode_chunk(&tone(c)).unwrap();
            let p = pages(&page.bytes);
            assert_eq!(p.len(), 1, "one page per chunk");
            assert_eq!(seq(p[0]), 2 + c as u32);
            assert_eq!(page.seq, 2 + c as u32);
            assert_eq!(p[0][5], 0x00, "no flags on audio pages");
            assert_eq!(granule(p[0]), 4_800 * (c as u64 + 1));
            assert!(p[0][PAGE_HEADER - 1] as usize >= FRAMES_PER_CHUNK);
        }
    }

    #[test]
    fn a_late_joiners_headers_lead_into_its_first_page() {
        let mut enc = OggOpusEncoder::new(128, 99).unwrap();
        for c in 0..4 {
            enc.encode_chunk(&tone(c)).unwrap();
        }
        let next = enc.next_page_seq();
        let head = enc.header_pages(next).unwrap();
        let hp = pages(&head);
        assert_eq!((seq(hp[0]), seq(hp[1])), (next - 2, next - 1));
        assert_eq!(hp[0][5], 0x02);
        // Every page still checks: recompute and compare.
        for p in hp {
            let mut copy = p.to_vec();
            copy[PAGE_CRC].fill(0);
            assert_eq!(
                OGG_CRC.checksum(&copy).to_le_bytes(),
                p[PAGE_CRC],
                "checksum"
            );
        }
    }

    #[test]
    fn the_last_page_ends_the_stream() {
        let mut enc = OggOpusEncoder::new(96, 5).unwrap();
        let page = enc.encode_chunk(&tone(0)).unwrap();
        assert_eq!(page.bytes[5], 0x00);
        let last = enc.encode_chunk_with(&tone(1), true).unwrap();
        assert_eq!(pages(&last.bytes).len(), 1, "still one page per chunk");
        assert_eq!(last.bytes[5], 0x04, "end of stream");
    }

    #[test]
    fn wrong_sized_input_is_an_error() {
        let mut enc = OggOpusEncoder::new(64, 1).unwrap();
        assert!(matches!(
            enc.encode_chunk(&[0.0; 10]),
            Err(OpusError::ChunkSize { .. })
        ));
    }
}
