//! `serve --engine`: every synthesizer this build has can run the server, the
//! status page says which one does, and one it lacks is refused with a
//! message saying how to get it.
mod common;

use auralis::synth::EngineKind;
use common::{connect, get_json, next_audio, start_with};

/// The server on `kind` streams real audio and names `kind` in /api/status.
async fn serves_music_with(kind: EngineKind) {
    let mut config = common::config();
    config.hub.engine_kind = kind;
    let server = start_with(config).await;
    let status = get_json(&server, "/api/status").await;
    assert_eq!(status["engine"], kind.as_str());
    let mut ws = connect(&server, "?format=binary&seed=3").await;
    let mut peak = 0i16;
    for _ in 0..30 {
        let audio = next_audio(&mut ws).await;
        for s in audio.pcm.chunks_exact(2) {
            peak = peak.max(i16::from_le_bytes([s[0], s[1]]).saturating_abs());
        }
    }
    assert!(peak > 300, "{kind}: 3 s of near silence (peak {peak})");
}

#[tokio::test]
async fn the_server_plays_through_rustysynth() {
    serves_music_with(EngineKind::Rustysynth).await;
}

#[cfg(feature = "fluidsynth")]
#[tokio::test]
async fn the_server_plays_through_libfluidsynth() {
    serves_music_with(EngineKind::Fluidsynth).await;
}

#[cfg(not(feature = "fluidsynth"))]
#[test]
fn serve_refuses_an_engine_this_build_lacks_and_says_how_to_get_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auralis"))
        .args([
            "serve",
            "--port",
            "0",
            "--builtin-font",
            "--engine",
            "fluidsynth",
        ])
        .output()
        .expect("auralis runs");
    assert!(!out.status.success(), "serve started without libfluidsynth");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features fluidsynth"), "{err}");
}
