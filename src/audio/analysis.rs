//! Measurements of finished audio that a listener would notice: clicks and
//! the level of a stream's last moments. Used by the tests (so a regression
//! fails) and by `auralis soundcheck`.

/// What counts as a click: a sample whose difference of `order` (the first,
/// `x[i] − x[i−1]`, or the second, `x[i] − 2x[i−1] + x[i−2]`) is more than
/// `ratio` times the RMS difference of the `window` frames before it *and* of
/// the `window` frames after it, and above `floor` (for the second
/// difference, the few samples on each side that a jump spreads into are
/// left out of both windows). The second difference
/// is near zero for smooth waveforms and large at a jump in value or slope;
/// requiring it to stand out from both sides keeps a periodic waveform's own
/// sharp edges (a sawtooth's reset recurs within 10 ms) from counting, while
/// a cut to silence stands out from the tone before it and the zeros after
/// it. Detections closer than `window` are one click.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClickRule {
    /// 2 judges the second difference (a change of slope: what a cut voice
    /// leaves in a dry signal); 1 the first (a step in value), which a mix's
    /// low pads, whose own waveform bends sharply every period, do not
    /// trip.
    pub order: u8,
    pub ratio: f64,
    /// Full scale is 1.0.
    pub floor: f64,
    pub window: usize,
    /// Note events make legitimate steep edges (a hammer, a release): frames
    /// this close before or after one are not judged.
    pub guard_before: usize,
    pub guard_after: usize,
}

impl ClickRule {
    /// For a synthesizer's dry output, where nothing should hide a click:
    /// 10 ms windows, ±15 ms around notes, and a floor of −70 dBFS. A voice's
    /// own end is under that floor: rustysynth ends a voice once its envelope
    /// is 60 dB under the note's level, a step of about 1e-4 that the
    /// composer's rests (both layers silent) leave bare, and nobody hears.
    pub const DRY: Self = Self {
        order: 2,
        ratio: 12.0,
        floor: 3e-4,
        window: 441,
        guard_before: 661,
        guard_after: 661,
    };
    /// For a finished mix: sample steps against 5 ms windows, notes guarded
    /// 5 ms before and 30 ms after (the reverb spreads an attack), steps
    /// under −52 dBFS ignored.
    pub const MIX: Self = Self {
        order: 1,
        ratio: 8.0,
        floor: 0.0025,
        window: 220,
        guard_before: 220,
        guard_after: 1_323,
    };
}

/// Samples either side of a jump that its second difference spreads into.
const SPREAD: usize = 3;

/// Frames of the clicks in the mono signal `x` under `rule`, away from the
/// frames in `note_events` (any order). Deterministic and exact, so tests can
/// require zero.
pub fn clicks(x: &[f32], note_events: &[u64], rule: &ClickRule) -> Vec<u64> {
    let d2: Vec<f64> = (0..x.len())
        .map(|i| {
            if i < 2 {
                0.0
            } else if rule.order == 1 {
                f64::from(x[i]) - f64::from(x[i - 1])
            } else {
                f64::from(x[i]) - 2.0 * f64::from(x[i - 1]) + f64::from(x[i - 2])
            }
        })
        .collect();
    // Running sums of squares make each window's RMS O(1).
    let mut sq = vec![0.0f64; d2.len() + 1];
    for (i, v) in d2.iter().enumerate() {
        sq[i + 1] = sq[i] + v * v;
    }
    let rms = |a: usize, b: usize| ((sq[b] - sq[a]).max(0.0) / (b - a).max(1) as f64).sqrt();
    let mut guarded = vec![false; x.len()];
    for &e in note_events {
        let e = usize::try_from(e).unwrap_or(usize::MAX);
        let from = e.saturating_sub(rule.guard_before).min(x.len());
        let to = e.saturating_add(rule.guard_after).min(x.len());
        guarded[from..to].fill(true);
    }
    let w = rule.window;
    let mut found: Vec<u64> = Vec::new();
    // A step is its own sample; a bend spreads into its neighbours' second
    // differences. A steep edge of the music itself spans several samples, and
    // those neighbours then stay in the windows, so it does not stand out.
    let spread = if rule.order == 1 { 0 } else { SPREAD };
    for i in w + spread..d2.len().saturating_sub(w + spread) {
        let step = d2[i].abs();
        let click = !guarded[i]
            && step > rule.floor
            && step > rule.ratio * rms(i - spread - w, i - spread)
            && step > rule.ratio * rms(i + spread + 1, i + spread + 1 + w);
        if click && found.last().is_none_or(|&last| i as u64 - last > w as u64) {
            found.push(i as u64);
        }
    }
    found
}

/// [`clicks`] in either channel of interleaved 16-bit stereo.
pub fn clicks_i16(interleaved: &[i16], note_events: &[u64], rule: &ClickRule) -> Vec<u64> {
    let mut found = Vec::new();
    for ch in 0..2 {
        let x: Vec<f32> = interleaved
            .iter()
            .skip(ch)
            .step_by(2)
            .map(|&s| f32::from(s) / 32_768.0)
            .collect();
        found.extend(clicks(&x, note_events, rule));
    }
    found.sort_unstable();
    found.dedup();
    found
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
        assert!(clicks_i16(&pad(2.0), &[], &ClickRule::MIX).is_empty());
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
        assert_eq!(clicks_i16(&x, &[], &ClickRule::MIX), vec![cut as u64]);
        assert!(clicks_i16(&x, &[cut as u64 - 100], &ClickRule::MIX).is_empty());
    }

    #[test]
    fn tail_level_of_silence_is_minus_infinity() {
        assert_eq!(tail_dbfs(&[0; 1_000], 441), f64::NEG_INFINITY);
        assert!((tail_dbfs(&pad(1.0), 441) - (-13.5)).abs() < 0.2);
    }
}
