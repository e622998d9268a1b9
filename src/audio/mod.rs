//! The mix stages between the synthesizer and the bytes: DC blocker, reverb,
//! loudness leveller, limiter, fades; 16-bit PCM in 100 ms chunks; loudness
//! measurement; the WAV and MIDI files of offline renders.

pub mod analysis;
pub mod biquad;
pub mod dc;
pub mod fade;
pub mod leveller;
pub mod limiter;
pub mod loudness;
pub mod midi;
pub mod mp3;
pub mod opus;
pub mod pcm;
pub mod resample;
pub mod reverb;
pub mod wav;

pub use dc::DcBlocker;
pub use fade::Fade;
pub use leveller::Leveller;
pub use limiter::SoftLimiter;
pub use pcm::{CHUNK_BYTES, CHUNK_FRAMES, CHUNK_MS};
pub use reverb::{Reverb, ReverbSettings};
