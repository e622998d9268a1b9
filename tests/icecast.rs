//! A real relay tree: Debian's icecast2 as an origin and an on-demand relay,
//! on loopback ports, from the configs in deploy/ that the README's
//! deployment guide shows. The real `auralis` binary pushes a room to the
//! origin (`serve --icecast`), a listener on the relay decodes it with
//! ffmpeg, the origin restarts, and a listener on the relay hears the room
//! again. Every wait polls a status with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MOUNT: &str = "/focus.opus";
const SOURCE_PASSWORD: &str = "auralis-test-source";
/// Every wait in this test is bounded by this.
const WAIT: Duration = Duration::from_secs(15);
/// How much of the relay's stream each listener decodes.
const LISTEN_S: f64 = 3.0;

/// A process this test started, killed when the test ends however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A deploy/ template with its @NAME@ fields filled in, written to `dir`.
fn config(dir: &Path, template: &str, fields: &[(&str, String)]) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(template);
    let mut text = std::fs::read_to_string(&path).expect("the deploy template");
    // Icecast refuses to run as root; CI runs as root, a developer does not.
    // SAFETY: geteuid has no preconditions.
    let security = if unsafe { libc::geteuid() } == 0 {
        "<changeowner><user>icecast2</user><group>icecast</group></changeowner>"
    } else {
        ""
    };
    text = text.replace("@SECURITY@", security);
    text = text.replace("@DIR@", &dir.display().to_string());
    for (name, value) in fields {
        text = text.replace(&format!("@{name}@"), value);
    }
    let unfilled =
        text.split('@').skip(1).step_by(2).find(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        });
    assert_eq!(unfilled, None, "a field left unfilled in {template}");
    let out = dir.join(template.trim_end_matches(".in"));
    std::fs::write(&out, text).unwrap();
    out
}

fn icecast(config: &Path, log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    Running(
        Command::new("icecast2")
            .arg("-c")
            .arg(config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("icecast2 starts (scripts/install-deps.sh installs it)"),
    )
}

/// Icecast's status as JSON, or `None` while it does not answer.
async fn status(port: u16) -> Option<Value> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (code, body) = auralis::tools::loadtest::http_get(addr, "/status-json.xsl")
        .await
        .ok()?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The running source at `MOUNT`, if Icecast has one. With one source
/// Icecast's JSON gives an object, with several an array.
fn source(status: &Value) -> Option<&Value> {
    let sources = &status["icestats"]["source"];
    let all: Vec<&Value> = match sources {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![sources],
        _ => Vec::new(),
    };
    all.into_iter().find(|s| {
        s["listenurl"].as_str().is_some_and(|u| u.ends_with(MOUNT))
            && s.get("stream_start").is_some()
    })
}

/// Polls until `ready` holds for Icecast's status, or fails after `WAIT`.
async fn until(port: u16, what: &str, ready: impl Fn(&Value) -> bool) -> Duration {
    let started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(50));
    while started.elapsed() < WAIT {
        interval.tick().await;
        if status(port).await.is_some_and(|s| ready(&s)) {
            return started.elapsed();
        }
    }
    panic!("{what} within {WAIT:?}");
}

async fn auralis_pushes(addr: SocketAddr) -> Value {
    let (code, body) = auralis::tools::loadtest::http_get(addr, "/api/status")
        .await
        .unwrap();
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    status["icecast"][0].clone()
}

/// What a listener on `port` decodes: the stream's description as ffmpeg
/// prints it, the PCM (48 kHz stereo s16), and the time to its last byte.
struct Heard {
    stream: String,
    pcm: Vec<i16>,
    took: Duration,
}

async fn listen(port: u16) -> Heard {
    let url = format!("http://127.0.0.1:{port}{MOUNT}");
    let started = Instant::now();
    // An on-demand relay answers 404 until it has connected to the origin
    // for the first listener; a player retries, and so does this, until WAIT.
    let (out, log) = loop {
        let child = tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-rw_timeout", "10000000", "-i"])
            .arg(&url)
            .args(["-t", &LISTEN_S.to_string(), "-f", "s16le", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ffmpeg starts");
        let out = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("ffmpeg decoded {url} within {WAIT:?}"))
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() && log.contains("404") && started.elapsed() < WAIT {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        break (out, log);
    };
    assert!(out.status.success(), "ffmpeg on {url}: {log}");
    let stream = log
        .lines()
        .find(|l| l.contains("Audio: opus"))
        .unwrap_or_default()
        .to_string();
    let pcm = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Heard {
        stream,
        pcm,
        took: started.elapsed(),
    }
}

fn assert_music(heard: &Heard, when: &str) {
    assert!(
        heard.stream.contains("opus, 48000 Hz, stereo"),
        "{when}: not 48 kHz stereo Opus: {}",
        heard.stream
    );
    let seconds = heard.pcm.len() as f64 / 2.0 / 48_000.0;
    assert!(
        (seconds - LISTEN_S).abs() < 0.1,
        "{when}: {seconds} s decoded, asked for {LISTEN_S}"
    );
    let rms = (heard.pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
        / heard.pcm.len() as f64)
        .sqrt();
    let dbfs = 20.0 * (rms / 32768.0).log10();
    assert!(dbfs > -50.0, "{when}: silent ({dbfs:.1} dBFS)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs icecast2 and ffmpeg (scripts/install-deps.sh)"]
async fn a_room_reaches_relay_listeners_and_survives_an_origin_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Icecast (run as its own user when the test runs as root) writes its
    // pid file here.
    let _ = Command::new("chmod").arg("777").arg(dir.path()).status();
    let (origin_port, relay_port) = (free_port(), free_port());
    let common = |port: u16| {
        vec![
            ("PORT", port.to_string()),
            ("SOURCE_PASSWORD", SOURCE_PASSWORD.to_string()),
            ("ADMIN_PASSWORD", "auralis-test-admin".to_string()),
        ]
    };
    let origin_xml = config(dir.path(), "icecast-origin.xml.in", &common(origin_port));
    let mut relay_fields = common(relay_port);
    relay_fields.extend([
        ("ORIGIN_HOST", "127.0.0.1".to_string()),
        ("ORIGIN_PORT", origin_port.to_string()),
        ("MOUNT", MOUNT.to_string()),
    ]);
    let relay_xml = config(dir.path(), "icecast-relay.xml.in", &relay_fields);
    let origin_log = dir.path().join("origin.log");
    let mut origin = icecast(&origin_xml, &origin_log);
    let _relay = icecast(&relay_xml, &dir.path().join("relay.log"));
    until(origin_port, "the origin answers", |_| true).await;
    until(relay_port, "the relay answers", |_| true).await;

    // The password reaches Auralis through a file, never the command line.
    let password_file = dir.path().join("source-password");
    std::fs::write(&password_file, format!("{SOURCE_PASSWORD}\n")).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_auralis"));
    let (child, auralis) = auralis::tools::loadtest::spawn_server_at(
        exe,
        &[
            "--builtin-font".into(),
            "--icecast".into(),
            format!("focus=http://source@127.0.0.1:{origin_port}{MOUNT}"),
            "--icecast-password-file".into(),
            password_file.display().to_string(),
        ],
    )
    .expect("auralis starts");
    let _auralis = Running(child);
    let pushed = until(origin_port, "Auralis pushes the room to the origin", |s| {
        source(s).is_some()
    })
    .await;
    let origin_status = status(origin_port).await.unwrap();
    let src = source(&origin_status).unwrap();
    assert_eq!(src["server_type"], "audio/ogg");
    assert_eq!(src["server_name"], "Auralis focus");
    assert_eq!(src["genre"], "Ambient");

    let first = listen(relay_port).await;
    assert_music(&first, "a listener on the relay");
    let push = auralis_pushes(auralis).await;
    assert_eq!(push["connected"], true, "{push}");
    assert_eq!(push["room"], "focus");
    assert!(push["bytes_sent"].as_u64().unwrap() > 10_000, "{push}");
    assert!(!push.to_string().contains(SOURCE_PASSWORD), "{push}");

    // The origin goes away and comes back on the same port; the pusher
    // reconnects with fresh headers and the relay pulls it again.
    let restarted = Instant::now();
    drop(std::mem::replace(
        &mut origin,
        Running(Command::new("true").spawn().unwrap()),
    ));
    origin = icecast(&origin_xml, &origin_log);
    until(
        origin_port,
        "Auralis pushes the room to the restarted origin",
        |s| source(s).is_some(),
    )
    .await;
    let back = restarted.elapsed();
    let again = listen(relay_port).await;
    assert_music(&again, "a listener on the relay after the origin restarted");
    let push = auralis_pushes(auralis).await;
    assert_eq!(push["connected"], true, "{push}");
    assert!(push["connections"].as_u64().unwrap() >= 2, "{push}");
    assert!(push["reconnects"].as_u64().unwrap() >= 1, "{push}");
    let (_, metrics) = auralis::tools::loadtest::http_get(auralis, "/metrics")
        .await
        .unwrap();
    let connected = format!(
        "auralis_icecast_connected{{room=\"focus\",target=\"http://source@127.0.0.1:{origin_port}{MOUNT}\"}} 1\n"
    );
    assert!(metrics.contains(&connected), "{metrics}");
    eprintln!(
        "icecast: pushed {:.2} s after start; relay listener decoded {LISTEN_S} s in {:.2} s; \
         origin restart → room back on the origin in {:.2} s, a relay listener decoded {LISTEN_S} s \
         {:.2} s after the restart",
        pushed.as_secs_f64(),
        first.took.as_secs_f64(),
        back.as_secs_f64(),
        (back + again.took).as_secs_f64(),
    );
    drop(origin);
}
