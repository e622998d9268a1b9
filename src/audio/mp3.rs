//! MP3 (MPEG-1 Layer III, CBR, joint stereo, 44.1 kHz) through Debian's
//! libmp3lame, for players without Ogg Opus: Safari's `<audio>` before
//! version 17, Sonos, Chromecast's default receiver.
//!
//! LAME is linked as the system's shared library (libmp3lame0, LGPL), with
//! the handful of calls declared here: the crates.io bindings compile and
//! statically link their own copy of LAME's source, which the LGPL makes
//! awkward in an MIT binary and which costs a C build in every clean build.

use std::os::raw::{c_int, c_short, c_uchar};

use bytes::Bytes;

/// MPEG-1 Layer III bitrates (kbit/s): the only ones a CBR stream can have.
pub const BITRATES: [u32; 14] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
/// What /listen.mp3 sends unless asked: transparent enough for ambient pads
/// on a speaker, and under a tenth of the WAV stream.
pub const DEFAULT_KBPS: u32 = 128;

#[repr(C)]
struct LameFlags {
    _private: [u8; 0],
}

// Joint stereo in LAME's MPEG_mode enum.
const JOINT_STEREO: c_int = 1;
// LAME's quality scale: 0 best and slowest, 9 worst; 5 is its "good, fast".
const QUALITY: c_int = 5;

#[link(name = "mp3lame")]
extern "C" {
    fn lame_init() -> *mut LameFlags;
    fn lame_set_in_samplerate(gfp: *mut LameFlags, rate: c_int) -> c_int;
    fn lame_set_out_samplerate(gfp: *mut LameFlags, rate: c_int) -> c_int;
    fn lame_set_num_channels(gfp: *mut LameFlags, channels: c_int) -> c_int;
    fn lame_set_brate(gfp: *mut LameFlags, kbps: c_int) -> c_int;
    fn lame_set_mode(gfp: *mut LameFlags, mode: c_int) -> c_int;
    fn lame_set_quality(gfp: *mut LameFlags, quality: c_int) -> c_int;
    fn lame_set_bWriteVbrTag(gfp: *mut LameFlags, write: c_int) -> c_int;
    fn lame_init_params(gfp: *mut LameFlags) -> c_int;
    fn lame_encode_buffer_interleaved(
        gfp: *mut LameFlags,
        pcm: *mut c_short,
        frames: c_int,
        mp3: *mut c_uchar,
        mp3_size: c_int,
    ) -> c_int;
    fn lame_close(gfp: *mut LameFlags) -> c_int;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Mp3Error {
    #[error("MP3 bitrate must be one of {allowed} kbit/s, got {0}", allowed = allowed())]
    Bitrate(u32),
    #[error("libmp3lame could not be set up (code {0})")]
    Init(i32),
    #[error("libmp3lame failed to encode (code {0})")]
    Encode(i32),
}

fn allowed() -> String {
    BITRATES.map(|b| b.to_string()).join(", ")
}

/// One endless MP3 stream: bytes come out as LAME completes them, so a
/// chunk's bytes may be empty at the start (LAME's look-ahead) and need not
/// end on a frame boundary. A listener joining mid-stream starts inside a
/// frame; MP3 decoders skip to the next frame header, which is what the
/// format's sync word is for.
pub struct Mp3Encoder {
    lame: *mut LameFlags,
    kbps: u32,
    out: Vec<u8>,
}

// SAFETY: the LAME handle is owned by this value alone and LAME keeps no
// thread-local state; it moves between threads with the encoder, never
// shared (no Sync).
unsafe impl Send for Mp3Encoder {}

impl Mp3Encoder {
    pub fn new(kbps: u32) -> Result<Self, Mp3Error> {
        if !BITRATES.contains(&kbps) {
            return Err(Mp3Error::Bitrate(kbps));
        }
        // SAFETY: lame_init returns a fresh handle or null; every setter
        // takes that handle, which `Drop` closes exactly once.
        unsafe {
            let lame = lame_init();
            if lame.is_null() {
                return Err(Mp3Error::Init(-1));
            }
            let encoder = Self {
                lame,
                kbps,
                out: Vec::new(),
            };
            let rate = crate::SAMPLE_RATE as c_int;
            lame_set_in_samplerate(lame, rate);
            lame_set_out_samplerate(lame, rate);
            lame_set_num_channels(lame, c_int::from(crate::CHANNELS));
            lame_set_brate(lame, kbps as c_int);
            lame_set_mode(lame, JOINT_STEREO);
            lame_set_quality(lame, QUALITY);
            // A Xing/Info tag is written at the end of a file; a stream has none.
            lame_set_bWriteVbrTag(lame, 0);
            let code = lame_init_params(lame);
            if code < 0 {
                return Err(Mp3Error::Init(code));
            }
            Ok(encoder)
        }
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.kbps
    }

    /// Encodes interleaved stereo i16 at 44.1 kHz; returns the MP3 frames
    /// completed so far.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Bytes, Mp3Error> {
        let frames = pcm.len() / usize::from(crate::CHANNELS);
        // LAME's documented worst case: 1.25 × samples + 7200 bytes.
        let need = frames * 5 / 4 + 7200;
        if self.out.len() < need {
            self.out.resize(need, 0);
        }
        // SAFETY: `pcm` holds `frames` interleaved stereo frames; LAME reads
        // them (its prototype lacks `const`, it does not write) and writes
        // at most `out.len()` bytes.
        let written = unsafe {
            lame_encode_buffer_interleaved(
                self.lame,
                pcm.as_ptr().cast_mut(),
                frames as c_int,
                self.out.as_mut_ptr(),
                self.out.len() as c_int,
            )
        };
        if written < 0 {
            return Err(Mp3Error::Encode(written));
        }
        Ok(Bytes::copy_from_slice(&self.out[..written as usize]))
    }
}

impl Drop for Mp3Encoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from lame_init and is closed only here.
        unsafe {
            lame_close(self.lame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::CHUNK_FRAMES;

    fn tone(chunk: usize) -> Vec<i16> {
        (0..CHUNK_FRAMES)
            .flat_map(|i| {
                let t = (chunk * CHUNK_FRAMES + i) as f32 / 44_100.0;
                let s = ((t * 440.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16;
                [s, s]
            })
            .collect()
    }

    #[test]
    fn the_stream_starts_on_a_frame_and_runs_at_the_bitrate() {
        let mut enc = Mp3Encoder::new(128).unwrap();
        let mut stream = Vec::new();
        for c in 0..50 {
            stream.extend_from_slice(&enc.encode(&tone(c)).unwrap());
        }
        // An MPEG-1 Layer III frame header, no ID3 or Xing tag before it.
        assert_eq!((stream[0], stream[1] & 0xFE), (0xFF, 0xFA));
        let total = stream.len();
        // 5 s at 128 kbit/s, less LAME's look-ahead still inside.
        let kbps = total as f64 * 8.0 / 5.0 / 1000.0;
        assert!((120.0..=130.0).contains(&kbps), "{kbps} kbit/s");
    }

    #[test]
    fn only_layer_iii_bitrates() {
        assert_eq!(Mp3Encoder::new(100).err(), Some(Mp3Error::Bitrate(100)));
        let e = Mp3Error::Bitrate(100).to_string();
        assert!(e.contains("32, 40") && e.contains("320"), "{e}");
    }
}
