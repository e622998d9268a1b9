//! /listen.opus and /listen.wav against a real server on 127.0.0.1, read by
//! a plain HTTP client and decoded by Debian's ffmpeg (installed by
//! scripts/install-deps.sh).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auralis::server::RunningServer;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CHUNK_BYTES: usize = 17_640;

/// An HTTP response read for a while: the stream is endless, so the body is
/// whatever arrived before the deadline (de-chunked).
struct Streamed {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// The server ended the response (or the connection) before the deadline.
    ended: bool,
    /// Time from sending the request to the first byte of body.
    first_body_byte: Option<Duration>,
}

async fn request(server: &RunningServer, method: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send request");
    s
}

/// Reads `path` for `dur` of wall time.
async fn read_for(server: &RunningServer, path: &str, dur: Duration) -> Streamed {
    let started = Instant::now();
    let mut s = request(server, "GET", path).await;
    read_stream(&mut s, started, started + dur).await
}

async fn read_stream(s: &mut TcpStream, started: Instant, until: Instant) -> Streamed {
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut ended = false;
    let mut head_len = None;
    let mut first_body_byte = None;
    loop {
        match tokio::time::timeout_at(until.into(), s.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                ended = true;
                break;
            }
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
        if head_len.is_none() {
            head_len = find(&raw, b"\r\n\r\n").map(|i| i + 4);
        }
        if let Some(h) = head_len {
            // The first chunk-size line alone is no audio yet.
            if first_body_byte.is_none() && dechunk(&raw[h..]).1 > 0 {
                first_body_byte = Some(started.elapsed());
            }
        }
    }
    let h = head_len.expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..h]).into_owned();
    let status = head[9..12].parse().expect("status code");
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<HashMap<_, _>>();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        dechunk(&raw[h..]).0
    } else {
        raw[h..].to_vec()
    };
    Streamed {
        status,
        headers,
        body,
        ended,
        first_body_byte,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// De-chunks what arrived, keeping a truncated last chunk's bytes.
/// Returns the body and its length.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    while let Some(eol) = find(raw, b"\r\n") {
        let Some(size) = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        else {
            break;
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        if take < size || raw.len() < size + 2 {
            break;
        }
        raw = &raw[size + 2..];
    }
    let n = out.len();
    (out, n)
}

/// Decodes Ogg Opus (or anything ffmpeg reads) to 48 kHz stereo i16.
async fn ffmpeg_decode(input: &[u8], suffix: &str) -> Vec<i16> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("in{suffix}"));
    std::fs::write(&path, input).unwrap();
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "s16le", "-ac", "2", "-ar", "48000", "-"])
            .output(),
    )
    .await
    .expect("ffmpeg in time")
    .expect("ffmpeg runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A truncated last page (we stopped reading mid-stream) is the only
    // complaint allowed.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        assert!(
            line.to_ascii_lowercase().contains("truncat")
                || line.contains("End of file")
                || line.trim().is_empty(),
            "ffmpeg reported: {stderr}"
        );
    }
    samples(&out.stdout)
}

fn samples(pcm: &[u8]) -> Vec<i16> {
    pcm.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

async fn listeners(server: &RunningServer) -> u64 {
    get_json(server, "/api/status").await["listeners"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn opus_stream_decodes_to_music_of_the_expected_length() {
    let server = start().await;
    let s = read_for(
        &server,
        "/listen.opus?preset=dawn&bitrate=128",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["content-type"], "audio/ogg");
    assert_eq!(s.headers["cache-control"], "no-store");
    assert_eq!(s.headers["transfer-encoding"], "chunked");
    assert!(!s.ended, "the stream is endless");
    let ttfb = s.first_body_byte.expect("audio arrived");
    assert!(
        ttfb < Duration::from_secs(1),
        "first audio byte after {ttfb:?}"
    );
    assert_eq!(&s.body[..4], b"OggS");
    assert_eq!(&s.body[28..36], b"OpusHead");
    let pcm = ffmpeg_decode(&s.body, ".opus").await;
    let secs = pcm.len() as f64 / 2.0 / 48_000.0;
    // 3 s of real time plus the session's 200–300 ms render lead.
    assert!((2.8..=3.6).contains(&secs), "decoded {secs:.2} s");
    let last_second = &pcm[pcm.len() - 96_000..];
    assert!(rms(last_second) > 100.0, "rms {:.1}", rms(last_second));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn mp3_stream_decodes_to_44_1_khz_stereo_music() {
    let server = start().await;
    let s = read_for(
        &server,
        "/listen.mp3?preset=dawn&bitrate=192",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["content-type"], "audio/mpeg");
    assert!(!s.ended, "the stream is endless");
    // An MPEG-1 Layer III frame header first: no tag a live stream can't fill.
    assert_eq!((s.body[0], s.body[1] & 0xFE), (0xFF, 0xFA));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.mp3");
    std::fs::write(&path, &s.body).unwrap();
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-"])
        .output()
        .await
        .expect("ffmpeg runs (scripts/install-deps.sh installs it)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Audio: mp3") && log.contains("44100 Hz, stereo") && log.contains("192 kb/s"),
        "{log}"
    );
    let pcm = samples(&out.stdout);
    let secs = pcm.len() as f64 / 2.0 / 44_100.0;
    // 3 s of real time plus the session's render lead, less LAME's look-ahead.
    assert!((2.7..=3.6).contains(&secs), "decoded {secs:.2} s");
    let last_second = &pcm[pcm.len() - 88_200..];
    assert!(rms(last_second) > 100.0, "rms {:.1}", rms(last_second));
    // 192 kbit/s: the bytes match the bitrate, a tenth of the WAV stream.
    let kbps = s.body.len() as f64 * 8.0 / secs / 1000.0;
    assert!((170.0..=215.0).contains(&kbps), "{kbps:.0} kbit/s");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ffmpeg_plays_the_opus_url_in_real_time() {
    let server = start().await;
    let url = format!("http://{}/listen.opus?preset=calm", server.addr);
    let started = Instant::now();
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i", &url])
            .args(["-t", "4", "-f", "s16le", "-ac", "2", "-ar", "48000", "-"])
            .output(),
    )
    .await
    .expect("ffmpeg in time")
    .expect("ffmpeg runs");
    let took = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs = out.stdout.len() as f64 / 4.0 / 48_000.0;
    assert!((secs - 4.0).abs() < 0.05, "decoded {secs:.2} s");
    // Paced: 4 s of audio cannot arrive much faster than 4 s minus the
    // initial burst.
    assert!(took > 3.3, "4 s of audio in {took:.2} s");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_late_opus_joiner_of_a_room_decodes_from_its_first_page() {
    let server = start().await;
    let first = tokio::spawn({
        let addr = server.addr;
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let req = "GET /listen.opus?room=late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            s.write_all(req.as_bytes()).await.unwrap();
            let t = Instant::now();
            read_stream(&mut s, t, t + Duration::from_secs(5)).await
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late = read_for(&server, "/listen.opus?room=late", Duration::from_secs(2)).await;
    let first = first.await.unwrap();
    assert_eq!(
        first.headers["x-auralis-session"],
        late.headers["x-auralis-session"]
    );
    // The late joiner's headers are numbered to lead into the backlog.
    let seq = |b: &[u8], at: usize| u32::from_le_bytes(b[at + 18..at + 22].try_into().unwrap());
    let head = seq(&late.body, 0);
    assert!(head > 0, "a late joiner's header is not page 0");
    assert_eq!(seq(&late.body, 47), head + 1);
    let pcm = ffmpeg_decode(&late.body, ".opus").await;
    let secs = pcm.len() as f64 / 2.0 / 48_000.0;
    // 2 s of real time plus up to 800 ms of backlog burst.
    assert!(
        (2.4..=3.1).contains(&secs),
        "late joiner decoded {secs:.2} s"
    );
    assert!(rms(&pcm) > 50.0);
    let whole = ffmpeg_decode(&first.body, ".opus").await;
    assert!(whole.len() as f64 / 2.0 / 48_000.0 > 4.8);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn wav_stream_has_a_streaming_riff_header_then_pcm() {
    let server = start().await;
    let s = read_for(&server, "/listen.wav?preset=calm", Duration::from_secs(2)).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["content-type"], "audio/wav");
    assert_eq!(s.headers["cache-control"], "no-store");
    let h = &s.body[..44];
    assert_eq!(&h[0..4], b"RIFF");
    assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), u32::MAX);
    assert_eq!(&h[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([h[20], h[21]]), 1, "PCM");
    assert_eq!(u16::from_le_bytes([h[22], h[23]]), 2, "stereo");
    assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 44_100);
    assert_eq!(u16::from_le_bytes([h[34], h[35]]), 16, "bits");
    assert_eq!(&h[36..40], b"data");
    assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), u32::MAX);
    let pcm = &s.body[44..];
    let secs = pcm.len() as f64 / 176_400.0;
    assert!((1.9..=2.5).contains(&secs), "{secs:.2} s of PCM");
    assert!(rms(&samples(pcm)) > 10.0);
    // ffmpeg reads the streaming header as an ordinary WAV.
    let decoded = ffmpeg_decode(&s.body, ".wav").await;
    assert!(decoded.len() > 48_000 * 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_and_websocket_listeners_of_a_room_hear_the_same_chunks() {
    let server = start().await;
    let mut ws = connect(&server, "?room=shared&preset=night").await;
    let hello = next_event(&mut ws).await;
    let reader = tokio::spawn(async move {
        let mut chunks = HashMap::new();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let a = next_audio(&mut ws).await;
            chunks.insert(a.seq, a.pcm);
        }
        chunks
    });
    let wav = read_for(&server, "/listen.wav?room=shared", Duration::from_secs(2)).await;
    let opus = read_for(
        &server,
        "/listen.opus?room=shared",
        Duration::from_millis(500),
    )
    .await;
    let ws_chunks = reader.await.unwrap();
    assert_eq!(wav.headers["x-auralis-session"], hello["session_id"]);
    assert_eq!(opus.headers["x-auralis-session"], hello["session_id"]);
    let first: u64 = wav.headers["x-auralis-first-seq"].parse().unwrap();
    let pcm = &wav.body[44..];
    let mut compared = 0;
    for (i, piece) in pcm.chunks_exact(CHUNK_BYTES).enumerate() {
        let seq = first + i as u64;
        if let Some(ws_pcm) = ws_chunks.get(&seq) {
            assert_eq!(
                piece,
                &ws_pcm[..],
                "chunk {seq} differs between WAV and WebSocket"
            );
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} chunks overlapped");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_listeners_count_and_meet_the_limits() {
    let mut config = common::config();
    config.hub.max_listeners = 2;
    let server = start_with(config).await;
    let mut a = request(&server, "GET", "/listen.wav?room=r").await;
    let mut b = request(&server, "GET", "/listen.opus?room=r").await;
    // Both responses have started once a few bytes arrive.
    let mut buf = [0u8; 256];
    a.read_exact(&mut buf).await.unwrap();
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(listeners(&server).await, 2);
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["sessions"], 1, "one room, one session");
    let (code, body) = http_get(&server, "/listen.opus").await;
    assert_eq!(code, 503);
    assert!(body.contains("server full"), "{body}");
    let (code, _) = http_get(&server, "/listen.wav").await;
    assert_eq!(code, 503);
    drop((a, b));
    let until = Instant::now() + WAIT;
    while listeners(&server).await > 0 {
        assert!(
            Instant::now() < until,
            "closed HTTP listeners still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_queries_get_400_and_head_joins_nothing() {
    let server = start().await;
    for (path, needle) in [
        ("/listen.opus?bitrate=512", "32 to 256"),
        ("/listen.opus?bitrate=fast", "32 to 256"),
        ("/listen.wav?bitrate=96", "uncompressed"),
        ("/listen.opus?format=json", "allowed are"),
        ("/listen.wav?key=H", "key"),
    ] {
        let (code, body) = http_get(&server, path).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    let mut s = request(&server, "HEAD", "/listen.opus").await;
    let mut head = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: audio/ogg"), "{head}");
    assert!(!head.contains("content-length: 0"), "{head}");
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["sessions"], 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stalled_http_reader_is_dropped() {
    let server = start().await;
    // A small receive buffer so the stall shows quickly; the client then
    // never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /listen.wav HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while listeners(&server).await == 0 {
        assert!(Instant::now() < until, "the listener never joined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dropped_at = Instant::now() + Duration::from_secs(20);
    while listeners(&server).await > 0 {
        assert!(
            Instant::now() < dropped_at,
            "a stalled reader was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = get_json(&server, "/api/metrics").await;
    assert!(metrics["listeners_dropped_slow"].as_u64().unwrap() >= 1);
    assert_eq!(get_json(&server, "/api/status").await["sessions"], 0);
    drop(stalled);
    server.shutdown().await.unwrap();
}

/// The README's promise: a player with a 16 KiB receive buffer that stops
/// reading is dropped within 10 s whatever the bitrate, though at 32 kbit/s
/// the kernel buffers alone hold far longer than that (the listener's queue
/// used to notice only after 30 s to minutes).
const STALLED_READER_BOUND: Duration = Duration::from_secs(10);
const PLAYER_RECV_BUFFER: u32 = 16 * 1024;

/// Opens `/listen.opus` at `kbps` from a socket with a player's receive
/// buffer, waits until its listener joined, and returns the socket with the
/// time it joined.
async fn small_buffer_reader(server: &RunningServer, kbps: u32) -> (TcpStream, Instant) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(PLAYER_RECV_BUFFER).unwrap();
    let mut s = socket.connect(server.addr).await.unwrap();
    let req = format!("GET /listen.opus?bitrate={kbps} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let until = Instant::now() + WAIT;
    while listeners(server).await == 0 {
        assert!(Instant::now() < until, "the listener never joined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (s, Instant::now())
}

async fn stalled_reader_is_dropped_within_the_bound(kbps: u32) {
    let server = start().await;
    let (mut stalled, joined) = small_buffer_reader(&server, kbps).await;
    let bound = joined + STALLED_READER_BOUND;
    while listeners(&server).await > 0 {
        assert!(
            Instant::now() < bound,
            "a reader stalled at {kbps} kbit/s was still connected after {STALLED_READER_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "stalled at {kbps} kbit/s: dropped after {:?}",
        joined.elapsed()
    );
    let metrics = get_json(&server, "/api/metrics").await;
    assert_eq!(metrics["listeners_dropped_slow"], 1);
    // The connection itself is gone too (reset, not a FIN queued behind
    // data the reader never took): reading drains what the kernel holds
    // and then fails or ends.
    let mut buf = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the stalled connection stayed open");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reader_stalled_at_32_kbps_is_dropped_within_10_s() {
    stalled_reader_is_dropped_within_the_bound(32).await;
}

#[tokio::test]
async fn a_reader_stalled_at_256_kbps_is_dropped_within_10_s() {
    stalled_reader_is_dropped_within_the_bound(256).await;
}

/// A player on a slow link takes little at a time but keeps taking: it
/// must outlive the stall bound.
#[tokio::test]
async fn a_slow_steady_reader_is_kept() {
    let server = start().await;
    let (mut slow, joined) = small_buffer_reader(&server, 32).await;
    // 1 KiB every 100 ms: 80 kbit/s at most, in small bites, against a
    // 32 kbit/s stream.
    let mut buf = [0u8; 1024];
    let mut got = 0;
    while joined.elapsed() < STALLED_READER_BOUND + Duration::from_secs(2) {
        match tokio::time::timeout(WAIT, slow.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got += n,
            other => panic!("the slow reader was cut off after {got} bytes: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listeners(&server).await, 1, "the slow reader was dropped");
    let metrics = get_json(&server, "/api/metrics").await;
    assert_eq!(metrics["listeners_dropped_slow"], 0);
    drop(slow);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_http_streams() {
    let server = start().await;
    let mut s = request(&server, "GET", "/listen.opus").await;
    let reader = tokio::spawn(async move {
        let t = Instant::now();
        read_stream(&mut s, t, t + Duration::from_secs(15)).await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown in time")
        .unwrap();
    let streamed = reader.await.unwrap();
    assert!(streamed.ended, "the response ended with the server");
    assert_eq!(&streamed.body[..4], b"OggS");
}

/// RMS of interleaved 48 kHz stereo from second `from` to `to`.
fn rms_between(pcm: &[i16], from: f64, to: f64) -> f64 {
    let at = |s: f64| ((s * 48_000.0) as usize * 2).min(pcm.len());
    rms(&pcm[at(from)..at(to)])
}

#[tokio::test]
async fn a_timed_opus_stream_fades_and_ends_with_an_end_of_stream_page() {
    let server = start().await;
    let t = Instant::now();
    let mut s = request(&server, "GET", "/listen.opus?preset=dawn&duration=6").await;
    let opus = read_stream(&mut s, t, t + Duration::from_secs(15)).await;
    assert_eq!(opus.status, 200);
    assert!(opus.ended, "the response ends when the timer does");
    // The last page carries Ogg's end-of-stream flag.
    let last = opus
        .body
        .windows(4)
        .rposition(|w| w == b"OggS")
        .expect("Ogg pages");
    assert_eq!(opus.body[last + 5], 0x04, "end of stream");
    // Decoded strictly: a clean end, no truncated page.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timed.opus");
    std::fs::write(&path, &opus.body).unwrap();
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-ac", "2", "-ar", "48000", "-"])
        .output()
        .await
        .expect("ffmpeg runs (scripts/install-deps.sh installs it)");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pcm = samples(&out.stdout);
    let secs = pcm.len() as f64 / 2.0 / 48_000.0;
    assert!((5.9..=6.1).contains(&secs), "decoded {secs:.2} s");
    let playing = rms_between(&pcm, 1.5, 3.0);
    let last_second = rms_between(&pcm, 5.0, 6.0);
    assert!(playing > 100.0, "music before the fade: rms {playing:.0}");
    assert!(
        last_second < playing / 10.0,
        "last second rms {last_second:.0} against {playing:.0}"
    );
    assert!(rms_between(&pcm, 5.9, 6.0) < 30.0, "ends in silence");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timed_wav_stream_just_ends_and_a_room_refuses_a_timer() {
    let server = start().await;
    let t = Instant::now();
    let mut s = request(&server, "GET", "/listen.wav?duration=3").await;
    let wav = read_stream(&mut s, t, t + Duration::from_secs(15)).await;
    assert!(wav.ended);
    assert_eq!(wav.body.len() - 44, 30 * CHUNK_BYTES, "exactly 3 s of PCM");
    let tail = samples(&wav.body[wav.body.len() - CHUNK_BYTES..]);
    assert!(rms(&tail) < 30.0, "ends in silence: rms {:.0}", rms(&tail));
    let (code, body) = http_get(&server, "/listen.wav?duration=60&room=x").await;
    assert_eq!(code, 400);
    assert!(body.contains("shared"), "{body}");
    let (code, body) = http_get(&server, "/listen.opus?duration=0").await;
    assert_eq!(code, 400);
    assert!(body.contains("duration"), "{body}");
    server.shutdown().await.unwrap();
}

/// Reads a whole response (the server closes the connection after it).
async fn fetch(server: &RunningServer, path: &str) -> Streamed {
    let t = Instant::now();
    let mut s = request(server, "GET", path).await;
    let r = read_stream(&mut s, t, t + Duration::from_secs(60)).await;
    assert!(r.ended, "{path}: the response ended");
    r
}

#[tokio::test]
async fn a_downloaded_wav_is_the_file_auralis_render_writes() {
    let server = start().await;
    let query = "preset=calm&seed=7&bpm=90&minutes=0.1";
    let wav = fetch(&server, &format!("/download.wav?{query}")).await;
    assert_eq!(wav.status, 200);
    assert_eq!(wav.headers["content-type"], "audio/wav");
    assert_eq!(
        wav.headers["content-length"].parse::<usize>().unwrap(),
        wav.body.len()
    );
    let disposition = &wav.headers["content-disposition"];
    assert!(
        disposition.starts_with("attachment; filename=\"auralis-calm-")
            && disposition.ends_with(".wav\""),
        "{disposition}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("render.wav");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auralis"))
        .args([
            "render",
            "--builtin-font",
            "--preset",
            "calm",
            "--seed",
            "7",
        ])
        .args(["--bpm", "90", "--minutes", "0.1", "-o"])
        .arg(&path)
        .output()
        .expect("auralis render runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = std::fs::read(&path).unwrap();
    // 6 s at 90 BPM is 2 bars (5.33 s), then the 6 s tail.
    assert_eq!(
        rendered.len(),
        44 + (2 * 4 * 44_100 * 60 / 90 + 6 * 44_100) * 4
    );
    assert!(wav.body == rendered, "the download differs from the render");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn opus_and_midi_downloads_and_what_is_refused() {
    let server = start().await;
    let opus = fetch(&server, "/download.opus?preset=night&minutes=0.1").await;
    assert_eq!(opus.status, 200);
    assert_eq!(opus.headers["content-type"], "audio/ogg");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.opus");
    std::fs::write(&path, &opus.body).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-ac", "2", "-ar", "48000", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs = out.stdout.len() as f64 / 4.0 / 48_000.0;
    // Night is slower: 6 s are its whole bars nearest, then the 6 s tail.
    assert!((10.0..=14.0).contains(&secs), "decoded {secs:.2} s");
    let midi = fetch(&server, "/download.mid?minutes=1").await;
    assert_eq!(midi.status, 200);
    assert_eq!(&midi.body[..4], b"MThd");
    assert_eq!(midi.headers["content-length"], midi.body.len().to_string());
    for (path, needle) in [
        ("/download.wav?minutes=61", "at most 60"),
        ("/download.wav", "minutes is required"),
        ("/download.opus?minutes=5&room=a", "allowed are"),
        ("/download.mid?minutes=5&bpm=500", "40 to 120"),
    ] {
        let (code, body) = http_get(&server, path).await;
        assert_eq!(code, 400, "{path}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn at_most_two_downloads_render_at_once() {
    let server = start().await;
    // Two hour-long downloads whose clients read only the headers: each
    // render holds its permit, held back by its full queue.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = request(&server, "GET", "/download.wav?minutes=60").await;
        let mut head = [0u8; 64];
        s.read_exact(&mut head).await.unwrap();
        assert!(head.starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let (code, body) = http_get(&server, "/download.wav?minutes=1").await;
    assert_eq!(code, 503);
    assert!(body.contains("too many downloads"), "{body}");
    // MIDI needs no synthesis and no permit.
    let (code, _) = http_get(&server, "/download.mid?minutes=1").await;
    assert_eq!(code, 200);
    // Clients that leave free their permits.
    drop(held);
    let until = Instant::now() + WAIT;
    loop {
        let (code, _) = http_get(&server, "/download.mid?minutes=1").await;
        assert_eq!(code, 200);
        let s = fetch(&server, "/download.wav?minutes=0.05").await;
        if s.status == 200 {
            break;
        }
        assert!(Instant::now() < until, "permits never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await.unwrap();
}
