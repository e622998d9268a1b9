//! The numbers in README's "Listen anywhere": bandwidth, time to first
//! byte, Opus encode cost per chunk, and listeners one room holds. Starts
//! the release server as its own process so its CPU can be read from /proc.
//! A measurement of a few minutes, not a check, so it runs only under
//! `cargo bench --bench listen` (under `cargo test` it returns at once).

use std::path::Path;
use std::time::{Duration, Instant};

use auralis::audio::opus::OggOpusEncoder;
use auralis::audio::resample::To48k;
use auralis::audio::CHUNK_BYTES;
use auralis::rss::{cpu_seconds_of, rss_mb_of};
use auralis::stream::metrics::Percentiles;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(measure_http_streaming());
}

async fn measure_http_streaming() {
    let exe = Path::new(env!("CARGO_BIN_EXE_auralis"));
    let args = ["--max-listeners", "5000", "--queue-chunks", "20"].map(String::from);
    let (mut child, addr) =
        auralis::tools::loadtest::spawn_server_at(exe, &args).expect("the server starts");
    let pid = child.id();

    // 1. Bandwidth and time to first byte, three fresh sessions at once.
    let secs = 12u64;
    let d = Duration::from_secs(secs);
    let (o96, o128, wav) = tokio::join!(
        meter(addr, "/listen.opus".into(), d, false),
        meter(addr, "/listen.opus?bitrate=128".into(), d, false),
        meter(addr, "/listen.wav".into(), d, true),
    );
    for (name, m) in [("opus 96", &o96), ("opus 128", &o128), ("wav", &wav)] {
        let steady = (m.bytes - m.bytes_at_2s) as f64 / (secs as f64 - 2.0);
        println!(
            "{name}: ttfb {:.1} ms, {:.1} kbit/s over {secs} s, steady {:.1} kbit/s",
            m.ttfb.unwrap().as_secs_f64() * 1e3,
            m.bytes as f64 * 8.0 / secs as f64 / 1e3,
            steady * 8.0 / 1e3,
        );
    }
    // A joiner of a running room gets the lane's backlog at once.
    let warm = tokio::spawn(meter(addr, "/listen.opus?room=warm".into(), d, false));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = meter(
        addr,
        "/listen.opus?room=warm".into(),
        Duration::from_secs(1),
        false,
    )
    .await;
    println!(
        "opus room joiner: ttfb {:.1} ms, {} pages (100 ms each) in its first second",
        late.ttfb.unwrap().as_secs_f64() * 1e3,
        late.pages
    );
    warm.abort();

    // 2. Encode cost per 100 ms chunk, on the music just streamed.
    let pcm = samples(&wav.body[44..]);
    let chunks: Vec<&[i16]> = pcm.chunks_exact(CHUNK_BYTES / 2).collect();
    let mut rs = To48k::new().unwrap();
    let mut e96 = OggOpusEncoder::new(96, 1).unwrap();
    let mut e128 = OggOpusEncoder::new(128, 2).unwrap();
    let (mut t_rs, mut t96, mut t128) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for c in &chunks {
        let t = Instant::now();
        rs.process(c, &mut buf).unwrap();
        t_rs.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        e96.encode_chunk(&buf).unwrap();
        t96.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        e128.encode_chunk(&buf).unwrap();
        t128.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (name, t) in [
        ("resample", &mut t_rs),
        ("opus 96", &mut t96),
        ("opus 128", &mut t128),
    ] {
        let p = Percentiles::of(t);
        println!(
            "{name}: {:.3} ms per 100 ms chunk (p50), p95 {:.3}, over {} chunks",
            p.p50, p.p95, p.count
        );
    }

    // 3. Many Opus listeners on one room for 20 s.
    for n in [500usize, 1000, 2000] {
        let room = format!("load{n}");
        let dropped_before = get_json_at(addr, "/api/metrics").await["listeners_dropped_slow"]
            .as_u64()
            .unwrap();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let path = format!("/listen.opus?room={room}");
            tasks.push(tokio::spawn(meter(
                addr,
                path,
                Duration::from_secs(20),
                false,
            )));
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        let cpu0 = cpu_seconds_of(pid).unwrap_or(0.0);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let cpu = (cpu_seconds_of(pid).unwrap_or(0.0) - cpu0) / t0.elapsed().as_secs_f64();
        let rss = rss_mb_of(pid).unwrap_or(0.0);
        let mut pages = Vec::with_capacity(n);
        let mut ended = 0;
        for t in tasks {
            let m = t.await.unwrap();
            ended += usize::from(m.ended);
            pages.push(m.pages);
        }
        pages.sort_unstable();
        let dropped = get_json_at(addr, "/api/metrics").await["listeners_dropped_slow"]
            .as_u64()
            .unwrap()
            - dropped_before;
        println!(
            "{n} opus listeners, one room, 20 s: server CPU {:.0} % of one core, RSS {rss:.0} MB, \
             pages per listener min {} / median {}, ended early {ended}, dropped as slow {dropped}",
            cpu * 100.0,
            pages[0],
            pages[n / 2],
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn samples(pcm: &[u8]) -> Vec<i16> {
    pcm.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Reads one stream for `dur`, counting bytes and Ogg pages as they come.
struct Meter {
    ttfb: Option<Duration>,
    bytes_at_2s: usize,
    bytes: usize,
    pages: usize,
    ended: bool,
    body: Vec<u8>,
}

async fn meter(addr: std::net::SocketAddr, path: String, dur: Duration, keep: bool) -> Meter {
    let started = Instant::now();
    let mut m = Meter {
        ttfb: None,
        bytes_at_2s: 0,
        bytes: 0,
        pages: 0,
        ended: false,
        body: Vec::new(),
    };
    let Ok(mut s) = TcpStream::connect(addr).await else {
        m.ended = true;
        return m;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        m.ended = true;
        return m;
    }
    let until = started + dur;
    let mut buf = vec![0u8; 32 * 1024];
    let mut head_done = false;
    while let Ok(r) = tokio::time::timeout_at(until.into(), s.read(&mut buf)).await {
        let n = match r {
            Ok(0) | Err(_) => {
                m.ended = true;
                break;
            }
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        if !head_done {
            // Response heads are small and arrive in the first read.
            match find(data, b"\r\n\r\n") {
                Some(i) => {
                    head_done = true;
                    data = &data[i + 4..];
                }
                None => continue,
            }
            if data.is_empty() {
                continue;
            }
        }
        m.ttfb.get_or_insert_with(|| started.elapsed());
        m.bytes += data.len();
        m.pages += data.windows(4).filter(|w| w == b"OggS").count();
        if started.elapsed() < Duration::from_secs(2) {
            m.bytes_at_2s = m.bytes;
        }
        if keep {
            m.body.extend_from_slice(data);
        }
    }
    m
}

async fn get_json_at(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (_, body) = tokio::time::timeout(
        Duration::from_secs(10),
        auralis::tools::loadtest::http_get(addr, path),
    )
    .await
    .unwrap()
    .unwrap();
    serde_json::from_str(&body).unwrap()
}
