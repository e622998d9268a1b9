//! From the synthesizer's f32 mix to bytes: reverb on the mix, a slow
//! leveller and a soft limiter, 16-bit PCM, 100 ms chunks, and the WAV and MIDI files of offline renders.

pub mod leveller;
pub mod limiter;
pub mod midi;
pub mod opus;
pub mod pcm;
pub mod resample;
pub mod reverb;
pub mod wav;

pub use leveller::Leveller;
pub use limiter::SoftLimiter;
pub use pcm::{CHUNK_BYTES, CHUNK_FRAMES, CHUNK_MS};
pub use reverb::{Reverb, ReverbSettings};
