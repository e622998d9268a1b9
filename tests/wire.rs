//! The web client's decoder (`web/wire.js`) against the Rust encoder: Node
//! decodes frames that `auralis::wire` made, so a change to either side that
//! the other does not follow fails here rather than as noise in a browser.

use std::path::Path;
use std::process::Command;

use auralis::stream::chunk::Chunk;
use auralis::wire::BinaryHeader;
use bytes::Bytes;
use serde_json::Value;

/// Runs `script` as an ES module in Node with the frame file's path as its
/// argument, and parses what it prints.
fn node(script: &str, frame: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frame.bin");
    std::fs::write(&path, frame).unwrap();
    let wire_js = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/wire.js");
    let prelude = format!(
        "import {{ readFileSync }} from 'node:fs';\n\
         import {{ decodeBinaryFrame, decodeJsonChunk }} from {:?};\n\
         const bytes = readFileSync(process.argv[1]);\n\
         const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);\n",
        format!("file://{}", wire_js.display())
    );
    run_node(&format!("{prelude}{script}"), &path)
}

/// Runs `module` (ES module source) in Node with `arg`, and parses what it
/// prints as JSON.
fn run_node(module: &str, arg: &Path) -> Value {
    let out = Command::new("node")
        .args(["--input-type=module", "-e", module])
        .arg(arg)
        .output()
        .expect("node runs (scripts/install-deps.sh installs it for the browser tests)");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("node prints JSON")
}

/// A chunk whose left and right channels are two known ramps.
fn chunk() -> Chunk {
    let frames = auralis::audio::CHUNK_FRAMES;
    let mut pcm = Vec::with_capacity(frames * 4);
    for i in 0..frames as i32 {
        pcm.extend_from_slice(&((i * 7 - 15_000) as i16).to_le_bytes());
        pcm.extend_from_slice(&((-i * 5 + 9_000) as i16).to_le_bytes());
    }
    Chunk::new(1_234_567, 1_700_000_000.125, Bytes::from(pcm))
}

/// The decoded chunk as Node sees it: header fields and a few samples.
const SUMMARY: &str = "const s = (d) => d && JSON.stringify({ seq: d.seq, timestamp: d.timestamp, \
    sampleRate: d.sampleRate, frames: d.frames, \
    left: [d.left[0], d.left[1], d.left[d.frames - 1]], \
    right: [d.right[0], d.right[1], d.right[d.frames - 1]] });";

fn assert_matches(decoded: &Value, c: &Chunk) {
    let frame = c.binary_frame();
    let (header, pcm) = BinaryHeader::decode(&frame).unwrap();
    let sample = |frame: usize, ch: usize| {
        let i = (frame * 2 + ch) * 2;
        f64::from(i16::from_le_bytes([pcm[i], pcm[i + 1]])) / 32768.0
    };
    let last = usize::from(header.frames) - 1;
    assert_eq!(decoded["seq"], header.seq);
    assert_eq!(decoded["timestamp"], header.timestamp);
    assert_eq!(decoded["sampleRate"], header.sample_rate);
    assert_eq!(decoded["frames"], header.frames);
    for (ch, name) in [(0, "left"), (1, "right")] {
        let got: Vec<f64> = decoded[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want = [sample(0, ch), sample(1, ch), sample(last, ch)];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{name}: {got:?} vs {want:?}");
        }
    }
}

#[test]
#[ignore = "needs node; scripts/test.sh runs it"]
fn the_web_client_decodes_the_servers_binary_frame() {
    let c = chunk();
    let decoded = node(
        &format!("{SUMMARY}\nconsole.log(s(decodeBinaryFrame(buffer)));"),
        &c.binary_frame(),
    );
    assert_matches(&decoded, &c);
}

#[test]
#[ignore = "needs node; scripts/test.sh runs it"]
fn the_web_client_decodes_the_servers_json_chunk() {
    let c = chunk();
    let decoded = node(
        &format!(
            "{SUMMARY}\nconsole.log(s(decodeJsonChunk(JSON.parse(new TextDecoder().decode(bytes)))));"
        ),
        &c.json_frame(),
    );
    assert_matches(&decoded, &c);
}

#[test]
#[ignore = "needs node; scripts/test.sh runs it"]
fn the_web_client_refuses_what_the_rust_decoder_refuses() {
    let good = chunk().binary_frame().to_vec();
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut bad_version = good.clone();
    bad_version[4] = 9;
    for frame in [&bad_magic[..], &bad_version[..], &good[..good.len() - 2]] {
        assert!(BinaryHeader::decode(frame).is_err());
        let decoded = node(
            "console.log(JSON.stringify(decodeBinaryFrame(buffer)));",
            frame,
        );
        assert!(decoded.is_null(), "web/wire.js accepted a bad frame");
    }
}

/// e2e/server.mjs waits for the server's listening line by its own copy of
/// the text; the copy must be the server's.
#[test]
#[ignore = "needs node; scripts/test.sh runs it"]
fn the_browser_tests_wait_for_the_servers_listening_line() {
    let server_mjs = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/server.mjs");
    let module = format!(
        "import {{ LISTENING }} from {:?}; console.log(JSON.stringify(LISTENING));",
        format!("file://{}", server_mjs.display())
    );
    assert_eq!(
        run_node(&module, &server_mjs),
        Value::from(auralis::server::LISTENING)
    );
}
