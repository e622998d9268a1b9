//! The accelerated soak: several sessions each render hours of audio as fast
//! as the machine allows, steered now and then like a live listener would,
//! while the process's memory is sampled. Anything that grows with uptime
//! shows up here in minutes instead of after a night in production.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::args::{print_report, threads_or_one_per_core, FontArgs};
use crate::audio::CHUNK_FRAMES;
use crate::music::{Params, PRESETS};
use crate::pipeline::{EngineSource, Renderer};
use crate::soundfont::FontSet;
use crate::synth::EngineKind;

/// `auralis soak`.
#[derive(clap::Args)]
pub struct SoakArgs {
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    sessions: u32,
    /// Hours of audio each session renders.
    #[arg(long, default_value_t = 8.0)]
    hours: f64,
    /// Render threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    fonts: FontArgs,
    #[arg(long)]
    json: bool,
}

pub fn command(args: SoakArgs) -> anyhow::Result<()> {
    let report = run(
        &args.fonts.load(),
        args.sessions as usize,
        args.hours.clamp(0.001, 1000.0),
        threads_or_one_per_core(args.threads),
    );
    print_report(&report, args.json)
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub sessions: usize,
    pub audio_hours_per_session: f64,
    pub wall_seconds: f64,
    pub chunks: u64,
    /// RSS once every session has rendered its first audio minute.
    pub rss_warm_mb: f64,
    pub rss_end_mb: f64,
    pub rss_peak_mb: f64,
    pub growth_mb: f64,
    /// (audio hours rendered per session, RSS MB) along the way.
    pub samples: Vec<(f64, f64)>,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sessions         {} × {:.1} h of audio",
            self.sessions, self.audio_hours_per_session
        )?;
        writeln!(f, "wall time        {:.0} s", self.wall_seconds)?;
        writeln!(f, "RSS warm         {:.1} MB", self.rss_warm_mb)?;
        writeln!(
            f,
            "RSS end          {:.1} MB (growth {:+.2} MB)",
            self.rss_end_mb, self.growth_mb
        )?;
        writeln!(f, "RSS peak         {:.1} MB", self.rss_peak_mb)
    }
}

/// Chunks between parameter changes: every 5 minutes of audio a session
/// switches preset, so composer state for every preset is exercised.
const CHUNKS_PER_CHANGE: u64 = 5 * 60 * 10;
/// Chunks between RSS samples (10 minutes of audio per session).
const CHUNKS_PER_SAMPLE: u64 = 10 * 60 * 10;

pub fn run(fonts: &FontSet, sessions: usize, hours: f64, threads: usize) -> SoakReport {
    let chunks_per_session = (hours * 3600.0 * 10.0).round() as u64;
    let progress = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let sessions = sessions.max(1);
    let threads = threads.clamp(1, sessions);
    let mut samples = Vec::new();
    let mut rss_warm = None;
    let mut peak: f64 = 0.0;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let progress = Arc::clone(&progress);
            scope.spawn(move || {
                let mine: Vec<usize> = (t..sessions).step_by(threads).collect();
                let mut renderers: Vec<Renderer> = mine
                    .iter()
                    .map(|&i| {
                        let source = EngineSource::new(EngineKind::default(), fonts);
                        Renderer::new(
                            Params {
                                seed: i as u64,
                                ..PRESETS[i % PRESETS.len()].params(i as u64)
                            },
                            &source,
                        )
                        .expect("rustysynth engines always build")
                    })
                    .collect();
                let mut out = Vec::with_capacity(CHUNK_FRAMES * 2);
                for chunk in 0..chunks_per_session {
                    for (r, &i) in renderers.iter_mut().zip(&mine) {
                        if chunk > 0 && chunk % CHUNKS_PER_CHANGE == 0 {
                            let n = (chunk / CHUNKS_PER_CHANGE) as usize + i;
                            r.set_params(PRESETS[n % PRESETS.len()].params(i as u64));
                        }
                        out.clear();
                        r.render(CHUNK_FRAMES, &mut out);
                    }
                    progress.fetch_add(mine.len() as u64, Ordering::Relaxed);
                }
            });
        }
        // The sampler: this thread watches the total and records RSS every
        // CHUNKS_PER_SAMPLE chunks per session.
        let total = chunks_per_session * sessions as u64;
        let mut next_sample = CHUNKS_PER_SAMPLE * sessions as u64;
        loop {
            let done = progress.load(Ordering::Relaxed);
            let rss = crate::rss::rss_mb().unwrap_or(0.0);
            peak = peak.max(rss);
            if rss_warm.is_none() && done >= 600 * sessions as u64 {
                rss_warm = Some(rss);
            }
            if done >= next_sample || done >= total {
                let hours_done = done as f64 / sessions as f64 / 36_000.0;
                samples.push((hours_done, rss));
                next_sample += CHUNKS_PER_SAMPLE * sessions as u64;
            }
            if done >= total {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    let end = crate::rss::rss_mb().unwrap_or(0.0);
    let warm = rss_warm.unwrap_or(end);
    SoakReport {
        sessions,
        audio_hours_per_session: hours,
        wall_seconds: started.elapsed().as_secs_f64(),
        chunks: chunks_per_session * sessions as u64,
        rss_warm_mb: warm,
        rss_end_mb: end,
        rss_peak_mb: peak.max(end),
        growth_mb: end - warm,
        samples,
    }
}
