//! The `auralis` command: a thin layer over the library.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

use auralis::music::change::{ParamChange, RawValue};
use auralis::music::params::{Domain, CONTROLS};
use auralis::music::{Params, PRESETS};
use auralis::soundfont::FontSet;
use auralis::synth::EngineKind;
use auralis::tools::offline;

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
    /// Render every preset and measure it as a mastering engineer would:
    /// loudness (BS.1770), range, true peak, DC, piano against pad, clicks,
    /// and how the render ends.
    Soundcheck(SoundcheckArgs),
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
    /// Many WebSocket listeners against a server on 127.0.0.1: gaps, late
    /// chunks, inter-arrival times, server CPU and RSS.
    Loadtest(LoadtestArgs),
    /// Render hours of audio in several sessions as fast as possible and
    /// watch memory.
    Soak(SoakArgs),
    /// Measure a composition over minutes: loops, density, harmonic rhythm,
    /// rests per layer, pad/piano register overlap.
    Analyze(AnalyzeArgs),
    /// Build SoundFonts from sample packages.
    Soundfont {
        #[command(subcommand)]
        action: SoundfontCommand,
    },
}

#[derive(Subcommand)]
enum SoundfontCommand {
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

/// The music flags: one per entry of the parameter table
/// (`auralis::music::params::CONTROLS`), read by the same code as the
/// stream's query string, so they accept and refuse the same values.
struct MusicArgs(ParamChange);

impl MusicArgs {
    fn params(&self) -> Result<Params> {
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

#[derive(Args)]
struct ServeArgs {
    /// Address to bind; keep 127.0.0.1 unless a reverse proxy fronts it.
    #[arg(long, env = "AURALIS_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "AURALIS_PORT", default_value_t = 8000)]
    port: u16,
    #[command(flatten)]
    fonts: FontArgs,
    /// Synthesizer: rustysynth, or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, env = "AURALIS_ENGINE", default_value_t = EngineKind::Rustysynth)]
    engine: EngineKind,
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
    /// Browser origin allowed to open the stream, e.g. https://radio.example
    /// (repeat for several); without it any origin may.
    #[arg(
        long = "allow-origin",
        env = "AURALIS_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// Seconds a connection may stay silent (no message, no pong) before it
    /// is closed.
    #[arg(long, env = "AURALIS_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=3600))]
    idle_timeout: u64,
    /// Push a room to Icecast as a source from start to shutdown, e.g.
    /// focus=http://source@127.0.0.1:8000/focus.opus (repeat for several).
    /// The password comes from AURALIS_ICECAST_PASSWORD or
    /// --icecast-password-file, so it stays off the command line.
    #[arg(long = "icecast", value_name = "ROOM=URL")]
    icecast: Vec<auralis::server::icecast::IcecastTarget>,
    /// File holding the Icecast source password (one line).
    #[arg(long, env = "AURALIS_ICECAST_PASSWORD_FILE", value_name = "FILE")]
    icecast_password_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    security: SecurityArgs,
}

/// Who may do what. Room keys come from the environment
/// (`AURALIS_ROOM_KEYS=room=KEY,...`) or a file, never the command line,
/// where every local user could read them in the process list.
#[derive(Args)]
struct SecurityArgs {
    /// Let anyone in a shared room change its music, as before room keys
    /// (rooms with a configured key still need it).
    #[arg(long, env = "AURALIS_OPEN_ROOMS")]
    open_rooms: bool,
    /// File of ROOM=KEY lines (32 hex digits each, `openssl rand -hex 16`):
    /// those rooms, and the rooms the server starts itself, are controlled
    /// only with their key.
    #[arg(long, env = "AURALIS_ROOM_KEYS_FILE")]
    room_keys_file: Option<PathBuf>,
    /// Sessions (own or shared rooms) one client address may run at once.
    #[arg(long, env = "AURALIS_MAX_SESSIONS_PER_IP", default_value_t = auralis::stream::access::DEFAULT_MAX_SESSIONS_PER_IP, value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize))]
    max_sessions_per_ip: usize,
    /// Connections one client address may hold open at once.
    #[arg(long, env = "AURALIS_MAX_CONNECTIONS_PER_IP", default_value_t = auralis::server::accept::DEFAULT_MAX_CONNECTIONS_PER_IP, value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize))]
    max_connections_per_ip: usize,
    /// A reverse proxy (address or CIDR, repeatable) whose Forwarded /
    /// X-Forwarded-For header names the client; from anyone else the
    /// header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "AURALIS_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<auralis::server::client::Cidr>,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "AURALIS_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    header_timeout: u64,
    /// Connections that have not completed a request yet, at most; more
    /// are closed at once.
    #[arg(long, env = "AURALIS_MAX_PENDING_CONNECTIONS", default_value_t = auralis::server::accept::DEFAULT_MAX_PENDING, value_parser = clap::value_parser!(u64).range(1..).map(|v| v as usize))]
    max_pending_connections: usize,
    /// Show the SoundFonts' file paths in /api/status (for operators).
    #[arg(long, env = "AURALIS_STATUS_PATHS")]
    status_paths: bool,
}

impl SecurityArgs {
    /// The room keys from `AURALIS_ROOM_KEYS` and the keys file, if any.
    fn room_keys(
        &self,
    ) -> Result<std::collections::HashMap<String, auralis::stream::access::RoomKey>> {
        use auralis::stream::access::parse_room_keys;
        let mut keys = match std::env::var("AURALIS_ROOM_KEYS") {
            Ok(text) => parse_room_keys(&text).context("AURALIS_ROOM_KEYS")?,
            Err(_) => Default::default(),
        };
        if let Some(path) = &self.room_keys_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--room-keys-file {}", path.display()))?;
            keys.extend(
                parse_room_keys(&text)
                    .with_context(|| format!("--room-keys-file {}", path.display()))?,
            );
        }
        Ok(keys)
    }
}

#[derive(Args)]
struct LoadtestArgs {
    /// Server to load, e.g. 127.0.0.1:8000; without it, one is started
    /// (this binary, on a free loopback port) and measured.
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    /// Its process id, to read its CPU and RSS (automatic with a started server).
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    listeners: u32,
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Put every listener in this room (one shared session).
    #[arg(long)]
    room: Option<String>,
    /// Seconds over which connections are opened.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    #[command(flatten)]
    fonts: FontArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SoakArgs {
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
    /// Seconds after the last bar in which every note is released and rings
    /// out with the reverb, the last 3 s fading to silence (0: stop at the
    /// bar line).
    #[arg(long, default_value_t = 6.0, value_parser = parse_tail)]
    tail: f32,
    /// Also write each layer (piano, pad) as WAVs in this directory, dry
    /// (`piano-dry.wav`) and with reverb (`piano.wav`), aligned with the mix.
    #[arg(long, value_name = "DIR")]
    stems: Option<PathBuf>,
    #[command(flatten)]
    fonts: FontArgs,
    /// Synthesizer: rustysynth, or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, default_value_t = EngineKind::Rustysynth)]
    engine: EngineKind,
}

#[derive(Args)]
struct SoundcheckArgs {
    /// Bars of each preset (32 bars at 60 BPM = 128 s).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    bars: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only these presets (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    presets: Vec<String>,
    #[command(flatten)]
    fonts: FontArgs,
    /// Synthesizer: rustysynth, or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, default_value_t = EngineKind::Rustysynth)]
    engine: EngineKind,
    /// Print the measurements as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AnalyzeArgs {
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
    /// Synthesizer: rustysynth, or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, default_value_t = EngineKind::Rustysynth, conflicts_with = "compare")]
    engine: EngineKind,
    /// Render the same notes with rustysynth and libfluidsynth, and time the
    /// `fluidsynth` command on their MIDI export.
    #[arg(long)]
    compare: bool,
}

fn parse_tail(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=60.0).contains(&v) => Ok(v),
        _ => Err(format!("expected seconds from 0 to 60, got {s:?}")),
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let command = Cli::parse().command;
    if !matches!(command, Command::Serve(_) | Command::Loadtest(_)) {
        end_quietly_on_a_closed_pipe();
    }
    match command {
        Command::Serve(args) => serve(args),
        Command::Soundcheck(args) => soundcheck(args),
        Command::Loadtest(args) => loadtest(args),
        Command::Soak(args) => soak(args),
        Command::Render(args) => render(args),
        Command::Bench(args) => bench(args),
        Command::Presets { json } => presets(json),
        Command::Soundfonts { fonts, json } => soundfonts(&fonts, json),
        Command::Soundfont { action } => soundfont(action),
        Command::Analyze(args) => analyze(args),
    }
}

/// `auralis presets | head` closes the pipe early; a report printer should
/// then stop as any Unix tool does, not panic on the failed write. Rust
/// ignores SIGPIPE, so its default (end the process) is restored for the
/// commands that only print; the server's sockets never raise it (they
/// write with MSG_NOSIGNAL) and are left alone all the same.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default before any
    // thread is started has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let fonts = args.fonts.load();
    for f in fonts.distinct() {
        tracing::info!(font = %f.info.name, licence = %f.info.licence, "SoundFont loaded");
    }
    // Synthesizers built and every program's level measured now: a missing
    // engine or a font it cannot load stops the server at start rather than
    // failing every listener later, and no session measures on a server thread.
    auralis::pipeline::calibration::prepare(&auralis::pipeline::EngineSource::new(
        args.engine,
        &fonts,
    ))
    .with_context(|| format!("engine {}", args.engine))?;
    tracing::info!(engine = %args.engine, "synthesizer");
    let icecast = icecast_targets(args.icecast, args.icecast_password_file.as_deref())?;
    let threads = args.render_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let room_keys = args.security.room_keys()?;
    // The room names only: the keys themselves are never logged.
    for room in room_keys.keys() {
        tracing::info!(%room, "room controlled with a configured key");
    }
    let sec = &args.security;
    let security = auralis::server::Security {
        header_read_timeout: std::time::Duration::from_secs(sec.header_timeout),
        max_pending: sec.max_pending_connections,
        max_connections_per_ip: sec.max_connections_per_ip,
        trusted_proxies: auralis::server::client::TrustedProxies::new(sec.trusted_proxies.clone()),
        status_paths: sec.status_paths,
    };
    let access = auralis::stream::access::Access {
        open_rooms: sec.open_rooms,
        room_keys: std::sync::Arc::new(room_keys),
        max_sessions_per_ip: sec.max_sessions_per_ip,
    };
    let config = auralis::server::ServerConfig {
        security,
        host: args.host,
        port: args.port,
        render_threads: threads,
        allowed_origins: args.allow_origins,
        timeouts: auralis::server::ws::Timeouts {
            idle: std::time::Duration::from_secs(args.idle_timeout),
        },
        icecast,
        hub: auralis::stream::HubConfig {
            fonts,
            engine: auralis::synth::EngineSettings::default(),
            engine_kind: args.engine,
            max_listeners: args.max_listeners,
            max_sessions: args.max_sessions,
            max_rooms: args.max_rooms,
            queue_chunks: usize::from(args.queue_chunks),
            lead_chunks: auralis::stream::DEFAULT_LEAD_CHUNKS,
            access,
        },
    };
    tokio::runtime::Runtime::new()?.block_on(auralis::server::serve_until_signal(config))
}

/// The `--icecast` targets with their password: the URL's own, else the
/// file's, else AURALIS_ICECAST_PASSWORD's.
fn icecast_targets(
    targets: Vec<auralis::server::icecast::IcecastTarget>,
    file: Option<&std::path::Path>,
) -> Result<Vec<auralis::server::icecast::IcecastTarget>> {
    if targets.is_empty() {
        return Ok(targets);
    }
    let password = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--icecast-password-file {}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        None => std::env::var("AURALIS_ICECAST_PASSWORD").ok(),
    };
    targets
        .into_iter()
        .map(|t| t.with_password(password.as_deref()).map_err(Into::into))
        .collect()
}

fn loadtest(args: LoadtestArgs) -> Result<()> {
    let mut child = None;
    let (addr, pid) = match args.addr {
        Some(addr) => (addr, args.server_pid),
        None => {
            let mut extra = vec![
                "--max-listeners".to_string(),
                (args.listeners + 10).to_string(),
                "--max-sessions".to_string(),
                (args.listeners + 10).to_string(),
                // Every simulated listener comes from 127.0.0.1.
                "--max-sessions-per-ip".to_string(),
                (args.listeners + 10).to_string(),
                "--max-connections-per-ip".to_string(),
                (args.listeners + 10).to_string(),
            ];
            if args.fonts.builtin_font {
                extra.push("--builtin-font".into());
            }
            for (flag, path) in [
                ("--soundfont-piano", &args.fonts.soundfont_piano),
                ("--soundfont-pad", &args.fonts.soundfont_pad),
            ] {
                if let Some(p) = path {
                    extra.extend([flag.to_string(), p.display().to_string()]);
                }
            }
            let (c, addr) = auralis::tools::loadtest::spawn_server(&extra)?;
            let pid = c.id();
            child = Some(c);
            (addr, Some(pid))
        }
    };
    let config = auralis::tools::loadtest::LoadtestConfig {
        addr,
        listeners: args.listeners as usize,
        duration: std::time::Duration::from_secs(args.seconds),
        room: args.room,
        ramp: std::time::Duration::from_secs_f64(args.ramp.clamp(0.0, 600.0)),
        server_pid: pid,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(auralis::tools::loadtest::run(&config));
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    print_report(&report, args.json)
}

fn soak(args: SoakArgs) -> Result<()> {
    let fonts = args.fonts.load();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let report = auralis::tools::soak::run(
        &fonts,
        args.sessions as usize,
        args.hours.clamp(0.001, 1000.0),
        threads,
    );
    print_report(&report, args.json)
}

/// A report as pretty JSON, or as its `Display` text.
fn print_report<R: serde::Serialize + std::fmt::Display>(report: &R, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn render(args: RenderArgs) -> Result<()> {
    let params = args.music.params()?;
    let fonts = args.fonts.load();
    let started = Instant::now();
    let length = offline::RenderLength {
        bars: args.bars,
        tail_seconds: args.tail,
    };
    let mut stems = args
        .stems
        .as_deref()
        .map(auralis::pipeline::stems::Stems::create)
        .transpose()?;
    let tap = stems
        .as_mut()
        .map(|s| s as &mut dyn auralis::pipeline::StemSink);
    let pcm = offline::render_pcm(&params, length, &fonts, args.engine, tap)?;
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
    if let Some(stems) = stems {
        for path in stems.finish()? {
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(path) = &args.midi {
        let bytes = offline::render_midi(&params, args.bars)?;
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn soundcheck(args: SoundcheckArgs) -> Result<()> {
    let fonts = args.fonts.load();
    let presets: Vec<_> = if args.presets.is_empty() {
        PRESETS.iter().collect()
    } else {
        args.presets
            .iter()
            .map(|name| {
                PRESETS
                    .iter()
                    .find(|p| p.name == name.as_str())
                    .with_context(|| format!("unknown preset {name:?}; see `auralis presets`"))
            })
            .collect::<Result<_>>()?
    };
    let length = offline::RenderLength {
        bars: args.bars,
        tail_seconds: 6.0,
    };
    let mut checks = Vec::new();
    for preset in presets {
        let params = preset.params(args.seed);
        checks.push(offline::soundcheck(
            preset.name,
            &params,
            length,
            &fonts,
            args.engine,
        )?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
        return Ok(());
    }
    println!(
        "{} bars + 6 s tail, seed {}, {} engine; piano: {}; pad: {}",
        args.bars, args.seed, args.engine, fonts.piano.info.name, fonts.pad.info.name
    );
    println!(
        "{:<10} {:>8} {:>6} {:>8} {:>8} {:>12} {:>7} {:>10}",
        "preset", "LUFS", "LRA", "dBTP", "DC", "piano-pad", "clicks", "tail dBFS"
    );
    for c in &checks {
        println!(
            "{:<10} {:>8.1} {:>6.1} {:>8.1} {:>8.4} {:>9.1} LU {:>7} {:>10.1}",
            c.preset,
            c.mix.integrated_lufs,
            c.mix.range_lu,
            c.mix.true_peak_dbtp,
            c.mix.dc[0].abs().max(c.mix.dc[1].abs()),
            c.balance_lu,
            c.clicks.len(),
            c.tail_dbfs
        );
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let params = args.music.params()?;
    let started = Instant::now();
    let fonts = args.fonts.load();
    let load = started.elapsed();
    let phrases = args.phrases as usize;
    if args.compare {
        let report = offline::compare(&params, phrases, &fonts, load)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_compare(&report);
        }
        return Ok(());
    }
    let report = offline::bench(&params, phrases, &fonts, load, args.engine)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("engine      {}", report.engine);
    println!("fonts       {}", report.fonts.join(" + "));
    println!("font load   {:.0} ms", report.font_load_ms);
    println!("synth build {:.0} ms", report.engine_build_ms);
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

fn print_compare(report: &offline::CompareReport) {
    let (r, f, v) = (&report.rustysynth, &report.fluidsynth, &report.voices);
    println!("fonts       {}", r.fonts.join(" + "));
    println!(
        "font load   {:.0} ms (resolving, rustysynth's parse); synth build: {} {:.0} ms, {} {:.0} ms, {} {:.0} ms",
        r.font_load_ms, r.engine, r.engine_build_ms, f.engine, f.engine_build_ms, v.engine, v.engine_build_ms
    );
    println!(
        "phrases     {} × {:.0} s (8 bars at 60 BPM), the same notes through all three, each: engine → reverb → leveller → limiter, 100 ms chunks",
        r.phrases, r.phrase_seconds
    );
    println!();
    println!(
        "{:<10} {:>12} {:>14} {:>8} {:>10} {:>8}",
        "ms/phrase", r.engine, f.engine, "ratio", v.engine, "ratio"
    );
    for (name, a, b, c) in [
        ("p50", r.p50_ms, f.p50_ms, v.p50_ms),
        ("p95", r.p95_ms, f.p95_ms, v.p95_ms),
        ("p99", r.p99_ms, f.p99_ms, v.p99_ms),
        ("max", r.max_ms, f.max_ms, v.max_ms),
    ] {
        println!(
            "{name:<10} {a:>12.1} {b:>14.1} {:>8.2} {c:>10.1} {:>8.2}",
            b / a,
            b / c
        );
    }
    println!(
        "{:<10} {:>11.0}× {:>13.0}× {:>8} {:>9.0}×",
        "real time", r.realtime_factor, f.realtime_factor, "", v.realtime_factor
    );
    println!(
        "{:<10} {:>12.2} {:>14.2} {:>8} {:>10.2}   (ms per 100 ms chunk)",
        "chunk p99", r.chunk_p99_ms, f.chunk_p99_ms, "", v.chunk_p99_ms
    );
    println!();
    println!(
        "ratio       {:.2} (libfluidsynth ms / rustysynth ms at p50; p95 {:.2})",
        report.ratio_p50, report.ratio_p95
    );
    println!(
        "ratio       {:.2} (libfluidsynth ms / voices ms at p50; p95 {:.2})",
        report.voices_ratio_p50, report.voices_ratio_p95
    );
    println!();
    match (&report.command, &report.command_error) {
        (Some(c), _) => {
            println!(
                "fluidsynth command: p50 {:.0} ms, p95 {:.0} ms over {} runs, {:.1} s of audio",
                c.p50_ms, c.p95_ms, c.runs, c.audio_seconds
            );
            println!("  wall time of the whole process, its own font load included; its reverb and chorus off, none of our reverb/leveller/limiter; the first phrase's MIDI export:");
            println!("  {}", c.command);
        }
        (None, Some(why)) => println!("fluidsynth command: not timed: {why}"),
        (None, None) => {}
    }
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

fn soundfont(action: SoundfontCommand) -> Result<()> {
    use auralis::soundfont::salamander;
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
    let report = salamander::write_font(&samples, &source, &output)?;
    eprintln!(
        "wrote {} ({:.1} MB) in {:.1} s: {} {} samples at {} Hz, keys {}-{}, {:.0} s of audio",
        output.display(),
        report.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        report.samples,
        if report.stereo { "stereo" } else { "mono" },
        report.sample_rate,
        report.roots.0,
        report.roots.1,
        report.seconds,
    );
    for layer in &report.layers {
        eprintln!(
            "  layer {}: velocities {}-{}, {} samples, level {:+.1} dB",
            layer.number.map_or("-".into(), |n| n.to_string()),
            layer.velocities.0,
            layer.velocities.1,
            layer.samples,
            layer.gain_db,
        );
    }
    if auralis::soundfont::fluidsynth_check::installed() {
        let complaints =
            auralis::soundfont::fluidsynth_check::complaints(&output, 0, &[21, 60, 108])?;
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

fn analyze(args: AnalyzeArgs) -> Result<()> {
    use auralis::music::analysis;
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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
