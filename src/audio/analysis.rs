//! Measurements of finished audio that a listener would notice: clicks and
//! the level of a stream's last moments. Used by the tests (so a regression
//! fails) and by `auralis soundcheck`.

/// Half-width of the neighbourhood a sample step is compared with (5 ms).
const LOCAL_FRAMES: usize = 220;
/// A step this many times the neighbourhood's RMS step is a click.
const CLICK_RATIO: f64 = 8.0;
/// Steps smaller than this (−52 dBFS) are inaudible whatever their context.
const CLICK_FLOOR: f64 = 0.0025;
/// Note events make legitimate steep edges (a hammer, a release): steps within
/// this many frames after an event (and 5 ms before, for rounding) are left out.
const EVENT_GUARD_AFTER: u64 = 1_323;
const EVENT_GUARD_BEFORE: u64 = 220;

/// Frames where one channel of interleaved stereo steps far above its local
/// level (a discontinuity: a voice cut, a buffer seam), away from the frames
/// in `events` (sorted). Deterministic and exact, so tests can require zero.
pub fn clicks(interleaved: &[i16], events: &[u64]) -> Vec<u64> {
    let frames = interleaved.len() / 2;
    let mut found = Vec::new();
    for ch in 0..2 {
        let step = |i: usize| -> f64 {
            let a = f64::from(interleaved[2 * i + ch]);
            let b = f64::from(interleaved[2 * (i - 1) + ch]);
            ((a - b) / 32_768.0).abs()
        };
        if frames < 2 * LOCAL_FRAMES + 2 {
            break;
        }
        // A running sum of squared steps over the window around each frame.
        let mut sum: f64 = (1..=2 * LOCAL_FRAMES + 1).map(|i| step(i).powi(2)).sum();
        for i in LOCAL_FRAMES + 1..frames - LOCAL_FRAMES - 1 {
            let s = step(i);
            if s > CLICK_FLOOR {
                let others = (sum - s * s).max(0.0) / (2 * LOCAL_FRAMES) as f64;
                if s > CLICK_RATIO * others.sqrt() && !near_event(i as u64, events) {
                    found.push(i as u64);
                }
            }
            sum += step(i + LOCAL_FRAMES + 1).powi(2) - step(i - LOCAL_FRAMES).powi(2);
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

fn near_event(frame: u64, events: &[u64]) -> bool {
    let from = frame.saturating_sub(EVENT_GUARD_AFTER);
    let i = events.partition_point(|&e| e < from);
    events
        .get(i)
        .is_some_and(|&e| e <= frame + EVENT_GUARD_BEFORE)
}

/// RMS level of the last `frames` frames, in dBFS (−inf for digital silence).
pub fn tail_dbfs(interleaved: &[i16], frames: usize) -> f64 {
    let n = (frames * 2).min(interleaved.len());
    let tail = &interleaved[interleaved.len() - n..];
    let ms = tail
        .iter()
        .map(|&s| (f64::from(s) / 32_768.0).powi(2))
        .sum::<f64>()
        / n.max(1) as f64;
    10.0 * ms.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(seconds: f64) -> Vec<i16> {
        let n = (seconds * 44_100.0) as usize;
        (0..n)
            .flat_map(|i| {
                let t = i as f64 / 44_100.0;
                let s = (0.3 * (2.0 * std::f64::consts::PI * 220.0 * t).sin() * 32_767.0) as i16;
                [s, s]
            })
            .collect()
    }

    #[test]
    fn a_smooth_tone_has_no_clicks() {
        assert!(clicks(&pad(2.0), &[]).is_empty());
    }

    #[test]
    fn a_cut_is_a_click_unless_a_note_event_explains_it() {
        let mut x = pad(2.0);
        // Silence from frame 44 100 on: the tone is cut mid-cycle.
        let cut = (0..44_100)
            .map(|i| 44_100 + i)
            .find(|&i| x[2 * i].abs() > 5_000)
            .unwrap();
        for s in &mut x[2 * cut..] {
            *s = 0;
        }
        assert_eq!(clicks(&x, &[]), vec![cut as u64]);
        assert!(clicks(&x, &[cut as u64 - 100]).is_empty());
    }

    #[test]
    fn tail_level_of_silence_is_minus_infinity() {
        assert_eq!(tail_dbfs(&[0; 1_000], 441), f64::NEG_INFINITY);
        assert!((tail_dbfs(&pad(1.0), 441) - (-13.5)).abs() < 0.2);
    }
}
