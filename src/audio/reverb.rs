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

/// Combs per channel: one lane each, so the eight run side by side in one
/// 256-bit register.
const LANES: usize = COMB_LENGTHS.len();
/// Samples per block: at most the shortest delay line (225), so within a
/// block no line reads a sample written in the same block, and a comb's
/// block is one contiguous run of its ring (see [`Comb`]).
const BLOCK: usize = 225;

/// An all-pass delay line, read and written a block at a time.
struct Delay {
    buffer: Vec<f32>,
    pos: usize,
}

impl Delay {
    fn new(len: usize) -> Self {
        Self {
            buffer: vec![0.0; len],
            pos: 0,
        }
    }

    /// Calls `f` with the line's next `n` samples as at most two contiguous
    /// pieces (split where the ring wraps), each with its offset in the block.
    /// Always inlined, so that the all-pass loop inside is compiled for AVX
    /// with the rest of `Reverb::blocks_avx`.
    #[inline(always)]
    fn block(&mut self, n: usize, mut f: impl FnMut(usize, &mut [f32])) {
        let first = n.min(self.buffer.len() - self.pos);
        f(0, &mut self.buffer[self.pos..self.pos + first]);
        if first < n {
            f(first, &mut self.buffer[..n - first]);
        }
        self.pos = (self.pos + n) % self.buffer.len();
    }

    fn clear(&mut self) {
        self.buffer.fill(0.0);
    }
}

/// A comb's delay line, whose first `BLOCK` samples are mirrored past its
/// end, so that any block is one contiguous run that the comb kernel reads
/// and rewrites in place: no copy in and out of the ring each block, which
/// took a sixth of the reverb's time.
struct Comb {
    /// `len` samples of line, then the mirror of the first `BLOCK`.
    buffer: Vec<f32>,
    len: usize,
    pos: usize,
}

impl Comb {
    fn new(len: usize) -> Self {
        Self {
            buffer: vec![0.0; len + BLOCK],
            len,
            pos: 0,
        }
    }

    /// The line's next `n` (at most `BLOCK`) samples, in one piece.
    fn window(&mut self, n: usize) -> &mut [f32] {
        &mut self.buffer[self.pos..self.pos + n]
    }

    /// After a block of `n` was rewritten through [`Comb::window`]: what
    /// landed in the mirror goes to the line's start, what landed in the
    /// line's start goes to the mirror, and the line moves on.
    fn advance(&mut self, n: usize) {
        let end = self.pos + n;
        if end > self.len {
            self.buffer.copy_within(self.len..end, 0);
        }
        if self.pos < BLOCK {
            let to = end.min(BLOCK);
            self.buffer.copy_within(self.pos..to, self.len + self.pos);
        }
        self.pos = end % self.len;
    }

    fn clear(&mut self) {
        self.buffer.fill(0.0);
    }
}

/// One channel's eight parallel combs (each a delay with a one-pole low-pass
/// in its feedback) and four all-passes in series.
struct Channel {
    combs: [Comb; LANES],
    store: [f32; LANES],
    allpasses: [Delay; 4],
    out: Vec<f32>,
}

impl Channel {
    fn new(spread: usize) -> Self {
        Self {
            combs: COMB_LENGTHS.map(|l| Comb::new(l + spread)),
            store: [0.0; LANES],
            allpasses: ALLPASS_LENGTHS.map(|l| Delay::new(l + spread)),
            out: vec![0.0; BLOCK],
        }
    }

    /// The wet signal of one block of `input` (n ≤ `BLOCK`) into `self.out`.
    #[inline(always)]
    fn process(&mut self, input: &[f32], coefficients: Coefficients, avx: bool) {
        let n = input.len();
        let out = &mut self.out[..n];
        let mut lines = self.combs.each_mut().map(|c| c.window(n));
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: `avx` is true only when the CPU reported AVX at run time
            // (`Reverb::new`).
            unsafe { combs_avx(&mut lines, input, out, &mut self.store, coefficients) };
        } else {
            comb_lanes(&mut lines, input, out, &mut self.store, coefficients, 0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = avx;
            comb_lanes(&mut lines, input, out, &mut self.store, coefficients, 0);
        }
        for comb in &mut self.combs {
            comb.advance(n);
        }
        for ap in &mut self.allpasses {
            ap.block(n, |at, line| {
                for (b, o) in line.iter_mut().zip(out[at..].iter_mut()) {
                    let buffered = *b;
                    *b = *o + buffered * ALLPASS_FEEDBACK;
                    *o = buffered - *o;
                }
            });
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Coefficients {
    feedback: f32,
    damp1: f32,
    damp2: f32,
}

/// The comb recurrence for all eight lanes (one per comb, `lines[k]` its
/// block of line), sample by sample from `from` to the block's end: only the
/// lanes are parallel (each lane's low-pass depends on its previous sample).
/// Each line's sample is read, then rewritten in place, and `out` is the sum
/// of what the combs read, comb 0 first: the order (and so every rounding)
/// of a comb-by-comb Freeverb. Plain multiplies and adds, never fused, so
/// every build rounds the same way.
#[inline(always)]
fn comb_lanes(
    lines: &mut [&mut [f32]; LANES],
    input: &[f32],
    out: &mut [f32],
    store: &mut [f32; LANES],
    c: Coefficients,
    from: usize,
) {
    let mut s = *store;
    for (i, &x) in input.iter().enumerate().skip(from) {
        let mut sum = 0.0;
        for (line, s) in lines.iter_mut().zip(s.iter_mut()) {
            let tap = line[i];
            sum += tap;
            *s = tap * c.damp2 + *s * c.damp1;
            line[i] = x + *s * c.feedback;
        }
        out[i] = sum;
    }
    *store = s;
}

/// The same recurrence with all eight lanes in one AVX register, eight
/// samples at a time: the eight combs' runs of eight samples, loaded as
/// rows, are summed into `out` row by row and transposed into one register
/// per sample (and the writes back), 24 shuffles per 64 samples instead of
/// a scalar load and store each. The arithmetic is `comb_lanes`', operation
/// for operation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn combs_avx(
    lines: &mut [&mut [f32]; LANES],
    input: &[f32],
    out: &mut [f32],
    store: &mut [f32; LANES],
    c: Coefficients,
) {
    use std::arch::x86_64::*;
    let (damp1, damp2) = (_mm256_set1_ps(c.damp1), _mm256_set1_ps(c.damp2));
    let feedback = _mm256_set1_ps(c.feedback);
    let mut s = _mm256_loadu_ps(store.as_ptr());
    let whole = input.len() / LANES * LANES;
    for i in (0..whole).step_by(LANES) {
        let rows: [__m256; LANES] =
            std::array::from_fn(|k| _mm256_loadu_ps(lines[k][i..i + LANES].as_ptr()));
        let sum = rows
            .iter()
            .fold(_mm256_setzero_ps(), |acc, &row| _mm256_add_ps(acc, row));
        _mm256_storeu_ps(out[i..i + LANES].as_mut_ptr(), sum);
        let lanes = crate::simd::transpose8(rows);
        let mut w = [_mm256_setzero_ps(); LANES];
        for ((w, t), &x) in w.iter_mut().zip(lanes).zip(&input[i..i + LANES]) {
            s = _mm256_add_ps(_mm256_mul_ps(t, damp2), _mm256_mul_ps(s, damp1));
            *w = _mm256_add_ps(_mm256_set1_ps(x), _mm256_mul_ps(s, feedback));
        }
        for (line, row) in lines.iter_mut().zip(crate::simd::transpose8(w)) {
            _mm256_storeu_ps(line[i..i + LANES].as_mut_ptr(), row);
        }
    }
    _mm256_storeu_ps(store.as_mut_ptr(), s);
    comb_lanes(lines, input, out, store, c, whole);
}

pub struct Reverb {
    channels: [Channel; 2],
    input: Vec<f32>,
    coefficients: Coefficients,
    wet1: f32,
    wet2: f32,
    avx: bool,
}

impl Reverb {
    /// All delay lines and block buffers are allocated here, once; `process`
    /// allocates nothing.
    pub fn new(settings: ReverbSettings) -> Self {
        #[cfg(target_arch = "x86_64")]
        let avx = std::arch::is_x86_feature_detected!("avx");
        #[cfg(not(target_arch = "x86_64"))]
        let avx = false;
        Self::with_avx(settings, avx)
    }

    fn with_avx(settings: ReverbSettings, avx: bool) -> Self {
        let wet = settings.level.clamp(0.0, 1.0) * SCALE_WET;
        let width = settings.width.clamp(0.0, 1.0);
        let damp = settings.damping.clamp(0.0, 1.0) * SCALE_DAMP;
        Self {
            channels: [Channel::new(0), Channel::new(STEREO_SPREAD)],
            input: vec![0.0; BLOCK],
            coefficients: Coefficients {
                feedback: settings.room_size.clamp(0.0, 1.0) * SCALE_ROOM + OFFSET_ROOM,
                damp1: damp,
                damp2: 1.0 - damp,
            },
            wet1: wet * (width / 2.0 + 0.5),
            wet2: wet * ((1.0 - width) / 2.0),
            avx,
        }
    }

    /// Silences the tail: what follows sounds as if nothing came before.
    pub fn clear(&mut self) {
        for c in &mut self.channels {
            c.combs.iter_mut().for_each(Comb::clear);
            c.allpasses.iter_mut().for_each(Delay::clear);
            c.store = [0.0; LANES];
        }
    }

    /// Adds the reverberated signal to the dry signal in place.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx {
            // SAFETY: `avx` is true only when the CPU reported AVX at run time
            // (`Reverb::new`).
            unsafe { self.blocks_avx(left, right) };
            return;
        }
        self.blocks(left, right, self.avx);
    }

    /// `blocks` compiled for AVX throughout: the all-passes and the mix run
    /// eight lanes wide, not only the combs.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn blocks_avx(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.blocks(left, right, true);
    }

    #[inline(always)]
    fn blocks(&mut self, left: &mut [f32], right: &mut [f32], avx: bool) {
        for (l, r) in left.chunks_mut(BLOCK).zip(right.chunks_mut(BLOCK)) {
            let input = &mut self.input[..l.len()];
            for ((i, a), b) in input.iter_mut().zip(l.iter()).zip(r.iter()) {
                *i = (*a + *b) * FIXED_GAIN;
            }
            let [cl, cr] = &mut self.channels;
            cl.process(input, self.coefficients, avx);
            cr.process(input, self.coefficients, avx);
            for (((l, r), ol), or) in l.iter_mut().zip(r.iter_mut()).zip(&cl.out).zip(&cr.out) {
                *l += ol * self.wet1 + or * self.wet2;
                *r += or * self.wet1 + ol * self.wet2;
            }
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
    fn a_cleared_reverb_has_no_tail() {
        let mut reverb = Reverb::new(ReverbSettings::default());
        let (mut l, mut r) = (vec![1.0; 1_000], vec![1.0; 1_000]);
        reverb.process(&mut l, &mut r);
        reverb.clear();
        let (mut l, mut r) = (vec![0.0; 10_000], vec![0.0; 10_000]);
        reverb.process(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|&x| x == 0.0));
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

    /// Freeverb as written before the lanes, comb by comb and sample by
    /// sample: the reference both paths must match bit for bit.
    fn reference(left: &mut [f32], right: &mut [f32]) {
        let s = ReverbSettings::default();
        let damp = s.damping * SCALE_DAMP;
        let (feedback, damp1, damp2) = (s.room_size * SCALE_ROOM + OFFSET_ROOM, damp, 1.0 - damp);
        let (wet1, wet2) = (
            s.level * SCALE_WET * (s.width / 2.0 + 0.5),
            s.level * SCALE_WET * ((1.0 - s.width) / 2.0),
        );
        let line = |len: usize| (vec![0.0f32; len], 0usize, 0.0f32);
        let mut combs: Vec<Vec<_>> = [0, STEREO_SPREAD]
            .iter()
            .map(|&sp| COMB_LENGTHS.iter().map(|&l| line(l + sp)).collect())
            .collect();
        let mut aps: Vec<Vec<_>> = [0, STEREO_SPREAD]
            .iter()
            .map(|&sp| ALLPASS_LENGTHS.iter().map(|&l| line(l + sp)).collect())
            .collect();
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let input = (*l + *r) * FIXED_GAIN;
            let mut out = [0.0f32; 2];
            for ch in 0..2 {
                for (buf, pos, store) in combs[ch].iter_mut() {
                    let o = buf[*pos];
                    *store = o * damp2 + *store * damp1;
                    buf[*pos] = input + *store * feedback;
                    *pos = (*pos + 1) % buf.len();
                    out[ch] += o;
                }
                for (buf, pos, _) in aps[ch].iter_mut() {
                    let b = buf[*pos];
                    buf[*pos] = out[ch] + b * ALLPASS_FEEDBACK;
                    *pos = (*pos + 1) % buf.len();
                    out[ch] = b - out[ch];
                }
            }
            *l += out[0] * wet1 + out[1] * wet2;
            *r += out[1] * wet1 + out[0] * wet2;
        }
    }

    /// Noise bursts and silences in calls of uneven length, so blocks split
    /// everywhere, ring buffers wrap mid-block, and the tail rings on its own.
    fn program() -> (Vec<f32>, Vec<f32>) {
        let mut seed = 0x2545_f491_u32;
        let mut noise = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32) - 0.5
        };
        let n = 3 * crate::SAMPLE_RATE as usize;
        let gate = |i: usize| {
            if (i / 7_000).is_multiple_of(3) {
                1.0
            } else {
                0.0
            }
        };
        let l = (0..n).map(|i| gate(i) * noise()).collect();
        let r = (0..n).map(|i| gate(i) * noise()).collect();
        (l, r)
    }

    fn run(mut reverb: Reverb) -> (Vec<f32>, Vec<f32>) {
        let (mut l, mut r) = program();
        let mut at = 0;
        for len in [1, 224, 225, 226, 4_410, 999].iter().cycle() {
            if at >= l.len() {
                break;
            }
            let end = (at + len).min(l.len());
            reverb.process(&mut l[at..end], &mut r[at..end]);
            at = end;
        }
        (l, r)
    }

    #[test]
    fn both_paths_match_comb_by_comb_freeverb_bit_for_bit() {
        let (mut l, mut r) = program();
        reference(&mut l, &mut r);
        let portable = run(Reverb::with_avx(ReverbSettings::default(), false));
        assert!(portable.0 == l && portable.1 == r, "portable path differs");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            let avx = run(Reverb::with_avx(ReverbSettings::default(), true));
            assert!(avx.0 == l && avx.1 == r, "AVX path differs");
        }
    }

    #[test]
    fn silence_stays_silent() {
        let mut l = vec![0.0; 10_000];
        let mut r = vec![0.0; 10_000];
        Reverb::new(ReverbSettings::default()).process(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|&x| x == 0.0));
    }
}
