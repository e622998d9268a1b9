//! The master leveller: steers the stream's loudness toward a target the
//! way listeners' players measure it (K-weighted, BS.1770), slowly enough
//! that phrasing and swells survive. The layers arrive calibrated per font
//! (see `pipeline::calibration`), so this stage only trims what is left: the
//! density of what the composer writes, the voicing, the room.
//!
//! Feed-forward: the gain follows a measurement of the input, so it never
//! chases its own output; gating (as BS.1770 gates) keeps a rest or a fading
//! tail from pumping the gain up into the noise.

use super::loudness::{lufs, KWeighting};

/// The stream's loudness: what music services normalise to on mobile, so
/// Auralis sits level with what a listener plays before and after it.
pub const TARGET_LUFS: f64 = -16.0;
/// Hops below this (absolute gate, BS.1770) are not music.
const ABSOLUTE_GATE_LUFS: f64 = -70.0;
/// Hops this far under the running level are rests and tails: they hold the
/// gain instead of moving it. Wider than BS.1770's 10 LU: a piano speaking
/// alone after the pad has rested is music to level, not a rest.
const RELATIVE_GATE_LU: f64 = 15.0;
/// The measurement hop and window: BS.1770's momentary loudness (400 ms,
/// updated every 100 ms).
const HOP_FRAMES: u32 = crate::SAMPLE_RATE / 10;
const WINDOW_HOPS: usize = 4;
/// How long the running level remembers, in seconds: long enough that a
/// piano phrase or a swell is heard as one, short enough that a preset change
/// settles within a few seconds.
const MEMORY_S: f64 = 4.0;
/// The gain's range around unity: the calibrated layers need little, and a
/// bound keeps an odd input from being pushed into the limiter.
const MIN_GAIN_DB: f64 = -18.0;
const MAX_GAIN_DB: f64 = 18.0;
/// How fast the gain may move, in dB per second: rising slower than falling,
/// so a swell is caught quickly and a quiet passage is not pumped up at once.
const RISE_DB_PER_S: f64 = 2.0;
const FALL_DB_PER_S: f64 = 4.0;

#[derive(Clone)]
pub struct Leveller {
    weighting: KWeighting,
    /// K-weighted energy of the hop being measured, and of the last hops.
    hop_energy: f64,
    hop_frames: u32,
    hops: [f64; WINDOW_HOPS],
    next_hop: usize,
    /// Running mean power (K-weighted) of the input: `ungated` over every
    /// hop above the absolute gate, `level` over those also above the
    /// relative gate, which sits under `ungated` (as BS.1770's sits under the
    /// absolute-gated mean), so a persistently quiet input is never locked out.
    ungated: f64,
    level: f64,
    /// Gain in dB and its per-sample linear step toward the end of this hop.
    gain_db: f64,
    gain: f32,
    step: f32,
    alpha: f64,
    /// The CPU has AVX (asked once, in `new`).
    avx: bool,
}

impl Default for Leveller {
    fn default() -> Self {
        Self::new()
    }
}

impl Leveller {
    pub fn new() -> Self {
        let hops_per_s = f64::from(crate::SAMPLE_RATE) / f64::from(HOP_FRAMES);
        Self {
            weighting: KWeighting::new(f64::from(crate::SAMPLE_RATE)),
            hop_energy: 0.0,
            hop_frames: 0,
            hops: [0.0; WINDOW_HOPS],
            next_hop: 0,
            ungated: super::loudness::power_of(TARGET_LUFS),
            level: super::loudness::power_of(TARGET_LUFS),
            gain_db: 0.0,
            gain: 1.0,
            step: 0.0,
            alpha: 1.0 - (-1.0 / (MEMORY_S * hops_per_s)).exp(),
            #[cfg(target_arch = "x86_64")]
            avx: std::arch::is_x86_feature_detected!("avx"),
            #[cfg(not(target_arch = "x86_64"))]
            avx: false,
        }
    }

    /// Current gain in dB.
    pub fn gain_db(&self) -> f64 {
        self.gain_db
    }

    /// Applies the gain in place. State advances frame by frame, so the
    /// result does not depend on how the stream is cut into blocks. When
    /// `gains` is given, each frame's gain is written there (for stems that
    /// must follow the mix exactly).
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32], gains: Option<&mut [f32]>) {
        #[cfg(target_arch = "x86_64")]
        if self.avx {
            // SAFETY: `avx` is true only when the CPU reported AVX at run time
            // (`Leveller::new`).
            unsafe { self.hops_avx(left, right, gains) };
            return;
        }
        self.hops(left, right, gains);
    }

    /// `hops` with three-operand AVX encodings: the K-weighting is a long
    /// run of f64 multiplies and adds per frame, fewer instructions so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn hops_avx(&mut self, left: &mut [f32], right: &mut [f32], gains: Option<&mut [f32]>) {
        self.hops(left, right, gains);
    }

    /// A hop's frames at a time, with the filters' state in locals: kept in
    /// the struct, every frame would store and reload it, and the
    /// K-weighting is a recursion that waits on it.
    #[inline(always)]
    fn hops(&mut self, left: &mut [f32], right: &mut [f32], mut gains: Option<&mut [f32]>) {
        let mut at = 0;
        while at < left.len() {
            let n = ((HOP_FRAMES - self.hop_frames) as usize).min(left.len() - at);
            let (l, r) = (&mut left[at..at + n], &mut right[at..at + n]);
            self.measure(l, r);
            let (mut gain, step) = (self.gain, self.step);
            match gains.as_deref_mut() {
                Some(g) => {
                    for ((l, r), g) in l.iter_mut().zip(r.iter_mut()).zip(&mut g[at..at + n]) {
                        gain += step;
                        *l *= gain;
                        *r *= gain;
                        *g = gain;
                    }
                }
                None => {
                    for (l, r) in l.iter_mut().zip(r.iter_mut()) {
                        gain += step;
                        *l *= gain;
                        *r *= gain;
                    }
                }
            }
            self.gain = gain;
            self.hop_frames += n as u32;
            if self.hop_frames == HOP_FRAMES {
                self.end_hop();
            }
            at += n;
        }
    }

    /// Adds the K-weighted power of each frame to the hop's energy, skipping
    /// frames whose power is not finite. Summed without looking first (a
    /// test per frame costs as much as the adds); only when the sum comes
    /// out non-finite is the block measured again from the saved state,
    /// frame by frame, which gives the same sum as testing every frame.
    #[inline(always)]
    fn measure(&mut self, left: &[f32], right: &[f32]) {
        let sum = |mut w: KWeighting, mut energy: f64, check: bool| {
            for (&l, &r) in left.iter().zip(right) {
                let p = w.power(l, r);
                if !check || p.is_finite() {
                    energy += p;
                }
            }
            (w, energy)
        };
        let (mut w, mut energy) = (self.weighting, self.hop_energy);
        if self.avx {
            // `avx` is false on every other architecture (`Leveller::new`).
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `avx` is true only when the CPU reported AVX at run
                // time (`Leveller::new`).
                energy = unsafe { w.add_power_avx(left, right, energy) };
            }
        } else {
            (w, energy) = sum(w, energy, false);
        }
        if !energy.is_finite() {
            (w, energy) = sum(self.weighting, self.hop_energy, true);
        }
        (self.weighting, self.hop_energy) = (w, energy);
    }

    /// Closes a 100 ms hop: updates the gated running level from the last
    /// 400 ms, and sets the gain's ramp for the next hop.
    fn end_hop(&mut self) {
        self.hops[self.next_hop] = self.hop_energy / f64::from(HOP_FRAMES);
        self.next_hop = (self.next_hop + 1) % WINDOW_HOPS;
        self.hop_energy = 0.0;
        self.hop_frames = 0;
        let momentary = self.hops.iter().sum::<f64>() / WINDOW_HOPS as f64;
        let loudness = lufs(momentary);
        if loudness > ABSOLUTE_GATE_LUFS {
            self.ungated += (momentary - self.ungated) * self.alpha;
            if loudness > lufs(self.ungated) - RELATIVE_GATE_LU {
                self.level += (momentary - self.level) * self.alpha;
            }
        }
        let wanted = (TARGET_LUFS - lufs(self.level)).clamp(MIN_GAIN_DB, MAX_GAIN_DB);
        let hop_s = f64::from(HOP_FRAMES) / f64::from(crate::SAMPLE_RATE);
        let next = if wanted > self.gain_db {
            (self.gain_db + RISE_DB_PER_S * hop_s).min(wanted)
        } else {
            (self.gain_db - FALL_DB_PER_S * hop_s).max(wanted)
        };
        self.gain_db = next;
        let target = 10f64.powf(next / 20.0) as f32;
        self.step = (target - self.gain) / HOP_FRAMES as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::loudness::measure_i16;

    fn tone(amplitude: f32, seconds: f32) -> Vec<f32> {
        let n = (seconds * crate::SAMPLE_RATE as f32) as usize;
        (0..n)
            .map(|i| amplitude * (i as f32 * 0.0627).sin())
            .collect()
    }

    fn loudness(l: &[f32], r: &[f32]) -> f64 {
        let pcm: Vec<i16> = l
            .iter()
            .zip(r)
            .flat_map(|(a, b)| [(a * 32767.0) as i16, (b * 32767.0) as i16])
            .collect();
        measure_i16(&pcm).unwrap().integrated_lufs
    }

    #[test]
    fn quiet_and_loud_inputs_converge_to_the_target() {
        for amplitude in [0.05, 0.1, 0.5] {
            let mut lev = Leveller::new();
            let mut l = tone(amplitude, 40.0);
            let mut r = l.clone();
            lev.process(&mut l, &mut r, None);
            let tail = l.len() - 10 * 44_100;
            let got = loudness(&l[tail..], &r[tail..]);
            assert!(
                (got - TARGET_LUFS).abs() < 0.5,
                "amplitude {amplitude}: {got:.2} LUFS"
            );
        }
    }

    #[test]
    fn silence_and_rests_hold_the_gain() {
        let mut lev = Leveller::new();
        let mut l = tone(0.1, 20.0);
        let mut r = l.clone();
        lev.process(&mut l, &mut r, None);
        let before = lev.gain_db();
        let mut l = vec![0.0; 44_100 * 10];
        let mut r = l.clone();
        lev.process(&mut l, &mut r, None);
        // Only the last 400 ms window, still partly tone, moves it at all.
        assert!(
            (lev.gain_db() - before).abs() < 0.25,
            "{before} -> {}",
            lev.gain_db()
        );
    }

    #[test]
    fn gain_moves_slowly_and_smoothly() {
        let mut lev = Leveller::new();
        let mut l = tone(0.01, 1.0);
        let mut r = l.clone();
        let mut gains = vec![0.0; l.len()];
        lev.process(&mut l, &mut r, Some(&mut gains));
        assert!(
            lev.gain_db() <= RISE_DB_PER_S + 0.01,
            "rose {} dB in one second",
            lev.gain_db()
        );
        let biggest = gains
            .windows(2)
            .map(|w| (w[1] / w[0]).ln().abs())
            .fold(0f32, f32::max);
        assert!(biggest < 1e-4, "a per-sample gain step of {biggest} nepers");
    }

    #[test]
    fn a_non_finite_frame_is_not_counted() {
        let mut lev = Leveller::new();
        let mut l = tone(0.1, 3.0);
        let mut r = l.clone();
        l[1_000] = f32::NAN;
        r[2_000] = f32::INFINITY;
        lev.process(&mut l, &mut r, None);
        assert!(lev.gain_db().is_finite() && lev.hop_energy.is_finite());
    }

    #[test]
    fn result_does_not_depend_on_block_size() {
        let input = tone(0.05, 3.0);
        let mut whole = (input.clone(), input.clone());
        Leveller::new().process(&mut whole.0, &mut whole.1, None);
        let mut pieces = (input.clone(), input);
        let mut lev = Leveller::new();
        for (l, r) in pieces.0.chunks_mut(777).zip(pieces.1.chunks_mut(777)) {
            lev.process(l, r, None);
        }
        assert_eq!(whole, pieces);
    }
}
