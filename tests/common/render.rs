//! Engines played directly, without the pipeline: what the sound tests
//! measure when they judge a synthesizer alone.

use auralis::music::Event;
use auralis::synth::Engine;

/// Plays `events` into `engine` at their exact frames and returns the dry
/// left and right channels (no reverb, leveller or limiter).
pub fn render_dry(
    engine: &mut dyn Engine,
    events: &[Event],
    frames: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (mut left, mut right) = (vec![0.0f32; frames], vec![0.0f32; frames]);
    let mut pos = 0;
    let mut events = events.iter().peekable();
    while pos < frames {
        while let Some(e) = events.next_if(|e| e.frame as usize <= pos) {
            engine.apply(e);
        }
        let end = events
            .peek()
            .map_or(frames, |e| (e.frame as usize).clamp(pos + 1, frames));
        engine.render(&mut left[pos..end], &mut right[pos..end]);
        pos = end;
    }
    (left, right)
}
