//! The real binary under a real signal: SIGTERM closes listeners with 1001
//! and the process exits 0.

mod common;

use std::process::Command;

use common::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn sigterm_closes_listeners_with_1001_and_exits_0() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_auralis"));
    let (mut child, addr) =
        auralis::tools::loadtest::spawn_server_at(exe, &["--builtin-font".into()])
            .expect("the server starts and says where it listens");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/stream"))
        .await
        .unwrap();
    next_event(&mut ws).await;
    next_audio(&mut ws).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let frame = loop {
        if let Message::Close(frame) = next(&mut ws).await {
            break frame.expect("a close frame with a code");
        }
    };
    assert_eq!(frame.code, CloseCode::Away);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
}
