//! The command-line tools around the server: `render`, `soundcheck` and
//! `bench` (offline), `loadtest` and `soak`. They sit behind the default-on
//! `tools` feature so the WebSocket client the load test needs is not a
//! dependency of the core library.

pub mod loadtest;
pub mod offline;
pub mod soak;
