//! Freeverb (Jezar's Schroeder–Moorer design, the algorithm FluidSynth's own
//! reverb is based on), applied once on the session's mix. One reverb per mix
//! instead of one per synthesizer halves its cost when the piano and pad fonts
//! differ, and lets us set the brief's parameters exactly.

/// The brief's ambient settings (§1.3): a medium room, moderate damping, wide,
/// 20 % wet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReverbSettings {
    pub room_size: f32,
    pub damping: f32,
    pub width: f32,
    pub level: f32,
}

impl Default for ReverbSettings {
    fn default() -> Self {
        Self {
            room_size: 0.6,
            damping: 0.5,
            width: 0.8,
            level: 0.2,
        }
    }
}

/// Comb and all-pass lengths from Freeverb, tuned for 44.1 kHz; the right
/// channel is offset by `STEREO_SPREAD` so the two tails decorrelate.
const COMB_LENGTHS: [usize; 8] = [1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617];
const ALLPASS_LENGTHS: [usize; 4] = [556, 441, 341, 225];
const STEREO_SPREAD: usize = 23;
const FIXED_GAIN: f32 = 0.015;
const SCALE_WET: f32 = 3.0;
const SCALE_DAMP: f32 = 0.4;
const SCALE_ROOM: f32 = 0.28;
const OFFSET_ROOM: f32 = 0.7;
const ALLPASS_FEEDBACK: f32 = 0.5;

struct Comb {
    buffer: Vec<f32>,
    pos: usize,
    store: f32,
}

impl Comb {
    fn new(len: usize) -> Self {
        Self {
            buffer: vec![0.0; len],
            pos: 0,
            store: 0.0,
        }
    }

    #[inline]
    fn process(&mut self, input: f32, feedback: f32, damp1: f32, damp2: f32) -> f32 {
        let out = self.buffer[self.pos];
        self.store = out * damp2 + self.store * damp1;
        self.buffer[self.pos] = input + self.store * feedback;
        self.pos += 1;
        if self.pos == self.buffer.len() {
            self.pos = 0;
        }
        out
    }
}

struct AllPass {
    buffer: Vec<f32>,
    pos: usize,
}

impl AllPass {
    fn new(len: usize) -> Self {
        Self {
            buffer: vec![0.0; len],
            pos: 0,
        }
    }

    #[inline]
    fn process(&mut self, input: f32) -> f32 {
        let buffered = self.buffer[self.pos];
        self.buffer[self.pos] = input + buffered * ALLPASS_FEEDBACK;
        self.pos += 1;
        if self.pos == self.buffer.len() {
            self.pos = 0;
        }
        buffered - input
    }
}

pub struct Reverb {
    combs: [Vec<Comb>; 2],
    allpasses: [Vec<AllPass>; 2],
    feedback: f32,
    damp1: f32,
    damp2: f32,
    wet1: f32,
    wet2: f32,
}

impl Reverb {
    /// All delay lines are allocated here, once; `process` allocates nothing.
    pub fn new(settings: ReverbSettings) -> Self {
        let channel = |spread: usize| {
            (
                COMB_LENGTHS
                    .iter()
                    .map(|&l| Comb::new(l + spread))
                    .collect(),
                ALLPASS_LENGTHS
                    .iter()
                    .map(|&l| AllPass::new(l + spread))
                    .collect(),
            )
        };
        let (cl, al) = channel(0);
        let (cr, ar) = channel(STEREO_SPREAD);
        let wet = settings.level.clamp(0.0, 1.0) * SCALE_WET;
        let width = settings.width.clamp(0.0, 1.0);
        let damp = settings.damping.clamp(0.0, 1.0) * SCALE_DAMP;
        Self {
            combs: [cl, cr],
            allpasses: [al, ar],
            feedback: settings.room_size.clamp(0.0, 1.0) * SCALE_ROOM + OFFSET_ROOM,
            damp1: damp,
            damp2: 1.0 - damp,
            wet1: wet * (width / 2.0 + 0.5),
            wet2: wet * ((1.0 - width) / 2.0),
        }
    }

    /// Adds the reverberated signal to the dry signal in place.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let (feedback, damp1, damp2) = (self.feedback, self.damp1, self.damp2);
        let [combs_l, combs_r] = &mut self.combs;
        let [aps_l, aps_r] = &mut self.allpasses;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let input = (*l + *r) * FIXED_GAIN;
            let mut out_l = 0.0;
            let mut out_r = 0.0;
            for c in combs_l.iter_mut() {
                out_l += c.process(input, feedback, damp1, damp2);
            }
            for c in combs_r.iter_mut() {
                out_r += c.process(input, feedback, damp1, damp2);
            }
            for a in aps_l.iter_mut() {
                out_l = a.process(out_l);
            }
            for a in aps_r.iter_mut() {
                out_r = a.process(out_r);
            }
            *l += out_l * self.wet1 + out_r * self.wet2;
            *r += out_r * self.wet1 + out_l * self.wet2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impulse_response(frames: usize) -> (Vec<f32>, Vec<f32>) {
        let mut l = vec![0.0; frames];
        let mut r = vec![0.0; frames];
        l[0] = 1.0;
        r[0] = 1.0;
        Reverb::new(ReverbSettings::default()).process(&mut l, &mut r);
        (l, r)
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn an_impulse_leaves_a_decaying_stereo_tail() {
        let sr = crate::SAMPLE_RATE as usize;
        let (l, r) = impulse_response(4 * sr);
        let early = rms(&l[sr / 10..sr / 2]);
        let late = rms(&l[3 * sr..4 * sr]);
        assert!(early > 1e-4, "tail too quiet: {early}");
        assert!(late < early / 10.0, "tail does not decay: {early} → {late}");
        assert_ne!(
            l[sr / 4..sr / 2],
            r[sr / 4..sr / 2],
            "left and right identical"
        );
    }

    #[test]
    fn silence_stays_silent() {
        let mut l = vec![0.0; 10_000];
        let mut r = vec![0.0; 10_000];
        Reverb::new(ReverbSettings::default()).process(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|&x| x == 0.0));
    }
}
