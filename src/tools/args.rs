//! Command-line flags several commands share: which SoundFonts to use and the
//! music parameters, plus the one way a report is printed.

use std::path::PathBuf;

use clap::Args;

use crate::music::change::{ParamChange, RawValue};
use crate::music::params::{Domain, CONTROLS};
use crate::music::Params;
use crate::soundfont::FontSet;

#[derive(Args, Clone)]
pub struct FontArgs {
    /// SoundFont for the piano channel.
    #[arg(long, env = "SOUNDFONT_PIANO")]
    pub soundfont_piano: Option<PathBuf>,
    /// SoundFont for the pad channel (a General MIDI font).
    #[arg(long, env = "SOUNDFONT_GM")]
    pub soundfont_pad: Option<PathBuf>,
    /// Ignore installed fonts and use only the built-in one.
    #[arg(long)]
    pub builtin_font: bool,
}

impl FontArgs {
    pub fn load(&self) -> FontSet {
        if self.builtin_font {
            FontSet::builtin()
        } else {
            FontSet::resolve(
                self.soundfont_piano.as_deref(),
                self.soundfont_pad.as_deref(),
            )
        }
    }

    /// The same choice as flags of `auralis serve`, for a server a tool starts.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.builtin_font {
            flags.push("--builtin-font".into());
        }
        for (flag, path) in [
            ("--soundfont-piano", &self.soundfont_piano),
            ("--soundfont-pad", &self.soundfont_pad),
        ] {
            if let Some(p) = path {
                flags.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        flags
    }
}

/// The music flags: one per entry of the parameter table
/// (`auralis::music::params::CONTROLS`), read by the same code as the
/// stream's query string, so they accept and refuse the same values.
pub struct MusicArgs(ParamChange);

impl MusicArgs {
    pub fn params(&self) -> anyhow::Result<Params> {
        Ok(self.0.clone().resolve()?.0)
    }
}

impl clap::FromArgMatches for MusicArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut change = ParamChange::default();
        for c in &CONTROLS {
            if let Some(v) = matches.get_one::<String>(c.name) {
                change
                    .set(c.name, RawValue::Text(v))
                    .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e))?;
            }
        }
        Ok(Self(change))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for MusicArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        CONTROLS.iter().fold(cmd, |cmd, c| {
            let help = match c.domain {
                Domain::Number { .. } => format!("{} ({})", c.help, c.domain.expected()),
                Domain::Preset => format!("{} [default: focus]", c.help),
                _ => c.help.to_string(),
            };
            cmd.arg(clap::Arg::new(c.name).long(c.name).help(help))
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// A thread count given, or one per core.
pub fn threads_or_one_per_core(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    })
}

/// A report as pretty JSON, or as its `Display` text.
pub fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
