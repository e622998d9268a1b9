//! Sessions: a renderer paced to the wall clock, its listeners and rooms.

pub mod access;
pub mod chunk;
pub mod hub;
pub mod lanes;
pub mod metrics;
pub mod mp3;
pub mod opus;
pub mod pool;
pub mod session;
#[cfg(test)]
pub(crate) mod session_tests;

pub use hub::{Hub, HubConfig, JoinError, Listener, Resume};

/// Chunks a session renders ahead of the wall clock: 200 ms of audio that
/// a new listener receives at once, so its player can start without waiting.
pub const DEFAULT_LEAD_CHUNKS: u64 = 2;
