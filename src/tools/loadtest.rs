//! `auralis loadtest`: many real WebSocket listeners against a running server
//! on 127.0.0.1, each reading as a player would, counting what a listener
//! would hear as a glitch (a gap in `seq`, a dropped connection, a chunk that
//! arrives too late for the smallest client buffer).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::rss;
use crate::stream::metrics::Percentiles;
use crate::stream::DEFAULT_LEAD_CHUNKS as LEAD_CHUNKS;
use crate::wire::BinaryHeader;

/// A chunk arriving this much later than the stream's schedule would drain
/// the smallest client buffer tier (300 ms) to empty.
const LATE_MS: f64 = 300.0;
/// A listener that hears nothing for this long counts as dropped.
const SILENCE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct LoadtestConfig {
    pub addr: SocketAddr,
    pub listeners: usize,
    pub duration: Duration,
    /// All listeners in one room instead of a session each.
    pub room: Option<String>,
    /// Connections are opened evenly over this time.
    pub ramp: Duration,
    /// The server's process id, to sample its CPU and RSS from /proc.
    pub server_pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadtestReport {
    pub listeners: usize,
    pub connected: usize,
    pub room: Option<String>,
    pub seconds: f64,
    pub chunks: u64,
    /// Missing `seq` numbers, summed over listeners.
    pub gaps: u64,
    /// Listeners whose connection failed or fell silent.
    pub dropped: usize,
    pub late_chunks: u64,
    pub max_lateness_ms: f64,
    pub interarrival_ms: Percentiles,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_mb: Option<f64>,
    pub server_peak_rss_mb: Option<f64>,
    /// The server's own synthesis time per chunk, from /api/metrics.
    pub server_synthesis_ms: Option<Percentiles>,
}

impl std::fmt::Display for LoadtestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let room = self
            .room
            .as_ref()
            .map(|x| format!(", all in room {x}"))
            .unwrap_or_default();
        writeln!(
            f,
            "listeners        {} ({} connected){room}",
            self.listeners, self.connected
        )?;
        writeln!(
            f,
            "duration         {:.0} s, {} chunks received",
            self.seconds, self.chunks
        )?;
        writeln!(f, "gaps             {}", self.gaps)?;
        writeln!(f, "dropped          {}", self.dropped)?;
        writeln!(
            f,
            "late (> 300 ms)  {}  (worst {:.0} ms behind schedule)",
            self.late_chunks, self.max_lateness_ms
        )?;
        let i = &self.interarrival_ms;
        writeln!(
            f,
            "inter-arrival    p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            i.p50, i.p99, i.max
        )?;
        if let Some(cpu) = self.server_cpu_percent {
            writeln!(f, "server CPU       {cpu:.0} % (of one core)")?;
        }
        if let Some(s) = &self.server_synthesis_ms {
            writeln!(
                f,
                "synthesis        p50 {:.2} ms  p99 {:.2} ms per 100 ms chunk (server's own figure)",
                s.p50, s.p99
            )?;
        }
        if let (Some(rss), Some(peak)) = (self.server_rss_mb, self.server_peak_rss_mb) {
            writeln!(f, "server RSS       {rss:.0} MB (peak {peak:.0} MB)")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("cannot start the server: {0}")]
    Spawn(std::io::Error),
    #[error("the server did not say where it listens")]
    NoAddress,
}

#[derive(Default)]
struct ListenerResult {
    connected: bool,
    dropped: bool,
    chunks: u64,
    gaps: u64,
    late: u64,
    max_lateness_ms: f64,
    interarrivals: Vec<f64>,
}

pub async fn run(config: &LoadtestConfig) -> LoadtestReport {
    let cpu_start = config.server_pid.and_then(rss::cpu_seconds_of);
    let started = Instant::now();
    let end = started + config.ramp + config.duration;
    let mut tasks = Vec::with_capacity(config.listeners);
    for i in 0..config.listeners {
        let delay = config
            .ramp
            .mul_f64(i as f64 / config.listeners.max(1) as f64);
        let query = match &config.room {
            Some(room) => format!("?room={room}"),
            None => format!("?seed={i}"),
        };
        let url = format!("ws://{}/ws/stream{query}", config.addr);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            listen(&url, end.into()).await
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.unwrap_or_default());
    }
    let wall = started.elapsed();
    let cpu_end = config.server_pid.and_then(rss::cpu_seconds_of);
    let server_synthesis_ms = http_get(config.addr, "/api/metrics")
        .await
        .ok()
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|m| serde_json::from_value(m["synthesis_ms_per_chunk"].clone()).ok());
    let server_cpu_percent = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => Some((b - a) / wall.as_secs_f64() * 100.0),
        _ => None,
    };
    let mut inter: Vec<f64> = results
        .iter()
        .flat_map(|r| r.interarrivals.iter().copied())
        .collect();
    let interarrival_ms = Percentiles::of(&mut inter);
    LoadtestReport {
        listeners: config.listeners,
        connected: results.iter().filter(|r| r.connected).count(),
        room: config.room.clone(),
        seconds: config.duration.as_secs_f64(),
        chunks: results.iter().map(|r| r.chunks).sum(),
        gaps: results.iter().map(|r| r.gaps).sum(),
        dropped: results.iter().filter(|r| r.dropped || !r.connected).count(),
        late_chunks: results.iter().map(|r| r.late).sum(),
        max_lateness_ms: results
            .iter()
            .map(|r| r.max_lateness_ms)
            .fold(0.0, f64::max),
        interarrival_ms,
        server_cpu_percent,
        server_rss_mb: config.server_pid.and_then(rss::rss_mb_of),
        server_synthesis_ms,
        server_peak_rss_mb: config.server_pid.and_then(rss::peak_rss_mb_of),
    }
}

/// One listener: reads binary chunks until `end`, measuring as it goes.
async fn listen(url: &str, end: tokio::time::Instant) -> ListenerResult {
    let mut r = ListenerResult::default();
    let Ok(Ok((mut ws, _))) =
        tokio::time::timeout(SILENCE, tokio_tungstenite::connect_async(url)).await
    else {
        return r;
    };
    r.connected = true;
    let mut first: Option<(u64, Instant)> = None;
    let mut last: Option<(u64, Instant)> = None;
    while tokio::time::Instant::now() < end {
        let msg = match tokio::time::timeout(SILENCE, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => {
                r.dropped = true;
                break;
            }
        };
        let Message::Binary(b) = msg else { continue };
        let Ok((BinaryHeader { seq, .. }, _)) = BinaryHeader::decode(&b) else {
            continue;
        };
        let now = Instant::now();
        r.chunks += 1;
        if let Some((prev, at)) = last {
            r.gaps += seq.saturating_sub(prev + 1);
            r.interarrivals
                .push(now.duration_since(at).as_secs_f64() * 1e3);
        }
        let (k0, t0) = *first.get_or_insert((seq, now));
        let scheduled = t0 + Duration::from_millis(100 * (seq - k0).saturating_sub(LEAD_CHUNKS));
        let lateness = now.saturating_duration_since(scheduled).as_secs_f64() * 1e3;
        r.max_lateness_ms = r.max_lateness_ms.max(lateness);
        if lateness > LATE_MS {
            r.late += 1;
        }
        last = Some((seq, now));
    }
    r
}

/// Starts `auralis serve` (this same binary) on a free loopback port and
/// waits until it says where it listens.
pub fn spawn_server(extra_args: &[String]) -> Result<(Child, SocketAddr), LoadtestError> {
    let exe = std::env::current_exe().map_err(LoadtestError::Spawn)?;
    spawn_server_at(&exe, extra_args)
}

/// Starts the `auralis` binary at `exe` as a server on a free loopback
/// port and waits until it says where it listens. Its stderr is drained for
/// as long as it runs, so it never blocks on a full pipe.
pub fn spawn_server_at(
    exe: &std::path::Path,
    extra_args: &[String],
) -> Result<(Child, SocketAddr), LoadtestError> {
    let mut child = Command::new(exe)
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(extra_args)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(LoadtestError::Spawn)?;
    let stderr = child.stderr.take().ok_or(LoadtestError::NoAddress)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = crate::server::listening_addr(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| LoadtestError::NoAddress)?;
    Ok((child, addr))
}

/// A minimal HTTP/1.1 GET on loopback: (status, body). Enough for the
/// server's own JSON endpoints; not a general HTTP client.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_prints_what_it_measured_and_nothing_it_did_not() {
        let report = LoadtestReport {
            listeners: 3,
            connected: 2,
            room: Some("lobby".into()),
            seconds: 5.0,
            chunks: 120,
            gaps: 1,
            dropped: 1,
            late_chunks: 0,
            max_lateness_ms: 12.0,
            interarrival_ms: Percentiles::of(&mut [99.0, 100.0, 101.0]),
            server_cpu_percent: Some(12.0),
            server_rss_mb: None,
            server_peak_rss_mb: None,
            server_synthesis_ms: None,
        };
        let text = report.to_string();
        assert!(
            text.contains("3 (2 connected), all in room lobby"),
            "{text}"
        );
        assert!(text.contains("p50 100.0 ms"), "{text}");
        assert!(text.contains("server CPU       12 %"), "{text}");
        assert!(
            !text.contains("RSS") && !text.contains("synthesis"),
            "{text}"
        );
    }
}
