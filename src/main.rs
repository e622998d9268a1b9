//! The `auralis` command: a thin layer over the library.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use auralis::music::change::ParamChange;
use auralis::music::{Params, PRESETS};
use auralis::offline;
use auralis::synth::FontSet;

#[derive(Parser)]
#[command(
    name = "auralis",
    version,
    about = "Generative ambient music: composes forever, renders with a SoundFont synthesizer, streams it live."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the streaming server (WebSocket audio, web player, /api/status).
    Serve(ServeArgs),
    /// Render phrases to a WAV file (and optionally MIDI).
    Render(RenderArgs),
    /// Time how fast 8-bar phrases at 60 BPM render.
    Bench(BenchArgs),
    /// List the presets.
    Presets {
        #[arg(long)]
        json: bool,
    },
    /// Show which SoundFonts would be used, their size and licence.
    Soundfonts {
        #[command(flatten)]
        fonts: FontArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
struct FontArgs {
    /// SoundFont for the piano channel.
    #[arg(long, env = "SOUNDFONT_PIANO")]
    soundfont_piano: Option<PathBuf>,
    /// SoundFont for the pad channel (a General MIDI font).
    #[arg(long, env = "SOUNDFONT_GM")]
    soundfont_pad: Option<PathBuf>,
    /// Ignore installed fonts and use only the built-in one.
    #[arg(long)]
    builtin_font: bool,
}

impl FontArgs {
    fn load(&self) -> FontSet {
        if self.builtin_font {
            FontSet::builtin()
        } else {
            FontSet::resolve(
                self.soundfont_piano.as_deref(),
                self.soundfont_pad.as_deref(),
            )
        }
    }
}

#[derive(Args)]
struct MusicArgs {
    /// Preset to start from (see `auralis presets`).
    #[arg(long, default_value = "focus")]
    preset: String,
    /// Tonic, e.g. D, F#, Bb.
    #[arg(long)]
    key: Option<String>,
    /// Church mode, e.g. dorian, lydian, aeolian.
    #[arg(long)]
    mode: Option<String>,
    /// Tempo, 40–120.
    #[arg(long)]
    bpm: Option<f32>,
    /// 0–1: note density, velocity and register spread.
    #[arg(long)]
    intensity: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl MusicArgs {
    fn params(&self) -> Result<Params> {
        let change = ParamChange {
            preset: Some(self.preset.clone()),
            key: self.key.clone(),
            mode: self.mode.clone(),
            bpm: self.bpm,
            intensity: self.intensity,
            seed: Some(self.seed),
        };
        Ok(change.apply_to(&Params::default())?.0)
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to bind; keep 127.0.0.1 unless a reverse proxy fronts it.
    #[arg(long, env = "AURALIS_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "AURALIS_PORT", default_value_t = 8000)]
    port: u16,
    #[command(flatten)]
    fonts: FontArgs,
    /// Most listeners connected at once.
    #[arg(long, env = "AURALIS_MAX_LISTENERS", default_value_t = 2_500)]
    max_listeners: usize,
    /// Most sessions (each renders its own music) at once.
    #[arg(long, env = "AURALIS_MAX_SESSIONS", default_value_t = 250)]
    max_sessions: usize,
    /// Most named rooms at once.
    #[arg(long, env = "AURALIS_MAX_ROOMS", default_value_t = 100)]
    max_rooms: usize,
    /// Threads that synthesize audio (default: one per core).
    #[arg(long, env = "AURALIS_RENDER_THREADS")]
    render_threads: Option<usize>,
    /// Chunks (100 ms each) a listener may leave unread before it is dropped.
    #[arg(long, env = "AURALIS_QUEUE_CHUNKS", default_value_t = 20, value_parser = clap::value_parser!(u16).range(2..=600))]
    queue_chunks: u16,
}

#[derive(Args)]
struct RenderArgs {
    #[command(flatten)]
    music: MusicArgs,
    /// Number of 4/4 bars (8 bars at 60 BPM = 32 s).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    bars: u32,
    /// Output WAV file.
    #[arg(short, long)]
    output: PathBuf,
    /// Also write the composed notes as a standard MIDI file.
    #[arg(long)]
    midi: Option<PathBuf>,
    #[command(flatten)]
    fonts: FontArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Phrases to render (each 8 bars at 60 BPM, 32 s).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    phrases: u32,
    #[command(flatten)]
    music: MusicArgs,
    #[command(flatten)]
    fonts: FontArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Render(args) => render(args),
        Command::Bench(args) => bench(args),
        Command::Presets { json } => presets(json),
        Command::Soundfonts { fonts, json } => soundfonts(&fonts, json),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let fonts = args.fonts.load();
    for f in fonts.distinct() {
        tracing::info!(font = %f.info.name, licence = %f.info.licence, "SoundFont loaded");
    }
    let threads = args.render_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let config = auralis::server::ServerConfig {
        host: args.host,
        port: args.port,
        render_threads: threads,
        hub: auralis::stream::HubConfig {
            fonts,
            engine: auralis::synth::EngineSettings::default(),
            max_listeners: args.max_listeners,
            max_sessions: args.max_sessions,
            max_rooms: args.max_rooms,
            queue_chunks: usize::from(args.queue_chunks),
            lead_chunks: 2,
        },
    };
    tokio::runtime::Runtime::new()?.block_on(auralis::server::serve_until_signal(config))
}

fn render(args: RenderArgs) -> Result<()> {
    let params = args.music.params()?;
    let fonts = args.fonts.load();
    let started = Instant::now();
    let pcm = offline::render_pcm(&params, args.bars, &fonts);
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    auralis::audio::wav::write_wav(std::io::BufWriter::new(file), &pcm)?;
    let seconds = pcm.len() as f64 / 2.0 / f64::from(auralis::SAMPLE_RATE);
    eprintln!(
        "wrote {} ({seconds:.1} s, {} {} at {} BPM, intensity {}, seed {}) in {:.0} ms",
        args.output.display(),
        params.key,
        params.mode,
        params.bpm,
        params.intensity,
        params.seed,
        started.elapsed().as_secs_f64() * 1e3
    );
    if let Some(path) = &args.midi {
        let bytes = offline::render_midi(&params, args.bars)?;
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let params = args.music.params()?;
    let started = Instant::now();
    let fonts = args.fonts.load();
    let load = started.elapsed();
    let report = offline::bench(&params, args.phrases as usize, &fonts, load);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("engine      {}", report.engine);
    println!("fonts       {}", report.fonts.join(" + "));
    println!("font load   {:.0} ms", report.font_load_ms);
    println!(
        "phrases     {} × {:.0} s (8 bars at 60 BPM)",
        report.phrases, report.phrase_seconds
    );
    println!();
    println!("{:<8} {:>10}", "", "ms/phrase");
    for (name, v) in [
        ("p50", report.p50_ms),
        ("p95", report.p95_ms),
        ("p99", report.p99_ms),
        ("max", report.max_ms),
    ] {
        println!("{name:<8} {v:>10.1}");
    }
    println!();
    println!("real time   {:.0}× (at the median)", report.realtime_factor);
    println!("chunk p99   {:.2} ms per 100 ms chunk", report.chunk_p99_ms);
    if let Some(rss) = report.peak_rss_mb {
        println!("peak RSS    {rss:.0} MB");
    }
    Ok(())
}

fn presets(json: bool) -> Result<()> {
    if json {
        let list: Vec<_> = PRESETS
            .iter()
            .map(|p| (p.name, p.params(0), p.description))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for p in PRESETS {
        println!(
            "{:<10} {:<3} {:<11} {:>4} BPM  intensity {:.2}  pad {}  {}",
            p.name,
            p.key.to_string(),
            p.mode.to_string(),
            p.bpm,
            p.intensity,
            p.pad_program,
            p.description
        );
    }
    Ok(())
}

fn soundfonts(fonts: &FontArgs, json: bool) -> Result<()> {
    let set = fonts.load();
    if json {
        let v = serde_json::json!({
            "piano": set.piano.info,
            "pad": set.pad.info,
            "problems": set.problems,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (role, f) in [("piano", &set.piano), ("pad", &set.pad)] {
        let i = &f.info;
        println!("{role}:");
        println!("  name         {}", i.name);
        match &i.path {
            Some(p) => println!("  path         {}", p.display()),
            None => println!("  path         (generated in memory)"),
        }
        println!("  source       {:?}", i.source);
        println!("  size         {:.1} MB", i.size_bytes as f64 / 1e6);
        println!("  presets      {}", i.presets);
        println!("  licence      {}", i.licence);
        println!("  attribution  {}", i.attribution);
    }
    for p in &set.problems {
        println!("problem: {p}");
    }
    Ok(())
}
