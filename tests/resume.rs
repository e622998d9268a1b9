//! Resuming the same piece over real sockets: a listener whose connection
//! dies comes back to its session with its token and hears the next chunk;
//! a server that never knew the token rebuilds the piece at that chunk.

mod common;

use common::*;

/// Reads `hello` and `n` chunks; returns (token, seed, next seq wanted).
async fn listen(ws: &mut Ws, n: usize) -> (String, u64, u64) {
    let hello = next_event(ws).await;
    assert_eq!(hello["type"], "hello");
    let token = hello["resume"]
        .as_str()
        .expect("a resume token")
        .to_string();
    let seed = hello["params"]["seed"].as_u64().unwrap();
    let mut seq = hello["next_seq"].as_u64().unwrap();
    for _ in 0..n {
        let audio = next_audio(ws).await;
        assert_eq!(audio.seq, seq);
        seq += 1;
    }
    (token, seed, seq)
}

#[tokio::test]
async fn a_dropped_listener_resumes_its_session_at_the_next_chunk() {
    let server = start().await;
    let mut ws = connect(&server, "?seed=4242").await;
    let first = next_event(&mut ws).await;
    let session = first["session_id"].clone();
    let token = first["resume"].as_str().unwrap().to_string();
    let mut from = first["next_seq"].as_u64().unwrap();
    for _ in 0..5 {
        assert_eq!(next_audio(&mut ws).await.seq, from);
        from += 1;
    }
    // The connection dies: no close frame.
    drop(ws);
    let mut back = connect(&server, &format!("?seed=4242&resume={token}&from={from}")).await;
    let hello = next_event(&mut back).await;
    assert_eq!(hello["session_id"], session, "the same session");
    assert_eq!(hello["resume"], token.as_str());
    assert_eq!(hello["next_seq"], from);
    for i in 0..5 {
        assert_eq!(
            next_audio(&mut back).await.seq,
            from + i,
            "no chunk lost or repeated"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_knew_the_token_rebuilds_the_piece_where_it_was() {
    let old = start().await;
    let mut ws = connect(&old, "?preset=calm&seed=77").await;
    let (token, seed, _) = listen(&mut ws, 2).await;
    drop(ws);
    old.shutdown().await.unwrap();

    let server = start().await;
    let from = 3_000; // five minutes in
    let mut ws = connect(
        &server,
        &format!("?preset=calm&seed={seed}&resume={token}&from={from}"),
    )
    .await;
    let hello = next_event(&mut ws).await;
    assert_eq!(hello["next_seq"], from);
    assert_eq!(hello["params"]["seed"], seed);
    assert_eq!(
        hello["resume"],
        token.as_str(),
        "resumable again under the same token"
    );
    let audio = next_audio(&mut ws).await;
    assert_eq!(audio.seq, from);
    server.shutdown().await.unwrap();
}
