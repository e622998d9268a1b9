//! A second opinion on the SoundFonts Auralis writes: the `fluidsynth` command
//! is an independent SF2 reader, stricter than rustysynth about loops, ranges
//! and generators. The font builders' tests ask it, and `auralis soundfont
//! build-salamander` checks its output with it when the command is installed.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audio::midi::midi_bytes;
use crate::music::{Event, EventKind};

/// Whether the `fluidsynth` command is on the PATH.
pub fn installed() -> bool {
    Command::new("fluidsynth")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Plays `keys` one after another on `program` (bank 0) of `font` through the
/// `fluidsynth` command and returns what it complained about: output lines
/// with errors or warnings, a failed exit, or no audio at all. Empty means
/// the font passed.
pub fn complaints(font: &Path, program: u8, keys: &[u8]) -> std::io::Result<Vec<String>> {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "auralis-fluidsynth-check-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let result = check_in(&dir, font, program, keys);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn check_in(dir: &Path, font: &Path, program: u8, keys: &[u8]) -> std::io::Result<Vec<String>> {
    let (midi, wav) = (dir.join("notes.mid"), dir.join("out.wav"));
    std::fs::write(&midi, notes_midi(program, keys)?)?;
    let out = Command::new("fluidsynth")
        .args(["-n", "-i", "-q", "-R", "0", "-C", "0", "-r", "44100", "-F"])
        .arg(&wav)
        .arg(font)
        .arg(&midi)
        .output()?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: Vec<String> = text
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            let alarming = ["error", "warning", "invalid", "corrupt", "fail"]
                .iter()
                .any(|w| l.contains(w));
            // Channels the file never uses default to presets (drums on bank
            // 128) that a one-instrument font need not have.
            alarming && !l.contains("no preset found")
        })
        .map(str::to_owned)
        .collect();
    if !out.status.success() {
        found.push(format!("fluidsynth exited with {}", out.status));
    }
    if std::fs::metadata(&wav).map_or(0, |m| m.len()) <= 44 {
        found.push("fluidsynth rendered no audio".to_owned());
    }
    Ok(found)
}

/// Half a second per key at 120 BPM on channel 0.
fn notes_midi(program: u8, keys: &[u8]) -> std::io::Result<Vec<u8>> {
    let half_second = u64::from(crate::SAMPLE_RATE) / 2;
    let mut events = vec![Event {
        frame: 0,
        channel: 0,
        kind: EventKind::Program { program },
    }];
    for (i, &key) in keys.iter().enumerate() {
        let start = i as u64 * half_second;
        events.push(Event {
            frame: start,
            channel: 0,
            kind: EventKind::NoteOn { key, velocity: 100 },
        });
        events.push(Event {
            frame: start + half_second,
            channel: 0,
            kind: EventKind::NoteOff { key },
        });
    }
    events.sort_by_key(|e| (e.frame, matches!(e.kind, EventKind::NoteOn { .. })));
    midi_bytes(&events, 120.0).map_err(|e| std::io::Error::other(e.to_string()))
}
