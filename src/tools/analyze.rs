//! `auralis analyze`: the composition measured over minutes, from a MIDI file
//! or from the composer itself.

use std::path::PathBuf;

use anyhow::Context;

use super::args::{print_report, MusicArgs};
use crate::music::analysis;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// A MIDI file (e.g. from `render --midi`); without it, the composer's
    /// own output for the music options below is analysed (no audio needed).
    file: Option<PathBuf>,
    #[command(flatten)]
    music: MusicArgs,
    /// Minutes to compose when no file is given.
    #[arg(long, default_value_t = 10.0, value_parser = parse_minutes)]
    minutes: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if (0.1..=1440.0).contains(&m) => Ok(m),
        _ => Err(format!(
            "minutes must be a number from 0.1 to 1440, got {s}"
        )),
    }
}

pub fn command(args: AnalyzeArgs) -> anyhow::Result<()> {
    let report = match &args.file {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let (notes, bpm) = analysis::notes_from_midi(&bytes)
                .with_context(|| format!("cannot analyse {}", path.display()))?;
            analysis::analyse(&notes, bpm)
        }
        None => analysis::analyse_composition(&args.music.params()?, args.minutes),
    };
    print_report(&report, args.json)
}
