//! The command-line tools around the server, each subcommand's flags and glue
//! beside the code it drives: `render`, `soundcheck` and `bench` (offline),
//! `loadtest`, `soak`, `analyze`, `presets`, `soundfonts` and `soundfont`.
//! They sit behind the default-on `tools` feature so that the WebSocket client
//! the load test needs is not a dependency of the core library.

pub mod analyze;
pub mod args;
pub mod fonts;
pub mod loadtest;
pub mod offline;
pub mod presets;
pub mod progress;
pub mod soak;
