//! Sessions: a renderer paced to the wall clock, its listeners and rooms.

pub mod chunk;
pub mod hub;
pub mod metrics;
pub mod opus;
pub mod pool;
pub mod session;

pub use hub::{Hub, HubConfig, JoinError, Listener};
