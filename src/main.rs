//! The `auralis` command: a thin layer over the library.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

use auralis::synth::EngineKind;
use auralis::tools::args::FontArgs;
use auralis::tools::{analyze, fonts, loadtest, offline, presets, soak};

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
    Render(offline::RenderArgs),
    /// Time how fast 8-bar phrases at 60 BPM render.
    Bench(offline::BenchArgs),
    /// Render every preset and measure it as a mastering engineer would:
    /// loudness (BS.1770), range, true peak, DC, piano against pad, clicks,
    /// and how the render ends.
    Soundcheck(offline::SoundcheckArgs),
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
    Loadtest(loadtest::LoadtestArgs),
    /// Render hours of audio in several sessions as fast as possible and
    /// watch memory.
    Soak(soak::SoakArgs),
    /// Measure a composition over minutes: loops, density, harmonic rhythm,
    /// rests per layer, pad/piano register overlap.
    Analyze(analyze::AnalyzeArgs),
    /// Build SoundFonts from sample packages.
    Soundfont {
        #[command(subcommand)]
        action: fonts::SoundfontCommand,
    },
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
    /// Synthesizer: voices (ours, the fastest), rustysynth (the reference), or fluidsynth (needs a build with `--features fluidsynth`).
    #[arg(long, env = "AURALIS_ENGINE", default_value_t = EngineKind::default())]
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
        Command::Soundcheck(args) => offline::soundcheck_command(args),
        Command::Loadtest(args) => loadtest::command(args),
        Command::Soak(args) => soak::command(args),
        Command::Render(args) => offline::render_command(args),
        Command::Bench(args) => offline::bench_command(args),
        Command::Presets { json } => presets::command(json),
        Command::Soundfonts { fonts, json } => fonts::soundfonts_command(&fonts, json),
        Command::Soundfont { action } => fonts::soundfont_command(action),
        Command::Analyze(args) => analyze::command(args),
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
        server_rooms: std::sync::Arc::new(icecast.iter().map(|t| t.room.clone()).collect()),
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
