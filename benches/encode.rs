//! What one 100 ms chunk costs to put on the wire in each format: base64 JSON
//! (the brief's format) against our binary frame. A chunk caches its
//! encodings, so every iteration gets a fresh one.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use auralis::audio::CHUNK_BYTES;
use auralis::stream::chunk::Chunk;

fn encode(c: &mut Criterion) {
    // Music-like PCM rather than zeros, so nothing is unrealistically cheap.
    let pcm = Bytes::from(
        (0..CHUNK_BYTES / 2)
            .flat_map(|i| (((i as f32 * 0.031).sin() * 12_000.0) as i16).to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let fresh = || Chunk::new(42, 1_700_000_000.5, pcm.clone());
    let mut group = c.benchmark_group("encode_chunk");
    group.bench_function("json_base64", |b| {
        b.iter_batched(
            fresh,
            |chunk| black_box(chunk.json_frame()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("binary", |b| {
        b.iter_batched(
            fresh,
            |chunk| black_box(chunk.binary_frame()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = encode
}
criterion_main!(benches);
