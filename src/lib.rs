//! Auralis: a generative ambient music engine.
//!
//! The modules follow the flow of sound: [`music`] composes timed note events,
//! [`synth`] turns them into samples with a SoundFont synthesizer, [`audio`]
//! limits, converts and chunks them, [`stream`] paces them to the wall clock for
//! listeners, and [`server`] speaks HTTP and WebSocket.

pub mod audio;
pub mod music;
pub mod pipeline;
pub mod rss;
pub mod server;
#[cfg(target_arch = "x86_64")]
pub mod simd;
pub mod soundfont;
pub mod stats;
pub mod stream;
pub mod synth;
#[cfg(feature = "tools")]
pub mod tools;
pub mod wire;

/// Every stage runs at one rate, so event times are plain frame counts.
pub const SAMPLE_RATE: u32 = 44_100;

/// Stereo output, interleaved L R.
pub const CHANNELS: u16 = 2;
