//! Offline rendering end to end: the `auralis` binary as a user runs it, and
//! the library's render path with the built-in font.

use std::path::Path;
use std::process::Command;

use auralis::music::{Composer, EventKind, Params, PAD_CHANNEL, PIANO_CHANNEL};
use auralis::soundfont::{FontSet, FontSource};
use auralis::synth::{Engine, EngineSettings, RustyEngine};

fn auralis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_auralis"))
        .args(args)
        .env_remove("SOUNDFONT_PIANO")
        .env_remove("SOUNDFONT_GM")
        .output()
        .expect("run auralis")
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let reader = hound::WavReader::open(path).expect("a readable WAV");
    let spec = reader.spec();
    (spec, reader.into_samples().map(Result::unwrap).collect())
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64)
        .sqrt()
}

#[test]
fn render_writes_32_seconds_of_unclipped_music_and_midi() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let mid = dir.path().join("out.mid");
    let out = auralis(&[
        "render",
        "--preset",
        "focus",
        "--seed",
        "7",
        "--bars",
        "8",
        "--builtin-font",
        "-o",
        wav.to_str().unwrap(),
        "--midi",
        mid.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (spec, samples) = read_wav(&wav);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (44_100, 2, 16)
    );
    assert_eq!(
        samples.len(),
        (32 + 6) * 44_100 * 2,
        "8 bars at 60 BPM are 32 s, then the default 6 s tail"
    );
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak < 32_000, "never clipped: peak {peak}");
    assert!(peak > 8_000, "loud enough: peak {peak}");
    let (music, tail) = samples.split_at(32 * 44_100 * 2);
    // Every 4 s stretch of the music after the fade-in carries sound.
    for (i, window) in music.chunks(4 * 44_100 * 2).enumerate().skip(1) {
        assert!(rms(window) > 300.0, "window {i} is nearly silent");
    }
    // The tail rings out, then fades to digital silence: no cut at the end.
    assert!(
        rms(&tail[..44_100 * 2]) > 100.0,
        "the tail's first second rings"
    );
    assert!(
        tail[tail.len() - 441 * 2..].iter().all(|&s| s == 0),
        "ends in silence"
    );
    let smf_bytes = std::fs::read(&mid).unwrap();
    let smf = midly::Smf::parse(&smf_bytes).expect("a valid MIDI file");
    let notes = smf.tracks[0]
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                midly::TrackEventKind::Midi {
                    message: midly::MidiMessage::NoteOn { .. },
                    ..
                }
            )
        })
        .count();
    assert!(notes > 10, "{notes} notes in the MIDI file");
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let render = |seed: &str, name: &str| {
        let path = dir.path().join(name);
        let out = auralis(&[
            "render",
            "--seed",
            seed,
            "--bars",
            "2",
            "--builtin-font",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(path).unwrap()
    };
    let a = render("11", "a.wav");
    let b = render("11", "b.wav");
    let c = render("12", "c.wav");
    assert_eq!(a, b, "same params, seed and font: byte-identical");
    assert_ne!(a, c, "another seed: other music");
}

#[test]
fn overrides_and_bad_values_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("x.wav");
    let out = auralis(&[
        "render",
        "--bpm",
        "500",
        "--builtin-font",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bpm") && err.contains("40"), "{err}");
    let out = auralis(&[
        "render",
        "--preset",
        "disco",
        "--builtin-font",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("focus"));
    let out = auralis(&[
        "render",
        "--preset",
        "sleep",
        "--key",
        "F#",
        "--mode",
        "lydian",
        "--bars",
        "1",
        "--builtin-font",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("F# lydian at 42 BPM"));
}

#[test]
fn presets_and_soundfonts_commands_list_what_they_should() {
    let out = auralis(&["presets"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["focus", "calm", "sleep", "meditate", "dawn", "night"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let out = auralis(&["soundfonts", "--builtin-font", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["piano"]["source"], "built_in");
    assert!(v["piano"]["size_bytes"].as_u64().unwrap() < 5_000_000);
}

#[test]
fn bench_reports_percentiles_as_json() {
    let out = auralis(&["bench", "--phrases", "2", "--builtin-font", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["phrases"], 2);
    assert_eq!(v["phrase_seconds"], 32.0);
    for k in ["p50_ms", "p95_ms", "p99_ms", "max_ms", "realtime_factor"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}");
    }
}

/// Renders one channel's notes alone: both the piano and the pad must be heard.
#[test]
fn piano_and_pad_are_both_audible() {
    let fonts = FontSet::builtin();
    let events = Composer::new(Params {
        seed: 3,
        ..Params::default()
    })
    .compose_bars(8);
    for channel in [PIANO_CHANNEL, PAD_CHANNEL] {
        let mut engine = RustyEngine::new(&fonts, EngineSettings::default());
        let (mut left, mut right) = (vec![0.0f32; 441], vec![0.0f32; 441]);
        let mut energy = 0.0f64;
        let mut pending = events
            .iter()
            .filter(|e| e.channel == channel || matches!(e.kind, EventKind::Program { .. }))
            .peekable();
        for block in 0..(32 * 100) {
            let frame = block * 441;
            while let Some(e) = pending.next_if(|e| e.frame <= frame as u64) {
                engine.apply(e);
            }
            engine.render(&mut left, &mut right);
            energy += left
                .iter()
                .chain(&right)
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>();
        }
        let rms = (energy / (32.0 * 44_100.0 * 2.0)).sqrt();
        assert!(rms > 1e-3, "channel {channel} is nearly silent: rms {rms}");
    }
}

#[test]
fn a_bad_soundfont_file_is_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let not_sf2 = dir.path().join("notes.sf2");
    std::fs::write(&not_sf2, b"this is not a soundfont").unwrap();
    let truncated = dir.path().join("truncated.sf2");
    let mut bytes = auralis::soundfont::builtin_font::builtin_font_bytes();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&truncated, bytes).unwrap();
    let missing = dir.path().join("missing.sf2");
    let set = FontSet::resolve(Some(&not_sf2), Some(&truncated));
    assert_ne!(set.piano.info.path.as_deref(), Some(not_sf2.as_path()));
    assert!(
        set.problems
            .iter()
            .any(|p| p.contains("notes.sf2") && p.contains("RIFF")),
        "{:?}",
        set.problems
    );
    assert!(
        set.problems
            .iter()
            .any(|p| p.contains("truncated.sf2") && p.contains("truncated")),
        "{:?}",
        set.problems
    );
    let set = FontSet::resolve(Some(&missing), None);
    assert!(
        set.problems.iter().any(|p| p.contains("missing.sf2")),
        "{:?}",
        set.problems
    );
    assert!(matches!(
        set.piano.info.source,
        FontSource::System | FontSource::BuiltIn
    ));
}

#[test]
fn render_stems_writes_each_layer_aligned_with_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("mix.wav");
    let stems = dir.path().join("stems");
    let out = auralis(&[
        "render",
        "--bars",
        "4",
        "--tail",
        "2",
        "--builtin-font",
        "-o",
        wav.to_str().unwrap(),
        "--stems",
        stems.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, mix) = read_wav(&wav);
    assert_eq!(mix.len(), (16 + 2) * 44_100 * 2);
    for name in ["piano-dry", "piano", "pad-dry", "pad"] {
        let (spec, samples) = read_wav(&stems.join(format!("{name}.wav")));
        assert_eq!((spec.sample_rate, spec.channels), (44_100, 2), "{name}");
        assert_eq!(samples.len(), mix.len(), "{name} is as long as the mix");
        assert!(rms(&samples) > 30.0, "{name} carries its layer");
    }
}

#[test]
fn a_tail_out_of_range_is_refused_with_the_allowed_range() {
    let out = auralis(&["render", "--tail", "99", "-o", "x.wav"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("from 0 to 60"), "{err}");
}
