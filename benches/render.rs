//! What one 100 ms chunk costs to synthesize through the whole pipeline
//! (engines → faders → DC blocker → reverb → leveller → limiter → i16), per backend, with the
//! built-in font so the numbers do not depend on what is installed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use auralis::audio::CHUNK_FRAMES;
use auralis::music::Params;
use auralis::pipeline::{EngineSource, Renderer};
use auralis::soundfont::FontSet;
use auralis::synth::EngineKind;

/// Past the 1.5 s fade-in and into the first chords, so the chunks measured
/// are the steady state a listener hears.
const WARM_UP_CHUNKS: usize = 40;

fn render_chunk(c: &mut Criterion) {
    let fonts = FontSet::builtin();
    let mut group = c.benchmark_group("render_chunk_100ms");
    for kind in kinds() {
        let mut renderer = Renderer::new(Params::default(), &EngineSource::new(kind, &fonts))
            .expect("the built-in font loads in every backend compiled in");
        let mut out = Vec::with_capacity(CHUNK_FRAMES * 2);
        for _ in 0..WARM_UP_CHUNKS {
            out.clear();
            renderer.render(CHUNK_FRAMES, &mut out);
        }
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                out.clear();
                renderer.render(CHUNK_FRAMES, &mut out);
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn kinds() -> Vec<EngineKind> {
    if cfg!(feature = "fluidsynth") {
        vec![EngineKind::Rustysynth, EngineKind::Fluidsynth]
    } else {
        vec![EngineKind::Rustysynth]
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = render_chunk
}
criterion_main!(benches);
