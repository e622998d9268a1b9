//! The command line as a shell user meets it: output piped into a tool
//! that stops reading, logs redirected to a file.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

fn auralis() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_auralis"));
    c.env_remove("SOUNDFONT_PIANO").env_remove("SOUNDFONT_GM");
    c
}

#[test]
fn a_closed_pipe_ends_a_report_quietly_not_with_a_panic() {
    // The reader is gone before the report is written, as with `| head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = auralis()
        .args(["presets"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run auralis");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let out = auralis()
        .args(["soundfonts", "--soundfont-pad", "/nonexistent/pad.sf2"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run auralis");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN"),
        "the missing font is logged: {stderr:?}"
    );
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in {stderr:?}");
}
