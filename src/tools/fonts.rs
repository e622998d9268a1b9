//! `auralis soundfonts` (which fonts would play) and `auralis soundfont
//! build-salamander` (the sampled grand piano as an SF2).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::args::FontArgs;
use super::progress::Progress;
use crate::soundfont::{fluidsynth_check, salamander};

#[derive(clap::Subcommand)]
pub enum SoundfontCommand {
    /// Build the Salamander Grand Piano SoundFont from the OGG samples of the
    /// npm packages @audio-samples/piano-velocityN (see scripts/install-salamander.sh).
    BuildSalamander {
        /// Directory holding one velocity layer's OGG files (A0v10.ogg,
        /// D#1v10.ogg, ...); repeat for more layers.
        #[arg(long, required = true, num_args = 1..)]
        samples: Vec<PathBuf>,
        /// Output SF2 file [default: the user's auralis/soundfonts data directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Where the samples came from, for the font's comment [default: read
        /// from the package's package.json].
        #[arg(long)]
        source: Option<String>,
    },
}

pub fn soundfont_command(action: SoundfontCommand) -> anyhow::Result<()> {
    let SoundfontCommand::BuildSalamander {
        samples,
        output,
        source,
    } = action;
    let output = match output {
        Some(path) => path,
        None => salamander::installed_paths()
            .into_iter()
            .next()
            .context("neither XDG_DATA_HOME nor HOME is set; pass --output")?,
    };
    let source = source.unwrap_or_else(|| salamander::describe_sources(&samples));
    let started = Instant::now();
    let mut bar: Option<Progress> = None;
    let report = salamander::write_font(&samples, &source, &output, &mut |done, total| {
        bar.get_or_insert_with(|| Progress::new("decoding samples", total))
            .set(done)
    });
    if let Some(bar) = &mut bar {
        bar.finish();
    }
    let report = report?;
    eprint!(
        "wrote {} ({:.1} MB) in {:.1} s: {report}",
        output.display(),
        report.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
    );
    if fluidsynth_check::installed() {
        let complaints = fluidsynth_check::complaints(&output, 0, &[21, 60, 108])?;
        if complaints.is_empty() {
            eprintln!("the fluidsynth command plays it without complaint");
        } else {
            anyhow::bail!(
                "the fluidsynth command complains about {}: {}",
                output.display(),
                complaints.join("; ")
            );
        }
    }
    Ok(())
}

pub fn soundfonts_command(fonts: &FontArgs, json: bool) -> anyhow::Result<()> {
    let set = fonts.load();
    if json {
        let v = serde_json::json!({
            "piano": set.piano.info,
            "pad": set.pad.info,
            "problems": set.problems,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{set}");
    }
    Ok(())
}
